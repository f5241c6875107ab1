// End to end, on the real kernel: the real weft-controller, weft-agent and weftctl
// in network namespaces (tests/cluster/harness.h) with the network config
// {"Backend":{"Type":"host-gw"}}. Checks what a flannel host-gw user relies on:
// plain routes via each peer's PublicIP on eth0 and no device of our own, pings
// and a large TCP transfer that arrives intact, the external MTU end to end, a
// released peer vanishing from the others, and a host on another underlay subnet
// reported (log once, metric) rather than routed.

#include <limits.h>
#include <stdlib.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/cluster/e2e_util.h"
#include "tests/cluster/harness.h"

namespace weft::testing {
namespace {

constexpr char kHostgwConfig[] = R"({"Network":"10.1.0.0/16","Backend":{"Type":"host-gw"}})";
constexpr absl::Duration kConverge = absl::Seconds(20);

std::unique_ptr<Cluster> StartOrDie(ClusterOptions options) {
  options.network_config = kHostgwConfig;
  return StartClusterForTest(std::move(options));
}

// Host `host` routes `peer`'s subnet as flannel's host-gw does:
// "<subnet> [nhid N] via <peer's underlay IP> dev eth0".
absl::Status PeerRouted(Cluster& c, int host, int peer) {
  const Host& h = c.host(host);
  const Host& p = c.host(peer);
  absl::StatusOr<std::string> routes = c.Sh(h.ns, "ip route show");
  if (!routes.ok()) return routes.status();
  for (absl::string_view line : absl::StrSplit(*routes, '\n', absl::SkipWhitespace())) {
    std::vector<absl::string_view> t = absl::StrSplit(line, ' ', absl::SkipWhitespace());
    auto after = [&](absl::string_view key) -> absl::string_view {
      auto it = std::find(t.begin(), t.end(), key);
      return it == t.end() || it + 1 == t.end() ? "" : *(it + 1);
    };
    if (!t.empty() && t[0] == p.env.SubnetCidr() && after("via") == p.underlay_ip && after("dev") == "eth0" &&
        std::find(t.begin(), t.end(), "onlink") == t.end()) {
      return absl::OkStatus();
    }
  }
  return absl::NotFoundError(absl::StrCat(h.name, " has no route ", p.env.SubnetCidr(), " via ", p.underlay_ip,
                                          " dev eth0 in\n", *routes));
}

// Host `host` has no route at all to `subnet`.
absl::Status NoRouteTo(Cluster& c, int host, const std::string& subnet) {
  absl::StatusOr<std::string> routes = c.Sh(c.host(host).ns, "ip route show");
  if (!routes.ok()) return routes.status();
  if (absl::StrContains(*routes, subnet + " ")) {
    return absl::FailedPreconditionError(absl::StrCat(c.host(host).name, " still routes ", subnet, ":\n", *routes));
  }
  return absl::OkStatus();
}

// The value of an unlabelled sample of type `type` on host `host`'s /metrics.
absl::StatusOr<double> AgentMetric(Cluster& c, int host, absl::string_view name,
                                   absl::string_view type = "gauge") {
  absl::StatusOr<std::string> page =
      c.Sh(c.host(host).ns, absl::StrCat("curl -sf http://", c.host(host).metrics_addr, "/metrics"));
  if (!page.ok()) return page.status();
  bool typed = false;
  for (absl::string_view line : absl::StrSplit(*page, '\n')) {
    if (line == absl::StrCat("# TYPE ", name, " ", type)) typed = true;
    if (absl::ConsumePrefix(&line, absl::StrCat(name, " "))) {
      double v;
      if (typed && absl::SimpleAtod(line, &v)) return v;
    }
  }
  return absl::NotFoundError(absl::StrCat("no ", type, " ", name, " on ", c.host(host).name, "'s /metrics"));
}

absl::Status MetricIs(Cluster& c, int host, absl::string_view name, double want) {
  absl::StatusOr<double> v = AgentMetric(c, host, name);
  if (!v.ok()) return v.status();
  if (*v != want) return absl::FailedPreconditionError(absl::StrCat(c.host(host).name, ": ", name, " = ", *v));
  return absl::OkStatus();
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string ReadLog(const Host& h) { return ReadFile(h.log_file); }


// Receives one TCP connection on :5201 and prints "<bytes> <sha256>".
// Sends file argv[2] to argv[1]:5201, retrying the connect while the receiver starts.
uint64_t TxBytes(Cluster& c, int host) {
  absl::StatusOr<std::string> out = c.Sh(c.host(host).ns, "cat /sys/class/net/eth0/statistics/tx_bytes");
  uint64_t v = 0;
  return out.ok() && absl::SimpleAtoi(absl::StripAsciiWhitespace(*out), &v) ? v : 0;
}

TEST(HostgwE2ETest, RoutesPingsLargeTransferAndMtu) {
  std::unique_ptr<Cluster> c = StartOrDie({});
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(c->num_hosts(), 3);

  // subnet.env: the external interface's MTU, nothing taken off for a header.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(c->host(i).env.mtu, 1500) << c->host(i).name;
    EXPECT_EQ(c->host(i).env.network, "10.1.0.0/16");
  }
  // Leases as flanneld writes them: BackendType host-gw, no BackendData.
  absl::StatusOr<ExecResult> leases = c->Weftctl({"leases", "list", "-o", "json"});
  ASSERT_TRUE(leases.ok() && leases->exit_code == 0) << (leases.ok() ? leases->ToString() : "");
  std::vector<absl::string_view> typed =
      absl::StrSplit(leases->out, "\"backend_type\":\"host-gw\",\"backend_data\":null");
  EXPECT_EQ(typed.size(), 4u) << leases->out;

  // Each host routes every other's subnet via its underlay address, on eth0, and
  // has no device of its own.
  ASSERT_TRUE(Cluster::WaitForOk(
                  [&]() -> absl::Status {
                    for (int h = 0; h < 3; ++h) {
                      for (int p = 0; p < 3; ++p) {
                        if (h == p) continue;
                        if (absl::Status s = PeerRouted(*c, h, p); !s.ok()) return s;
                      }
                    }
                    return absl::OkStatus();
                  },
                  kConverge)
                  .ok())
      << PeerRouted(*c, 0, 1);
  for (int h = 0; h < 3; ++h) {
    absl::StatusOr<std::string> links = c->Sh(c->host(h).ns, "ip -o link show");
    ASSERT_TRUE(links.ok());
    EXPECT_FALSE(absl::StrContains(*links, "flannel")) << *links;
    EXPECT_TRUE(MetricIs(*c, h, "weft_agent_hostgw_unroutable_peers", 0).ok())
        << MetricIs(*c, h, "weft_agent_hostgw_unroutable_peers", 0);
  }

  // Every host-gw family on /metrics has its row, with its type, in docs/metrics.md.
  absl::StatusOr<std::string> page =
      c->Sh(c->host(0).ns, absl::StrCat("curl -sf http://", c->host(0).metrics_addr, "/metrics"));
  ASSERT_TRUE(page.ok()) << page.status();
  const std::string doc = MetricsDoc();
  int families = 0;
  for (absl::string_view line : absl::StrSplit(*page, '\n')) {
    if (!absl::ConsumePrefix(&line, "# TYPE weft_agent_hostgw_")) continue;
    std::vector<std::string> name_type = absl::StrSplit(line, ' ');
    ASSERT_EQ(name_type.size(), 2u) << line;
    ++families;
    EXPECT_TRUE(absl::StrContains(
        doc, absl::StrCat("| `weft_agent_hostgw_", name_type[0], "` | ", name_type[1], " |")))
        << "weft_agent_hostgw_" << name_type[0] << " has no row in docs/metrics.md";
  }
  EXPECT_EQ(families, 1);

  // Every container reaches every container on another host.
  for (const Container* from : c->containers()) {
    for (const Container* to : c->containers()) {
      if (from->host == to->host) continue;
      EXPECT_TRUE(c->Ping(*from, to->ip).ok()) << c->Ping(*from, to->ip, 1, absl::Seconds(2));
    }
  }

  // 64 MiB of random bytes from h1c1 to h2c1 over TCP arrive intact.
  const Container& a = c->host(0).containers[0];
  const Container& b = c->host(1).containers[0];
  const uint64_t tx_before = TxBytes(*c, 0);
  absl::StatusOr<Transfer> t = TcpTransfer(*c, a, b, 67108864);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_TRUE(t->intact()) << t->ToString();
  EXPECT_EQ(t->received_bytes, uint64_t{67108864});
  // Unencapsulated on h1's eth0: about the payload, not payload + 50 bytes a frame.
  const uint64_t tx = TxBytes(*c, 0) - tx_before;
  EXPECT_GE(tx, uint64_t{67108864});
  EXPECT_LT(tx, uint64_t{67108864} * 105 / 100) << "more than TCP/IP headers were added";

  // The MTU holds end to end: a DF packet of exactly 1500 bytes passes, one more
  // byte is refused.
  absl::StatusOr<ExecResult> fits =
      c->Exec(a.ns, {"ping", "-n", "-c", "2", "-W", "2", "-M", "do", "-s", "1472", b.ip});
  ASSERT_TRUE(fits.ok());
  EXPECT_EQ(fits->exit_code, 0) << fits->ToString();
  absl::StatusOr<ExecResult> too_big =
      c->Exec(a.ns, {"ping", "-n", "-c", "1", "-W", "2", "-M", "do", "-s", "1473", b.ip});
  ASSERT_TRUE(too_big.ok());
  EXPECT_NE(too_big->exit_code, 0) << too_big->ToString();
  EXPECT_TRUE(absl::StrContains(absl::AsciiStrToLower(too_big->out + too_big->err), "message too long"))
      << too_big->ToString();
}

TEST(HostgwE2ETest, ReleasedPeerVanishesFromTheOthers) {
  ClusterOptions o;
  o.hosts = 2;
  std::unique_ptr<Cluster> c = StartOrDie(o);
  ASSERT_NE(c, nullptr);
  absl::StatusOr<int> h3 = c->AddHost(1, {"--release-on-exit"});
  ASSERT_TRUE(h3.ok()) << h3.status();
  const Host gone = c->host(*h3);
  ASSERT_TRUE(Cluster::WaitForOk([&] { return PeerRouted(*c, 0, *h3); }, kConverge).ok()) << PeerRouted(*c, 0, *h3);
  ASSERT_TRUE(Cluster::WaitForOk([&] { return PeerRouted(*c, 1, *h3); }, kConverge).ok());
  const Container& from = c->host(0).containers[0];
  EXPECT_TRUE(c->Ping(from, gone.containers[0].ip).ok());

  ASSERT_TRUE(c->StopAgent(*h3).ok());
  for (int h = 0; h < 2; ++h) {
    EXPECT_TRUE(Cluster::WaitForOk([&] { return NoRouteTo(*c, h, gone.env.SubnetCidr()); }, kConverge).ok())
        << NoRouteTo(*c, h, gone.env.SubnetCidr());
  }
  EXPECT_FALSE(c->Ping(from, gone.containers[0].ip, 1, absl::Seconds(2)).ok())
      << "the released host's containers are still reachable";
  // The hosts that stay still reach each other.
  EXPECT_TRUE(PeerRouted(*c, 0, 1).ok());
  EXPECT_TRUE(c->Ping(from, c->host(1).containers[0].ip).ok());
}

TEST(HostgwE2ETest, HostOnAnotherSubnetIsReportedNotRouted) {
  ClusterOptions o;
  o.hosts = 2;
  o.agent_args = {"--resync-interval=1s"};  // several resyncs while we watch the log
  std::unique_ptr<Cluster> c = StartOrDie(o);
  ASSERT_NE(c, nullptr);
  absl::StatusOr<int> far = c->AddRoutedHost(1);
  ASSERT_TRUE(far.ok()) << far.status();
  const Host& f = c->host(*far);
  ASSERT_TRUE(f.routed);

  // The two hosts on the segment report it and keep serving each other.
  for (int h = 0; h < 2; ++h) {
    EXPECT_TRUE(Cluster::WaitForOk([&] { return MetricIs(*c, h, "weft_agent_hostgw_unroutable_peers", 1); },
                                   kConverge)
                    .ok())
        << MetricIs(*c, h, "weft_agent_hostgw_unroutable_peers", 1);
    EXPECT_TRUE(NoRouteTo(*c, h, f.env.SubnetCidr()).ok()) << NoRouteTo(*c, h, f.env.SubnetCidr());
  }
  // The far host sees both others as off its network.
  EXPECT_TRUE(
      Cluster::WaitForOk([&] { return MetricIs(*c, *far, "weft_agent_hostgw_unroutable_peers", 2); }, kConverge)
          .ok())
      << MetricIs(*c, *far, "weft_agent_hostgw_unroutable_peers", 2);
  EXPECT_TRUE(PeerRouted(*c, 0, 1).ok());
  EXPECT_TRUE(c->Ping(c->host(0).containers[0], c->host(1).containers[0].ip).ok());

  // After several resyncs, h1's log names the far host exactly once, with why.
  absl::StatusOr<double> passes_before = AgentMetric(*c, 0, "weft_agent_reconciles_total", "counter");
  ASSERT_TRUE(passes_before.ok()) << passes_before.status();
  absl::Status resynced = Cluster::WaitForOk(
      [&]() -> absl::Status {
        absl::StatusOr<double> passes = AgentMetric(*c, 0, "weft_agent_reconciles_total", "counter");
        if (!passes.ok()) return passes.status();
        if (*passes - *passes_before >= 2) return absl::OkStatus();
        return absl::UnavailableError(absl::StrCat(*passes - *passes_before, " passes since"));
      },
      kConverge);
  ASSERT_TRUE(resynced.ok()) << resynced << ": the resyncs the log must not repeat itself at";
  int lines = 0;
  std::string seen;
  for (absl::string_view line : absl::StrSplit(ReadLog(c->host(0)), '\n')) {
    if (absl::StrContains(line, "not routable") && absl::StrContains(line, f.underlay_ip)) {
      ++lines;
      seen = std::string(line);
    }
  }
  EXPECT_EQ(lines, 1) << "log lines about " << f.underlay_ip << " on h1 (last: " << seen << ")";
  EXPECT_TRUE(absl::StrContains(seen, f.env.SubnetCidr())) << seen;
  EXPECT_TRUE(absl::StrContains(seen, "outside eth0's network 192.0.2.0/24")) << seen;
}

}  // namespace
}  // namespace weft::testing
