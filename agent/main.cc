// weft-agent: one host's side of Weft. Parses flags into an AgentConfig and runs
// the Agent; serves /metrics, /healthz and /readyz.

#include <malloc.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>

#include "absl/flags/flag.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "agent/agent.h"
#include "common/flags.h"
#include "common/http_server.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/mutex_mode.h"
#include "common/tls_client.h"
#include "common/version.h"

ABSL_FLAG(std::string, controller, "127.0.0.1:7800",
          "Controller gRPC endpoints, comma-separated (host:port,...); the agent fails over between them.");
ABSL_FLAG(std::string, controller_ca_file, "",
          "CA bundle the controller's certificate must chain to; set: mutual TLS to the controller (docs/security.md).");
ABSL_FLAG(std::string, controller_cert_file, "",
          "This node's client certificate (O=system:nodes, CN=system:node:<node-name>; tools/certs.sh node).");
ABSL_FLAG(std::string, controller_key_file, "", "The private key of --controller-cert-file.");
ABSL_FLAG(std::string, iface, "",
          "External interface(s) by name, IPv4 or IPv6 address, comma-separated; first match wins.");
ABSL_FLAG(std::string, iface_regex, "",
          "Regex(es) over interface names or their IPv4 and IPv6 addresses, comma-separated.");
ABSL_FLAG(std::string, iface_can_reach, "",
          "Without --iface and --iface-regex: the interface the route to this IPv4 or IPv6 address leaves by "
          "(e.g. the controller's or a peer's address).");
ABSL_FLAG(std::string, public_ip, "", "IPv4 address other hosts reach this one at (default: the interface's).");
ABSL_FLAG(std::string, public_ipv6, "",
          "Dual-stack networks: IPv6 address other hosts reach this one at (default: the interface's global "
          "IPv6 address).");
ABSL_FLAG(std::string, node_name, "", "This host's name (default: the hostname).");
ABSL_FLAG(std::string, subnet_file, "/run/flannel/subnet.env", "Where to write subnet.env.");
ABSL_FLAG(std::string, docker_opts_file, "/run/docker_opts.env", "Where to write Docker's options.");
ABSL_FLAG(bool, ip_masq, false, "Masquerade traffic from the cluster network to outside it.");
ABSL_FLAG(std::string, state_dir, "/var/lib/weft-agent", "Directory for the agent's identity (VTEP MAC).");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:7802", "HTTP address for /metrics, /healthz, /readyz; empty: off.");
ABSL_FLAG(bool, release_on_exit, false, "Release the lease on exit (default: keep it, so a restart gets it back).");
ABSL_FLAG(absl::Duration, resync_interval, absl::Seconds(10), "How often the kernel state is checked for drift.");
ABSL_FLAG(absl::Duration, subnet_lease_renew_margin, absl::Minutes(60),
          "Renew the lease this long before it expires (at most a third of its TTL).");
ABSL_FLAG(std::string, gce_api_endpoint, "https://compute.googleapis.com/compute/v1",
          "Backend gce: base URL of the Compute Engine API v1.");
ABSL_FLAG(std::string, gce_metadata_endpoint, "http://metadata.google.internal",
          "Backend gce: base URL of the GCE metadata server.");
ABSL_FLAG(std::string, aws_ec2_endpoint, "",
          "Backend aws-vpc: base URL of the EC2 API (default https://ec2.<region>.amazonaws.com).");
ABSL_FLAG(std::string, aws_imds_endpoint, "http://169.254.169.254",
          "Backend aws-vpc: base URL of the EC2 instance metadata service (IMDSv2).");
ABSL_FLAG(absl::Duration, cloud_route_removal_grace, absl::Seconds(30),
          "Backends gce and aws-vpc: how long a cloud route for a subnet with no lease known to this agent must "
          "stay so before the agent deletes it; a joining node's route, added by a quicker agent, is not "
          "removed while this agent's lease watch catches up. 0s: at once.");
ABSL_FLAG(int, udp_workers, 0,
          "udp backend: worker pairs of threads, each with a TUN queue and a UDP socket (0: min(4, cores)).");
ABSL_FLAG(bool, udp_offloads, true,
          "udp backend: use TUN and UDP segmentation offloads (TSO, UDP GSO/GRO) where the kernel has them.");
ABSL_FLAG(std::string, wireguard_key_file, "",
          "wireguard backend: the node's private key (made once, mode 0600); default <state-dir>/wireguard-key.");
ABSL_FLAG(std::string, wireguard_implementation, "auto",
          "wireguard backend: auto (the kernel's when it has WireGuard, else wireguard-go), kernel or userspace.");
ABSL_FLAG(std::string, wireguard_go, "wireguard-go",
          "wireguard backend: the wireguard-go program for the userspace implementation.");
ABSL_FLAG(bool, wireguard_peer_metrics, false,
          "wireguard backend: also export per-peer handshake age and bytes, labelled by the peer's subnet "
          "(one series per node).");
ABSL_FLAG(bool, nexthop_objects, true,
          "vxlan/host-gw: route through kernel nexthop objects where the kernel has them (5.3+; same "
          "forwarding, route inserts no longer slow down with the route count); false: flannel's classic "
          "layout of plain routes.");

namespace {

absl::Notification* g_stop = nullptr;
void OnSignal(int) {
  if (g_stop && !g_stop->HasBeenNotified()) g_stop->Notify();
}

std::vector<std::string> SplitList(const std::string& s) {
  return absl::StrSplit(s, ',', absl::SkipWhitespace());
}

// Resident memory (docs/benchmarks.md, "Agent resident memory"): one malloc arena
// rather than one per allocating thread (gRPC's threads held 12 of them), and
// freed memory above 64 KiB at the top of the heap goes back to the kernel
// (glibc's adaptive threshold grows up to 64 MiB). The agent allocates little
// and rarely, so one arena's lock is no contention. An operator's MALLOC_* or
// GLIBC_TUNABLES settings win.
void TuneMalloc() {
  for (const char* env : {"GLIBC_TUNABLES", "MALLOC_ARENA_MAX", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_"}) {
    if (std::getenv(env) != nullptr) return;
  }
  mallopt(M_ARENA_MAX, 1);
  mallopt(M_TRIM_THRESHOLD, 64 << 10);
  mallopt(M_TOP_PAD, 0);
}

// Resident memory: cpp-httplib's constructor initialises OpenSSL asking for every
// error string (OPENSSL_init_ssl(LOAD_SSL_STRINGS | LOAD_CRYPTO_STRINGS)), which
// builds OpenSSL's error-string tables at start. Run from .preinit_array, before
// any shared library's constructor, this marks them as not wanted, for good: TLS
// errors in the agent's log then read "error:0A000086:lib(20)::reason(134)"
// (`openssl errstr 0A000086` decodes it); the agent's own messages say what failed.
void OpenSslWithoutErrorStrings(int, char**, char**) {
  OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_SSL_STRINGS | OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS, nullptr);
}
__attribute__((section(".preinit_array"), used)) void (*const preinit_openssl)(int, char**, char**) =
    OpenSslWithoutErrorStrings;

}  // namespace

int main(int argc, char** argv) {
  TuneMalloc();
  weft::SetProgramHelp({
      .name = "weft-agent",
      .summary = "one host's side of Weft: acquires and renews the host's subnet lease, writes subnet.env, and "
                 "programs the data path (VXLAN, UDP, host-gw, AWS VPC or GCE routes) for every peer.",
      .synopsis = "[FLAGS]",
      .groups =
          {
              {"Controller", {"controller", "controller_*"}},
              {"This host", {"node_name", "iface", "iface_regex", "iface_can_reach", "public_ip", "public_ipv6", "ip_masq", "state_dir"}},
              {"Files written", {"subnet_file", "docker_opts_file"}},
              {"Leases", {"subnet_lease_renew_margin", "release_on_exit", "resync_interval"}},
              {"Backends: vxlan, udp, host-gw", {"vxlan_*", "udp_*", "nexthop_objects"}},
              {"Backend: wireguard", {"wireguard_*"}},
              {"Backends: aws-vpc, gce", {"aws_*", "gce_*", "cloud_*"}},
              {"Observability", {"metrics_listen", "log_*"}},
          },
      .footer = "Exit status: 0 stopped (SIGTERM); 1 failed (the log says why); 2 bad flags or settings. "
                "docs/operations.md.",
  });
  weft::TurnOffMutexDeadlockDetection();
  auto args = weft::ParseFlagsWithEnv(argc, argv, "WEFT_");
  if (!args.ok()) {
    WEFT_LOG(ERROR, "bad flags").Err(args.status());
    return 2;
  }
  weft::agent::AgentConfig cfg;
  cfg.controllers = SplitList(absl::GetFlag(FLAGS_controller));
  if (cfg.controllers.empty()) {
    WEFT_LOG(ERROR, "--controller: at least one endpoint is required");
    return 2;
  }
  const weft::TlsClientFiles tls{absl::GetFlag(FLAGS_controller_ca_file), absl::GetFlag(FLAGS_controller_cert_file),
                                 absl::GetFlag(FLAGS_controller_key_file)};
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> creds = weft::MakeChannelCredentials(tls);
  if (!creds.ok()) {
    WEFT_LOG(ERROR, "--controller-ca-file/--controller-cert-file/--controller-key-file").Err(creds.status());
    return 2;
  }
  cfg.controller_credentials = *creds;
  cfg.controller_tls = tls.enabled();
  if (!cfg.controller_tls) {
    WEFT_LOG(INFO, "plaintext to the controller (no --controller-ca-file)");
  }
  cfg.iface.ifaces = SplitList(absl::GetFlag(FLAGS_iface));
  cfg.iface.iface_regexes = SplitList(absl::GetFlag(FLAGS_iface_regex));
  cfg.iface.can_reach = absl::GetFlag(FLAGS_iface_can_reach);
  cfg.iface.public_ip = absl::GetFlag(FLAGS_public_ip);
  cfg.iface.public_ipv6 = absl::GetFlag(FLAGS_public_ipv6);
  if (!cfg.iface.public_ipv6.empty()) {
    if (auto ip = weft::agent::ParsePublicIPv6(cfg.iface.public_ipv6); !ip.ok()) {
      WEFT_LOG(ERROR, "bad flags").Err(ip.status());
      return 2;
    }
  }
  cfg.node_name = absl::GetFlag(FLAGS_node_name);
  if (cfg.node_name.empty()) {
    char host[256] = {};
    if (gethostname(host, sizeof(host) - 1) == 0) cfg.node_name = host;
  }
  cfg.subnet_file = absl::GetFlag(FLAGS_subnet_file);
  cfg.docker_opts_file = absl::GetFlag(FLAGS_docker_opts_file);
  cfg.ip_masq = absl::GetFlag(FLAGS_ip_masq);
  cfg.state_dir = absl::GetFlag(FLAGS_state_dir);
  cfg.release_on_exit = absl::GetFlag(FLAGS_release_on_exit);
  cfg.resync_interval = absl::GetFlag(FLAGS_resync_interval);
  cfg.renew_margin = absl::GetFlag(FLAGS_subnet_lease_renew_margin);
  cfg.nexthop_objects = absl::GetFlag(FLAGS_nexthop_objects);
  cfg.backend.gce_api_endpoint = absl::GetFlag(FLAGS_gce_api_endpoint);
  cfg.backend.gce_metadata_endpoint = absl::GetFlag(FLAGS_gce_metadata_endpoint);
  cfg.backend.aws_ec2_endpoint = absl::GetFlag(FLAGS_aws_ec2_endpoint);
  cfg.backend.aws_imds_endpoint = absl::GetFlag(FLAGS_aws_imds_endpoint);
  cfg.backend.cloud_route_removal_grace = absl::GetFlag(FLAGS_cloud_route_removal_grace);
  if (cfg.backend.cloud_route_removal_grace < absl::ZeroDuration()) {
    WEFT_LOG(ERROR, "--cloud-route-removal-grace must not be negative")
        .With("cloud_route_removal_grace", cfg.backend.cloud_route_removal_grace);
    return 2;
  }
  cfg.backend.udp_workers = absl::GetFlag(FLAGS_udp_workers);
  cfg.backend.udp_offloads = absl::GetFlag(FLAGS_udp_offloads);
  cfg.backend.wireguard_key_file = absl::GetFlag(FLAGS_wireguard_key_file);
  cfg.backend.wireguard_implementation = absl::GetFlag(FLAGS_wireguard_implementation);
  cfg.backend.wireguard_go = absl::GetFlag(FLAGS_wireguard_go);
  cfg.backend.wireguard_peer_metrics = absl::GetFlag(FLAGS_wireguard_peer_metrics);

  weft::metrics::Registry registry;
  weft::metrics::AddProcessMetrics(registry);
  weft::metrics::AddBuildInfo(registry, weft::version::Version(), weft::version::Commit());
  weft::agent::Agent agent(cfg, &registry);

  std::unique_ptr<weft::HttpServer> http;
  if (const std::string addr = absl::GetFlag(FLAGS_metrics_listen); !addr.empty()) {
    http = std::make_unique<weft::HttpServer>(&registry);
    http->SetReadinessCheck([&agent] { return agent.Readiness(); });
    if (absl::Status s = http->Start(addr); !s.ok()) {
      WEFT_LOG(ERROR, "cannot serve metrics").With("metrics_listen", addr).Err(s);
      return 1;
    }
  }
  absl::Notification stop;
  g_stop = &stop;
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  absl::Status s = agent.Run(&stop);
  if (http) http->Stop();
  if (!s.ok()) {
    WEFT_LOG(ERROR, "weft-agent failed").Err(s);
    return absl::IsInvalidArgument(s) ? 2 : 1;
  }
  WEFT_LOG(INFO, "weft-agent stopped");
  return 0;
}
