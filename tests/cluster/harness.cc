#include "tests/cluster/harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/net.h"
#include "common/subprocess.h"

extern char** environ;

namespace weft::testing {
namespace {

constexpr char kRunDir[] = "/run/netns";
constexpr char kUnderlayPrefix[] = "192.0.2.";
constexpr char kRoutedUnderlayPrefix[] = "198.51.100.";

// 192.0.2.N -> fd77:2::N (the dual-stack underlay's address of the same namespace).
std::string Ipv6Underlay(absl::string_view ipv4) {
  return absl::StrCat(Cluster::kUnderlayIpv6Prefix, ipv4.substr(ipv4.rfind('.') + 1));
}

absl::Status ErrnoError(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// ---------------------------------------------------------------------------
// What the signal handler may need: the pids and namespace paths of this
// process, in fixed arrays it can walk without allocating or locking.

constexpr int kMaxTracked = 512;
std::atomic<pid_t> g_pids[kMaxTracked];
std::atomic<bool> g_ns_used[kMaxTracked];
char g_ns_paths[kMaxTracked][128];
std::atomic<bool> g_interrupted{false};

void TrackPid(pid_t pid) {
  for (auto& slot : g_pids) {
    pid_t empty = 0;
    if (slot.compare_exchange_strong(empty, pid)) return;
  }
}

void UntrackPid(pid_t pid) {
  for (auto& slot : g_pids) {
    pid_t expected = pid;
    if (slot.compare_exchange_strong(expected, 0)) return;
  }
}

void TrackNamespace(const std::string& ns) {
  const std::string path = absl::StrCat(kRunDir, "/", ns);
  if (path.size() >= sizeof(g_ns_paths[0])) return;
  for (int i = 0; i < kMaxTracked; ++i) {
    bool expected = false;
    if (g_ns_used[i].compare_exchange_strong(expected, true)) {
      std::memcpy(g_ns_paths[i], path.c_str(), path.size() + 1);
      return;
    }
  }
}

void UntrackNamespace(const std::string& ns) {
  const std::string path = absl::StrCat(kRunDir, "/", ns);
  for (int i = 0; i < kMaxTracked; ++i) {
    if (g_ns_used[i].load() && path == g_ns_paths[i]) {
      g_ns_used[i].store(false);
      return;
    }
  }
}

// Async-signal-safe: kill(2), umount2(2), unlink(2) and _exit(2) only.
void EmergencyCleanup() {
  for (auto& slot : g_pids) {
    const pid_t pid = slot.load();
    if (pid > 0) {
      kill(-pid, SIGKILL);  // its process group: it and whatever it started
      kill(pid, SIGKILL);
    }
  }
  for (int i = 0; i < kMaxTracked; ++i) {
    if (!g_ns_used[i].load()) continue;
    umount2(g_ns_paths[i], MNT_DETACH);
    unlink(g_ns_paths[i]);
  }
}

void OnSignal(int sig) {
  if (!g_interrupted.exchange(true)) {
    static const char kMsg[] = "\ninterrupted: cleaning up (again to force)\n";
    (void)!write(2, kMsg, sizeof(kMsg) - 1);
    return;
  }
  EmergencyCleanup();
  _exit(130);
}

// ---------------------------------------------------------------------------
// Processes.

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  ~Fd() { Reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  void Reset() {
    if (fd >= 0) close(fd);
    fd = -1;
  }
};

// The child's PATH must reach /usr/sbin (iptables, sysctl, bridge) even under
// Bazel's strict action environment (/bin:/usr/bin:/usr/local/bin).
void EnsureSbinOnPath() {
  const char* path = getenv("PATH");
  std::string p = path ? path : "/usr/local/bin:/usr/bin:/bin";
  bool changed = false;
  for (const char* dir : {"/usr/sbin", "/sbin", "/usr/bin", "/bin"}) {
    std::vector<absl::string_view> parts = absl::StrSplit(p, ':');
    if (std::find(parts.begin(), parts.end(), dir) == parts.end()) {
      absl::StrAppend(&p, ":", dir);
      changed = true;
    }
  }
  if (changed) setenv("PATH", p.c_str(), 1);
}

// How the harness runs everything: `argv` looked up on PATH; the child leads its
// own process group (so a terminal's Ctrl-C reaches only us, and killing the group
// kills all it starts) and dies with the calling thread.
SubprocessOptions HarnessOptions(const std::vector<std::string>& argv) {
  SubprocessOptions options;
  options.argv = argv;
  options.search_path = true;
  options.new_process_group = true;
  options.die_with_parent = true;
  return options;
}

// Starts `argv` (HarnessOptions) with stdout and stderr on the given descriptors
// and stdin on /dev/null. The pid is tracked for EmergencyCleanup until reaped
// (TryReap, WaitExit).
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv, int out_fd, int err_fd) {
  SubprocessOptions options = HarnessOptions(argv);
  options.stdout_fd = out_fd;
  options.stderr_fd = err_fd;
  Subprocess child;
  if (absl::Status s = child.Start(std::move(options)); !s.ok()) return s;
  const pid_t pid = child.Release();
  TrackPid(pid);
  return pid;
}

// Reaps `pid` if it has exited; its wait status.
std::optional<int> TryReap(pid_t pid) {
  std::optional<int> status = TryWaitPid(pid);
  if (status) UntrackPid(pid);
  return status;
}

std::optional<int> WaitExit(pid_t pid, absl::Duration timeout) {
  std::optional<int> status = WaitPid(pid, timeout);
  if (status) UntrackPid(pid);
  return status;
}

// SIGTERM, up to `timeout`, then SIGKILL; the exit code, and whether it had to be killed.
std::pair<int, bool> Terminate(pid_t pid, absl::Duration timeout) {
  kill(pid, SIGTERM);
  if (std::optional<int> s = WaitExit(pid, timeout)) {
    kill(-pid, SIGKILL);  // anything it left in its group
    return {ExitCode(*s), false};
  }
  kill(-pid, SIGKILL);
  kill(pid, SIGKILL);
  std::optional<int> s = WaitExit(pid, absl::Seconds(10));
  return {s ? ExitCode(*s) : -1, true};
}

// Runs argv in the current namespace, capturing both streams. A `cancellable` run
// is killed when an interrupt arrives (cleanup commands are not).
absl::StatusOr<ExecResult> RunCaptured(const std::vector<std::string>& argv,
                                       absl::Duration timeout, bool cancellable = false) {
  SubprocessOptions options = HarnessOptions(argv);
  options.timeout = timeout;
  if (cancellable) options.cancelled = [] { return g_interrupted.load(); };
  Subprocess child;
  if (absl::Status s = child.Start(std::move(options)); !s.ok()) return s;
  const pid_t pid = child.pid();
  TrackPid(pid);
  absl::StatusOr<SubprocessResult> r = child.Communicate();
  UntrackPid(pid);
  if (absl::IsCancelled(r.status())) return absl::CancelledError("interrupted");
  if (!r.ok()) return r.status();
  ExecResult result;
  result.exit_code = r->exit_code;
  result.out = std::move(r->out);
  result.err = std::move(r->err);
  return result;
}

// `ip args...` in the current (root) namespace: only ever with -n/netns arguments
// that point into our own namespaces.
absl::Status Ip(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<ExecResult> r = RunCaptured(argv, absl::Seconds(30));
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    return absl::InternalError(
        absl::StrCat("`", absl::StrJoin(argv, " "), "` exited ", r->exit_code, ": ", r->err));
  }
  return absl::OkStatus();
}

std::string TailOfFile(const std::string& path, int lines) {
  std::ifstream f(path);
  if (!f) return "(no log)";
  std::vector<std::string> all;
  for (std::string line; std::getline(f, line);) all.push_back(line);
  const size_t from = all.size() > static_cast<size_t>(lines) ? all.size() - lines : 0;
  std::string out;
  for (size_t i = from; i < all.size(); ++i) absl::StrAppend(&out, "  | ", all[i], "\n");
  return out;
}

absl::Status MakeDirs(const std::string& path) {
  std::string cur;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    absl::StrAppend(&cur, "/", part);
    if (mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) return ErrnoError("mkdir " + cur);
  }
  return absl::OkStatus();
}

bool IsExecutable(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

std::optional<uint32_t> ParseIpv4(absl::string_view s) {
  in_addr a;
  if (inet_pton(AF_INET, std::string(s).c_str(), &a) != 1) return std::nullopt;
  return ntohl(a.s_addr);
}

std::string FormatIpv4(uint32_t v) {
  return absl::StrCat(v >> 24, ".", (v >> 16) & 255, ".", (v >> 8) & 255, ".", v & 255);
}

std::atomic<int> g_cluster_counter{0};

void KillProcessesIn(const std::string& ns) {
  if (absl::StatusOr<ExecResult> pids = RunCaptured({"ip", "netns", "pids", ns}, absl::Seconds(10));
      pids.ok()) {
    for (absl::string_view p : absl::StrSplit(pids->out, '\n', absl::SkipWhitespace())) {
      int pid;
      if (absl::SimpleAtoi(p, &pid) && pid > 1 && pid != getpid()) kill(pid, SIGKILL);
    }
  }
}

// The prefix of a command line that runs the rest in a new mount namespace in
// which `dir` is mounted on /run/wireguard (wireguard-go's fixed socket
// directory, /var/run/wireguard): each host its own, invisible to the machine.
std::vector<std::string> PrivateRunWireguard(const std::string& dir) {
  return {"unshare", "--mount", "--propagation", "private", "sh", "-c",
          "mkdir -p /run/wireguard && mount --bind \"$0\" /run/wireguard && exec \"$@\"", dir};
}

// Kills the processes inside namespace `ns` (they would keep it alive after its
// name is gone), then deletes it.
void DeleteNamespace(const std::string& ns) {
  KillProcessesIn(ns);
  absl::StatusOr<ExecResult> del = RunCaptured({"ip", "netns", "del", ns}, absl::Seconds(10));
  if (!del.ok() || del->exit_code != 0) {
    // Half-made (a file without a mount): remove the file itself.
    const std::string path = absl::StrCat(kRunDir, "/", ns);
    umount2(path.c_str(), MNT_DETACH);
    unlink(path.c_str());
  }
  UntrackNamespace(ns);
}

}  // namespace

// ---------------------------------------------------------------------------

std::string ExecResult::ToString() const {
  return absl::StrCat("exit ", exit_code, "\n--- stdout\n", out, "--- stderr\n", err);
}

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

absl::StatusOr<SubnetEnv> SubnetEnv::Parse(absl::string_view text) {
  SubnetEnv env;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    line = absl::StripAsciiWhitespace(line);
    if (absl::StartsWith(line, "#")) continue;
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("subnet.env: not KEY=VALUE: ", line));
    }
    absl::string_view value = line.substr(eq + 1);
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    env.vars[std::string(line.substr(0, eq))] = std::string(value);
  }
  // Looked up without adding: `vars` holds exactly the file's lines.
  auto var = [&env](const char* name) {
    auto it = env.vars.find(name);
    return it == env.vars.end() ? std::string() : it->second;
  };
  env.network = var("FLANNEL_NETWORK");
  env.subnet = var("FLANNEL_SUBNET");
  env.ipv6_subnet = var("FLANNEL_IPV6_SUBNET");
  env.ipmasq = var("FLANNEL_IPMASQ") == "true";
  // An IPv6-only network's file has no IPv4 lines, a dual-stack one both.
  const bool v4 = !env.network.empty() && !env.subnet.empty();
  if ((!v4 && env.ipv6_subnet.empty()) || !absl::SimpleAtoi(var("FLANNEL_MTU"), &env.mtu)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "subnet.env lacks FLANNEL_NETWORK and FLANNEL_SUBNET (or FLANNEL_IPV6_SUBNET), or FLANNEL_MTU:\n", text));
  }
  if (v4 && (env.PrefixLength() <= 0 || !ParseIpv4(env.Gateway()))) {
    return absl::InvalidArgumentError(absl::StrCat("subnet.env: bad FLANNEL_SUBNET ", env.subnet));
  }
  return env;
}

std::string SubnetEnv::Gateway() const { return subnet.substr(0, subnet.find('/')); }

int SubnetEnv::PrefixLength() const {
  int len = 0;
  const size_t slash = subnet.find('/');
  if (slash == std::string::npos || !absl::SimpleAtoi(subnet.substr(slash + 1), &len)) return -1;
  return len;
}

std::string SubnetEnv::NetworkAddress() const {
  const std::optional<uint32_t> gw = ParseIpv4(Gateway());
  const int len = PrefixLength();
  if (!gw || len < 0 || len > 32) return "";
  const uint32_t mask = len == 0 ? 0 : ~uint32_t{0} << (32 - len);
  return FormatIpv4(*gw & mask);
}

std::string SubnetEnv::SubnetCidr() const {
  return absl::StrCat(NetworkAddress(), "/", PrefixLength());
}

// ---------------------------------------------------------------------------

std::string Cluster::RunPrefix() { return absl::StrCat("wft", getpid(), "-"); }

int Cluster::SweepNamespaces(absl::string_view prefix) {
  if (prefix.empty()) return 0;  // never everything
  std::vector<std::string> names;
  if (DIR* dir = opendir(kRunDir)) {
    while (dirent* e = readdir(dir)) {
      if (absl::StartsWith(e->d_name, prefix)) names.push_back(e->d_name);
    }
    closedir(dir);
  }
  for (const std::string& ns : names) DeleteNamespace(ns);
  return static_cast<int>(names.size());
}

void Cluster::InstallSignalHandlers() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool Cluster::Interrupted() { return g_interrupted.load(); }

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
    if (g_interrupted.load()) return absl::CancelledError("interrupted");
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
  const std::optional<uint32_t> addr = ParseIpv4(ip);
  if (!addr) return absl::InvalidArgumentError(absl::StrCat("bad IPv4 address ", ip));
  const std::string ns_path = absl::StrCat(kRunDir, "/", ns);
  const std::string request = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: ", ip, ":", port,
                                           "\r\nConnection: close\r\n\r\n");
  absl::StatusOr<int> result = absl::InternalError("not run");
  // setns() moves only the calling thread, so the socket is made by a short-lived
  // thread that entered the namespace; the socket stays in it.
  std::thread t([&] {
    result = [&]() -> absl::StatusOr<int> {
      Fd ns_fd(open(ns_path.c_str(), O_RDONLY | O_CLOEXEC));
      if (ns_fd.fd < 0) return ErrnoError("open " + ns_path);
      if (setns(ns_fd.fd, CLONE_NEWNET) != 0) return ErrnoError("setns " + ns_path);
      Fd s(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
      if (s.fd < 0) return ErrnoError("socket");
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_port = htons(port);
      sa.sin_addr.s_addr = htonl(*addr);
      const absl::Time deadline = absl::Now() + timeout;
      auto wait = [&](short events) -> absl::Status {
        const int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
        if (left <= 0) return absl::DeadlineExceededError("HTTP GET timed out");
        pollfd p{s.fd, events, 0};
        const int r = poll(&p, 1, static_cast<int>(left));
        if (r < 0 && errno != EINTR) return ErrnoError("poll");
        if (r == 0) return absl::DeadlineExceededError("HTTP GET timed out");
        return absl::OkStatus();
      };
      if (connect(s.fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
        if (errno != EINPROGRESS) return ErrnoError("connect");
        if (absl::Status w = wait(POLLOUT); !w.ok()) return w;
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          errno = err;
          return ErrnoError("connect");
        }
      }
      size_t sent = 0;
      while (sent < request.size()) {
        const ssize_t w = send(s.fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
        if (w > 0) {
          sent += w;
        } else if (errno == EAGAIN) {
          if (absl::Status ws = wait(POLLOUT); !ws.ok()) return ws;
        } else if (errno != EINTR) {
          return ErrnoError("send");
        }
      }
      std::string response;
      while (response.find("\r\n") == std::string::npos) {
        char buf[1024];
        const ssize_t r = recv(s.fd, buf, sizeof(buf), 0);
        if (r > 0) {
          response.append(buf, r);
        } else if (r == 0) {
          break;
        } else if (errno == EAGAIN) {
          if (absl::Status ws = wait(POLLIN); !ws.ok()) return ws;
        } else if (errno != EINTR) {
          return ErrnoError("recv");
        }
      }
      // "HTTP/1.1 200 OK"
      std::vector<absl::string_view> words = absl::StrSplit(response, ' ');
      int code;
      if (words.size() < 2 || !absl::StartsWith(words[0], "HTTP/") || !absl::SimpleAtoi(words[1], &code)) {
        return absl::InternalError(absl::StrCat("not an HTTP answer: ", response.substr(0, 80)));
      }
      return code;
    }();
  });
  t.join();
  return result;
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
      if (mkdtemp(tmpl.data()) == nullptr) return ErrnoError("mkdtemp");
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
  if (absl::Status s = Ip({"-n", switch_ns_, "link", "add", "br0", "type", "bridge"}); !s.ok()) return s;
  if (absl::Status s = Ip({"-n", switch_ns_, "link", "set", "br0", "up"}); !s.ok()) return s;

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
  if (absl::Status s = Ip({"-n", switch_ns_, "link", "add", port, "type", "veth", "peer", "name",
                           "eth0", "netns", ns});
      !s.ok()) {
    return s;
  }
  if (absl::Status s = Ip({"-n", switch_ns_, "link", "set", port, "master", "br0", "up"}); !s.ok()) {
    return s;
  }
  if (absl::Status s = Ip({"-n", ns, "link", "set", "eth0", "mtu", "1500", "up"}); !s.ok()) return s;
  if (absl::Status s = Ip({"-n", ns, "addr", "add", ip + "/24", "dev", "eth0"}); !s.ok()) return s;
  if (!options_.underlay_ipv6 || !absl::StartsWith(ip, kUnderlayPrefix)) return absl::OkStatus();
  // The same last byte in fd77:2::/64; nodad: usable at once, no DAD wait.
  return Ip({"-n", ns, "addr", "add", Ipv6Underlay(ip) + "/64", "dev", "eth0", "nodad"});
}

absl::StatusOr<pid_t> Cluster::SpawnLogged(const std::string& ns,
                                           const std::vector<std::string>& argv,
                                           const std::string& log_file) {
  Fd log(open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (log.fd < 0) return ErrnoError("open " + log_file);
  const std::string banner =
      absl::StrCat("### ", absl::FormatTime(absl::Now()), " start: ", absl::StrJoin(argv, " "), "\n");
  (void)!write(log.fd, banner.data(), banner.size());
  std::vector<std::string> full = {"ip", "netns", "exec", ns};
  full.insert(full.end(), argv.begin(), argv.end());
  return Spawn(full, log.fd, log.fd);
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
  kill(-controller_pid_, SIGKILL);
  kill(controller_pid_, SIGKILL);
  WaitExit(controller_pid_, absl::Seconds(10));
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
  if (absl::StatusOr<std::string> s = Sh(switch_ns_, "sysctl -qw net.ipv4.ip_forward=1"); !s.ok()) {
    return s.status();
  }
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
  if (absl::StatusOr<std::string> s = Sh(h.ns, "sysctl -qw net.ipv4.ip_forward=1"); !s.ok()) {
    return s.status();
  }
  if (options_.underlay_ipv6) {
    h.underlay_ipv6 = Ipv6Underlay(h.underlay_ip);
    if (absl::StatusOr<std::string> s = Sh(h.ns, "sysctl -qw net.ipv6.conf.all.forwarding=1"); !s.ok()) {
      return s.status();
    }
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
  kill(-h.agent_pid, SIGKILL);
  kill(h.agent_pid, SIGKILL);
  WaitExit(h.agent_pid, absl::Seconds(10));
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

absl::Status Cluster::EnsureDocker0(Host& h) {
  absl::StatusOr<ExecResult> exists = Exec(h.ns, {"ip", "link", "show", "docker0"});
  if (!exists.ok()) return exists.status();
  if (exists->exit_code == 0) return absl::OkStatus();
  // As Docker does with --bip=$FLANNEL_SUBNET --mtu=$FLANNEL_MTU.
  const std::string mtu = absl::StrCat(h.env.mtu);
  if (absl::Status s = Ip({"-n", h.ns, "link", "add", "docker0", "type", "bridge"}); !s.ok()) return s;
  if (!h.env.subnet.empty()) {
    if (absl::Status s = Ip({"-n", h.ns, "addr", "add", h.env.subnet, "dev", "docker0"}); !s.ok()) return s;
  }
  if (!h.env.ipv6_subnet.empty()) {  // as Docker with --ipv6 --fixed-cidr-v6
    if (absl::Status s = Ip({"-n", h.ns, "addr", "add", h.env.ipv6_subnet, "dev", "docker0", "nodad"}); !s.ok()) {
      return s;
    }
  }
  return Ip({"-n", h.ns, "link", "set", "docker0", "mtu", mtu, "up"});
}

absl::StatusOr<Container> Cluster::AddContainer(int index) {
  Host& h = *hosts_.at(index);
  const bool v4 = !h.env.subnet.empty();  // false in an IPv6-only network
  if (!v4 && h.env.ipv6_subnet.empty()) return absl::FailedPreconditionError(h.name + ": no subnet yet");
  if (absl::Status s = EnsureDocker0(h); !s.ok()) return s;
  const int n = static_cast<int>(h.containers.size()) + 1;
  const int len = h.env.PrefixLength();
  if (v4 && static_cast<uint64_t>(n) + 2 >= (uint64_t{1} << (32 - len))) {
    return absl::ResourceExhaustedError(h.name + ": subnet full");
  }
  Container c;
  c.name = absl::StrCat(h.name, "c", n);
  if (v4) c.ip = FormatIpv4(*ParseIpv4(h.env.Gateway()) + n);
  c.host = index;
  const std::string veth = absl::StrCat("veth-c", n);
  const std::string mtu = absl::StrCat(h.env.mtu);
  absl::StatusOr<std::string> ns = CreateNamespace(c.name);
  if (!ns.ok()) return ns.status();
  c.ns = *ns;
  std::vector<std::vector<std::string>> cmds = {
      {"-n", h.ns, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", c.ns},
      {"-n", h.ns, "link", "set", veth, "mtu", mtu, "master", "docker0", "up"},
      {"-n", c.ns, "link", "set", "eth0", "mtu", mtu, "up"}};
  if (v4) {
    cmds.push_back({"-n", c.ns, "addr", "add", absl::StrCat(c.ip, "/", len), "dev", "eth0"});
    cmds.push_back({"-n", c.ns, "route", "add", "default", "via", h.env.Gateway()});
  }
  for (const std::vector<std::string>& cmd : cmds) {
    if (absl::Status s = Ip(cmd); !s.ok()) return s;
  }
  if (!h.env.ipv6_subnet.empty()) {
    absl::StatusOr<IPv6Net> sn6 = IPv6Net::ParseLoose(h.env.ipv6_subnet);
    if (!sn6.ok()) return sn6.status();
    const std::string gw6 = h.env.ipv6_subnet.substr(0, h.env.ipv6_subnet.find('/'));
    c.ipv6 = IPv6Addr::FromUint128(sn6->network().value() + 1 + n).ToString();
    for (const std::vector<std::string>& cmd : std::vector<std::vector<std::string>>{
             {"-n", c.ns, "addr", "add", absl::StrCat(c.ipv6, "/", sn6->prefix_len()), "dev", "eth0", "nodad"},
             {"-n", c.ns, "-6", "route", "add", "default", "via", gw6}}) {
      if (absl::Status s = Ip(cmd); !s.ok()) return s;
    }
  }
  h.containers.push_back(c);
  Log(absl::StrCat(h.name, ": container ", c.name, " at ", c.ip, c.ipv6.empty() ? "" : " and ", c.ipv6));
  return c;
}

absl::StatusOr<ExecResult> Cluster::Exec(absl::string_view ns, const std::vector<std::string>& argv,
                                         absl::Duration timeout) {
  // Never in the machine's own namespace: a typo must not touch the real host.
  if (ns.empty()) return absl::InvalidArgumentError("Exec needs a namespace");
  std::vector<std::string> full = {"ip", "netns", "exec", std::string(ns)};
  full.insert(full.end(), argv.begin(), argv.end());
  return RunCaptured(full, timeout, /*cancellable=*/true);
}

absl::StatusOr<std::string> Cluster::Sh(absl::string_view ns, absl::string_view command) {
  absl::StatusOr<ExecResult> r = Exec(ns, {"sh", "-c", std::string(command)});
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    return absl::InternalError(absl::StrCat("in ", ns, ": `", command, "` ", r->ToString()));
  }
  return r->out;
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
