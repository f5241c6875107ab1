// The VXLAN backend against the real kernel: two "hosts" (network namespaces
// joined by a veth pair on 192.0.2.0/24), each programmed by its own
// NetlinkProgrammer + VxlanBackend, must reach each other's overlay addresses.
// Kernel state is read back with netlink dumps and cross-checked with iproute2.
// Dual-stack hosts (an IPv6 underlay on the same veth) must also reach each
// other's IPv6 subnets over flannel-v6.1.

#include "absl/strings/str_cat.h"
#include "agent/backend/vxlan/vxlan_backend.h"
#include "agent/netlink/netlink_programmer.h"
#include "agent/state.h"
#include "agent/netlink/test_literals.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/netns/backend_hosts.h"

namespace weft::agent {
namespace {

using test_literals::Ip;
using test_literals::Ip6;
using test_literals::Net;
using test_literals::Net6;

using netlink::FdbEntry;
using netlink::Neighbour;
using netlink::NetlinkProgrammer;
using netlink::Route;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;


// One simulated host: a namespace, its programmer and backend.
struct Host : weft::testing::NetnsHost {
  std::unique_ptr<VxlanBackend> backend;
  MacAddr mac;
  BackendInfo info;

  Peer AsPeer() const {
    return Peer{lease.subnet,      local.public_ip,   info.type,        info.data_json,
                lease.ipv6_subnet, local.public_ipv6, info.v6_data_json};
  }
  bool Ping(IPv4Addr to) {
    return ns->Sh(absl::StrCat("ping -c 1 -W 3 ", to.ToString())).ok();
  }
  // From this host's IPv6 container address (subnet::1 on lo) to `to`.
  bool Ping6(const std::string& to) {
    return ns->Sh(absl::StrCat("ping -6 -c 1 -W 3 -I ", ContainerIPv6(), " ", to)).ok();
  }
  std::string ContainerIPv6() const {
    return IPv6Addr::FromUint128(lease.ipv6_subnet->network().value() + 1).ToString();
  }
  int Vx() { return kernel->GetLink(backend->device_name())->index; }
  int Vx6() { return kernel->GetLink(backend->v6_device_name())->index; }
};

// Runs with nexthop objects (GetParam() true, what a modern kernel gets) and
// without (an old kernel): both must give flannel's forwarding.
class VxlanNetnsTest : public ::testing::TestWithParam<bool> {
 protected:
  bool nexthops() const { return GetParam(); }
  // Objects per remote peer: neighbour, FDB entry, route (+ nexthop).
  int per_peer() const { return nexthops() ? 4 : 3; }
  // How `ip route show proto 87` shows the route to a peer's subnet.
  std::string RouteLine(const char* subnet, const char* gw) const {
    const std::string nhid = nexthops() ? absl::StrCat(" nhid ", Ip(gw).value()) : "";
    return absl::StrCat(subnet, nhid, " via ", gw, " dev flannel.1 onlink");
  }

  void SetUp() override { Start(/*dual_stack=*/false); }

  void Start(bool dual_stack) {
    ASSERT_TRUE(weft::testing::MakeHostPair(dual_stack ? "vx6" : "vx", nexthops(), &a_, &b_, dual_stack).ok());
    for (Host* h : {&a_, &b_}) {
      h->mac = RandomLocalUnicastMac();
      h->backend = std::make_unique<VxlanBackend>(h->kernel.get(), h->mac);
      // The subnet's first address on lo stands in for a container.
      if (dual_stack) h->Sh(absl::StrCat("ip -6 addr add ", h->ContainerIPv6(), "/128 dev lo nodad"));
    }
  }

  void InitBoth(absl::string_view config) {
    for (Host* h : {&a_, &b_}) {
      absl::StatusOr<BackendInfo> info = h->backend->Init(h->local, h->lease, config);
      ASSERT_TRUE(info.ok()) << info.status();
      h->info = *info;
    }
  }

  // Every host sees the whole lease set, its own lease included, as from the controller.
  std::vector<Peer> AllLeases() { return {a_.AsPeer(), b_.AsPeer()}; }

  ReconcileStats Reconcile(Host& h, const std::vector<Peer>& peers) {
    return weft::testing::ReconcileOk(*h.backend, peers);
  }

  Host a_, b_;
};

TEST_P(VxlanNetnsTest, ProgramsWhatFlannelProgramsAndTrafficFlows) {
  InitBoth(R"({"Type":"vxlan"})");
  EXPECT_EQ(a_.info.mtu, 1450u);
  EXPECT_EQ(a_.info.data_json, absl::StrCat(R"({"VNI":1,"VtepMAC":")", a_.mac.ToString(), R"("})"));
  ReconcileStats s = Reconcile(a_, AllLeases());
  EXPECT_EQ(s.added, per_peer());
  EXPECT_EQ(s.errors, 0);
  s = Reconcile(b_, AllLeases());
  EXPECT_EQ(s.added, per_peer());

  // Read back through netlink.
  const int vx = a_.Vx();
  EXPECT_THAT(*a_.kernel->ListNeighbours(vx), UnorderedElementsAre(Neighbour{vx, Ip("198.18.2.0"), b_.mac}));
  EXPECT_THAT(*a_.kernel->ListFdb(vx), UnorderedElementsAre(FdbEntry{vx, b_.mac, Ip("192.0.2.2")}));
  Route route{Net("198.18.2.0/24"), Ip("198.18.2.0"), vx, true};
  if (nexthops()) {
    route.nexthop_id = Ip("198.18.2.0").value();
    EXPECT_THAT(*a_.kernel->ListNexthops(netlink::kWeftRouteProtocol),
                UnorderedElementsAre(netlink::Nexthop{route.nexthop_id, Ip("198.18.2.0"), vx, true}));
    EXPECT_THAT(a_.Sh("ip nexthop show"),
                HasSubstr(absl::StrCat("id ", route.nexthop_id, " via 198.18.2.0 dev flannel.1")));
  }
  EXPECT_THAT(*a_.kernel->ListRoutes(0, netlink::kWeftRouteProtocol), UnorderedElementsAre(route));

  // And as iproute2 shows it, the way flannel's documentation does.
  const std::string link = a_.Sh("ip -d link show flannel.1");
  EXPECT_THAT(link, HasSubstr("mtu 1450"));
  EXPECT_THAT(link, HasSubstr(absl::StrCat("link/ether ", a_.mac.ToString())));
  EXPECT_THAT(link, HasSubstr("vxlan id 1 local 192.0.2.1 dev eth0"));
  EXPECT_THAT(link, HasSubstr("dstport 8472"));
  EXPECT_THAT(link, HasSubstr("nolearning"));
  EXPECT_THAT(link, HasSubstr("state UNKNOWN"));  // up; VXLAN has no carrier state
  EXPECT_THAT(a_.Sh("ip -4 -o addr show dev flannel.1"), HasSubstr("inet 198.18.1.0/32"));
  EXPECT_THAT(a_.Sh("ip neigh show dev flannel.1"),
              HasSubstr(absl::StrCat("198.18.2.0 lladdr ", b_.mac.ToString(), " PERMANENT")));
  EXPECT_THAT(a_.Sh("bridge fdb show dev flannel.1"),
              HasSubstr(absl::StrCat(b_.mac.ToString(), " dst 192.0.2.2 self permanent")));
  EXPECT_THAT(a_.Sh("ip route show proto 87"), HasSubstr(RouteLine("198.18.2.0/24", "198.18.2.0")));

  // The overlay carries traffic both ways, encapsulated on flannel.1.
  EXPECT_TRUE(a_.Ping(Ip("198.18.2.0")));
  EXPECT_TRUE(b_.Ping(Ip("198.18.1.0")));
  const std::string tx_packets =
      a_.Sh("ip -s link show flannel.1 | awk '/TX:/ { getline; print $2 }'");
  EXPECT_NE(tx_packets, "0\n") << "the ping did not go through flannel.1";
  EXPECT_NE(tx_packets, "");
}

TEST_P(VxlanNetnsTest, SecondReconcileChangesNothing) {
  InitBoth("{}");
  Reconcile(a_, AllLeases());
  const std::string before = a_.Sh("ip neigh show dev flannel.1; bridge fdb show dev flannel.1; ip route");
  ReconcileStats s = Reconcile(a_, AllLeases());
  EXPECT_EQ(s.changes(), 0);
  EXPECT_EQ(s.unchanged, per_peer());
  EXPECT_EQ(s.errors, 0);
  EXPECT_EQ(a_.Sh("ip neigh show dev flannel.1; bridge fdb show dev flannel.1; ip route"), before);
  // Init again (agent restart with the same lease) keeps the device.
  const int vx = a_.Vx();
  ASSERT_TRUE(a_.backend->Init(a_.local, a_.lease, "{}").ok());
  EXPECT_EQ(a_.Vx(), vx);
}

TEST_P(VxlanNetnsTest, RepairsWhatWasDeletedByHand) {
  InitBoth("{}");
  Reconcile(a_, AllLeases());
  Reconcile(b_, AllLeases());
  ASSERT_TRUE(a_.Ping(Ip("198.18.2.0")));

  a_.Sh("ip route del 198.18.2.0/24");
  EXPECT_FALSE(a_.Ping(Ip("198.18.2.0"))) << "the route was really gone";
  ReconcileStats s = Reconcile(a_, AllLeases());
  EXPECT_EQ(s.added, 1);
  EXPECT_THAT(a_.Sh("ip route show proto 87"), HasSubstr(RouteLine("198.18.2.0/24", "198.18.2.0")));
  EXPECT_TRUE(a_.Ping(Ip("198.18.2.0")));

  a_.Sh(absl::StrCat("ip neigh del 198.18.2.0 dev flannel.1; bridge fdb del ", b_.mac.ToString(),
                     " dev flannel.1 dst 192.0.2.2"));
  s = Reconcile(a_, AllLeases());
  EXPECT_EQ(s.added, 2);
  EXPECT_TRUE(a_.Ping(Ip("198.18.2.0")));

  if (nexthops()) {  // deleting the nexthop takes its route along
    a_.Sh(absl::StrCat("ip nexthop del id ", Ip("198.18.2.0").value()));
    s = Reconcile(a_, AllLeases());
    EXPECT_EQ(s.added, 2);
    EXPECT_TRUE(a_.Ping(Ip("198.18.2.0")));
  }

  // Even the device itself.
  a_.Sh("ip link del flannel.1");
  s = Reconcile(a_, AllLeases());
  EXPECT_EQ(s.added, per_peer());
  EXPECT_TRUE(a_.Ping(Ip("198.18.2.0")));
}

TEST_P(VxlanNetnsTest, DepartedPeerDisappears) {
  InitBoth("{}");
  Reconcile(a_, AllLeases());
  Reconcile(b_, AllLeases());
  ASSERT_TRUE(a_.Ping(Ip("198.18.2.0")));

  ReconcileStats s = Reconcile(a_, {a_.AsPeer()});  // b's lease expired
  EXPECT_EQ(s.removed, per_peer());
  const int vx = a_.Vx();
  EXPECT_THAT(*a_.kernel->ListFdb(vx), IsEmpty());
  EXPECT_THAT(*a_.kernel->ListRoutes(0, netlink::kWeftRouteProtocol), IsEmpty());
  // The list held in a variable: iterating `*ListNeighbours(vx)` would read a
  // destroyed StatusOr (ASan: stack-use-after-scope).
  absl::StatusOr<std::vector<Neighbour>> neighbours = a_.kernel->ListNeighbours(vx);
  ASSERT_TRUE(neighbours.ok()) << neighbours.status();
  for (const Neighbour& n : *neighbours) {
    EXPECT_NE(n.state, NUD_PERMANENT) << n;
  }
  EXPECT_EQ(a_.Sh("ip route show proto 87"), "");
  EXPECT_EQ(a_.Sh("ip nexthop show proto 87 2>/dev/null || true"), "");
  EXPECT_FALSE(a_.Ping(Ip("198.18.2.0")));
}

TEST_P(VxlanNetnsTest, DirectRoutingUsesThePlainUnderlay) {
  InitBoth(R"({"Type":"vxlan","DirectRouting":true})");
  Reconcile(a_, AllLeases());
  Reconcile(b_, AllLeases());
  EXPECT_THAT(a_.Sh("ip route show proto 87"), HasSubstr("198.18.2.0/24 via 192.0.2.2 dev eth0"));
  EXPECT_EQ(a_.Sh("bridge fdb show dev flannel.1"), "");
  // The peer's overlay address is on its flannel.1; the plain route delivers to eth0 of b.
  EXPECT_TRUE(a_.Ping(Ip("198.18.2.0")));
  EXPECT_TRUE(b_.Ping(Ip("198.18.1.0")));
}

TEST_P(VxlanNetnsTest, IanaPortAndTeardown) {
  InitBoth(R"({"Type":"vxlan","VNI":4096,"Port":4789})");
  Reconcile(a_, AllLeases());
  Reconcile(b_, AllLeases());
  EXPECT_THAT(a_.Sh("ip -d link show flannel.4096"), HasSubstr("vxlan id 4096"));
  EXPECT_THAT(a_.Sh("ip -d link show flannel.4096"), HasSubstr("dstport 4789"));
  EXPECT_TRUE(a_.Ping(Ip("198.18.2.0")));

  ASSERT_TRUE(a_.backend->Teardown().ok());
  EXPECT_FALSE(a_.ns->Sh("ip link show flannel.4096").ok());
  EXPECT_EQ(a_.Sh("ip route show proto 87"), "");
}

// A host set up by hand exactly as flanneld does it (its documented commands)
// and a host set up by Weft reach each other: the data path is wire-compatible.
TEST_P(VxlanNetnsTest, InteroperatesWithAFlannelStyleHost) {
  absl::StatusOr<BackendInfo> info = a_.backend->Init(a_.local, a_.lease, "{}");
  ASSERT_TRUE(info.ok()) << info.status();
  a_.info = *info;
  const std::string b_mac = b_.mac.ToString();
  b_.Sh(absl::StrCat(
      "ip link add flannel.1 address ", b_mac,
      " mtu 1450 type vxlan id 1 local 192.0.2.2 dev eth0 dstport 8472 nolearning && "
      "ip addr add 198.18.2.0/32 dev flannel.1 && ip link set flannel.1 up && "
      "ip neigh replace 198.18.1.0 lladdr ", a_.mac.ToString(), " dev flannel.1 nud permanent && "
      "bridge fdb replace ", a_.mac.ToString(), " dev flannel.1 dst 192.0.2.1 self permanent && "
      "ip route replace 198.18.1.0/24 via 198.18.1.0 dev flannel.1 onlink"));
  b_.info = BackendInfo{"vxlan", absl::StrCat(R"({"VNI":1,"VtepMAC":")", b_mac, R"("})"), 1450};
  Reconcile(a_, AllLeases());
  EXPECT_TRUE(a_.Ping(Ip("198.18.2.0")));
  EXPECT_TRUE(b_.Ping(Ip("198.18.1.0")));
}

// TxChecksumOffload "off" turns the real device's tx-checksum-ip-generic off
// (as `ethtool -k` reads it), again after the device is deleted and re-created;
// "on" turns it back on.
TEST_P(VxlanNetnsTest, TxChecksumOffloadSwitchSurvivesRecreation) {
  auto features = a_.ns->Run([] { return netlink::EthtoolLinkFeatures::Open(); });
  ASSERT_TRUE(features.ok()) << features.status();
  a_.backend->SetLinkFeatures(features->get());
  auto offload = [&] { return a_.Sh("ethtool -k flannel.1 | grep 'tx-checksum-ip-generic:'"); };
  ASSERT_TRUE(a_.backend->Init(a_.local, a_.lease, R"({"Type":"vxlan","TxChecksumOffload":"off"})").ok());
  EXPECT_THAT(offload(), HasSubstr("tx-checksum-ip-generic: off"));
  EXPECT_EQ((*features)->TxChecksum("flannel.1").value_or(true), false);

  a_.Sh("ip link del flannel.1");
  Reconcile(a_, {});
  EXPECT_THAT(offload(), HasSubstr("tx-checksum-ip-generic: off")) << "lost when the device was re-created";

  ASSERT_TRUE(a_.backend->Init(a_.local, a_.lease, R"({"Type":"vxlan","TxChecksumOffload":"on"})").ok());
  EXPECT_THAT(offload(), HasSubstr("tx-checksum-ip-generic: on"));
  EXPECT_TRUE(absl::IsNotFound((*features)->TxChecksum("nosuchdev0").status()));
  // The overlay still works with offload off on one side.
  ASSERT_TRUE(a_.backend->Init(a_.local, a_.lease, R"({"Type":"vxlan","TxChecksumOffload":"off"})").ok());
  absl::StatusOr<BackendInfo> b_info = b_.backend->Init(b_.local, b_.lease, "{}");
  ASSERT_TRUE(b_info.ok()) << b_info.status();
  b_.info = *b_info;
  a_.info = BackendInfo{"vxlan", VxlanLeaseDataJson(1, a_.mac), 1450};
  Reconcile(a_, AllLeases());
  Reconcile(b_, AllLeases());
  EXPECT_TRUE(a_.Ping(Ip("198.18.2.0")));
  EXPECT_TRUE(b_.Ping(Ip("198.18.1.0")));
}

class VxlanDualStackNetnsTest : public VxlanNetnsTest {
 protected:
  void SetUp() override { Start(/*dual_stack=*/true); }
};

TEST_P(VxlanDualStackNetnsTest, ProgramsFlannelsIPv6LayoutAndTrafficFlows) {
  InitBoth(R"({"Type":"vxlan"})");
  const MacAddr a6 = V6VtepMac(a_.mac), b6 = V6VtepMac(b_.mac);
  EXPECT_EQ(a_.info.mtu, 1430u) << "fits the IPv6 tunnel too";
  EXPECT_EQ(a_.info.v6_data_json, absl::StrCat(R"({"VNI":1,"VtepMAC":")", a6.ToString(), R"("})"));
  EXPECT_FALSE(a_.Ping6("fd42:0:2::1")) << "nothing routes before Reconcile";
  ReconcileStats s = Reconcile(a_, AllLeases());
  EXPECT_EQ(s.added, per_peer() + 3);
  EXPECT_EQ(s.errors, 0);
  Reconcile(b_, AllLeases());

  const int vx6 = a_.Vx6();
  EXPECT_THAT(*a_.kernel->ListNeighbours(vx6), UnorderedElementsAre(Neighbour{vx6, Ip6("fd42:0:2::"), b6}));
  EXPECT_THAT(*a_.kernel->ListFdb(vx6), UnorderedElementsAre(FdbEntry{vx6, b6, Ip6("fd77:1::2")}));
  EXPECT_THAT(*a_.kernel->ListRoutes(vx6, netlink::kWeftRouteProtocol),
              UnorderedElementsAre(Route{Net6("fd42:0:2::/64"), Ip6("fd42:0:2::"), vx6, true}));

  // As iproute2 shows it.
  const std::string link = a_.Sh("ip -d link show flannel-v6.1");
  EXPECT_THAT(link, HasSubstr("mtu 1430"));
  EXPECT_THAT(link, HasSubstr(absl::StrCat("link/ether ", a6.ToString())));
  EXPECT_THAT(link, HasSubstr("vxlan id 1 local fd77:1::1 dev eth0"));
  EXPECT_THAT(link, HasSubstr("dstport 8472"));
  EXPECT_THAT(a_.Sh("ip -6 -o addr show dev flannel-v6.1 scope global"), HasSubstr("inet6 fd42:0:1::/128"));
  EXPECT_THAT(a_.Sh("ip -4 -o addr show dev flannel.1"), HasSubstr("inet 198.18.1.0/32"));
  EXPECT_THAT(a_.Sh("ip -6 neigh show dev flannel-v6.1"),
              HasSubstr(absl::StrCat("fd42:0:2:: lladdr ", b6.ToString(), " PERMANENT")));
  EXPECT_THAT(a_.Sh("bridge fdb show dev flannel-v6.1"),
              HasSubstr(absl::StrCat(b6.ToString(), " dst fd77:1::2 self permanent")));
  EXPECT_THAT(a_.Sh("ip -6 route show proto 87"),
              HasSubstr("fd42:0:2::/64 via fd42:0:2:: dev flannel-v6.1 metric 1024 onlink"));

  // Traffic between the two hosts' IPv6 subnets, encapsulated on flannel-v6.1.
  EXPECT_TRUE(a_.Ping6("fd42:0:2::1"));
  EXPECT_TRUE(b_.Ping6("fd42:0:1::1"));
  EXPECT_TRUE(a_.Ping6("fd42:0:2::")) << "the peer's flannel-v6.1 address";
  const std::string tx_packets = a_.Sh("ip -s link show flannel-v6.1 | awk '/TX:/ { getline; print $2 }'");
  EXPECT_NE(tx_packets, "0\n") << "the ping did not go through flannel-v6.1";
  EXPECT_NE(tx_packets, "");
  EXPECT_TRUE(a_.Ping(Ip("198.18.2.0"))) << "IPv4 still works beside it";
  EXPECT_EQ(Reconcile(a_, AllLeases()).changes(), 0);
}

TEST_P(VxlanDualStackNetnsTest, RepairsIPv6DriftAndRemovesDepartedPeers) {
  InitBoth("{}");
  Reconcile(a_, AllLeases());
  Reconcile(b_, AllLeases());
  ASSERT_TRUE(a_.Ping6("fd42:0:2::1"));

  a_.Sh(absl::StrCat("ip -6 route del fd42:0:2::/64; ip -6 neigh del fd42:0:2:: dev flannel-v6.1; "
                     "bridge fdb del ", V6VtepMac(b_.mac).ToString(), " dev flannel-v6.1 dst fd77:1::2"));
  EXPECT_FALSE(a_.Ping6("fd42:0:2::1")) << "really gone";
  EXPECT_EQ(Reconcile(a_, AllLeases()).added, 3);
  EXPECT_TRUE(a_.Ping6("fd42:0:2::1"));

  a_.Sh("ip link del flannel-v6.1");  // even the device
  EXPECT_EQ(Reconcile(a_, AllLeases()).added, 3);
  EXPECT_TRUE(a_.Ping6("fd42:0:2::1"));

  ReconcileStats s = Reconcile(a_, {a_.AsPeer()});  // b's lease expired
  EXPECT_EQ(s.removed, per_peer() + 3);
  EXPECT_EQ(a_.Sh("ip -6 route show proto 87"), "");
  EXPECT_EQ(a_.Sh("bridge fdb show dev flannel-v6.1"), "");
  EXPECT_FALSE(a_.Ping6("fd42:0:2::1"));
}

TEST_P(VxlanDualStackNetnsTest, DirectRoutingOverTheIPv6Underlay) {
  InitBoth(R"({"Type":"vxlan","DirectRouting":true})");
  Reconcile(a_, AllLeases());
  Reconcile(b_, AllLeases());
  EXPECT_THAT(a_.Sh("ip -6 route show proto 87"), HasSubstr("fd42:0:2::/64 via fd77:1::2 dev eth0"));
  EXPECT_EQ(a_.Sh("bridge fdb show dev flannel-v6.1"), "");
  EXPECT_TRUE(a_.Ping6("fd42:0:2::1"));
  EXPECT_TRUE(b_.Ping6("fd42:0:1::1"));
}

TEST_P(VxlanDualStackNetnsTest, TeardownRemovesBothDevicesAndIPv4OnlyInitTheStaleOne) {
  InitBoth("{}");
  Reconcile(a_, AllLeases());
  ASSERT_TRUE(a_.backend->Teardown().ok());
  EXPECT_FALSE(a_.ns->Sh("ip link show flannel-v6.1").ok());
  EXPECT_FALSE(a_.ns->Sh("ip link show flannel.1").ok());
  EXPECT_EQ(a_.Sh("ip -6 route show proto 87; ip route show proto 87"), "");

  ASSERT_TRUE(b_.ns->Sh("ip link show flannel-v6.1").ok());
  OwnLease v4_only = b_.lease;
  v4_only.ipv6_subnet.reset();
  VxlanBackend restarted(b_.kernel.get(), b_.mac);
  absl::StatusOr<BackendInfo> info = restarted.Init(b_.local, v4_only, "{}");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->v6_data_json, "");
  EXPECT_FALSE(b_.ns->Sh("ip link show flannel-v6.1").ok()) << "the stale IPv6 device is gone";
  EXPECT_TRUE(b_.ns->Sh("ip link show flannel.1").ok());
}

// A host whose IPv6 device is set up by hand as flanneld does it and a Weft
// host reach each other over IPv6: the IPv6 data path is wire-compatible too.
TEST_P(VxlanDualStackNetnsTest, InteroperatesWithAFlannelStyleIPv6Host) {
  absl::StatusOr<BackendInfo> info = a_.backend->Init(a_.local, a_.lease, "{}");
  ASSERT_TRUE(info.ok()) << info.status();
  a_.info = *info;
  const std::string a6 = V6VtepMac(a_.mac).ToString();
  const std::string b6 = "0e:58:c0:00:02:02";
  b_.Sh(absl::StrCat(
      "ip link add flannel-v6.1 address ", b6,
      " mtu 1430 type vxlan id 1 local fd77:1::2 dev eth0 dstport 8472 nolearning && "
      "ip -6 addr add fd42:0:2::/128 dev flannel-v6.1 nodad && ip link set flannel-v6.1 up && "
      "ip -6 neigh replace fd42:0:1:: lladdr ", a6, " dev flannel-v6.1 nud permanent && "
      "bridge fdb replace ", a6, " dev flannel-v6.1 dst fd77:1::1 self permanent && "
      "ip -6 route replace fd42:0:1::/64 via fd42:0:1:: dev flannel-v6.1 onlink"));
  // b publishes no IPv4 VTEP (its IPv4 side is skipped); only its IPv6 side matters here.
  b_.info = BackendInfo{"vxlan", "{}", 1430, absl::StrCat(R"({"VNI":1,"VtepMAC":")", b6, R"("})")};
  ReconcileStats s = Reconcile(a_, AllLeases());
  EXPECT_EQ(s.added, 3);
  EXPECT_EQ(s.skipped_peers, 1);
  EXPECT_TRUE(a_.Ping6("fd42:0:2::"));
  EXPECT_TRUE(b_.ns->Sh("ping -6 -c 1 -W 3 fd42:0:1::1").ok());
}

std::string LayoutName(const ::testing::TestParamInfo<bool>& info) {
  return info.param ? "NexthopObjects" : "ClassicRoutes";
}
INSTANTIATE_TEST_SUITE_P(Layouts, VxlanNetnsTest, ::testing::Bool(), LayoutName);
INSTANTIATE_TEST_SUITE_P(Layouts, VxlanDualStackNetnsTest, ::testing::Bool(), LayoutName);

}  // namespace
}  // namespace weft::agent
