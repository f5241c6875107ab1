// The local cluster demo (tools/demo.sh): a controller on its embedded store, N
// hosts and one container on each, all in network namespaces of this machine;
// prints each host's subnet and container, pings every container from every
// container on another host, and says PASS only if every ping worked.
//
//   demo --controller-bin PATH --agent-bin PATH --weftctl-bin PATH [--hosts 3] [--keep] [--notls]
//
// Mutual TLS is on by default (certificates from tools/certs.sh in the work dir):
// the demo prints each agent's identity, and shows a plaintext client and a
// node's certificate asking for an operator's call both refused.
//
// Flags also from the environment as WEFT_DEMO_<FLAG>.
// Exit codes: 0 every ping worked, 1 a ping failed or the cluster did not start,
// 2 bad usage, 130 interrupted.

#include <unistd.h>

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/flags.h"
#include "common/testing.h"
#include "common/tls_client.h"
#include "nlohmann/json.hpp"
#include "tests/cluster/harness.h"

ABSL_FLAG(std::string, controller_bin, "", "Path of the weft-controller binary.");
ABSL_FLAG(std::string, agent_bin, "", "Path of the weft-agent binary.");
ABSL_FLAG(std::string, weftctl_bin, "", "Path of the weftctl binary.");
ABSL_FLAG(int, hosts, 3, "Number of hosts (one container each).");
ABSL_FLAG(bool, keep, false, "Keep the cluster running until Ctrl-C, then clean up.");
ABSL_FLAG(bool, verbose, false, "Show the harness's progress lines.");
ABSL_FLAG(bool, tls, true, "Mutual TLS between every component (--notls: plaintext, controller --insecure).");
ABSL_FLAG(std::string, network_config,
          weft::testing::kDefaultNetworkConfig, "Network config (flannel's JSON).");

namespace {

using weft::testing::Cluster;
using weft::testing::ClusterOptions;
using weft::testing::Container;

// The first line of what a refused weftctl printed.
std::string FirstLine(const std::string& s) { return s.substr(0, s.find('\n')); }

// What mutual TLS does in this cluster, shown rather than told.
void ShowTls(Cluster& c) {
  absl::PrintF("\nmutual TLS: on (CA, controller, admin and node certificates in %s)\n", c.certs()->dir());
  for (int i = 0; i < c.num_hosts(); ++i) {
    const std::string name = c.host(i).name;
    absl::StatusOr<weft::CertificateInfo> info = weft::ReadCertificateInfo(c.certs()->Node(name).cert_file);
    absl::PrintF("  agent %-4s connects as %s\n", name, info.ok() ? info->subject : info.status().ToString());
  }
  const std::string& weftctl = c.options().binaries.weftctl;
  absl::StatusOr<weft::testing::ExecResult> plain =
      c.Exec(c.controller_ns(), {weftctl, "--controller", c.controller_addr(), "--timeout", "3s", "leases", "list"});
  if (plain.ok()) {
    absl::PrintF("  plaintext weftctl leases list: %s\n    %s\n", plain->exit_code == 0 ? "ALLOWED (unexpected)" : "refused",
                 FirstLine(plain->err));
  }
  const weft::TlsClientFiles node = c.certs()->Node(c.host(0).name);
  absl::StatusOr<weft::testing::ExecResult> as_node =
      c.Exec(c.controller_ns(), {weftctl, "--controller", c.controller_addr(), "--ca-file", node.ca_file,
                                 "--cert-file", node.cert_file, "--key-file", node.key_file, "reserve",
                                 "10.1.250.0/24", "--public-ip", "192.0.2.250"});
  if (as_node.ok()) {
    absl::PrintF("  weftctl reserve with %s's node certificate: %s\n    %s\n", c.host(0).name,
                 as_node->exit_code == 0 ? "ALLOWED (unexpected)" : "refused", FirstLine(as_node->err));
  }
  std::fflush(stdout);
}

int Run() {
  ClusterOptions o;
  o.name = "demo";
  o.binaries = {absl::GetFlag(FLAGS_controller_bin), absl::GetFlag(FLAGS_agent_bin),
                absl::GetFlag(FLAGS_weftctl_bin)};
  if (absl::Status s = o.binaries.Check(); !s.ok()) {
    absl::FPrintF(stderr, "demo: %s\n", s.message());
    return 2;
  }
  o.hosts = absl::GetFlag(FLAGS_hosts);
  if (o.hosts < 2 || o.hosts > 200) {
    absl::FPrintF(stderr, "demo: --hosts must be between 2 and 200\n");
    return 2;
  }
  o.network_config = absl::GetFlag(FLAGS_network_config);
  // A dual-stack or IPv6-only network needs an IPv6 underlay: the hosts get one beside the IPv4 one.
  if (auto cfg = nlohmann::json::parse(o.network_config, nullptr, false);
      cfg.is_object() && cfg.value("EnableIPv6", false) == true) {
    o.underlay_ipv6 = true;
  }
  o.verbose = absl::GetFlag(FLAGS_verbose);
  o.tls = absl::GetFlag(FLAGS_tls);
  absl::StatusOr<weft::TempDir> work = weft::TempDir::Make("weft-demo-", weft::TempDir::Root::kTmp);
  if (!work.ok()) {
    absl::FPrintF(stderr, "demo: cannot make a work dir: %s\n", work.status().ToString());
    return 1;
  }
  // Only removed when every ping worked: otherwise the logs are what tells why.
  work->Keep();
  o.work_dir = work->path();

  absl::PrintF("Weft demo: a controller and %d hosts in network namespaces of this machine\n",
               o.hosts);
  absl::PrintF("  network config %s\n  logs in %s/logs (kept only if something fails)\n\n",
               o.network_config, o.work_dir);
  std::fflush(stdout);
  absl::StatusOr<std::unique_ptr<Cluster>> started = Cluster::Start(o);
  if (!started.ok()) {
    if (Cluster::Interrupted()) return 130;
    absl::FPrintF(stderr, "FAIL: the cluster did not start: %s\n(logs in %s/logs)\n",
                  started.status().ToString(), o.work_dir);
    return 1;
  }
  Cluster& c = **started;
  absl::PrintF("controller  %-15s (namespace %s)\n", c.controller_addr(), c.controller_ns());
  for (int i = 0; i < c.num_hosts(); ++i) {
    const weft::testing::Host& h = c.host(i);
    if (h.env.subnet.empty()) {  // an IPv6-only network
      absl::PrintF("host %-4s  underlay %-12s FLANNEL_MTU=%d\n", h.name, h.underlay_ip, h.env.mtu);
    } else {
      absl::PrintF("host %-4s  underlay %-12s subnet %-15s FLANNEL_SUBNET=%s FLANNEL_MTU=%d\n", h.name,
                   h.underlay_ip, h.env.SubnetCidr(), h.env.subnet, h.env.mtu);
    }
    if (!h.env.ipv6_subnet.empty()) {
      absl::PrintF("           underlay %-12s FLANNEL_IPV6_SUBNET=%s\n", h.underlay_ipv6, h.env.ipv6_subnet);
    }
    for (const Container& ct : h.containers) {
      absl::PrintF("  container %-6s %s%s%s  (ip netns exec %s ...)\n", ct.name, ct.ip, ct.ipv6.empty() ? "" : " ",
                   ct.ipv6, ct.ns);
    }
  }
  if (c.certs() != nullptr) ShowTls(c);
  absl::PrintF("\ncross-host pings (network config %s):\n", c.options().network_config);
  std::fflush(stdout);

  // The agents learn of hosts that joined after them through their watch: give
  // every pair a short grace period before counting a failure.
  // Dual-stack: every pair over IPv4 and over IPv6; IPv6-only: over IPv6.
  int total = 0, ok = 0;
  for (const Container* from : c.containers()) {
    for (const Container* to : c.containers()) {
      if (from->host == to->host) continue;
      std::vector<std::pair<std::string, std::string>> pairs;
      if (!from->ip.empty() && !to->ip.empty()) pairs.push_back({from->ip, to->ip});
      if (!from->ipv6.empty() && !to->ipv6.empty()) pairs.push_back({from->ipv6, to->ipv6});
      for (const auto& [src, dst] : pairs) {
        ++total;
        Cluster::PingResult r;
        absl::Status s = Cluster::WaitForOk(
            [&, dst = dst] { return c.Ping(*from, dst, 3, absl::Seconds(3), &r); }, absl::Seconds(15),
            absl::Seconds(1));
        if (Cluster::Interrupted()) return 130;
        if (s.ok()) ++ok;
        const int w = c.options().underlay_ipv6 ? 18 : 12;  // IPv6 addresses are wider
        absl::PrintF("  %-6s %-*s -> %-6s %-*s %s  %d/%d replies, avg %.3f ms\n", from->name, w, src, to->name, w,
                     dst, s.ok() ? "ok  " : "FAIL", r.received, r.transmitted, r.avg_rtt_ms);
        std::fflush(stdout);
      }
    }
  }
  const bool pass = total > 0 && ok == total;
  absl::PrintF("\n%s: %d/%d cross-host pings worked\n", pass ? "PASS" : "FAIL", ok, total);
  if (!pass) absl::PrintF("logs: %s\n", c.log_dir());
  std::fflush(stdout);

  if (absl::GetFlag(FLAGS_keep)) {
    std::string tls_flags;
    if (c.certs() != nullptr) {
      for (const std::string& f : c.certs()->WeftctlFlags()) absl::StrAppend(&tls_flags, " ", f);
    }
    absl::PrintF("\nThe cluster keeps running; try for example\n"
                 "  ip netns exec %s ping %s\n"
                 "  ip netns exec %s ip route\n"
                 "  ip netns exec %s %s --controller %s%s leases list\n"
                 "Ctrl-C to stop and clean up.\n",
                 c.host(0).containers[0].ns,
                 c.host(1).containers[0].ip.empty() ? c.host(1).containers[0].ipv6 : c.host(1).containers[0].ip,
                 c.host(0).ns,
                 c.controller_ns(), c.options().binaries.weftctl, c.controller_addr(), tls_flags);
    std::fflush(stdout);
    while (!Cluster::Interrupted()) absl::SleepFor(absl::Milliseconds(200));
  }
  c.Shutdown();
  absl::PrintF("cleaned up: every process stopped, every namespace deleted\n");
  work->Keep(!pass);
  return pass ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Runs a Weft cluster in network namespaces and pings across hosts (needs root).");
  if (absl::StatusOr<std::vector<char*>> args = weft::ParseFlagsWithEnv(argc, argv, "WEFT_DEMO_");
      !args.ok()) {
    absl::FPrintF(stderr, "demo: %s\n", args.status().message());
    return 2;
  } else if (args->size() > 1) {
    absl::FPrintF(stderr, "demo: unexpected argument %s\n", (*args)[1]);
    return 2;
  }
  if (geteuid() != 0) {
    absl::FPrintF(stderr, "demo: needs root (network namespaces); run with sudo\n");
    return 2;
  }
  Cluster::InstallSignalHandlers();
  return Run();
}
