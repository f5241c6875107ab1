#pragma once
// A whole Weft cluster on one machine, built from network namespaces, for the
// end-to-end tests and the demo. Everything runs the real binaries on the real
// kernel:
//
//   switch ns "sw":  Linux bridge br0 (the underlay L2 segment, 192.0.2.0/24)
//     ├── controller ns "ctl": eth0 192.0.2.2, weft-controller (gRPC :7800, HTTP :7801)
//     │     (with ClusterOptions::underlay_ipv6 every eth0 also has fd77:2::<same last
//     │     byte>/64, the controller listens on [::]:7800 and agents dial it over IPv6)
//     ├── host ns "h1": eth0 192.0.2.11, weft-agent, flannel.1, docker0 (FLANNEL_SUBNET)
//     │     └── container ns "h1c1": eth0 = next address of h1's subnet, default via docker0
//     ├── host ns "h2": eth0 192.0.2.12 ...
//
// Namespaces are tests/netns NetNs objects, named "wft<pid>-<n>-<role>" (see
// RunPrefix()), so runs never collide and leftovers of a dead run are recognised
// and removed by the next one. The underlay addresses exist only inside these
// namespaces; nothing is ever sent anywhere else.
//
// Ownership: a Cluster owns every process it starts (forked with `ip netns exec`,
// each in its own process group, killed if the test process dies) and every
// namespace it creates; the destructor stops and deletes all of them even when a
// test fails half-way. Not thread-safe: drive a Cluster from one thread (the one
// that created it, since children are tied to the creating thread's life).
//
// Needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN): use with weft_cc_test(root = True).

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tests/cluster/processes.h"   // ExecResult
#include "tests/cluster/subnet_env.h"  // SubnetEnv
#include "tests/integration/test_certs.h"
#include "tests/netns/netns.h"

namespace weft::testing {

inline constexpr char kDefaultNetworkConfig[] =
    R"({"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}})";

// Where the three binaries are.
struct BinaryPaths {
  std::string controller;
  std::string agent;
  std::string weftctl;

  // $WEFT_CONTROLLER_BIN, $WEFT_AGENT_BIN, $WEFTCTL_BIN when set, else the Bazel
  // runfiles of a test that has the binaries as `data`
  // ($TEST_SRCDIR/weft/controller/weft-controller ...).
  static BinaryPaths FromEnvOrRunfiles();
  // An error naming every path that is not an executable file.
  absl::Status Check() const;
};

struct Container {
  std::string name;  // "h1c1"
  std::string ns;    // its namespace
  std::string ip;    // "10.1.19.2"; empty in an IPv6-only network
  int host = 0;      // index of its host in Cluster::host()
  std::string ipv6;  // "fd00:12:0:13::2" when its host's lease has an IPv6 subnet
};

// Per-process state of one host; read it through Cluster::host(i).
struct Host {
  int index = 0;                // 0-based
  std::string name;             // node name "h1" (index + 1)
  std::string ns;               // its namespace
  std::string underlay_ip;      // "192.0.2.11" = 192.0.2.(10 + index + 1)
  std::string underlay_ipv6;    // "fd77:2::11" with ClusterOptions::underlay_ipv6
  bool routed = false;          // on the routed subnet (AddRoutedHost): 198.51.100.(10 + index + 1)
  std::string dir;              // work dir of this host
  std::string subnet_file;      // <dir>/subnet.env
  std::string docker_opts_file; // <dir>/docker_opts.env
  std::string state_dir;        // <dir>/state
  // Mounted on /run/wireguard for the agent (and what it starts, wireguard-go)
  // in a mount namespace of its own, so hosts do not share wireguard-go's
  // fixed socket directory; HostExec sees the same.
  std::string wireguard_run_dir;  // <dir>/run-wireguard
  std::string log_file;         // the agent's stderr (every start appends)
  std::string metrics_addr;     // "127.0.0.1:7802", inside the host's namespace
  std::vector<std::string> agent_args;  // extra flags of this host's agent (kept on restart)
  SubnetEnv env;                // read when the agent last became ready
  std::vector<Container> containers;
  pid_t agent_pid = -1;         // -1 when not running
};

struct ClusterOptions {
  BinaryPaths binaries = BinaryPaths::FromEnvOrRunfiles();
  std::string name;  // for logs and the log folder; default "cluster<N>"
  std::string network_config = kDefaultNetworkConfig;  // set through weftctl; empty: none
  int hosts = 3;
  int containers_per_host = 1;
  std::vector<std::string> controller_args;  // extra controller flags
  std::vector<std::string> agent_args;       // extra flags for every agent
  // State (RocksDB, subnet files); default $TEST_TMPDIR/<name>, else a new /tmp dir.
  std::string work_dir;
  // Process logs; default $TEST_UNDECLARED_OUTPUTS_DIR/<name>, else <work_dir>/logs.
  std::string log_dir;
  absl::Duration start_timeout = absl::Seconds(30);  // per process
  bool verbose = true;  // progress lines on stderr
  // Mutual TLS everywhere (default): tools/certs.sh makes a CA, the controller's
  // certificate (SAN IP:192.0.2.2, the address agents dial), one certificate per
  // node name and an operator's for weftctl, in <work_dir>/certs. false: plaintext,
  // the controller started with --insecure (it listens on a non-loopback address).
  bool tls = true;
  // Dual-stack underlay: fd77:2::/64 beside 192.0.2.0/24 (hosts on the switch
  // only), IPv6 forwarding on, agents reaching the controller over IPv6. For
  // networks with EnableIPv6: containers then get an IPv6 address as well.
  bool underlay_ipv6 = false;
};

class Cluster {
 public:
  static constexpr char kControllerIp[] = "192.0.2.2";
  static constexpr char kControllerIpv6[] = "fd77:2::2";
  static constexpr char kUnderlayIpv6Prefix[] = "fd77:2::";
  static constexpr int kGrpcPort = 7800;
  static constexpr int kControllerMetricsPort = 7801;
  static constexpr int kAgentMetricsPort = 7802;
  // The second underlay subnet (AddRoutedHost) and the switch namespace's
  // addresses, which route between it and 192.0.2.0/24.
  static constexpr char kRoutedSubnet[] = "198.51.100.0/24";
  static constexpr char kRouterIp[] = "192.0.2.1";
  static constexpr char kRoutedRouterIp[] = "198.51.100.1";

  // Builds the switch, starts the controller and waits for it, sets the network
  // config, then adds options.hosts hosts (agent ready, docker0, containers).
  // On error everything made so far is removed again.
  static absl::StatusOr<std::unique_ptr<Cluster>> Start(ClusterOptions options);
  ~Cluster();  // Shutdown()
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Stops every process (SIGTERM, then SIGKILL), deletes every namespace. Idempotent.
  void Shutdown();

  const ClusterOptions& options() const { return options_; }
  std::vector<std::string> namespaces() const;  // every one this cluster made, in order
  const std::string& switch_ns() const { return switch_ns_; }
  const std::string& controller_ns() const { return controller_ns_; }
  std::string controller_addr() const;  // "192.0.2.2:7800" ("[fd77:2::2]:7800" with underlay_ipv6)
  const std::string& controller_log() const { return controller_log_; }
  const std::string& log_dir() const { return log_dir_; }
  const std::string& work_dir() const { return work_dir_; }
  // The run's certificates; nullptr when options().tls is false.
  const TestCerts* certs() const { return certs_ ? &*certs_ : nullptr; }
  int num_hosts() const { return static_cast<int>(hosts_.size()); }
  const Host& host(int i) const { return *hosts_.at(i); }
  std::vector<const Container*> containers() const;  // all, host by host

  // --- topology -------------------------------------------------------------
  // A new host namespace on the switch, its agent started (with `agent_args` on
  // top of options().agent_args, at every start) and ready, docker0 and
  // `containers` containers. Returns its index.
  absl::StatusOr<int> AddHost(int containers = 1, std::vector<std::string> agent_args = {});
  // The same, but the host sits on another underlay subnet (kRoutedSubnet) and
  // reaches the controller and the other hosts only through the switch
  // namespace acting as a router: reachable at L3, not an L2 neighbour (what
  // host-gw cannot serve). Its underlay_ip is 198.51.100.(10 + index + 1).
  absl::StatusOr<int> AddRoutedHost(int containers = 1, std::vector<std::string> agent_args = {});
  // One more container on host i (creates docker0 first when needed).
  absl::StatusOr<Container> AddContainer(int host);

  // --- processes ------------------------------------------------------------
  absl::Status StartController();  // same data dir every time; waits for /healthz
  absl::Status StopController(absl::Duration timeout = absl::Seconds(10));  // SIGTERM
  absl::Status KillController();   // SIGKILL
  bool ControllerRunning();
  // Sets the network config (flannel's JSON) through weftctl.
  absl::Status SetNetworkConfig(absl::string_view json);
  // Runs `weftctl --controller 192.0.2.2:7800 args...` in the controller's namespace.
  absl::StatusOr<ExecResult> Weftctl(const std::vector<std::string>& args);

  // Starts host i's agent with the host's flags plus `extra_args` (for this start
  // only) and, if `wait_ready`, waits for /readyz and re-reads subnet.env.
  absl::Status StartAgent(int host, const std::vector<std::string>& extra_args = {},
                          bool wait_ready = true);
  absl::Status WaitAgentReady(int host);
  // SIGTERM and wait; an error if it had to be killed or exited non-zero.
  absl::Status StopAgent(int host, absl::Duration timeout = absl::Seconds(10));
  absl::Status KillAgent(int host);  // SIGKILL, reaped
  bool AgentRunning(int host);
  // The agent's subnet.env as it is now on disk.
  absl::StatusOr<SubnetEnv> ReadSubnetEnv(int host) const;

  // --- inspection -----------------------------------------------------------
  // Runs argv inside namespace `ns` (`ip netns exec`); stdin is /dev/null. Errors
  // only when it cannot run or outlives `timeout` (it is then killed).
  absl::StatusOr<ExecResult> Exec(absl::string_view ns, const std::vector<std::string>& argv,
                                  absl::Duration timeout = absl::Seconds(30));
  // Exec of `sh -c command`; an error unless it exits 0.
  absl::StatusOr<std::string> Sh(absl::string_view ns, absl::string_view command);
  // Sh in host i's namespace with the agent's view of /run/wireguard (for `wg`).
  absl::StatusOr<std::string> HostSh(int host, absl::string_view command);

  struct PingResult {
    int transmitted = 0;
    int received = 0;
    double avg_rtt_ms = 0;
    ExecResult raw;
  };
  // iputils ping from a container: OK when all `count` replies came back within
  // `timeout`; else an error carrying ping's output.
  absl::Status Ping(const Container& from, absl::string_view to_ip, int count = 3,
                    absl::Duration timeout = absl::Seconds(10), PingResult* result = nullptr);

  // HTTP GET http://ip:port/path from inside namespace `ns`; the status code.
  static absl::StatusOr<int> HttpGetStatus(absl::string_view ns, absl::string_view ip, int port,
                                           absl::string_view path,
                                           absl::Duration timeout = absl::Seconds(2));

  // Polls `done` every `interval` until it is true, or `timeout` passes
  // (DEADLINE_EXCEEDED naming `what`), or an interrupt arrives (CANCELLED).
  static absl::Status WaitFor(const std::function<bool()>& done, absl::Duration timeout,
                              absl::string_view what,
                              absl::Duration interval = absl::Milliseconds(100));
  // Same, for a check that says why it is not done yet: on timeout the error
  // carries the last reason.
  static absl::Status WaitForOk(const std::function<absl::Status()>& check,
                                absl::Duration timeout,
                                absl::Duration interval = absl::Milliseconds(100));

  // --- cleanup outside the destructor ---------------------------------------
  // "wft<pid>-": the prefix of every namespace this process creates.
  static std::string RunPrefix();
  // Kills the processes inside, then deletes, every namespace whose name starts
  // with `prefix` (never all: an empty prefix sweeps nothing). Returns how many
  // were deleted. (Those of dead processes go at every NetNs::Create.)
  static int SweepNamespaces(absl::string_view prefix);
  // SIGINT/SIGTERM handlers for programs (the demo): the first signal makes
  // Interrupted() true, so that WaitFor/Exec/Ping give up with CANCELLED and the
  // normal RAII cleanup runs; a second signal kills every started process, removes
  // every namespace right away and exits 130.
  static void InstallSignalHandlers();
  static bool Interrupted();

 private:
  explicit Cluster(ClusterOptions options);
  absl::Status Build();
  // A new namespace "wft<pid>-<n>-<tag>"; its name.
  absl::StatusOr<std::string> CreateNamespace(absl::string_view tag);
  absl::Status ConnectToSwitch(const std::string& ns, const std::string& port,
                               const std::string& ip);
  absl::StatusOr<int> AddHostOn(bool routed, int containers, std::vector<std::string> agent_args);
  // Turns the switch namespace into a router between the two underlay subnets
  // (once) and gives the controller a route to kRoutedSubnet.
  absl::Status EnsureRouter();
  void Log(absl::string_view message) const;

  ClusterOptions options_;
  std::string work_dir_;
  std::optional<TestCerts> certs_;
  std::string log_dir_;
  std::string switch_ns_;
  std::string controller_ns_;
  std::string controller_log_;
  pid_t controller_pid_ = -1;
  std::vector<std::unique_ptr<Host>> hosts_;
  std::vector<std::unique_ptr<NetNs>> namespaces_;  // creation order; deleted in reverse
  bool shut_down_ = false;
  bool router_ready_ = false;
};

}  // namespace weft::testing
