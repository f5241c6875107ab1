// The VXLAN backend's config parsing, desired state and device handling, against
// FakeProgrammer. The real-kernel test is vxlan_netns_test.cc.

#include "agent/backend/vxlan/vxlan_backend.h"

#include <malloc.h>

#include <map>

#include "absl/strings/str_cat.h"
#include "agent/netlink/fake_programmer.h"
#include "agent/netlink/test_literals.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace weft::agent {
namespace {

using test_literals::Ip;
using test_literals::Ip6;
using test_literals::Mac;
using test_literals::Net;
using test_literals::Net6;

using netlink::FakeProgrammer;
using netlink::FdbEntry;
using netlink::Neighbour;
using netlink::Route;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

TEST(VxlanConfigTest, DefaultsAreFlannels) {
  absl::StatusOr<VxlanConfig> c = ParseVxlanConfig(R"({"Type":"vxlan"})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->vni, 1u);
  EXPECT_EQ(c->port, 8472);
  EXPECT_FALSE(c->gbp);
  EXPECT_FALSE(c->learning);
  EXPECT_FALSE(c->direct_routing);
  EXPECT_EQ(c->mtu, 0u);
  EXPECT_TRUE(ParseVxlanConfig("").ok());
  EXPECT_EQ(ParseVxlanConfig(R"({"Type":"vxlan","Port":0})")->port, 8472) << "0: the default";
}

TEST(VxlanConfigTest, ReadsEveryField) {
  absl::StatusOr<VxlanConfig> c = ParseVxlanConfig(
      R"({"Type":"VXLAN","VNI":42,"Port":4789,"GBP":true,"Learning":true,"DirectRouting":true,"MTU":1400,"Other":1})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->vni, 42u);
  EXPECT_EQ(c->port, 4789);
  EXPECT_TRUE(c->gbp);
  EXPECT_TRUE(c->learning);
  EXPECT_TRUE(c->direct_routing);
  EXPECT_EQ(c->mtu, 1400u);
}

TEST(VxlanConfigTest, KeysMatchWithoutCaseLikeFlanneld) {
  absl::StatusOr<VxlanConfig> c = ParseVxlanConfig(R"({"type":"vxlan","vni":7,"directrouting":true})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->vni, 7u);
  EXPECT_TRUE(c->direct_routing);
}

TEST(VxlanConfigTest, RefusesBadValuesSayingWhich) {
  struct Case {
    const char* json;
    const char* says;
  } cases[] = {
      {"not json", "not valid JSON"},
      {"[1]", "not a JSON object"},
      {R"({"Type":"udp"})", "Backend.Type is \"udp\""},
      {R"({"VNI":16777216})", "Backend.VNI: 16777216 is out of range"},
      {R"({"VNI":"1"})", "Backend.VNI: \"1\" is not an integer"},
      {R"({"VNI":1.5})", "Backend.VNI: 1.5 is not an integer"},
      {R"({"Port":-1})", "Backend.Port: -1 is not an integer"},
      {R"({"Port":65536})", "Backend.Port: 65536 is out of range"},
      {R"({"GBP":"yes"})", "Backend.GBP: \"yes\" is not true or false"},
      {R"({"MTU":60})", "Backend.MTU: 60 is below 68"},
      {R"({"TxChecksumOffload":"maybe"})", "Backend.TxChecksumOffload: \"maybe\" is not \"auto\", \"on\" or \"off\""},
      {R"({"TxChecksumOffload":1})", "Backend.TxChecksumOffload: 1 is not"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<VxlanConfig> r = ParseVxlanConfig(c.json);
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << c.json << ": " << r.status();
    EXPECT_THAT(Msg(r.status()), HasSubstr(c.says)) << c.json;
  }
}

TEST(VxlanLeaseDataTest, RoundTripsFlannelsFormat) {
  const std::string json = VxlanLeaseDataJson(1, Mac("c6:d2:32:6f:8f:44"));
  EXPECT_EQ(json, R"({"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"})");
  absl::StatusOr<VxlanLeaseData> d = ParseVxlanLeaseData(json);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->vni, 1u);
  EXPECT_EQ(d->vtep_mac, Mac("c6:d2:32:6f:8f:44"));
  EXPECT_FALSE(ParseVxlanLeaseData(R"({"VtepMAC":"c6:d2:32:6f:8f:44"})")->vni.has_value());
}

TEST(VxlanLeaseDataTest, RefusesMissingOrBadMac) {
  EXPECT_THAT(Msg(ParseVxlanLeaseData(R"({"VNI":1})").status()), HasSubstr("no VtepMAC"));
  EXPECT_THAT(Msg(ParseVxlanLeaseData(R"({"VNI":1,"VtepMAC":"zz"})").status()), HasSubstr("BackendData.VtepMAC"));
  EXPECT_THAT(Msg(ParseVxlanLeaseData(R"({"VtepMAC":"01:00:5e:00:00:01"})").status()),
              HasSubstr("not a unicast MAC"));
  EXPECT_FALSE(ParseVxlanLeaseData("").ok());
}

// A corrupt peer lease (another etcd client wrote it) is an error for that
// peer, never a crash: nested 150,000 deep, huge, or fields of other types.
TEST(VxlanLeaseDataTest, HostilePeerDataIsAnErrorNotACrash) {
  std::string deep;
  for (int i = 0; i < 150000; ++i) deep += "{\"a\":";
  EXPECT_THAT(Msg(ParseVxlanLeaseData(deep).status()), HasSubstr("nested deeper"));
  EXPECT_THAT(Msg(ParseVxlanLeaseData("{\"VtepMAC\":\"" + std::string(2 << 20, 'x') + "\"}").status()),
              HasSubstr("over the limit"));
  EXPECT_THAT(Msg(ParseVxlanLeaseData(R"({"VNI":"one","VtepMAC":"c6:d2:32:6f:8f:44"})").status()),
              HasSubstr("BackendData.VNI"));
  EXPECT_THAT(Msg(ParseVxlanLeaseData(R"({"VNI":1.5,"VtepMAC":"c6:d2:32:6f:8f:44"})").status()),
              HasSubstr("BackendData.VNI"));
  EXPECT_THAT(Msg(ParseVxlanLeaseData(R"({"VNI":1,"VtepMAC":["c6"]})").status()), HasSubstr("no VtepMAC"));
  const std::string long_type = "{\"Type\":\"" + std::string(10000, 'v') + "\"}";
  EXPECT_LT(Msg(ParseVxlanConfig(long_type).status()).size(), 200u);
}

class VxlanDesiredStateTest : public ::testing::Test {
 protected:
  VxlanDesiredStateTest() {
    setup_.local.iface_index = 2;
    setup_.local.iface_ip = Ip("192.0.2.1");
    setup_.local.public_ip = Ip("192.0.2.1");
    setup_.local.iface_network = Net("192.0.2.0/24");
    setup_.lease = {Net("198.18.1.0/24"), Net("198.18.0.0/16")};
    setup_.device_index = 7;
  }
  static Peer VxlanPeer(const char* subnet, const char* ip, const char* mac) {
    return Peer{Net(subnet), Ip(ip), "vxlan", absl::StrCat(R"({"VNI":1,"VtepMAC":")", mac, R"("})")};
  }
  VxlanSetup setup_;
};

TEST_F(VxlanDesiredStateTest, EachPeerGetsNeighbourFdbAndOnlinkRoute) {
  std::vector<SkippedPeer> skipped;
  DesiredState d = VxlanDesiredState(
      setup_,
      {VxlanPeer("198.18.1.0/24", "192.0.2.1", "0a:00:00:00:00:01"),  // ourselves
       VxlanPeer("198.18.2.0/24", "203.0.113.2", "0a:00:00:00:00:02")},
      &skipped);
  EXPECT_THAT(skipped, IsEmpty()) << "our own lease is not a skip";
  EXPECT_THAT(d.neighbours, ElementsAre(Neighbour{7, Ip("198.18.2.0"), Mac("0a:00:00:00:00:02")}));
  EXPECT_THAT(d.fdb, ElementsAre(FdbEntry{7, Mac("0a:00:00:00:00:02"), Ip("203.0.113.2")}));
  EXPECT_THAT(d.routes, ElementsAre(Route{Net("198.18.2.0/24"), Ip("198.18.2.0"), 7, true}));
}

TEST_F(VxlanDesiredStateTest, WithNexthopObjectsEachRouteGoesThroughItsOwn) {
  setup_.use_nexthops = true;
  std::vector<SkippedPeer> skipped;
  DesiredState d = VxlanDesiredState(setup_, {VxlanPeer("198.18.2.0/24", "203.0.113.2", "0a:00:00:00:00:02")},
                                     &skipped);
  const uint32_t id = Ip("198.18.2.0").value();
  EXPECT_THAT(d.nexthops, ElementsAre(netlink::Nexthop{id, Ip("198.18.2.0"), 7, true}));
  Route want{Net("198.18.2.0/24"), Ip("198.18.2.0"), 7, true};
  want.nexthop_id = id;
  EXPECT_THAT(d.routes, ElementsAre(want));
}

TEST_F(VxlanDesiredStateTest, DirectRoutingOnlyForPeersOnTheSameNetwork) {
  setup_.config.direct_routing = true;
  std::vector<SkippedPeer> skipped;
  DesiredState d = VxlanDesiredState(
      setup_,
      {VxlanPeer("198.18.2.0/24", "192.0.2.2", "0a:00:00:00:00:02"),     // same L2
       VxlanPeer("198.18.3.0/24", "203.0.113.3", "0a:00:00:00:00:03")},  // routed
      &skipped);
  EXPECT_THAT(d.routes, ElementsAre(Route{Net("198.18.2.0/24"), Ip("192.0.2.2"), 2, false},
                                    Route{Net("198.18.3.0/24"), Ip("198.18.3.0"), 7, true}));
  EXPECT_THAT(d.neighbours, ElementsAre(Neighbour{7, Ip("198.18.3.0"), Mac("0a:00:00:00:00:03")}));
  EXPECT_EQ(d.fdb.size(), 1u);
}

TEST_F(VxlanDesiredStateTest, SkipsPeersItCannotUseAndSaysWhy) {
  std::vector<SkippedPeer> skipped;
  Peer udp{Net("198.18.2.0/24"), Ip("192.0.2.2"), "udp", "{}"};
  Peer bad_mac = VxlanPeer("198.18.3.0/24", "192.0.2.3", "nope");
  Peer other_vni{Net("198.18.4.0/24"), Ip("192.0.2.4"), "vxlan", R"({"VNI":2,"VtepMAC":"0a:00:00:00:00:04"})"};
  Peer overlap = VxlanPeer("198.18.0.0/23", "192.0.2.5", "0a:00:00:00:00:05");
  Peer same_ip = VxlanPeer("198.18.6.0/24", "192.0.2.1", "0a:00:00:00:00:06");
  Peer good = VxlanPeer("198.18.7.0/24", "192.0.2.7", "0a:00:00:00:00:07");
  DesiredState d = VxlanDesiredState(setup_, {udp, bad_mac, other_vni, overlap, same_ip, good}, &skipped);
  ASSERT_EQ(skipped.size(), 5u);
  EXPECT_THAT(skipped[0].reason, HasSubstr("backend type is \"udp\""));
  EXPECT_THAT(skipped[1].reason, HasSubstr("VtepMAC"));
  EXPECT_THAT(skipped[2].reason, HasSubstr("VNI 2 differs"));
  EXPECT_THAT(skipped[3].reason, HasSubstr("overlaps"));
  EXPECT_THAT(skipped[4].reason, HasSubstr("this host's own"));
  EXPECT_EQ(skipped[1].subnet, Net("198.18.3.0/24"));
  EXPECT_EQ(d.routes.size(), 1u) << "the good peer is still programmed";
}

// A dual-stack vxlan peer: host i at 192.0.2.i / `public6`, subnets 198.18.i.0/24
// and fd42:0:i::/64, VTEP MACs 0a:..:0i and 0e:..:0i.
Peer DualPeer(int i, const std::string& public6 = "", const std::string& v6_data = "") {
  Peer p{Net(absl::StrCat("198.18.", i, ".0/24")), Ip(absl::StrCat("192.0.2.", i)), "vxlan",
         absl::StrCat(R"({"VNI":1,"VtepMAC":"0a:00:00:00:00:0)", i, R"("})")};
  p.ipv6_subnet = Net6(absl::StrCat("fd42:0:", i, "::/64"));
  p.public_ipv6 = Ip6(public6.empty() ? absl::StrCat("fd77:1::", i) : public6);
  p.backend_v6_data_json =
      v6_data.empty() ? absl::StrCat(R"({"VNI":1,"VtepMAC":"0e:00:00:00:00:0)", i, R"("})") : v6_data;
  return p;
}

class VxlanDualStackDesiredStateTest : public VxlanDesiredStateTest {
 protected:
  VxlanDualStackDesiredStateTest() {
    setup_.v6 = LocalV6{Net6("fd42:0:1::/64"), Ip6("fd77:1::1"), Net6("fd77:1::/64"), Ip6("fd77:1::1")};
    setup_.v6_device_index = 8;
  }
  static std::vector<Route> V6Routes(const DesiredState& d) {
    std::vector<Route> out;
    for (const Route& r : d.routes) {
      if (r.dst.is_v6()) out.push_back(r);
    }
    return out;
  }
};

TEST_F(VxlanDualStackDesiredStateTest, EachIPv6PeerGetsNeighbourFdbAndOnlinkRouteOnTheV6Device) {
  setup_.use_nexthops = true;
  std::vector<SkippedPeer> skipped;
  DesiredState d = VxlanDesiredState(setup_, {DualPeer(1), DualPeer(2, "fd77:9::2")}, &skipped);
  EXPECT_THAT(skipped, IsEmpty());
  EXPECT_THAT(d.neighbours, ElementsAre(Neighbour{7, Ip("198.18.2.0"), Mac("0a:00:00:00:00:02")},
                                        Neighbour{8, Ip6("fd42:0:2::"), Mac("0e:00:00:00:00:02")}));
  EXPECT_THAT(d.fdb, ElementsAre(FdbEntry{7, Mac("0a:00:00:00:00:02"), Ip("192.0.2.2")},
                                 FdbEntry{8, Mac("0e:00:00:00:00:02"), Ip6("fd77:9::2")}));
  EXPECT_THAT(V6Routes(d), ElementsAre(Route{Net6("fd42:0:2::/64"), Ip6("fd42:0:2::"), 8, true}))
      << "no nexthop object for IPv6";
  EXPECT_EQ(d.nexthops.size(), 1u);
}

TEST_F(VxlanDualStackDesiredStateTest, DirectRoutingOverIPv6ForPeersOnTheIPv6Link) {
  setup_.config.direct_routing = true;
  std::vector<SkippedPeer> skipped;
  DesiredState d = VxlanDesiredState(setup_, {DualPeer(2), DualPeer(3, "fd77:9::3")}, &skipped);
  EXPECT_THAT(V6Routes(d), ElementsAre(Route{Net6("fd42:0:2::/64"), Ip6("fd77:1::2"), 2, false},
                                       Route{Net6("fd42:0:3::/64"), Ip6("fd42:0:3::"), 8, true}));
  EXPECT_THAT(d.neighbours, ElementsAre(Neighbour{8, Ip6("fd42:0:3::"), Mac("0e:00:00:00:00:03")}))
      << "both peers are on the IPv4 link: direct there";
}

TEST_F(VxlanDualStackDesiredStateTest, SkipsUnusableIPv6SidesAndKeepsTheirIPv4) {
  Peer no_public = DualPeer(3);
  no_public.public_ipv6.reset();
  Peer v4_only = DualPeer(6);
  v4_only.ipv6_subnet.reset();
  std::vector<SkippedPeer> skipped;
  DesiredState d = VxlanDesiredState(
      setup_,
      {DualPeer(2, "", R"({"VNI":1})"), no_public, DualPeer(4, "", R"({"VNI":9,"VtepMAC":"0e:00:00:00:00:04"})"),
       DualPeer(5, "fd77:1::1"), v4_only},
      &skipped);
  ASSERT_EQ(skipped.size(), 4u);
  EXPECT_EQ(skipped[0].subnet, Net6("fd42:0:2::/64"));
  EXPECT_THAT(skipped[0].reason, HasSubstr("BackendV6Data has no VtepMAC"));
  EXPECT_THAT(skipped[1].reason, HasSubstr("without a PublicIPv6"));
  EXPECT_THAT(skipped[2].reason, HasSubstr("VNI 9 differs"));
  EXPECT_THAT(skipped[3].reason, HasSubstr("PublicIPv6 fd77:1::1 is this host's own"));
  EXPECT_EQ(d.routes.size(), 5u) << "every peer keeps its IPv4 route";
  EXPECT_THAT(V6Routes(d), IsEmpty());
}

// A peer of an IPv6-only network: DualPeer without its IPv4 side.
Peer V6OnlyPeer(int i) {
  Peer p = DualPeer(i);
  p.ipv4 = false;
  p.subnet = IPv4Net();
  p.public_ip = IPv4Addr();
  p.backend_data_json.clear();
  return p;
}

TEST_F(VxlanDualStackDesiredStateTest, IPv6OnlyNetworkProgramsOnlyTheV6DeviceAndKnowsItsOwnLease) {
  setup_.lease = OwnLease{};
  setup_.lease.ipv4 = false;
  setup_.lease.ipv6_subnet = Net6("fd42:0:1::/64");
  setup_.device_index = 0;
  std::vector<SkippedPeer> skipped;
  Peer udp = V6OnlyPeer(4);
  udp.backend_type = "udp";
  DesiredState d = VxlanDesiredState(setup_, {V6OnlyPeer(1), V6OnlyPeer(2), udp}, &skipped);
  // Peer 1 is this host (its IPv6 subnet is ours): neither programmed nor skipped.
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_EQ(skipped[0].subnet, netlink::IPPrefix(Net6("fd42:0:4::/64")));
  EXPECT_THAT(skipped[0].reason, HasSubstr("backend type is \"udp\""));
  EXPECT_THAT(d.neighbours, ElementsAre(Neighbour{8, Ip6("fd42:0:2::"), Mac("0e:00:00:00:00:02")}));
  EXPECT_THAT(d.fdb, ElementsAre(FdbEntry{8, Mac("0e:00:00:00:00:02"), Ip6("fd77:1::2")}));
  EXPECT_THAT(d.routes, ElementsAre(Route{Net6("fd42:0:2::/64"), Ip6("fd42:0:2::"), 8, true}));
  EXPECT_THAT(d.nexthops, IsEmpty());
}

TEST_F(VxlanDesiredStateTest, IPv4OnlyHostIgnoresPeersIPv6Sides) {
  std::vector<SkippedPeer> skipped;
  DesiredState d = VxlanDesiredState(setup_, {DualPeer(2)}, &skipped);
  EXPECT_THAT(skipped, IsEmpty());
  EXPECT_THAT(d.routes, ElementsAre(Route{Net("198.18.2.0/24"), Ip("198.18.2.0"), 7, true}));
  EXPECT_EQ(d.neighbours.size(), 1u);
  EXPECT_EQ(d.fdb.size(), 1u);
}

TEST(VxlanV6MacTest, StableLocalUnicastAndNotTheIPv4One) {
  const MacAddr v4 = Mac("0a:58:00:00:00:01");
  EXPECT_EQ(V6VtepMac(v4), Mac("0e:58:00:00:00:01"));
  EXPECT_EQ(V6VtepMac(v4), V6VtepMac(v4));
  EXPECT_NE(V6VtepMac(v4), V6VtepMac(Mac("0a:58:00:00:00:02")));
  EXPECT_FALSE(V6VtepMac(v4).IsMulticast());
  EXPECT_NE(V6VtepMac(v4).bytes()[0] & 0x02, 0) << "locally administered";
}

class VxlanBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    local_.iface_name = "eth0";
    local_.iface_index = kernel_.AddLink("eth0", 1500);
    local_.iface_mtu = 1500;
    local_.iface_ip = Ip("192.0.2.1");
    local_.iface_network = Net("192.0.2.0/24");
    local_.public_ip = Ip("192.0.2.1");
  }
  FakeProgrammer kernel_;
  LocalConfig local_;
  const OwnLease lease_{Net("198.18.1.0/24"), Net("198.18.0.0/16")};
  VxlanBackend backend_{&kernel_, Mac("0a:58:00:00:00:01")};
};

TEST_F(VxlanBackendTest, InitSetsUpTheDeviceAndReturnsLeaseData) {
  absl::StatusOr<BackendInfo> info = backend_.Init(local_, lease_, R"({"Type":"vxlan"})");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->type, "vxlan");
  EXPECT_EQ(info->data_json, R"({"VNI":1,"VtepMAC":"0a:58:00:00:00:01"})");
  EXPECT_EQ(info->mtu, 1450u);

  absl::StatusOr<netlink::Link> dev = kernel_.GetLink("flannel.1");
  ASSERT_TRUE(dev.ok());
  EXPECT_TRUE(dev->up);
  EXPECT_EQ(dev->mtu, 1450u);
  EXPECT_EQ(dev->mac, Mac("0a:58:00:00:00:01"));
  ASSERT_TRUE(dev->vxlan.has_value());
  EXPECT_EQ(dev->vxlan->vni, 1u);
  EXPECT_EQ(dev->vxlan->port, 8472);
  EXPECT_EQ(dev->vxlan->local, Ip("192.0.2.1"));
  EXPECT_EQ(dev->vxlan->underlay_index, local_.iface_index);
  EXPECT_FALSE(dev->vxlan->learning);
  EXPECT_THAT(kernel_.addresses, ElementsAre(netlink::InterfaceAddress{dev->index, Ip("198.18.1.0"), 32}));
}

TEST_F(VxlanBackendTest, ConfiguredMtuPortAndVni) {
  absl::StatusOr<BackendInfo> info =
      backend_.Init(local_, lease_, R"({"Type":"vxlan","VNI":4096,"Port":4789,"MTU":1300})");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->mtu, 1300u);
  EXPECT_EQ(backend_.device_name(), "flannel.4096");
  EXPECT_EQ(kernel_.GetLink("flannel.4096")->vxlan->port, 4789);
}

TEST_F(VxlanBackendTest, BadConfigIsRefusedBeforeTouchingTheKernel) {
  EXPECT_TRUE(absl::IsInvalidArgument(backend_.Init(local_, lease_, R"({"VNI":-3})").status()));
  EXPECT_EQ(kernel_.links.size(), 1u);
  EXPECT_TRUE(absl::IsFailedPrecondition(backend_.Reconcile({}).status()));
}

TEST_F(VxlanBackendTest, ReconcileProgramsPeersAndRepairsTheDevice) {
  ASSERT_TRUE(backend_.Init(local_, lease_, "{}").ok());
  std::vector<Peer> peers = {
      {Net("198.18.2.0/24"), Ip("192.0.2.2"), "vxlan", R"({"VNI":1,"VtepMAC":"0a:58:00:00:00:02"})"},
      {Net("198.18.3.0/24"), Ip("192.0.2.3"), "host-gw", "{}"}};
  absl::StatusOr<ReconcileStats> s = backend_.Reconcile(peers);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->added, 4) << "neighbour, FDB entry, nexthop, route";
  EXPECT_EQ(s->skipped_peers, 1);

  // Someone deletes flannel.1: the next pass recreates it and everything on it.
  ASSERT_TRUE(kernel_.DeleteLink(kernel_.GetLink("flannel.1")->index).ok());
  s = backend_.Reconcile(peers);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->added, 4);
  EXPECT_TRUE(kernel_.GetLink("flannel.1")->up);
  EXPECT_EQ(kernel_.addresses.size(), 1u);

  s = backend_.Reconcile(peers);
  EXPECT_EQ(s->changes(), 0);
}

// Bytes the heap has handed out and not had back.
size_t HeapInUse() {
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

// Notes how much heap is in use when the reconciler starts reading the kernel.
class HeapAtDump : public FakeProgrammer {
 public:
  absl::Status VisitNeighbours(int index, const Restart& restart, const Visit<Neighbour>& visit) override {
    if (!in_use_at_dump) in_use_at_dump = HeapInUse();
    return FakeProgrammer::VisitNeighbours(index, restart, visit);
  }
  std::optional<size_t> in_use_at_dump;
};

TEST(VxlanBackendMemoryTest, PeerListIsFreedBeforeTheKernelIsRead) {
  HeapAtDump kernel;
  LocalConfig local;
  local.iface_name = "eth0";
  local.iface_index = kernel.AddLink("eth0", 1500);
  local.iface_ip = local.public_ip = Ip("192.0.2.1");
  local.iface_network = Net("192.0.2.0/24");
  VxlanBackend backend(&kernel, Mac("0a:58:00:00:00:01"));
  ASSERT_TRUE(backend.Init(local, {Net("10.64.0.0/24"), Net("10.64.0.0/10")}, "{}").ok());

  // 2,000 peers each carrying 4 KB the backend has no use for (BackendV6Data in
  // an IPv4-only network): ~8 MB, against ~0.3 MB of desired state.
  constexpr int kPeers = 2000;
  const std::string unused(4096, 'x');
  std::vector<Peer> peers;
  for (int i = 1; i <= kPeers; ++i) {
    const IPv4Addr net = IPv4Addr::FromUint32(Ip("10.64.0.0").value() + (static_cast<uint32_t>(i) << 8));
    Peer p{*IPv4Net::Make(net, 24), IPv4Addr::FromUint32(Ip("192.0.3.0").value() + i), "vxlan",
           absl::StrCat(R"({"VNI":1,"VtepMAC":"0a:58:00:00:)", absl::Hex(i >> 8, absl::kZeroPad2), ":",
                        absl::Hex(i & 0xff, absl::kZeroPad2), R"("})")};
    p.backend_v6_data_json = unused;
    peers.push_back(std::move(p));
  }
  const size_t with_peers = HeapInUse();
  if (with_peers < kPeers * unused.size()) {  // ASan's allocator, for one, keeps its own books
    GTEST_SKIP() << "mallinfo2 does not count this allocator's heap: " << with_peers << " bytes with the peers";
  }
  absl::StatusOr<ReconcileStats> s = backend.Reconcile(std::move(peers));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->added, 4 * kPeers);
  ASSERT_TRUE(kernel.in_use_at_dump.has_value());
  EXPECT_LT(*kernel.in_use_at_dump + kPeers * unused.size() * 3 / 4, with_peers)
      << "in use with the peers " << with_peers << ", while the kernel was read " << *kernel.in_use_at_dump;
}

TEST_F(VxlanBackendTest, OldKernelGetsRoutesWithTheirOwnHop) {
  kernel_.supports_nexthops = false;
  ASSERT_TRUE(backend_.Init(local_, lease_, "{}").ok());
  absl::StatusOr<ReconcileStats> s = backend_.Reconcile(
      {{Net("198.18.2.0/24"), Ip("192.0.2.2"), "vxlan", R"({"VNI":1,"VtepMAC":"0a:58:00:00:00:02"})"}});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->added, 3);
  EXPECT_EQ(s->errors, 0);
  const int vx = kernel_.GetLink("flannel.1")->index;
  EXPECT_EQ(kernel_.routes.at(Net("198.18.2.0/24")), (Route{Net("198.18.2.0/24"), Ip("198.18.2.0"), vx, true}));
}

TEST_F(VxlanBackendTest, NewVniReplacesTheOldDevice) {
  ASSERT_TRUE(backend_.Init(local_, lease_, R"({"VNI":1})").ok());
  ASSERT_TRUE(backend_.Init(local_, lease_, R"({"VNI":2})").ok());
  EXPECT_TRUE(absl::IsNotFound(kernel_.GetLink("flannel.1").status()));
  EXPECT_TRUE(kernel_.GetLink("flannel.2").ok());
}

class VxlanDualStackBackendTest : public VxlanBackendTest {
 protected:
  void SetUp() override {
    VxlanBackendTest::SetUp();
    local_.iface_ipv6 = Ip6("fd77:1::1");
    local_.iface_ipv6_network = Net6("fd77:1::/64");
    local_.public_ipv6 = Ip6("fd77:1::1");
    lease6_.ipv6_subnet = Net6("fd42:0:1::/64");
    lease6_.ipv6_network = Net6("fd42::/48");
  }
  std::vector<netlink::InterfaceAddress> AddressesOf(const std::string& dev) {
    return *kernel_.ListAddresses(kernel_.GetLink(dev)->index);
  }
  OwnLease lease6_ = lease_;
};

TEST_F(VxlanDualStackBackendTest, InitMakesBothDevicesAndPublishesBackendV6Data) {
  EXPECT_EQ(*backend_.LeaseV6Data(), R"({"VNI":1,"VtepMAC":"0e:58:00:00:00:01"})");
  absl::StatusOr<BackendInfo> info = backend_.Init(local_, lease6_, "{}");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->data_json, R"({"VNI":1,"VtepMAC":"0a:58:00:00:00:01"})");
  EXPECT_EQ(info->v6_data_json, R"({"VNI":1,"VtepMAC":"0e:58:00:00:00:01"})");
  EXPECT_EQ(info->mtu, 1430u) << "the smaller of 1450 and 1430";
  EXPECT_EQ(backend_.v6_device_name(), "flannel-v6.1");

  absl::StatusOr<netlink::Link> dev = kernel_.GetLink("flannel-v6.1");
  ASSERT_TRUE(dev.ok());
  EXPECT_TRUE(dev->up);
  EXPECT_EQ(dev->mtu, 1430u);
  EXPECT_EQ(dev->mac, Mac("0e:58:00:00:00:01"));
  ASSERT_TRUE(dev->vxlan.has_value());
  EXPECT_EQ(dev->vxlan->vni, 1u);
  EXPECT_EQ(dev->vxlan->port, 8472);
  EXPECT_EQ(dev->vxlan->local, Ip6("fd77:1::1"));
  EXPECT_EQ(dev->vxlan->underlay_index, local_.iface_index);
  EXPECT_THAT(AddressesOf("flannel-v6.1"), ElementsAre(netlink::InterfaceAddress{dev->index, Ip6("fd42:0:1::"), 128}));
  EXPECT_THAT(AddressesOf("flannel.1"), ElementsAre(netlink::InterfaceAddress{
                                            kernel_.GetLink("flannel.1")->index, Ip("198.18.1.0"), 32}));
}

TEST_F(VxlanDualStackBackendTest, ConfiguredMtuAppliesToBothAndMustSuitIPv6) {
  absl::StatusOr<BackendInfo> info = backend_.Init(local_, lease6_, R"({"MTU":1300})");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->mtu, 1300u);
  EXPECT_EQ(kernel_.GetLink("flannel-v6.1")->mtu, 1300u);
  info = backend_.Init(local_, lease6_, R"({"MTU":1200})");
  EXPECT_TRUE(absl::IsInvalidArgument(info.status())) << info.status();
  EXPECT_THAT(Msg(info.status()), HasSubstr("below IPv6's minimum 1280"));
  LocalConfig no_v6 = local_;
  no_v6.iface_ipv6.reset();
  EXPECT_TRUE(absl::IsInvalidArgument(backend_.Init(no_v6, lease6_, "{}").status()));
}

TEST_F(VxlanDualStackBackendTest, IPv4OnlyInitMakesNoV6DeviceAndRemovesAStaleOne) {
  VxlanBackend fresh{&kernel_, Mac("0a:58:00:00:00:01")};
  absl::StatusOr<BackendInfo> info = fresh.Init(local_, lease_, "{}");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->v6_data_json, "");
  EXPECT_EQ(info->mtu, 1450u);
  EXPECT_TRUE(absl::IsNotFound(kernel_.GetLink("flannel-v6.1").status()));

  ASSERT_TRUE(backend_.Init(local_, lease6_, "{}").ok());
  ASSERT_TRUE(kernel_.GetLink("flannel-v6.1").ok());
  // The network turns IPv4-only (a restart with a new config): the device goes.
  ASSERT_TRUE(fresh.Init(local_, lease_, "{}").ok());
  EXPECT_TRUE(absl::IsNotFound(kernel_.GetLink("flannel-v6.1").status()));
  EXPECT_TRUE(kernel_.GetLink("flannel.1").ok());
}

TEST_F(VxlanDualStackBackendTest, IPv6OnlyInitMakesOnlyTheV6DeviceAndRemovesAStaleIPv4One) {
  ASSERT_TRUE(backend_.Init(local_, lease6_, "{}").ok());  // an earlier dual-stack run
  ASSERT_TRUE(kernel_.GetLink("flannel.1").ok());
  OwnLease v6only;
  v6only.ipv4 = false;
  v6only.ipv6_subnet = lease6_.ipv6_subnet;
  v6only.ipv6_network = lease6_.ipv6_network;
  LocalConfig local = local_;
  local.iface_ip = IPv4Addr();  // an IPv6-only host
  local.iface_network = IPv4Net();
  local.public_ip = IPv4Addr();
  VxlanBackend fresh{&kernel_, Mac("0a:58:00:00:00:01")};
  absl::StatusOr<BackendInfo> info = fresh.Init(local, v6only, "{}");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->data_json, "") << "no BackendData in an IPv6-only lease (flannel's)";
  EXPECT_EQ(info->v6_data_json, R"({"VNI":1,"VtepMAC":"0e:58:00:00:00:01"})");
  EXPECT_EQ(info->mtu, 1430u) << "the IPv6 device's alone";
  EXPECT_TRUE(absl::IsNotFound(kernel_.GetLink("flannel.1").status()));
  ASSERT_TRUE(kernel_.GetLink("flannel-v6.1").ok());

  Peer peer = DualPeer(2, "fd77:9::2");
  peer.ipv4 = false;
  absl::StatusOr<ReconcileStats> s = fresh.Reconcile({peer});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->added, 3);
  EXPECT_TRUE(absl::IsNotFound(kernel_.GetLink("flannel.1").status())) << "a pass does not bring it back";
  EXPECT_EQ(kernel_.routes.count(Net("198.18.2.0/24")), 0u);
  ASSERT_TRUE(fresh.Teardown().ok());
  EXPECT_TRUE(absl::IsNotFound(kernel_.GetLink("flannel-v6.1").status()));
  EXPECT_THAT(kernel_.routes, IsEmpty());
}

TEST_F(VxlanDualStackBackendTest, ReconcileProgramsBothFamiliesRepairsAndTearsDown) {
  ASSERT_TRUE(backend_.Init(local_, lease6_, R"({"DirectRouting":true})").ok());
  const std::vector<Peer> peers = {DualPeer(2, "fd77:9::2"), DualPeer(3)};
  absl::StatusOr<ReconcileStats> s = backend_.Reconcile(peers);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->errors, 0);
  // Both peers are on the IPv4 link (a direct route each); over IPv6, peer 3 is
  // direct and peer 2 goes through the tunnel (neighbour, FDB entry, route).
  EXPECT_EQ(s->added, 2 + 1 + 3);
  const int vx6 = kernel_.GetLink("flannel-v6.1")->index;
  EXPECT_EQ(kernel_.routes.at(Net6("fd42:0:2::/64")), (Route{Net6("fd42:0:2::/64"), Ip6("fd42:0:2::"), vx6, true}));
  EXPECT_EQ(kernel_.routes.at(Net6("fd42:0:3::/64")),
            (Route{Net6("fd42:0:3::/64"), Ip6("fd77:1::3"), local_.iface_index, false}));
  EXPECT_EQ(kernel_.fdb.count({vx6, Mac("0e:00:00:00:00:02"), Ip6("fd77:9::2")}), 1u);

  // Someone deletes flannel-v6.1: the next pass recreates it and what was on it.
  ASSERT_TRUE(kernel_.DeleteLink(vx6).ok());
  s = backend_.Reconcile(peers);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->added, 3);
  EXPECT_EQ(AddressesOf("flannel-v6.1").size(), 1u);
  EXPECT_EQ(backend_.Reconcile(peers)->changes(), 0);

  // Peer 2 drops IPv6: its IPv6 objects go, its IPv4 ones stay.
  Peer v4_only = DualPeer(2, "fd77:9::2");
  v4_only.ipv6_subnet.reset();
  s = backend_.Reconcile({v4_only, DualPeer(3)});
  EXPECT_EQ(s->removed, 3);
  EXPECT_EQ(kernel_.routes.count(Net("198.18.2.0/24")), 1u);

  ASSERT_TRUE(backend_.Teardown().ok());
  EXPECT_TRUE(absl::IsNotFound(kernel_.GetLink("flannel-v6.1").status()));
  EXPECT_TRUE(absl::IsNotFound(kernel_.GetLink("flannel.1").status()));
  EXPECT_THAT(kernel_.routes, IsEmpty());
  EXPECT_THAT(kernel_.neighbours, IsEmpty());
  EXPECT_THAT(kernel_.fdb, IsEmpty());
}

TEST_F(VxlanBackendTest, TeardownRemovesTheDeviceAndDirectRoutes) {
  ASSERT_TRUE(backend_.Init(local_, lease_, R"({"DirectRouting":true})").ok());
  ASSERT_TRUE(backend_
                  .Reconcile({{Net("198.18.2.0/24"), Ip("192.0.2.2"), "vxlan",
                               R"({"VNI":1,"VtepMAC":"0a:58:00:00:00:02"})"},
                              {Net("198.18.3.0/24"), Ip("203.0.113.3"), "vxlan",
                               R"({"VNI":1,"VtepMAC":"0a:58:00:00:00:03"})"}})
                  .ok());
  EXPECT_EQ(kernel_.routes.size(), 2u);
  ASSERT_TRUE(backend_.Teardown().ok());
  EXPECT_TRUE(absl::IsNotFound(kernel_.GetLink("flannel.1").status()));
  EXPECT_THAT(kernel_.routes, IsEmpty());
  EXPECT_THAT(kernel_.neighbours, IsEmpty());
  EXPECT_THAT(kernel_.fdb, IsEmpty());
}

}  // namespace
}  // namespace weft::agent

namespace weft::agent {
namespace {

TEST(VxlanChecksumTest, ModesAndKernels) {
  EXPECT_EQ(ParseVxlanConfig("{}")->tx_checksum_offload, TxChecksumOffload::kAuto);
  EXPECT_EQ(ParseVxlanConfig(R"({"TxChecksumOffload":"OFF"})")->tx_checksum_offload, TxChecksumOffload::kOff);
  EXPECT_EQ(ParseVxlanConfig(R"({"txchecksumoffload":"on"})")->tx_checksum_offload, TxChecksumOffload::kOn);
  EXPECT_EQ(ParseVxlanConfig(R"({"TxChecksumOffload":false})")->tx_checksum_offload, TxChecksumOffload::kOff);

  EXPECT_EQ(netlink::ParseKernelRelease("6.1.0-18-amd64"), std::make_pair(6, 1));
  EXPECT_EQ(netlink::ParseKernelRelease("5.7-rc1"), std::make_pair(5, 7));
  EXPECT_EQ(netlink::ParseKernelRelease("4.19.0"), std::make_pair(4, 19));
  EXPECT_EQ(netlink::ParseKernelRelease("bogus"), std::nullopt);
  EXPECT_EQ(netlink::ParseKernelRelease("6"), std::nullopt);

  // auto: off where the kernel has the bug (before 5.7), the kernel's default after.
  EXPECT_EQ(WantTxChecksum(TxChecksumOffload::kAuto, std::make_pair(5, 6)), false);
  EXPECT_EQ(WantTxChecksum(TxChecksumOffload::kAuto, std::make_pair(4, 19)), false);
  EXPECT_EQ(WantTxChecksum(TxChecksumOffload::kAuto, std::make_pair(5, 7)), std::nullopt);
  EXPECT_EQ(WantTxChecksum(TxChecksumOffload::kAuto, std::nullopt), false);
  EXPECT_EQ(WantTxChecksum(TxChecksumOffload::kOn, std::make_pair(4, 19)), true);
  EXPECT_EQ(WantTxChecksum(TxChecksumOffload::kOff, std::make_pair(6, 1)), false);
}

// Records what the backend asks of the device's features.
class FakeFeatures : public netlink::LinkFeatures {
 public:
  absl::StatusOr<bool> TxChecksum(const std::string& dev) override {
    ++reads;
    return on.count(dev) ? on[dev] : true;  // a new device checksums in "hardware"
  }
  absl::Status SetTxChecksum(const std::string& dev, bool v) override {
    sets.push_back(absl::StrCat(dev, v ? " on" : " off"));
    on[dev] = v;
    return absl::OkStatus();
  }
  std::map<std::string, bool> on;
  std::vector<std::string> sets;
  int reads = 0;
};

TEST_F(VxlanBackendTest, TxChecksumAppliedAtInitKeptAcrossRecreationAndLeftAloneWhenAuto) {
  FakeProgrammer& kernel = kernel_;
  const LocalConfig& local = local_;
  const OwnLease& lease = lease_;
  VxlanBackend& backend = backend_;
  FakeFeatures features;
  backend.SetLinkFeatures(&features);
  backend.SetKernelRelease("6.1.0");

  ASSERT_TRUE(backend.Init(local, lease, R"({"TxChecksumOffload":"off"})").ok());
  EXPECT_THAT(features.sets, ElementsAre("flannel.1 off"));
  ASSERT_TRUE(backend.Reconcile({}).ok());
  EXPECT_EQ(features.sets.size(), 1u) << "already off: not set again";
  // A re-created device starts with offload on again: the next pass turns it off.
  ASSERT_TRUE(kernel.DeleteLink(kernel.GetLink("flannel.1")->index).ok());
  features.on.clear();
  ASSERT_TRUE(backend.Reconcile({}).ok());
  EXPECT_THAT(features.sets, ElementsAre("flannel.1 off", "flannel.1 off"));

  // auto on a fixed kernel: nothing is read or set.
  FakeFeatures untouched;
  VxlanBackend modern(&kernel, Mac("0a:58:00:00:00:02"));
  modern.SetLinkFeatures(&untouched);
  modern.SetKernelRelease("6.1.0");
  ASSERT_TRUE(modern.Init(local, lease, R"({"VNI":7})").ok());
  EXPECT_EQ(untouched.reads, 0);
  EXPECT_THAT(untouched.sets, IsEmpty());
  // auto on a kernel with the bug: off.
  VxlanBackend old(&kernel, Mac("0a:58:00:00:00:03"));
  old.SetLinkFeatures(&untouched);
  old.SetKernelRelease("5.4.0-150-generic");
  ASSERT_TRUE(old.Init(local, lease, R"({"VNI":8})").ok());
  EXPECT_THAT(untouched.sets, ElementsAre("flannel.8 off"));
}

}  // namespace
}  // namespace weft::agent
