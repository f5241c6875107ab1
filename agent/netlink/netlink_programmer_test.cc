// NetlinkProgrammer against the real kernel, in a namespace of its own.

#include "agent/netlink/netlink_programmer.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "agent/netlink/test_literals.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/netns/netns.h"

namespace weft::netlink {
namespace {

using test_literals::Ip;
using test_literals::Ip6;
using test_literals::Mac;
using test_literals::Net;
using test_literals::Net6;

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using weft::testing::NetNs;

class NetlinkProgrammerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ns = NetNs::Create("nlp");
    ASSERT_TRUE(ns.ok()) << ns.status();
    ns_ = std::move(*ns);
    ASSERT_TRUE(ns_->Sh("ip link add eth0 type veth peer name eth0p && ip link set eth0p up && ip addr add 192.0.2.1/24 dev eth0 && "
                        "ip link set eth0 up")
                    .ok());
    auto p = ns_->Run([] { return NetlinkProgrammer::Create(); });
    ASSERT_TRUE(p.ok()) << p.status();
    programmer_ = std::move(*p);
    auto eth0 = programmer_->GetLink("eth0");
    ASSERT_TRUE(eth0.ok()) << eth0.status();
    eth0_ = eth0->index;
  }

  VxlanLinkSpec Spec() {
    VxlanLinkSpec spec;
    spec.name = "flannel.1";
    spec.info.vni = 1;
    spec.info.local = Ip("192.0.2.1");
    spec.info.underlay_index = eth0_;
    spec.info.port = 8472;
    spec.mtu = 1450;
    spec.mac = Mac("0a:58:c0:00:02:01");
    return spec;
  }

  std::string Sh(absl::string_view cmd) {
    auto out = ns_->Sh(cmd);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *out : "";
  }

  std::unique_ptr<NetNs> ns_;
  std::unique_ptr<NetlinkProgrammer> programmer_;
  int eth0_ = 0;
};

TEST_F(NetlinkProgrammerTest, GetLinkOfMissingDeviceIsNotFound) {
  auto l = programmer_->GetLink("nosuch0");
  EXPECT_TRUE(absl::IsNotFound(l.status())) << l.status();
  EXPECT_THAT(std::string(l.status().message()), HasSubstr("nosuch0"));
  EXPECT_TRUE(absl::IsInvalidArgument(programmer_->GetLink("a-name-that-is-far-too-long").status()));
}

TEST_F(NetlinkProgrammerTest, CreatesVxlanDeviceLikeFlannel) {
  auto link = programmer_->EnsureVxlan(Spec());
  ASSERT_TRUE(link.ok()) << link.status();
  EXPECT_EQ(link->name, "flannel.1");
  EXPECT_EQ(link->kind, "vxlan");
  EXPECT_EQ(link->mtu, 1450u);
  EXPECT_EQ(link->mac, Mac("0a:58:c0:00:02:01"));
  ASSERT_TRUE(link->vxlan.has_value());
  EXPECT_EQ(*link->vxlan, Spec().info);
  EXPECT_FALSE(link->up);

  ASSERT_TRUE(programmer_->SetLinkUp(link->index).ok());
  EXPECT_TRUE(programmer_->GetLinkByIndex(link->index)->up);

  // Cross-check with iproute2.
  const std::string ip = Sh("ip -d link show flannel.1");
  EXPECT_THAT(ip, HasSubstr("vxlan id 1 local 192.0.2.1 dev eth0"));
  EXPECT_THAT(ip, HasSubstr("dstport 8472"));
  EXPECT_THAT(ip, HasSubstr("nolearning"));
  EXPECT_THAT(ip, HasSubstr("mtu 1450"));
  EXPECT_THAT(ip, HasSubstr("link/ether 0a:58:c0:00:02:01"));
  EXPECT_THAT(ip, HasSubstr("UP"));

  // All links are listed.
  auto links = programmer_->ListLinks();
  ASSERT_TRUE(links.ok());
  std::vector<std::string> names;
  for (const Link& l : *links) names.push_back(l.name);
  EXPECT_THAT(names, UnorderedElementsAre("lo", "eth0", "eth0p", "flannel.1"));
}

TEST_F(NetlinkProgrammerTest, EnsureVxlanKeepsChangesInPlaceOrRecreates) {
  auto first = programmer_->EnsureVxlan(Spec());
  ASSERT_TRUE(first.ok()) << first.status();
  auto again = programmer_->EnsureVxlan(Spec());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->index, first->index) << "an equal device must be kept";

  VxlanLinkSpec mtu = Spec();
  mtu.mtu = 1400;
  mtu.mac = Mac("0a:58:c0:00:02:09");
  auto changed = programmer_->EnsureVxlan(mtu);
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(changed->index, first->index) << "MTU and MAC change in place";
  EXPECT_EQ(changed->mtu, 1400u);
  EXPECT_EQ(changed->mac, Mac("0a:58:c0:00:02:09"));

  VxlanLinkSpec port = Spec();
  port.info.port = 4789;
  port.info.gbp = true;
  auto recreated = programmer_->EnsureVxlan(port);
  ASSERT_TRUE(recreated.ok()) << recreated.status();
  EXPECT_NE(recreated->index, first->index) << "the port can only be set at creation";
  EXPECT_EQ(recreated->vxlan->port, 4789);
  EXPECT_TRUE(recreated->vxlan->gbp);
  EXPECT_THAT(Sh("ip -d link show flannel.1"), HasSubstr("dstport 4789"));
  EXPECT_THAT(Sh("ip -d link show flannel.1"), HasSubstr("gbp"));

  // A non-VXLAN device squatting the name is replaced too.
  ASSERT_TRUE(programmer_->DeleteLink(recreated->index).ok());
  Sh("ip link add flannel.1 type veth peer name squat0");
  auto replaced = programmer_->EnsureVxlan(Spec());
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  EXPECT_EQ(replaced->kind, "vxlan");
}

TEST_F(NetlinkProgrammerTest, EnsureAddressLeavesOnlyTheAskedAddress) {
  auto link = programmer_->EnsureVxlan(Spec());
  ASSERT_TRUE(link.ok());
  Sh("ip addr add 198.18.9.0/32 dev flannel.1");
  const InterfaceAddress want{link->index, Ip("198.18.1.0"), 32};
  ASSERT_TRUE(programmer_->EnsureAddress(want).ok());
  ASSERT_TRUE(programmer_->EnsureAddress(want).ok()) << "idempotent";
  auto addrs = programmer_->ListAddresses(link->index);
  ASSERT_TRUE(addrs.ok());
  EXPECT_THAT(*addrs, UnorderedElementsAre(want));
  EXPECT_THAT(Sh("ip -4 -o addr show dev flannel.1"), HasSubstr("inet 198.18.1.0/32"));
}

TEST_F(NetlinkProgrammerTest, AppliesNeighboursFdbAndRoutesAndListsThem) {
  auto link = programmer_->EnsureVxlan(Spec());
  ASSERT_TRUE(link.ok());
  ASSERT_TRUE(programmer_->SetLinkUp(link->index).ok());
  const int vx = link->index;
  const Neighbour neigh{vx, Ip("198.18.2.0"), Mac("0a:58:c0:00:02:02")};
  const FdbEntry fdb{vx, Mac("0a:58:c0:00:02:02"), Ip("192.0.2.2")};
  const Route route{Net("198.18.2.0/24"), Ip("198.18.2.0"), vx, true};
  const Route direct{Net("198.18.3.0/24"), Ip("192.0.2.3"), eth0_, false};
  auto results = programmer_->Apply({{Change::Op::kReplace, neigh},
                                     {Change::Op::kReplace, fdb},
                                     {Change::Op::kReplace, route},
                                     {Change::Op::kReplace, direct}});
  ASSERT_TRUE(results.ok()) << results.status();
  for (const absl::Status& s : *results) EXPECT_TRUE(s.ok()) << s;

  EXPECT_THAT(*programmer_->ListNeighbours(vx), UnorderedElementsAre(neigh));
  EXPECT_THAT(*programmer_->ListFdb(vx), UnorderedElementsAre(fdb));
  EXPECT_THAT(*programmer_->ListRoutes(0, kWeftRouteProtocol), UnorderedElementsAre(route, direct));
  EXPECT_THAT(*programmer_->ListRoutes(vx, kWeftRouteProtocol), UnorderedElementsAre(route));
  EXPECT_TRUE(programmer_->ListRoutes(0, RTPROT_STATIC)->empty()) << "other protocols are not ours";

  EXPECT_THAT(Sh("ip neigh show dev flannel.1"), HasSubstr("198.18.2.0 lladdr 0a:58:c0:00:02:02 PERMANENT"));
  EXPECT_THAT(Sh("bridge fdb show dev flannel.1"), HasSubstr("0a:58:c0:00:02:02 dst 192.0.2.2 self permanent"));
  EXPECT_THAT(Sh("ip route show proto 87"),
              HasSubstr("198.18.2.0/24 via 198.18.2.0 dev flannel.1 onlink"));
  EXPECT_THAT(Sh("ip route show proto 87"), HasSubstr("198.18.3.0/24 via 192.0.2.3 dev eth0"));

  // Replace changes in place; delete removes.
  const Neighbour moved{vx, Ip("198.18.2.0"), Mac("0a:58:c0:00:02:22")};
  const FdbEntry fdb_moved{vx, Mac("0a:58:c0:00:02:02"), Ip("192.0.2.22")};
  results = programmer_->Apply({{Change::Op::kReplace, moved}, {Change::Op::kReplace, fdb_moved}});
  ASSERT_TRUE(results.ok());
  EXPECT_THAT(*programmer_->ListNeighbours(vx), UnorderedElementsAre(moved));
  EXPECT_THAT(*programmer_->ListFdb(vx), UnorderedElementsAre(fdb_moved));

  results = programmer_->Apply({{Change::Op::kDelete, moved},
                                {Change::Op::kDelete, fdb_moved},
                                {Change::Op::kDelete, route},
                                {Change::Op::kDelete, direct}});
  ASSERT_TRUE(results.ok());
  for (const absl::Status& s : *results) EXPECT_TRUE(s.ok()) << s;
  EXPECT_TRUE(programmer_->ListNeighbours(vx)->empty());
  EXPECT_TRUE(programmer_->ListFdb(vx)->empty());
  EXPECT_TRUE(programmer_->ListRoutes(0, kWeftRouteProtocol)->empty());
}

TEST_F(NetlinkProgrammerTest, RoutesThroughNexthopObjects) {
  auto link = programmer_->EnsureVxlan(Spec());
  ASSERT_TRUE(link.ok());
  ASSERT_TRUE(programmer_->SetLinkUp(link->index).ok());
  const int vx = link->index;
  const Nexthop nh{77, Ip("198.18.2.0"), vx, true};
  Route route{Net("198.18.2.0/24"), Ip("198.18.2.0"), vx, true};
  route.nexthop_id = 77;
  auto results = programmer_->Apply({{Change::Op::kReplace, nh}, {Change::Op::kReplace, route}});
  ASSERT_TRUE(results.ok()) << results.status();
  for (const absl::Status& s : *results) EXPECT_TRUE(s.ok()) << s;

  EXPECT_THAT(*programmer_->ListNexthops(kWeftRouteProtocol), UnorderedElementsAre(nh));
  EXPECT_TRUE(programmer_->ListNexthops(RTPROT_STATIC)->empty());
  EXPECT_THAT(*programmer_->ListRoutes(vx, kWeftRouteProtocol), UnorderedElementsAre(route));
  EXPECT_THAT(Sh("ip nexthop show"), HasSubstr("id 77 via 198.18.2.0 dev flannel.1 scope link proto 87 onlink"));
  EXPECT_THAT(Sh("ip route show proto 87"), HasSubstr("198.18.2.0/24 nhid 77 via 198.18.2.0 dev flannel.1 onlink"));

  // Another program's nexthop is listed with protocol 0 only.
  Sh("ip nexthop add id 5 via 192.0.2.9 dev eth0 proto static");
  EXPECT_EQ(programmer_->ListNexthops(0)->size(), 2u);

  // Deleting the nexthop takes the route through it along.
  results = programmer_->Apply({{Change::Op::kDelete, nh}});
  ASSERT_TRUE(results.ok());
  EXPECT_TRUE((*results)[0].ok()) << (*results)[0];
  EXPECT_TRUE(programmer_->ListNexthops(kWeftRouteProtocol)->empty());
  EXPECT_TRUE(programmer_->ListRoutes(0, kWeftRouteProtocol)->empty());
}

TEST_F(NetlinkProgrammerTest, ReportsEachFailedRequestAndGoesOn) {
  auto link = programmer_->EnsureVxlan(Spec());
  ASSERT_TRUE(link.ok());
  ASSERT_TRUE(programmer_->SetLinkUp(link->index).ok());  // onlink routes need an up device
  const int vx = link->index;
  const Route good1{Net("198.18.2.0/24"), Ip("198.18.2.0"), vx, true};
  const Route bad_dev{Net("198.18.4.0/24"), Ip("198.18.4.0"), 9999, true};
  const Route missing{Net("198.18.5.0/24"), Ip("198.18.5.0"), vx, true};
  const Route good2{Net("198.18.6.0/24"), Ip("198.18.6.0"), vx, true};
  auto results = programmer_->Apply({{Change::Op::kReplace, good1},
                                     {Change::Op::kReplace, bad_dev},
                                     {Change::Op::kDelete, missing},
                                     {Change::Op::kReplace, good2}});
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->size(), 4u);
  EXPECT_TRUE((*results)[0].ok());
  EXPECT_FALSE((*results)[1].ok());
  EXPECT_THAT(std::string((*results)[1].message()),
              HasSubstr("replace route 198.18.4.0/24 via 198.18.4.0 dev 9999 onlink proto 87: No such device"));
  EXPECT_TRUE(absl::IsNotFound((*results)[2])) << (*results)[2];
  EXPECT_THAT(std::string((*results)[2].message()), HasSubstr("delete route 198.18.5.0/24"));
  EXPECT_TRUE((*results)[3].ok());
  EXPECT_THAT(*programmer_->ListRoutes(vx, kWeftRouteProtocol), UnorderedElementsAre(good1, good2));
}

TEST_F(NetlinkProgrammerTest, LargeBatchSpansManySendsAndAllAreAcknowledged) {
  auto link = programmer_->EnsureVxlan(Spec());
  ASSERT_TRUE(link.ok());
  ASSERT_TRUE(programmer_->SetLinkUp(link->index).ok());
  const int vx = link->index;
  std::vector<Change> changes;
  constexpr int kPeers = 5000;  // > kMaxChunkRequests, and > one dump buffer
  for (int i = 0; i < kPeers; ++i) {
    const IPv4Addr net = IPv4Addr::FromUint32(Ip("100.64.0.0").value() + (i << 8));
    std::array<uint8_t, 6> mac = {0x0a, 0x58, 0, 0, static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)};
    changes.push_back({Change::Op::kReplace, Neighbour{vx, net, MacAddr(mac)}});
    changes.push_back({Change::Op::kReplace, FdbEntry{vx, MacAddr(mac), IPv4Addr::FromUint32(Ip("192.0.2.0").value() + 2 + i % 200)}});
    changes.push_back({Change::Op::kReplace, Route{*IPv4Net::Make(net, 24), net, vx, true}});
  }
  auto results = programmer_->Apply(changes);
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->size(), changes.size());
  EXPECT_EQ(std::count_if(results->begin(), results->end(), [](const absl::Status& s) { return !s.ok(); }), 0);
  EXPECT_EQ(programmer_->ListNeighbours(vx)->size(), size_t{kPeers});
  EXPECT_EQ(programmer_->ListFdb(vx)->size(), size_t{kPeers});
  EXPECT_EQ(programmer_->ListRoutes(vx, kWeftRouteProtocol)->size(), size_t{kPeers});
  EXPECT_EQ(Sh("ip route show proto 87 | wc -l"), absl::StrCat(kPeers, "\n"));
}

// A VXLAN device over an IPv6 underlay, as the vxlan backend's flannel-v6.<VNI>.
class NetlinkProgrammerV6Test : public NetlinkProgrammerTest {
 protected:
  void SetUp() override {
    NetlinkProgrammerTest::SetUp();
    Sh("ip -6 addr add fd77:1::1/64 dev eth0 nodad");
  }
  VxlanLinkSpec Spec6() {
    VxlanLinkSpec spec = Spec();
    spec.name = "flannel-v6.1";
    spec.info.local = Ip6("fd77:1::1");
    spec.mtu = 1430;
    spec.mac = Mac("0e:58:c0:00:02:01");
    return spec;
  }
  int UpDevice6() {
    auto link = programmer_->EnsureVxlan(Spec6());
    EXPECT_TRUE(link.ok()) << link.status();
    if (!link.ok()) return 0;
    EXPECT_TRUE(programmer_->SetLinkUp(link->index).ok());
    return link->index;
  }
};

TEST_F(NetlinkProgrammerV6Test, VxlanOverIPv6KeepsItsLocalAddress) {
  auto link = programmer_->EnsureVxlan(Spec6());
  ASSERT_TRUE(link.ok()) << link.status();
  ASSERT_TRUE(link->vxlan.has_value());
  EXPECT_EQ(link->vxlan->local, IPAddr(Ip6("fd77:1::1")));
  EXPECT_EQ(*link->vxlan, Spec6().info);
  EXPECT_THAT(Sh("ip -d link show flannel-v6.1"), HasSubstr("vxlan id 1 local fd77:1::1 dev eth0"));
  auto again = programmer_->EnsureVxlan(Spec6());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->index, link->index) << "an IPv6 local address reads back equal: no re-creation";

  // The IPv4 device with the same VNI and port lives beside it (flannel's layout).
  auto v4 = programmer_->EnsureVxlan(Spec());
  ASSERT_TRUE(v4.ok()) << v4.status();
  EXPECT_TRUE(programmer_->SetLinkUp(v4->index).ok());
  EXPECT_TRUE(programmer_->SetLinkUp(link->index).ok());
}

TEST_F(NetlinkProgrammerV6Test, EnsureAddressIsPerFamilyAndKeepsLinkLocal) {
  const int vx = UpDevice6();
  ASSERT_NE(vx, 0);
  Sh("ip -6 addr add fd42:0:9::/128 dev flannel-v6.1 nodad && ip addr add 198.18.9.0/32 dev flannel-v6.1");
  const InterfaceAddress want6{vx, Ip6("fd42:0:1::"), 128};
  ASSERT_TRUE(programmer_->EnsureAddress(want6).ok());
  ASSERT_TRUE(programmer_->EnsureAddress(want6).ok()) << "idempotent";
  auto addrs = programmer_->ListAddresses(vx);
  ASSERT_TRUE(addrs.ok()) << addrs.status();
  std::vector<std::string> global;
  bool link_local = false;
  for (const InterfaceAddress& a : *addrs) {
    if (a.address.IsLinkLocal()) {
      link_local = true;
    } else {
      global.push_back(absl::StrCat(a.address.ToString(), "/", a.prefix_len));
    }
  }
  EXPECT_TRUE(link_local) << "the kernel's fe80:: address stays";
  EXPECT_THAT(global, UnorderedElementsAre("fd42:0:1::/128", "198.18.9.0/32")) << "IPv4 is not touched";
  const std::string shown = Sh("ip -6 -o addr show dev flannel-v6.1 scope global");
  EXPECT_THAT(shown, HasSubstr("inet6 fd42:0:1::/128 scope global nodad"));
  EXPECT_THAT(shown, ::testing::Not(HasSubstr("tentative"))) << "no DAD: usable at once";

  // And the other way round: an IPv4 Ensure leaves the IPv6 addresses alone.
  ASSERT_TRUE(programmer_->EnsureAddress({vx, Ip("198.18.1.0"), 32}).ok());
  EXPECT_THAT(Sh("ip -o addr show dev flannel-v6.1"), HasSubstr("inet6 fd42:0:1::/128"));
  EXPECT_THAT(Sh("ip -4 -o addr show dev flannel-v6.1"), ::testing::Not(HasSubstr("198.18.9.0")));
}

TEST_F(NetlinkProgrammerV6Test, AppliesIPv6NeighboursFdbAndRoutesAndListsBothFamilies) {
  const int vx6 = UpDevice6();
  ASSERT_NE(vx6, 0);
  auto v4 = programmer_->EnsureVxlan(Spec());
  ASSERT_TRUE(v4.ok());
  ASSERT_TRUE(programmer_->SetLinkUp(v4->index).ok());
  const MacAddr peer = Mac("0e:58:c0:00:02:02");
  const Neighbour neigh{vx6, Ip6("fd42:0:2::"), peer};
  const FdbEntry fdb{vx6, peer, Ip6("fd77:1::2")};
  const Route route{Net6("fd42:0:2::/64"), Ip6("fd42:0:2::"), vx6, true};
  const Route direct{Net6("fd42:0:3::/64"), Ip6("fd77:1::3"), eth0_, false};
  const Route route4{Net("198.18.2.0/24"), Ip("198.18.2.0"), v4->index, true};
  auto results = programmer_->Apply({{Change::Op::kReplace, neigh},
                                     {Change::Op::kReplace, fdb},
                                     {Change::Op::kReplace, route},
                                     {Change::Op::kReplace, direct},
                                     {Change::Op::kReplace, route4}});
  ASSERT_TRUE(results.ok()) << results.status();
  for (const absl::Status& s : *results) EXPECT_TRUE(s.ok()) << s;

  EXPECT_THAT(*programmer_->ListNeighbours(vx6), UnorderedElementsAre(neigh));
  EXPECT_THAT(*programmer_->ListFdb(vx6), UnorderedElementsAre(fdb));
  EXPECT_THAT(*programmer_->ListRoutes(0, kWeftRouteProtocol), UnorderedElementsAre(route, direct, route4));
  EXPECT_THAT(*programmer_->ListRoutes(vx6, kWeftRouteProtocol), UnorderedElementsAre(route));
  EXPECT_THAT(Sh("ip -6 neigh show dev flannel-v6.1"), HasSubstr("fd42:0:2:: lladdr 0e:58:c0:00:02:02 PERMANENT"));
  EXPECT_THAT(Sh("bridge fdb show dev flannel-v6.1"), HasSubstr("0e:58:c0:00:02:02 dst fd77:1::2 self permanent"));
  const std::string routes6 = Sh("ip -6 route show proto 87");
  EXPECT_THAT(routes6, HasSubstr("fd42:0:2::/64 via fd42:0:2:: dev flannel-v6.1 metric 1024 onlink"));
  EXPECT_THAT(routes6, HasSubstr("fd42:0:3::/64 via fd77:1::3 dev eth0 metric 1024"));

  // A changed neighbour and FDB remote are replaced in place.
  const Neighbour moved{vx6, Ip6("fd42:0:2::"), Mac("0e:58:c0:00:02:22")};
  const FdbEntry fdb_moved{vx6, Mac("0e:58:c0:00:02:22"), Ip6("fd77:1::22")};
  results = programmer_->Apply({{Change::Op::kReplace, moved}, {Change::Op::kReplace, fdb_moved}});
  ASSERT_TRUE(results.ok());
  EXPECT_THAT(*programmer_->ListNeighbours(vx6), UnorderedElementsAre(moved));

  results = programmer_->Apply({{Change::Op::kDelete, moved},
                                {Change::Op::kDelete, fdb},
                                {Change::Op::kDelete, fdb_moved},
                                {Change::Op::kDelete, route},
                                {Change::Op::kDelete, direct},
                                {Change::Op::kDelete, route4}});
  ASSERT_TRUE(results.ok());
  for (const absl::Status& s : *results) EXPECT_TRUE(s.ok()) << s;
  EXPECT_TRUE(programmer_->ListNeighbours(vx6)->empty());
  EXPECT_TRUE(programmer_->ListFdb(vx6)->empty());
  EXPECT_TRUE(programmer_->ListRoutes(0, kWeftRouteProtocol)->empty());
  EXPECT_EQ(Sh("ip -6 route show proto 87"), "");
}

}  // namespace
}  // namespace weft::netlink
