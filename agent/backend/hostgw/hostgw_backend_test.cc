// The host-gw backend's desired state, config checks and reconcile passes,
// against FakeProgrammer. The real-kernel test is hostgw_netns_test.cc.

#include "agent/backend/hostgw/hostgw_backend.h"

#include "absl/strings/str_cat.h"
#include "agent/netlink/fake_programmer.h"
#include "agent/netlink/test_literals.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace weft::agent {
namespace {

using test_literals::Ip;
using test_literals::Ip6;
using test_literals::Net;
using test_literals::Net6;

using netlink::FakeProgrammer;
using netlink::Route;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

Peer HostgwPeer(const char* subnet, const char* ip) { return Peer{Net(subnet), Ip(ip), "host-gw", ""}; }

LocalConfig Eth0(int index) {
  LocalConfig l;
  l.iface_name = "eth0";
  l.iface_index = index;
  l.iface_mtu = 1500;
  l.iface_ip = Ip("192.0.2.1");
  l.iface_network = Net("192.0.2.0/24");
  l.public_ip = Ip("192.0.2.1");
  return l;
}

TEST(HostgwConfigTest, AcceptsFlannelsObjectAndIgnoresUnknownKeys) {
  EXPECT_TRUE(ValidateHostgwConfig("").ok());
  EXPECT_TRUE(ValidateHostgwConfig(R"({"Type":"host-gw"})").ok());
  EXPECT_TRUE(ValidateHostgwConfig(R"({"type":"HOST-GW","Other":1})").ok());
  EXPECT_THAT(ValidateHostgwConfig(R"({"Type":"vxlan"})").message(), HasSubstr("Backend.Type is \"vxlan\""));
  EXPECT_THAT(ValidateHostgwConfig("[1]").message(), HasSubstr("not a JSON object"));
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateHostgwConfig("nope")));
}

class HostgwDesiredStateTest : public ::testing::Test {
 protected:
  HostgwDesiredStateTest() {
    setup_.local = Eth0(2);
    setup_.lease = {Net("198.18.1.0/24"), Net("198.18.0.0/16")};
  }
  HostgwSetup setup_;
};

TEST_F(HostgwDesiredStateTest, EachPeerGetsARouteViaItsPublicIpOnTheExternalInterface) {
  std::vector<HostgwSkip> skipped;
  DesiredState d = HostgwDesiredState(
      setup_, {HostgwPeer("198.18.1.0/24", "192.0.2.1"), HostgwPeer("198.18.2.0/24", "192.0.2.2"),
               HostgwPeer("198.18.3.0/24", "192.0.2.3")},
      &skipped);
  EXPECT_THAT(skipped, IsEmpty()) << "our own lease is not a skip";
  // flannel's `10.1.x.0/24 via <PublicIP> dev eth0`: no onlink, no device of ours.
  EXPECT_THAT(d.routes, ElementsAre(Route{Net("198.18.2.0/24"), Ip("192.0.2.2"), 2, false},
                                    Route{Net("198.18.3.0/24"), Ip("192.0.2.3"), 2, false}));
  EXPECT_THAT(d.neighbours, IsEmpty());
  EXPECT_THAT(d.fdb, IsEmpty());
  EXPECT_THAT(d.nexthops, IsEmpty());
}

TEST_F(HostgwDesiredStateTest, WithNexthopObjectsEachRouteGoesThroughItsOwn) {
  setup_.use_nexthops = true;
  std::vector<HostgwSkip> skipped;
  DesiredState d = HostgwDesiredState(setup_, {HostgwPeer("198.18.2.0/24", "192.0.2.2")}, &skipped);
  const uint32_t id = Ip("198.18.2.0").value();
  EXPECT_THAT(d.nexthops, ElementsAre(netlink::Nexthop{id, Ip("192.0.2.2"), 2, false}));
  Route want{Net("198.18.2.0/24"), Ip("192.0.2.2"), 2, false};
  want.nexthop_id = id;
  EXPECT_THAT(d.routes, ElementsAre(want));
}

TEST_F(HostgwDesiredStateTest, OffLinkPeersAreSkippedAsUnroutableWithTheReason) {
  std::vector<HostgwSkip> skipped;
  DesiredState d = HostgwDesiredState(
      setup_, {HostgwPeer("198.18.2.0/24", "198.51.100.2"), HostgwPeer("198.18.3.0/24", "192.0.2.3")}, &skipped);
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_TRUE(skipped[0].unroutable);
  EXPECT_EQ(skipped[0].subnet, Net("198.18.2.0/24"));
  EXPECT_EQ(skipped[0].public_ip, Ip("198.51.100.2"));
  EXPECT_THAT(skipped[0].reason, HasSubstr("198.51.100.2 is outside eth0's network 192.0.2.0/24"));
  EXPECT_THAT(d.routes, ElementsAre(Route{Net("198.18.3.0/24"), Ip("192.0.2.3"), 2, false}))
      << "the other peers are still routed";
}

TEST_F(HostgwDesiredStateTest, SkipsPeersItCannotUseAndSaysWhy) {
  std::vector<HostgwSkip> skipped;
  Peer vxlan{Net("198.18.2.0/24"), Ip("192.0.2.2"), "vxlan", R"({"VNI":1,"VtepMAC":"0a:00:00:00:00:02"})"};
  Peer overlap = HostgwPeer("198.18.0.0/23", "192.0.2.5");
  Peer same_ip = HostgwPeer("198.18.6.0/24", "192.0.2.1");
  Peer with_data{Net("198.18.7.0/24"), Ip("192.0.2.7"), "HOST-GW", "null"};  // data is ignored, as flannel does
  DesiredState d = HostgwDesiredState(setup_, {vxlan, overlap, same_ip, with_data}, &skipped);
  ASSERT_EQ(skipped.size(), 3u);
  EXPECT_THAT(skipped[0].reason, HasSubstr("backend type is \"vxlan\""));
  EXPECT_THAT(skipped[1].reason, HasSubstr("overlaps"));
  EXPECT_THAT(skipped[2].reason, HasSubstr("this host's own"));
  for (const HostgwSkip& s : skipped) EXPECT_FALSE(s.unroutable) << s.reason;
  EXPECT_THAT(d.routes, ElementsAre(Route{Net("198.18.7.0/24"), Ip("192.0.2.7"), 2, false}));
}

// A dual-stack peer: IPv4 on 192.0.2.0/24, IPv6 on fd77:1::/64 unless `ip6` says otherwise.
Peer DualPeer(int i, const std::string& ip6 = "") {
  Peer p = HostgwPeer(absl::StrCat("198.18.", i, ".0/24").c_str(), absl::StrCat("192.0.2.", i).c_str());
  p.ipv6_subnet = Net6(absl::StrCat("fd42:0:", i, "::/64"));
  p.public_ipv6 = Ip6(ip6.empty() ? absl::StrCat("fd77:1::", i) : ip6);
  return p;
}

void MakeDualStack(LocalConfig& local, OwnLease& lease) {
  local.iface_ipv6 = Ip6("fd77:1::1");
  local.iface_ipv6_network = Net6("fd77:1::/64");
  local.public_ipv6 = Ip6("fd77:1::1");
  lease.ipv6_subnet = Net6("fd42:0:1::/64");
  lease.ipv6_network = Net6("fd42::/48");
}

TEST_F(HostgwDesiredStateTest, DualStackPeersGetAnIPv6RouteViaTheirPublicIPv6) {
  setup_.use_nexthops = true;  // IPv6 routes go without
  setup_.v6 = LocalV6{Net6("fd42:0:1::/64"), Ip6("fd77:1::1"), Net6("fd77:1::/64"), Ip6("fd77:1::1")};
  Peer v4_only = HostgwPeer("198.18.4.0/24", "192.0.2.4");
  Peer no_public = DualPeer(5);
  no_public.public_ipv6.reset();
  std::vector<HostgwSkip> skipped;
  DesiredState d = HostgwDesiredState(
      setup_, {DualPeer(1), DualPeer(2), DualPeer(3, "fd77:9::3"), v4_only, no_public, DualPeer(6, "fd77:1::1")},
      &skipped);
  std::vector<Route> v6;
  for (const Route& r : d.routes) {
    if (r.dst.is_v6()) v6.push_back(r);
  }
  EXPECT_THAT(v6, ElementsAre(Route{Net6("fd42:0:2::/64"), Ip6("fd77:1::2"), 2, false}));
  EXPECT_EQ(d.routes.size() - v6.size(), 5u) << "every peer keeps its IPv4 route";
  EXPECT_EQ(d.nexthops.size(), 5u) << "IPv4 only";
  ASSERT_EQ(skipped.size(), 3u);
  EXPECT_EQ(skipped[0].subnet, Net6("fd42:0:3::/64"));
  EXPECT_EQ(skipped[0].public_ip, Ip6("fd77:9::3"));
  EXPECT_TRUE(skipped[0].unroutable);
  EXPECT_THAT(skipped[0].reason, HasSubstr("PublicIPv6 fd77:9::3 is outside eth0's network fd77:1::/64"));
  EXPECT_THAT(skipped[1].reason, HasSubstr("without a PublicIPv6"));
  EXPECT_THAT(skipped[2].reason, HasSubstr("PublicIPv6 fd77:1::1 is this host's own"));
  EXPECT_FALSE(skipped[1].unroutable || skipped[2].unroutable);
}

TEST_F(HostgwDesiredStateTest, IPv4OnlyHostIgnoresPeersIPv6Sides) {
  std::vector<HostgwSkip> skipped;
  DesiredState d = HostgwDesiredState(setup_, {DualPeer(2), DualPeer(3, "fd77:9::3")}, &skipped);
  EXPECT_THAT(skipped, IsEmpty());
  EXPECT_THAT(d.routes, ElementsAre(Route{Net("198.18.2.0/24"), Ip("192.0.2.2"), 2, false},
                                    Route{Net("198.18.3.0/24"), Ip("192.0.2.3"), 2, false}));
}

class HostgwBackendTest : public ::testing::Test {
 protected:
  void SetUp() override { local_ = Eth0(kernel_.AddLink("eth0", 9000)); local_.iface_mtu = 9000; }
  double Gauge() const {
    const std::string text = registry_.Serialize();
    const std::string key = "\nweft_agent_hostgw_unroutable_peers ";
    const size_t at = text.find(key);
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + key.size()));
  }
  FakeProgrammer kernel_;
  metrics::Registry registry_;
  LocalConfig local_;
  const OwnLease lease_{Net("198.18.1.0/24"), Net("198.18.0.0/16")};
  HostgwBackend backend_{&kernel_, &registry_};
};

TEST_F(HostgwBackendTest, InitPublishesNoDataAndTheExternalMtu) {
  EXPECT_EQ(*backend_.LeaseData(), "");
  EXPECT_EQ(backend_.device_name(), "");
  absl::StatusOr<BackendInfo> info = backend_.Init(local_, lease_, R"({"Type":"host-gw"})");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->type, "host-gw");
  EXPECT_EQ(info->data_json, "");
  EXPECT_EQ(info->mtu, 9000u);
  EXPECT_TRUE(kernel_.links.size() == 1) << "no device of its own";
  EXPECT_EQ(Gauge(), 0) << "exported from the start";
}

TEST_F(HostgwBackendTest, InitRefusesAPublicIpThatIsNotTheInterfaces) {
  local_.public_ip = Ip("203.0.113.9");
  absl::StatusOr<BackendInfo> info = backend_.Init(local_, lease_, "{}");
  EXPECT_TRUE(absl::IsInvalidArgument(info.status())) << info.status();
  EXPECT_THAT(info.status().message(), HasSubstr("203.0.113.9 differs from eth0's address 192.0.2.1"));
}

TEST_F(HostgwBackendTest, ReconcileRoutesRepairsDriftRemovesDepartedAndCountsUnroutable) {
  ASSERT_TRUE(backend_.Init(local_, lease_, "{}").ok());
  std::vector<Peer> peers = {HostgwPeer("198.18.2.0/24", "192.0.2.2"), HostgwPeer("198.18.3.0/24", "192.0.2.3"),
                             HostgwPeer("198.18.4.0/24", "198.51.100.4")};
  absl::StatusOr<ReconcileStats> s = backend_.Reconcile(peers);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->skipped_peers, 1);
  EXPECT_EQ(backend_.unroutable_peers(), 1);
  EXPECT_EQ(Gauge(), 1);
  ASSERT_EQ(kernel_.routes.size(), 2u);
  EXPECT_EQ(kernel_.routes.at(Net("198.18.2.0/24")).gateway, Ip("192.0.2.2"));
  EXPECT_EQ(kernel_.routes.count(Net("198.18.4.0/24")), 0u);

  // Drift: a route deleted by hand comes back; an unchanged kernel gets nothing.
  kernel_.routes.erase(Net("198.18.3.0/24"));
  s = backend_.Reconcile(peers);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->added, 1);
  EXPECT_EQ(kernel_.routes.count(Net("198.18.3.0/24")), 1u);
  s = backend_.Reconcile(peers);
  EXPECT_EQ(s->changes(), 0);

  // A peer leaves, the off-link one moves onto the segment.
  s = backend_.Reconcile({HostgwPeer("198.18.2.0/24", "192.0.2.2"), HostgwPeer("198.18.4.0/24", "192.0.2.4")});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(kernel_.routes.count(Net("198.18.3.0/24")), 0u);
  EXPECT_EQ(kernel_.routes.at(Net("198.18.4.0/24")).gateway, Ip("192.0.2.4"));
  EXPECT_EQ(Gauge(), 0);

  ASSERT_TRUE(backend_.Teardown().ok());
  EXPECT_THAT(kernel_.routes, IsEmpty());
  EXPECT_THAT(kernel_.nexthops, IsEmpty());
}

TEST_F(HostgwBackendTest, LeavesOtherRoutesAlone) {
  Route foreign{Net("10.9.0.0/16"), Ip("192.0.2.254"), local_.iface_index, false};
  foreign.protocol = 4;  // static, someone else's
  kernel_.routes[foreign.dst] = foreign;
  ASSERT_TRUE(backend_.Init(local_, lease_, "{}").ok());
  ASSERT_TRUE(backend_.Reconcile({}).ok());
  ASSERT_TRUE(backend_.Teardown().ok());
  EXPECT_EQ(kernel_.routes.count(foreign.dst), 1u);
}

TEST_F(HostgwBackendTest, DualStackRoutesBothFamiliesAndRemovesAPeersIPv6RouteWithIt) {
  OwnLease lease = lease_;
  MakeDualStack(local_, lease);
  EXPECT_EQ(*backend_.LeaseV6Data(), "") << "flannel's host-gw publishes no BackendV6Data";
  absl::StatusOr<BackendInfo> info = backend_.Init(local_, lease, "{}");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->v6_data_json, "");
  EXPECT_EQ(info->mtu, 9000u);

  absl::StatusOr<ReconcileStats> s = backend_.Reconcile({DualPeer(2), DualPeer(3)});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->errors, 0);
  ASSERT_EQ(kernel_.routes.size(), 4u);
  EXPECT_EQ(kernel_.routes.at(Net6("fd42:0:2::/64")),
            (Route{Net6("fd42:0:2::/64"), Ip6("fd77:1::2"), local_.iface_index, false}));

  kernel_.routes.erase(Net6("fd42:0:3::/64"));  // drift
  s = backend_.Reconcile({DualPeer(2), DualPeer(3)});
  EXPECT_EQ(s->added, 1);
  EXPECT_EQ(kernel_.routes.count(Net6("fd42:0:3::/64")), 1u);

  s = backend_.Reconcile({DualPeer(2)});  // peer 3 left
  EXPECT_EQ(s->removed, 3);  // both routes, and the IPv4 one's nexthop object
  EXPECT_EQ(kernel_.routes.count(Net6("fd42:0:3::/64")), 0u);
  EXPECT_EQ(kernel_.routes.count(Net("198.18.3.0/24")), 0u);

  ASSERT_TRUE(backend_.Teardown().ok());
  EXPECT_THAT(kernel_.routes, IsEmpty());
}

TEST_F(HostgwBackendTest, IPv6OnlyNetworkRoutesIPv6AloneOnAnIPv6OnlyHost) {
  OwnLease lease = lease_;
  MakeDualStack(local_, lease);
  lease.ipv4 = false;
  lease.subnet = IPv4Net();
  lease.network = IPv4Net();
  local_.iface_ip = IPv4Addr();
  local_.iface_network = IPv4Net();
  local_.public_ip = IPv4Addr();
  absl::StatusOr<BackendInfo> info = backend_.Init(local_, lease, "{}");
  ASSERT_TRUE(info.ok()) << info.status();

  auto v6only = [](int i) {
    Peer p = DualPeer(i);
    p.ipv4 = false;
    p.subnet = IPv4Net();
    p.public_ip = IPv4Addr();
    return p;
  };
  Peer other = v6only(4);
  other.backend_type = "vxlan";
  absl::StatusOr<ReconcileStats> s = backend_.Reconcile({v6only(1), v6only(2), v6only(3), other});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->skipped_peers, 1) << "the vxlan one; peer 1 is this host";
  ASSERT_EQ(kernel_.routes.size(), 2u);
  EXPECT_EQ(kernel_.routes.at(Net6("fd42:0:2::/64")),
            (Route{Net6("fd42:0:2::/64"), Ip6("fd77:1::2"), local_.iface_index, false}));
  EXPECT_EQ(kernel_.routes.count(Net6("fd42:0:3::/64")), 1u);
  EXPECT_THAT(kernel_.nexthops, IsEmpty());
}

TEST_F(HostgwBackendTest, DualStackInitNeedsTheInterfacesOwnIPv6Address) {
  OwnLease lease = lease_;
  MakeDualStack(local_, lease);
  LocalConfig no_v6 = local_;
  no_v6.iface_ipv6.reset();
  absl::StatusOr<BackendInfo> info = backend_.Init(no_v6, lease, "{}");
  EXPECT_TRUE(absl::IsInvalidArgument(info.status())) << info.status();
  EXPECT_THAT(info.status().message(), HasSubstr("eth0 has no global IPv6 address"));

  LocalConfig nat = local_;
  nat.public_ipv6 = Ip6("fd77:2::9");
  info = backend_.Init(nat, lease, "{}");
  EXPECT_TRUE(absl::IsInvalidArgument(info.status())) << info.status();
  EXPECT_THAT(info.status().message(), HasSubstr("public IPv6 fd77:2::9 differs from eth0's address fd77:1::1"));
}

TEST_F(HostgwBackendTest, ReconcileBeforeInitIsAnError) {
  EXPECT_TRUE(absl::IsFailedPrecondition(backend_.Reconcile({}).status()));
}

}  // namespace
}  // namespace weft::agent
