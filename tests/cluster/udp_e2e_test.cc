// End to end with the UDP backend: the real controller, agents and weftctl in
// network namespaces (tests/cluster/harness.h), network config
// {"Backend":{"Type":"udp"}}. Checks what a flannel user of the udp backend
// relies on: the flannel0 device with its MTU and port 8285, containers on
// different hosts reaching each other (small pings and a 64 MiB TCP stream
// checked by sha256), the MTU holding without a black hole, a host that leaves
// becoming unreachable, and the backend's metrics matching docs/metrics.md.
//
// UdpE2ETest.ThroughputAgainstVxlan measures instead of checking; it runs only
// with WEFT_UDP_BENCH=1 (see the test).

#include <limits.h>
#include <stdlib.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

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

constexpr char kUdpConfig[] = R"({"Network":"10.1.0.0/16","Backend":{"Type":"udp"}})";
constexpr absl::Duration kConverge = absl::Seconds(20);

ClusterOptions UdpOptions() {
  ClusterOptions o;
  o.network_config = kUdpConfig;
  return o;
}

TEST(UdpE2ETest, FlannelsDeviceAndPortAndContainersReachEachOther) {
  std::unique_ptr<Cluster> c = StartClusterForTest(UdpOptions());
  ASSERT_NE(c, nullptr);
  for (int i = 0; i < c->num_hosts(); ++i) {
    const Host& h = c->host(i);
    SCOPED_TRACE(h.name);
    EXPECT_EQ(h.env.mtu, 1472);  // the underlay's 1500 - 28
    absl::StatusOr<std::string> link = c->Sh(h.ns, "ip -d link show flannel0");
    ASSERT_TRUE(link.ok()) << link.status();
    EXPECT_TRUE(absl::StrContains(*link, "mtu 1472")) << *link;
    EXPECT_TRUE(absl::StrContains(*link, "tun")) << *link;
    absl::StatusOr<std::string> addr = c->Sh(h.ns, "ip -4 -o addr show dev flannel0");
    ASSERT_TRUE(addr.ok()) << addr.status();
    EXPECT_TRUE(absl::StrContains(*addr, absl::StrCat("inet ", h.env.NetworkAddress(), "/16"))) << *addr;
    absl::StatusOr<std::string> route = c->Sh(h.ns, "ip route show 10.1.0.0/16");
    ASSERT_TRUE(route.ok()) << route.status();
    EXPECT_TRUE(absl::StrContains(*route, "dev flannel0")) << *route;
    absl::StatusOr<std::string> ss = c->Sh(h.ns, "ss -u -l -n");
    ASSERT_TRUE(ss.ok()) << ss.status();
    EXPECT_TRUE(absl::StrContains(*ss, absl::StrCat(h.underlay_ip, ":8285"))) << *ss;
    // The lease's BackendData is null, as flanneld's udp backend writes it.
  }
  absl::StatusOr<ExecResult> leases = c->Weftctl({"leases", "list", "-o", "json"});
  ASSERT_TRUE(leases.ok()) << leases.status();
  EXPECT_TRUE(absl::StrContains(leases->out, "udp")) << leases->out;

  absl::Status pings = Cluster::WaitForOk([&] { return AllCrossHostPings(*c); }, kConverge);
  EXPECT_TRUE(pings.ok()) << pings;
  absl::StatusOr<std::string> page = AgentMetrics(*c, 0);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(Sample(*page, "weft_agent_udp_peers"), 2);
  EXPECT_GT(Sample(*page, "weft_agent_udp_packets_total{direction=\"tx\"}"), 0);
  EXPECT_GT(Sample(*page, "weft_agent_udp_packets_total{direction=\"rx\"}"), 0);
  // The tunnel device's kernel counters are the agent's too.
  EXPECT_GT(Sample(*page, "weft_agent_tunnel_packets_total{device=\"flannel0\",direction=\"tx\"}"), 0);
}

TEST(UdpE2ETest, LargeTcpTransferArrivesIntact) {
  std::unique_ptr<Cluster> c = StartConverged(UdpOptions());
  ASSERT_NE(c, nullptr);
  const Container& from = c->host(0).containers[0];
  const Container& to = c->host(1).containers[0];
  // 64 MiB of random bytes over one TCP connection; both ends print length and sha256.
  absl::StatusOr<Transfer> t = TcpTransfer(*c, from, to, 64 << 20);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_TRUE(t->intact()) << t->ToString();
  EXPECT_EQ(t->received_bytes, uint64_t{64} << 20);

  absl::StatusOr<std::string> page = AgentMetrics(*c, 0);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_GT(Sample(*page, "weft_agent_udp_bytes_total{direction=\"tx\"}"), 64 << 20);
  EXPECT_EQ(Sample(*page, "weft_agent_udp_drops_total{reason=\"malformed\"}"), 0);
}

TEST(UdpE2ETest, MtuSizedPacketsPassAndOneByteMoreIsRefused) {
  std::unique_ptr<Cluster> c = StartConverged(UdpOptions());
  ASSERT_NE(c, nullptr);
  const Container& from = c->host(0).containers[0];
  const Container& to = c->host(1).containers[0];
  const int payload = c->host(0).env.mtu - 28;  // ICMP 8 + IP 20
  absl::StatusOr<ExecResult> ok = c->Exec(
      from.ns, {"ping", "-c", "3", "-i", "0.2", "-W", "2", "-M", "do", "-s", absl::StrCat(payload), to.ip});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->exit_code, 0) << ok->ToString();
  absl::StatusOr<ExecResult> big = c->Exec(
      from.ns, {"ping", "-c", "1", "-W", "2", "-M", "do", "-s", absl::StrCat(payload + 1), to.ip});
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_NE(big->exit_code, 0);
  EXPECT_TRUE(absl::StrContains(big->out + big->err, "message too long")) << big->ToString();
  // Without DF, the host fragments to the tunnel's MTU and the peer reassembles.
  absl::StatusOr<ExecResult> frag =
      c->Exec(from.ns, {"ping", "-c", "2", "-i", "0.2", "-W", "2", "-M", "dont", "-s", "4000", to.ip});
  ASSERT_TRUE(frag.ok()) << frag.status();
  EXPECT_EQ(frag->exit_code, 0) << frag->ToString();
}

TEST(UdpE2ETest, ReleasedHostBecomesUnreachable) {
  std::unique_ptr<Cluster> c = StartClusterForTest(UdpOptions());
  ASSERT_NE(c, nullptr);
  absl::StatusOr<int> h4 = c->AddHost(1, {"--release-on-exit"});
  ASSERT_TRUE(h4.ok()) << h4.status();
  ASSERT_TRUE(Cluster::WaitForOk([&] { return AllCrossHostPings(*c); }, kConverge).ok());
  const Host gone = c->host(*h4);
  const Container& gone_c = gone.containers[0];
  ASSERT_TRUE(c->StopAgent(*h4).ok());
  // The agent's exit takes its flannel0 (and the route into it) away.
  EXPECT_FALSE(c->Sh(gone.ns, "ip link show flannel0").ok());
  for (int i = 0; i < 3; ++i) {
    absl::Status s = Cluster::WaitFor(
        [&] {
          absl::StatusOr<std::string> page = AgentMetrics(*c, i);
          return page.ok() && Sample(*page, "weft_agent_udp_peers") == 2;
        },
        kConverge, "peer table without the released host");
    EXPECT_TRUE(s.ok()) << c->host(i).name << ": " << s;
  }
  // Its subnet is now unknown: the sender hears so at once (ICMP net unreachable).
  const Container& from = c->host(0).containers[0];
  absl::StatusOr<ExecResult> r = c->Exec(from.ns, {"ping", "-c", "1", "-W", "2", gone_c.ip});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NE(r->exit_code, 0);
  EXPECT_TRUE(absl::StrContains(r->out, "Unreachable")) << r->ToString();
  absl::StatusOr<std::string> page = AgentMetrics(*c, 0);
  ASSERT_TRUE(page.ok());
  EXPECT_GE(Sample(*page, "weft_agent_udp_drops_total{reason=\"no_peer\"}"), 1);
  // The others still reach each other.
  EXPECT_TRUE(c->Ping(c->host(0).containers[0], c->host(1).containers[0].ip).ok());
}

TEST(UdpE2ETest, MetricsMatchTheirRowsInDocs) {
  ClusterOptions o = UdpOptions();
  o.hosts = 2;
  std::unique_ptr<Cluster> c = StartClusterForTest(o);
  ASSERT_NE(c, nullptr);
  absl::StatusOr<std::string> page = AgentMetrics(*c, 0);
  ASSERT_TRUE(page.ok()) << page.status();
  const DocumentedFamilies f = ExpectMetricsMatchDocs(*page, "weft_agent_udp_");
  EXPECT_EQ(f.exported, 7);
  EXPECT_EQ(f.documented, f.exported);
}

// iperf3 between containers on two hosts, 1 and 4 streams, for the udp backend
// (with and without offloads) and the vxlan backend in the same run. Prints the
// figures; only asserts that traffic flowed. WEFT_UDP_BENCH=1 to run (it takes a while), e.g.:
//   bazel test -c opt //tests/cluster:udp_e2e_test --test_env=WEFT_UDP_BENCH=1
//     --test_filter=UdpE2ETest.ThroughputAgainstVxlan --test_output=streamed
TEST(UdpE2ETest, ThroughputAgainstVxlan) {
  const char* bench = std::getenv("WEFT_UDP_BENCH");
  if (bench == nullptr || std::string(bench) != "1") GTEST_SKIP() << "set WEFT_UDP_BENCH=1 to measure";
  struct Setup {
    const char* name;
    const char* backend;
    std::vector<std::string> agent_args;
  };
  for (const Setup& setup : {Setup{"udp", "udp", {}}, Setup{"udp-no-offloads", "udp", {"--udp-offloads=false"}},
                             Setup{"vxlan", "vxlan", {}}}) {
    ClusterOptions o;
    o.network_config = absl::StrCat(R"({"Network":"10.1.0.0/16","Backend":{"Type":")", setup.backend, R"("}})");
    o.hosts = 2;
    o.agent_args = setup.agent_args;
    std::unique_ptr<Cluster> c = StartConverged(o);
    ASSERT_NE(c, nullptr);
    const Container& server = c->host(1).containers[0];
    const Container& client = c->host(0).containers[0];
    for (int streams : {1, 4}) {
      ASSERT_TRUE(c->Sh(server.ns, absl::StrCat("(timeout 30 iperf3 -s -1 -p 5201 >/dev/null 2>&1 &); sleep 0.5")).ok());
      absl::StatusOr<std::string> out = c->Sh(
          client.ns, absl::StrCat("timeout 30 iperf3 -c ", server.ip, " -p 5201 -t 5 -P ", streams,
                                  " -f m | grep -E 'SUM.*receiver|^\\[ *[0-9]+\\].*receiver' | tail -1"));
      ASSERT_TRUE(out.ok()) << out.status();
      std::cout << "BENCH setup=" << setup.name << " streams=" << streams << ": " << *out << std::flush;
      EXPECT_TRUE(absl::StrContains(*out, "Mbits/sec")) << *out;
    }
  }
}

}  // namespace
}  // namespace weft::testing
