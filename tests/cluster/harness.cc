#include "tests/cluster/harness.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/net.h"
#include "common/subprocess.h"
#include "tests/cluster/cleanup_registry.h"
#include "tests/cluster/netns_http.h"
#include "tests/cluster/topology.h"

namespace weft::testing {
namespace {

constexpr char kUnderlayPrefix[] = "192.0.2.";
constexpr char kRoutedUnderlayPrefix[] = "198.51.100.";

// 192.0.2.N -> fd77:2::N (the dual-stack underlay's address of the same namespace).
std::string Ipv6Underlay(absl::string_view ipv4) {
  return absl::StrCat(Cluster::kUnderlayIpv6Prefix, ipv4.substr(ipv4.rfind('.') + 1));
}

absl::Status MakeDirs(const std::string& path) {
  std::string cur;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    absl::StrAppend(&cur, "/", part);
    if (mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) {
      return absl::InternalError(absl::StrCat("mkdir ", cur, ": ", std::strerror(errno)));
    }
  }
  return absl::OkStatus();
}

bool IsExecutable(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

std::atomic<int> g_cluster_counter{0};

}  // namespace

BinaryPaths BinaryPaths::FromEnvOrRunfiles() {
  std::string root;
  if (const char* d = getenv("RUNFILES_DIR")) {
    root = d;
  } else if (const char* d = getenv("TEST_SRCDIR")) {
    root = d;
  }
  auto pick = [&](const char* env, const char* rel) -> std::string {
    if (const char* v = getenv(env); v && *v) return v;
    return root.empty() ? std::string() : absl::StrCat(root, "/weft/", rel);
  };
  return BinaryPaths{pick("WEFT_CONTROLLER_BIN", "controller/weft-controller"),
                     pick("WEFT_AGENT_BIN", "agent/weft-agent"),
                     pick("WEFTCTL_BIN", "tools/weftctl/weftctl")};
}

absl::Status BinaryPaths::Check() const {
  std::vector<std::string> bad;
  for (const auto& [what, path] : {std::pair<const char*, const std::string&>{"controller", controller},
                                   {"agent", agent},
                                   {"weftctl", weftctl}}) {
    if (!IsExecutable(path)) bad.push_back(absl::StrCat(what, " \"", path, "\""));
  }
  if (bad.empty()) return absl::OkStatus();
  return absl::NotFoundError(absl::StrCat("not an executable: ", absl::StrJoin(bad, ", ")));
}

std::string Cluster::RunPrefix() { return absl::StrCat("wft", getpid(), "-"); }

int Cluster::SweepNamespaces(absl::string_view prefix) { return weft::testing::SweepNamespaces(prefix); }

void Cluster::InstallSignalHandlers() { InstallInterruptHandlers(); }

bool Cluster::Interrupted() { return InterruptReceived(); }

absl::Status Cluster::WaitFor(const std::function<bool()>& done, absl::Duration timeout,
                              absl::string_view what, absl::Duration interval) {
  return WaitForOk(
      [&]() -> absl::Status {
        if (done()) return absl::OkStatus();
        return absl::DeadlineExceededError(absl::StrCat("not yet: ", what));
      },
      timeout, interval);
}

absl::Status Cluster::WaitForOk(const std::function<absl::Status()>& check, absl::Duration timeout,
                                absl::Duration interval) {
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + timeout;
  absl::Status last;
  while (true) {
    if (InterruptReceived()) return absl::CancelledError("interrupted");
    last = check();
    if (last.ok()) return last;
    if (absl::Now() >= deadline) break;
    absl::SleepFor(std::min(interval, deadline - absl::Now()));
  }
  return absl::DeadlineExceededError(absl::StrCat("gave up after ", absl::FormatDuration(timeout),
                                                  ": ", last.message()));
}

absl::StatusOr<int> Cluster::HttpGetStatus(absl::string_view ns, absl::string_view ip, int port,
                                           absl::string_view path, absl::Duration timeout) {
  return HttpGetStatusInNamespace(ns, ip, port, path, timeout);
}

// ---------------------------------------------------------------------------

Cluster::Cluster(ClusterOptions options) : options_(std::move(options)) {
  if (options_.name.empty()) options_.name = absl::StrCat("cluster", g_cluster_counter++);
}

Cluster::~Cluster() { Shutdown(); }

void Cluster::Log(absl::string_view message) const {
  if (!options_.verbose) return;
  std::fprintf(stderr, "[%s %s] %s\n",
               absl::FormatTime("%H:%M:%E3S", absl::Now(), absl::LocalTimeZone()).c_str(),
               options_.name.c_str(), std::string(message).c_str());
}

absl::StatusOr<std::unique_ptr<Cluster>> Cluster::Start(ClusterOptions options) {
  std::unique_ptr<Cluster> c(new Cluster(std::move(options)));
  // From here on the destructor removes whatever the next steps made.
  if (absl::Status s = c->Build(); !s.ok()) return s;
  return c;
}

absl::Status Cluster::Build() {
  if (geteuid() != 0) {
    return absl::PermissionDeniedError("the cluster harness needs root (network namespaces)");
  }
  // The agent is checked when one starts: a controller-only cluster needs none.
  for (const auto& [what, path] : {std::pair<const char*, const std::string&>{
                                       "controller", options_.binaries.controller},
                                   {"weftctl", options_.binaries.weftctl}}) {
    if (!IsExecutable(path)) {
      return absl::NotFoundError(absl::StrCat(what, " binary \"", path, "\" is not an executable"));
    }
  }
  EnsureSbinOnPath();

  work_dir_ = options_.work_dir;
  if (work_dir_.empty()) {
    if (const char* t = getenv("TEST_TMPDIR"); t && *t) {
      work_dir_ = absl::StrCat(t, "/", options_.name);
    } else {
      std::string tmpl = "/tmp/weft-cluster-XXXXXX";
      if (mkdtemp(tmpl.data()) == nullptr) {
        return absl::InternalError(absl::StrCat("mkdtemp ", tmpl, ": ", std::strerror(errno)));
      }
      work_dir_ = tmpl;
    }
  }
  log_dir_ = options_.log_dir;
  if (log_dir_.empty()) {
    if (const char* o = getenv("TEST_UNDECLARED_OUTPUTS_DIR"); o && *o) {
      log_dir_ = absl::StrCat(o, "/", options_.name);
    } else {
      log_dir_ = work_dir_ + "/logs";
    }
  }
  if (absl::Status s = MakeDirs(work_dir_); !s.ok()) return s;
  if (absl::Status s = MakeDirs(log_dir_); !s.ok()) return s;
  Log(absl::StrCat("logs in ", log_dir_));
  if (options_.tls) {
    std::string sans = absl::StrCat("IP:", kControllerIp);
    if (options_.underlay_ipv6) absl::StrAppend(&sans, ",IP:", kControllerIpv6);
    absl::StatusOr<TestCerts> certs = TestCerts::Make(work_dir_ + "/certs", sans);
    if (!certs.ok()) return certs.status();
    certs_ = *std::move(certs);
    Log(absl::StrCat("mutual TLS on: certificates (CA, controller, admin, one per node) in ", certs_->dir()));
  }

  absl::StatusOr<std::string> sw = CreateNamespace("sw");
  if (!sw.ok()) return sw.status();
  switch_ns_ = *sw;
  if (absl::Status s = AddBridge(switch_ns_, "br0"); !s.ok()) return s;

  absl::StatusOr<std::string> ctl = CreateNamespace("ctl");
  if (!ctl.ok()) return ctl.status();
  controller_ns_ = *ctl;
  if (absl::Status s = ConnectToSwitch(controller_ns_, "ctl", kControllerIp); !s.ok()) return s;
  controller_log_ = log_dir_ + "/controller.log";
  if (absl::Status s = StartController(); !s.ok()) return s;
  if (!options_.network_config.empty()) {
    if (absl::Status s = SetNetworkConfig(options_.network_config); !s.ok()) return s;
  }
  for (int i = 0; i < options_.hosts; ++i) {
    if (absl::StatusOr<int> h = AddHost(options_.containers_per_host); !h.ok()) return h.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Cluster::CreateNamespace(absl::string_view tag) {
  absl::StatusOr<std::unique_ptr<NetNs>> ns = NetNs::Create(tag);
  if (!ns.ok()) return ns.status();
  TrackNamespace((*ns)->name());
  namespaces_.push_back(std::move(*ns));
  return namespaces_.back()->name();
}

std::vector<std::string> Cluster::namespaces() const {
  std::vector<std::string> names;
  for (const auto& ns : namespaces_) names.push_back(ns->name());
  return names;
}

absl::Status Cluster::ConnectToSwitch(const std::string& ns, const std::string& port,
                                      const std::string& ip) {
  // Only the switch's own subnet is dual-stack.
  const bool v6 = options_.underlay_ipv6 && absl::StartsWith(ip, kUnderlayPrefix);
  return weft::testing::ConnectToSwitch(switch_ns_, ns, port, ip, v6 ? Ipv6Underlay(ip) : "");
}

std::string Cluster::controller_addr() const {
  if (options_.underlay_ipv6) return absl::StrCat("[", kControllerIpv6, "]:", kGrpcPort);
  return absl::StrCat(kControllerIp, ":", kGrpcPort);
}

std::vector<const Container*> Cluster::containers() const {
  std::vector<const Container*> all;
  for (const auto& h : hosts_) {
    for (const Container& c : h->containers) all.push_back(&c);
  }
  return all;
}

absl::Status Cluster::StartController() {
  if (controller_pid_ > 0) return absl::FailedPreconditionError("controller already running");
  const std::string data_dir = work_dir_ + "/controller-data";
  if (absl::Status s = MakeDirs(data_dir); !s.ok()) return s;
  std::vector<std::string> argv = {
      options_.binaries.controller,
      "--data-dir", data_dir,
      // [::] takes IPv4 connections too (v4-mapped).
      "--listen", options_.underlay_ipv6 ? absl::StrCat("[::]:", kGrpcPort) : controller_addr(),
      "--metrics-listen", absl::StrCat(kControllerIp, ":", kControllerMetricsPort)};
  if (certs_) {
    for (const std::string& f : certs_->ControllerFlags()) argv.push_back(f);
  } else {
    argv.push_back("--insecure");  // plaintext on a non-loopback address must be asked for
  }
  argv.insert(argv.end(), options_.controller_args.begin(), options_.controller_args.end());
  absl::StatusOr<pid_t> pid = SpawnLogged(controller_ns_, argv, controller_log_);
  if (!pid.ok()) return pid.status();
  controller_pid_ = *pid;
  absl::Status ready = WaitForOk(
      [&]() -> absl::Status {
        if (std::optional<int> st = TryReap(controller_pid_)) {
          controller_pid_ = -1;
          return absl::AbortedError(absl::StrCat("controller exited with ", ExitCode(*st)));
        }
        absl::StatusOr<int> code =
            HttpGetStatus(controller_ns_, kControllerIp, kControllerMetricsPort, "/healthz");
        if (!code.ok()) return code.status();
        if (*code != 200) return absl::UnavailableError(absl::StrCat("/healthz answered ", *code));
        return absl::OkStatus();
      },
      options_.start_timeout);
  if (!ready.ok()) {
    return absl::Status(ready.code(), absl::StrCat("controller not healthy: ", ready.message(),
                                                   "\n", TailOfFile(controller_log_, 20)));
  }
  Log(absl::StrCat("controller up on ", controller_addr(), " (pid ", controller_pid_, ")"));
  return absl::OkStatus();
}

absl::Status Cluster::StopController(absl::Duration timeout) {
  if (controller_pid_ <= 0) return absl::OkStatus();
  auto [code, killed] = Terminate(controller_pid_, timeout);
  controller_pid_ = -1;
  Log(absl::StrCat("controller stopped (exit ", code, killed ? ", killed" : "", ")"));
  if (killed) return absl::DeadlineExceededError("controller ignored SIGTERM; killed");
  if (code != 0) return absl::InternalError(absl::StrCat("controller exited with ", code));
  return absl::OkStatus();
}

absl::Status Cluster::KillController() {
  if (controller_pid_ <= 0) return absl::OkStatus();
  KillAndReap(controller_pid_);
  controller_pid_ = -1;
  Log("controller killed (SIGKILL)");
  return absl::OkStatus();
}

bool Cluster::ControllerRunning() {
  if (controller_pid_ <= 0) return false;
  if (TryReap(controller_pid_)) controller_pid_ = -1;
  return controller_pid_ > 0;
}

absl::StatusOr<ExecResult> Cluster::Weftctl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {options_.binaries.weftctl, "--controller", controller_addr()};
  if (certs_) {
    for (const std::string& f : certs_->WeftctlFlags()) argv.push_back(f);
  }
  argv.insert(argv.end(), args.begin(), args.end());
  return Exec(controller_ns_, argv);
}

absl::Status Cluster::SetNetworkConfig(absl::string_view json) {
  static std::atomic<int> n{0};
  const std::string file = absl::StrCat(work_dir_, "/network-config-", n++, ".json");
  {
    std::ofstream f(file);
    f << json;
    if (!f) return absl::InternalError("cannot write " + file);
  }
  absl::StatusOr<ExecResult> r = Weftctl({"config", "set", file});
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    return absl::InternalError(absl::StrCat("weftctl config set failed: ", r->ToString()));
  }
  Log(absl::StrCat("network config set: ", json));
  return absl::OkStatus();
}

absl::StatusOr<int> Cluster::AddHost(int containers, std::vector<std::string> agent_args) {
  return AddHostOn(/*routed=*/false, containers, std::move(agent_args));
}

absl::StatusOr<int> Cluster::AddRoutedHost(int containers, std::vector<std::string> agent_args) {
  if (absl::Status s = EnsureRouter(); !s.ok()) return s;
  return AddHostOn(/*routed=*/true, containers, std::move(agent_args));
}

absl::Status Cluster::EnsureRouter() {
  if (router_ready_) return absl::OkStatus();
  for (const std::vector<std::string>& cmd : std::vector<std::vector<std::string>>{
           {"-n", switch_ns_, "addr", "add", absl::StrCat(kRouterIp, "/24"), "dev", "br0"},
           {"-n", switch_ns_, "addr", "add", absl::StrCat(kRoutedRouterIp, "/24"), "dev", "br0"},
           {"-n", controller_ns_, "route", "add", kRoutedSubnet, "via", kRouterIp}}) {
    if (absl::Status s = Ip(cmd); !s.ok()) return s;
  }
  if (absl::Status s = SysctlInNamespace(switch_ns_, "net.ipv4.ip_forward=1"); !s.ok()) return s;
  router_ready_ = true;
  return absl::OkStatus();
}

absl::StatusOr<int> Cluster::AddHostOn(bool routed, int containers, std::vector<std::string> agent_args) {
  auto host = std::make_unique<Host>();
  Host& h = *host;
  h.index = num_hosts();
  h.name = absl::StrCat("h", h.index + 1);
  h.routed = routed;
  h.underlay_ip = absl::StrCat(routed ? kRoutedUnderlayPrefix : kUnderlayPrefix, 10 + h.index + 1);
  h.dir = absl::StrCat(work_dir_, "/", h.name);
  h.subnet_file = h.dir + "/subnet.env";
  h.docker_opts_file = h.dir + "/docker_opts.env";
  h.state_dir = h.dir + "/state";
  h.log_file = absl::StrCat(log_dir_, "/agent-", h.name, ".log");
  h.metrics_addr = absl::StrCat("127.0.0.1:", kAgentMetricsPort);
  h.agent_args = std::move(agent_args);
  if (h.index + 11 > 250) return absl::ResourceExhaustedError("too many hosts");
  hosts_.push_back(std::move(host));  // owned (and cleaned up) from now on

  if (absl::Status s = MakeDirs(h.state_dir); !s.ok()) return s;
  h.wireguard_run_dir = h.dir + "/run-wireguard";
  if (absl::Status s = MakeDirs(h.wireguard_run_dir); !s.ok()) return s;
  absl::StatusOr<std::string> ns = CreateNamespace(h.name);
  if (!ns.ok()) return ns.status();
  h.ns = *ns;
  if (absl::Status s = ConnectToSwitch(h.ns, h.name, h.underlay_ip); !s.ok()) return s;
  if (routed) {
    if (absl::Status s = Ip({"-n", h.ns, "route", "add", "192.0.2.0/24", "via", kRoutedRouterIp}); !s.ok()) {
      return s;
    }
  }
  // Docker turns forwarding on; the host forwards between docker0 and flannel.1.
  if (absl::Status s = SysctlInNamespace(h.ns, "net.ipv4.ip_forward=1"); !s.ok()) return s;
  if (options_.underlay_ipv6) {
    h.underlay_ipv6 = Ipv6Underlay(h.underlay_ip);
    if (absl::Status s = SysctlInNamespace(h.ns, "net.ipv6.conf.all.forwarding=1"); !s.ok()) return s;
  }
  if (absl::Status s = StartAgent(h.index); !s.ok()) return s;
  for (int i = 0; i < containers; ++i) {
    if (absl::StatusOr<Container> c = AddContainer(h.index); !c.ok()) return c.status();
  }
  return h.index;
}

absl::Status Cluster::StartAgent(int index, const std::vector<std::string>& extra_args,
                                 bool wait_ready) {
  Host& h = *hosts_.at(index);
  if (h.agent_pid > 0) return absl::FailedPreconditionError(h.name + ": agent already running");
  if (!IsExecutable(options_.binaries.agent)) {
    return absl::NotFoundError(
        absl::StrCat("agent binary \"", options_.binaries.agent, "\" is not an executable"));
  }
  // A mount namespace of its own with the host's /run/wireguard (PrivateRunWireguard).
  std::vector<std::string> argv = PrivateRunWireguard(h.wireguard_run_dir);
  std::vector<std::string> agent_argv = {options_.binaries.agent,
                                   "--controller", controller_addr(),
                                   "--iface", "eth0",
                                   "--node-name", h.name,
                                   "--subnet-file", h.subnet_file,
                                   "--docker-opts-file", h.docker_opts_file,
                                   "--state-dir", h.state_dir,
                                   "--metrics-listen", h.metrics_addr};
  if (certs_) {
    std::vector<std::string> tls = certs_->AgentFlags(h.name);
    if (tls.empty()) return absl::InternalError(absl::StrCat(h.name, ": cannot make its certificate"));
    agent_argv.insert(agent_argv.end(), tls.begin(), tls.end());
  }
  argv.insert(argv.end(), agent_argv.begin(), agent_argv.end());
  argv.insert(argv.end(), options_.agent_args.begin(), options_.agent_args.end());
  argv.insert(argv.end(), h.agent_args.begin(), h.agent_args.end());
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  absl::StatusOr<pid_t> pid = SpawnLogged(h.ns, argv, h.log_file);
  if (!pid.ok()) return pid.status();
  h.agent_pid = *pid;
  Log(absl::StrCat(h.name, ": agent started (pid ", h.agent_pid, ")"));
  return wait_ready ? WaitAgentReady(index) : absl::OkStatus();
}

absl::Status Cluster::WaitAgentReady(int index) {
  Host& h = *hosts_.at(index);
  absl::Status ready = WaitForOk(
      [&]() -> absl::Status {
        if (h.agent_pid <= 0) return absl::FailedPreconditionError("agent not running");
        if (std::optional<int> st = TryReap(h.agent_pid)) {
          h.agent_pid = -1;
          return absl::AbortedError(absl::StrCat("agent exited with ", ExitCode(*st)));
        }
        absl::StatusOr<int> code =
            HttpGetStatus(h.ns, "127.0.0.1", kAgentMetricsPort, "/readyz");
        if (!code.ok()) return code.status();
        if (*code != 200) return absl::UnavailableError(absl::StrCat("/readyz answered ", *code));
        absl::StatusOr<SubnetEnv> env = ReadSubnetEnv(index);
        if (!env.ok()) return env.status();
        h.env = *env;
        return absl::OkStatus();
      },
      options_.start_timeout);
  if (!ready.ok()) {
    return absl::Status(ready.code(), absl::StrCat(h.name, ": agent not ready: ", ready.message(),
                                                   "\n", TailOfFile(h.log_file, 20)));
  }
  Log(absl::StrCat(h.name, ": agent ready, FLANNEL_SUBNET=", h.env.subnet, " FLANNEL_IPV6_SUBNET=", h.env.ipv6_subnet,
                   " FLANNEL_MTU=", h.env.mtu));
  return absl::OkStatus();
}

absl::Status Cluster::StopAgent(int index, absl::Duration timeout) {
  Host& h = *hosts_.at(index);
  if (h.agent_pid <= 0) return absl::OkStatus();
  auto [code, killed] = Terminate(h.agent_pid, timeout);
  h.agent_pid = -1;
  Log(absl::StrCat(h.name, ": agent stopped (exit ", code, killed ? ", killed" : "", ")"));
  if (killed) return absl::DeadlineExceededError(h.name + ": agent ignored SIGTERM; killed");
  if (code != 0) return absl::InternalError(absl::StrCat(h.name, ": agent exited with ", code));
  return absl::OkStatus();
}

absl::Status Cluster::KillAgent(int index) {
  Host& h = *hosts_.at(index);
  if (h.agent_pid <= 0) return absl::OkStatus();
  KillAndReap(h.agent_pid);
  h.agent_pid = -1;
  Log(absl::StrCat(h.name, ": agent killed (SIGKILL)"));
  return absl::OkStatus();
}

bool Cluster::AgentRunning(int index) {
  Host& h = *hosts_.at(index);
  if (h.agent_pid > 0 && TryReap(h.agent_pid)) h.agent_pid = -1;
  return h.agent_pid > 0;
}

absl::StatusOr<SubnetEnv> Cluster::ReadSubnetEnv(int index) const {
  const Host& h = *hosts_.at(index);
  std::ifstream f(h.subnet_file);
  if (!f) return absl::NotFoundError(absl::StrCat("no ", h.subnet_file));
  std::stringstream text;
  text << f.rdbuf();
  return SubnetEnv::Parse(text.str());
}

absl::StatusOr<Container> Cluster::AddContainer(int index) {
  Host& h = *hosts_.at(index);
  const bool v4 = !h.env.subnet.empty();  // false in an IPv6-only network
  if (!v4 && h.env.ipv6_subnet.empty()) return absl::FailedPreconditionError(h.name + ": no subnet yet");
  if (absl::Status s = EnsureDocker0(h.ns, h.env); !s.ok()) return s;
  const int n = static_cast<int>(h.containers.size()) + 1;
  const int len = h.env.PrefixLength();
  if (v4 && static_cast<uint64_t>(n) + 2 >= (uint64_t{1} << (32 - len))) {
    return absl::ResourceExhaustedError(h.name + ": subnet full");
  }
  Container c;
  c.name = absl::StrCat(h.name, "c", n);
  c.host = index;
  ContainerLink link;
  link.host_ns = h.ns;
  link.veth = absl::StrCat("veth-c", n);
  link.mtu = h.env.mtu;
  if (v4) {
    absl::StatusOr<IPv4Addr> gw = IPv4Addr::Parse(h.env.Gateway());
    if (!gw.ok()) return gw.status();
    c.ip = IPv4Addr::FromUint32(gw->value() + n).ToString();
    link.ipv4_cidr = absl::StrCat(c.ip, "/", len);
    link.ipv4_gateway = h.env.Gateway();
  }
  if (!h.env.ipv6_subnet.empty()) {
    absl::StatusOr<IPv6Net> sn6 = IPv6Net::ParseLoose(h.env.ipv6_subnet);
    if (!sn6.ok()) return sn6.status();
    c.ipv6 = IPv6Addr::FromUint128(sn6->network().value() + 1 + n).ToString();
    link.ipv6_cidr = absl::StrCat(c.ipv6, "/", sn6->prefix_len());
    link.ipv6_gateway = h.env.ipv6_subnet.substr(0, h.env.ipv6_subnet.find('/'));
  }
  absl::StatusOr<std::string> ns = CreateNamespace(c.name);
  if (!ns.ok()) return ns.status();
  c.ns = *ns;
  link.container_ns = c.ns;
  if (absl::Status s = WireContainer(link); !s.ok()) return s;
  h.containers.push_back(c);
  Log(absl::StrCat(h.name, ": container ", c.name, " at ", c.ip, c.ipv6.empty() ? "" : " and ", c.ipv6));
  return c;
}

absl::StatusOr<ExecResult> Cluster::Exec(absl::string_view ns, const std::vector<std::string>& argv,
                                         absl::Duration timeout) {
  return ExecInNamespace(ns, argv, timeout);
}

absl::StatusOr<std::string> Cluster::Sh(absl::string_view ns, absl::string_view command) {
  return ShInNamespace(ns, command);
}

absl::StatusOr<std::string> Cluster::HostSh(int host, absl::string_view command) {
  const Host& h = *hosts_.at(host);
  std::vector<std::string> argv = PrivateRunWireguard(h.wireguard_run_dir);
  argv.insert(argv.end(), {"sh", "-c", std::string(command)});
  absl::StatusOr<ExecResult> r = Exec(h.ns, argv);
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    return absl::InternalError(absl::StrCat("in ", h.ns, ": `", command, "` ", r->ToString()));
  }
  return r->out;
}

absl::Status Cluster::Ping(const Container& from, absl::string_view to_ip, int count,
                           absl::Duration timeout, PingResult* result) {
  const int64_t deadline_s = std::max<int64_t>(1, absl::ToInt64Seconds(absl::Ceil(timeout, absl::Seconds(1))));
  absl::StatusOr<ExecResult> r =
      Exec(from.ns,
           {"ping", "-n", "-q", "-c", absl::StrCat(count), "-i", "0.2", "-w", absl::StrCat(deadline_s),
            std::string(to_ip)},
           timeout + absl::Seconds(5));
  if (!r.ok()) return r.status();
  PingResult local;
  PingResult& p = result ? *result : local;
  p = PingResult();
  p.raw = *r;
  // "3 packets transmitted, 3 received, 0% packet loss, time 402ms"
  // "rtt min/avg/max/mdev = 0.051/0.066/0.083/0.013 ms"
  for (absl::string_view line : absl::StrSplit(r->out, '\n')) {
    if (absl::StrContains(line, "packets transmitted")) {
      std::vector<absl::string_view> w = absl::StrSplit(line, absl::ByAnyChar(" ,"), absl::SkipEmpty());
      if (w.size() >= 4) {
        (void)absl::SimpleAtoi(w[0], &p.transmitted);
        (void)absl::SimpleAtoi(w[3], &p.received);
      }
    } else if (absl::ConsumePrefix(&line, "rtt min/avg/max/mdev = ")) {
      std::vector<absl::string_view> v = absl::StrSplit(line, '/');
      if (v.size() >= 2) (void)absl::SimpleAtod(v[1], &p.avg_rtt_ms);
    }
  }
  if (r->exit_code == 0 && p.received >= count) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat("ping ", from.name, " (", from.ip, ") -> ", to_ip, ": ",
                                             p.received, "/", count, " replies; ", r->ToString()));
}

void Cluster::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  // Agents first (they keep their leases: SIGTERM without --release-on-exit), then
  // the controller, then whatever else runs in our namespaces, then the namespaces.
  for (auto& h : hosts_) {
    if (h->agent_pid > 0) (void)StopAgent(h->index, absl::Seconds(5));
  }
  if (controller_pid_ > 0) (void)StopController(absl::Seconds(5));
  const size_t n = namespaces_.size();
  while (!namespaces_.empty()) {
    // A namespace lives on, unnamed, while a process is inside: kill them first.
    KillProcessesIn(namespaces_.back()->name());
    UntrackNamespace(namespaces_.back()->name());
    namespaces_.pop_back();
  }
  if (n > 0) Log(absl::StrCat("removed ", n, " namespaces"));
}

}  // namespace weft::testing
