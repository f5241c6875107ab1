// The UDP backend's pure parts: its config, the peer routes it derives from the
// lease set, and its metrics. The device and the data path are tested on the
// real kernel in udp_netns_test.cc.

#include "agent/backend/udp/udp_backend.h"

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace weft::agent {
namespace {

IPv4Net Net(const char* s) { return *IPv4Net::Parse(s); }
IPv4Addr Ip(const char* s) { return *IPv4Addr::Parse(s); }

TEST(ParseUdpConfigTest, DefaultsAndPort) {
  for (const char* json : {"", "{}", R"({"Type":"udp"})", R"({"Type":"UDP","Port":0})", R"({"Port":null})"}) {
    absl::StatusOr<UdpConfig> c = ParseUdpConfig(json);
    ASSERT_TRUE(c.ok()) << json << ": " << c.status();
    EXPECT_EQ(c->port, 8285) << json;
  }
  absl::StatusOr<UdpConfig> c = ParseUdpConfig(R"({"Type":"udp","port":9000,"Unknown":1})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->port, 9000);
  // The exact key wins over one that differs in case, as in Go.
  c = ParseUdpConfig(R"({"port":1,"Port":2})");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->port, 2);
}

TEST(ParseUdpConfigTest, RefusesBadInput) {
  for (const char* json : {"[", "[]", R"({"Type":"vxlan"})", R"({"Type":7})", R"({"Port":-1})",
                           R"({"Port":65536})", R"({"Port":"8285"})", R"({"Port":1.5})"}) {
    absl::StatusOr<UdpConfig> c = ParseUdpConfig(json);
    EXPECT_TRUE(absl::IsInvalidArgument(c.status())) << json << ": " << c.status();
  }
}

TEST(UdpPeerRoutesTest, KeepsUdpPeersAndSaysWhyOthersAreSkipped) {
  const OwnLease own{Net("10.1.5.0/24"), Net("10.1.0.0/16")};
  const std::vector<Peer> peers = {
      {Net("10.1.5.0/24"), Ip("192.0.2.11"), "udp", ""},         // ourselves: silently ignored
      {Net("10.1.9.0/24"), Ip("192.0.2.13"), "udp", ""},
      {Net("10.1.7.0/24"), Ip("192.0.2.12"), "UDP", "null"},
      {Net("10.1.8.0/24"), Ip("192.0.2.14"), "vxlan", "{}"},     // another backend
      {Net("10.1.5.128/25"), Ip("192.0.2.15"), "udp", ""},       // overlaps ours
      {Net("10.1.10.0/24"), Ip("192.0.2.11"), "udp", ""},        // our own PublicIP
      {Net("10.1.11.0/24"), IPv4Addr(), "udp", ""},              // no PublicIP
  };
  std::vector<UdpSkippedPeer> skipped;
  std::vector<udp::PeerRoute> routes = UdpPeerRoutes(own, Ip("192.0.2.11"), peers, &skipped);
  ASSERT_EQ(routes.size(), 2u);
  EXPECT_EQ(routes[0].subnet, Net("10.1.7.0/24"));  // sorted
  EXPECT_EQ(routes[0].public_ip, Ip("192.0.2.12"));
  EXPECT_EQ(routes[1].subnet, Net("10.1.9.0/24"));
  ASSERT_EQ(skipped.size(), 4u);
  EXPECT_TRUE(absl::StrContains(skipped[0].reason, "vxlan"));
  EXPECT_TRUE(absl::StrContains(skipped[1].reason, "overlaps"));
  EXPECT_TRUE(absl::StrContains(skipped[2].reason, "own"));
  EXPECT_TRUE(absl::StrContains(skipped[3].reason, "no PublicIP"));
}

TEST(UdpMetricsTest, SumsThreadCountersByLabel) {
  metrics::Registry r;
  auto stats = std::make_shared<udp::DatapathStats>(2);
  RegisterUdpMetrics(r, stats);
  udp::ThreadCounters::Add(stats->tx(0).packets, 3);
  udp::ThreadCounters::Add(stats->tx(1).packets, 4);
  udp::ThreadCounters::Add(stats->rx(1).bytes, 1500);
  stats->tx(0).Drop(udp::DropReason::kNoPeer, 2);
  stats->rx(1).Drop(udp::DropReason::kMalformed);
  udp::ThreadCounters::Add(stats->rx(0).calls[udp::ThreadCounters::kRecvmmsg], 5);
  stats->udp_gso.store(true);
  stats->peers.store(7);
  const std::string page = r.Serialize();
  for (const char* line : {
           "weft_agent_udp_packets_total{direction=\"tx\"} 7", "weft_agent_udp_packets_total{direction=\"rx\"} 0",
           "weft_agent_udp_bytes_total{direction=\"rx\"} 1500", "weft_agent_udp_drops_total{reason=\"no_peer\"} 2",
           "weft_agent_udp_drops_total{reason=\"malformed\"} 1", "weft_agent_udp_drops_total{reason=\"too_big\"} 0",
           "weft_agent_udp_drops_total{reason=\"send_error\"} 0", "weft_agent_udp_drops_total{reason=\"not_ipv4\"} 0",
           "weft_agent_udp_drops_total{reason=\"tun_write_error\"} 0", "weft_agent_udp_syscalls_total{call=\"recvmmsg\"} 5",
           "weft_agent_udp_peers 7", "weft_agent_udp_workers 2", "weft_agent_udp_offload_enabled{offload=\"udp_gso\"} 1",
           "weft_agent_udp_offload_enabled{offload=\"udp_gro\"} 0"}) {
    EXPECT_TRUE(absl::StrContains(page, line)) << line << "\nin\n" << page;
  }
}

TEST(UdpBackendTest, ReconcileBeforeInitIsRefused) {
  UdpBackend b(nullptr, nullptr, UdpOptions{});
  EXPECT_EQ(b.device_name(), "flannel0");
  EXPECT_EQ(*b.LeaseData(), "");  // the lease's BackendData is null, as flannel's
  EXPECT_TRUE(absl::IsFailedPrecondition(b.Reconcile({}).status()));
  EXPECT_TRUE(b.Teardown().ok());
  EXPECT_GE(b.stats().workers(), 1);
  EXPECT_LE(b.stats().workers(), 4);
}

}  // namespace
}  // namespace weft::agent
