#include "agent/netlink/reconciler.h"

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

using netlink::Change;
using netlink::FakeProgrammer;
using netlink::FdbEntry;
using netlink::kWeftRouteProtocol;
using netlink::Neighbour;
using netlink::Route;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

class ReconcilerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    eth0_ = kernel_.AddLink("eth0");
    vx_ = kernel_.AddLink("flannel.1");
    own_.devices = {vx_};
  }

  // What the VXLAN backend wants for peer number i (subnet 198.18.i.0/24).
  void AddPeer(DesiredState& d, int i, const std::string& mac_last = "") {
    const IPv4Addr net = IPv4Addr::FromUint32(Ip("198.18.0.0").value() + (i << 8));
    const MacAddr mac = Mac("0a:58:00:00:00:" + (mac_last.empty() ? absl::StrCat(10 + i) : mac_last));
    d.neighbours.push_back({vx_, net, mac});
    d.fdb.push_back({vx_, mac, IPv4Addr::FromUint32(Ip("192.0.2.0").value() + i)});
    d.routes.push_back({*IPv4Net::Make(net, 24), net, vx_, true});
  }

  ReconcileStats Run(const DesiredState& d) {
    absl::StatusOr<ReconcileStats> stats = Reconcile(kernel_, own_, d);
    EXPECT_TRUE(stats.ok()) << stats.status();
    return stats.ok() ? *stats : ReconcileStats{};
  }

  // The kernel holds exactly `d` (for objects we own).
  void ExpectKernelEquals(const DesiredState& d) {
    std::vector<Neighbour> n;
    for (const auto& [k, v] : kernel_.neighbours) n.push_back(v);
    std::vector<FdbEntry> f;
    for (const auto& [k, v] : kernel_.fdb) f.push_back(v);
    std::vector<Route> r;
    for (const auto& [k, v] : kernel_.routes) r.push_back(v);
    EXPECT_THAT(n, ::testing::UnorderedElementsAreArray(d.neighbours));
    EXPECT_THAT(f, ::testing::UnorderedElementsAreArray(d.fdb));
    EXPECT_THAT(r, ::testing::UnorderedElementsAreArray(d.routes));
  }

  FakeProgrammer kernel_;
  Ownership own_;
  int eth0_ = 0, vx_ = 0;
};

// The objects of `count` peers numbered from `first`, for plans longer than
// one Apply call (AddPeer's MACs run out after 89 peers).
DesiredState ManyPeers(int device, int first, int count) {
  DesiredState d;
  for (int i = first; i < first + count; ++i) {
    const IPv4Addr net = IPv4Addr::FromUint32(Ip("10.64.0.0").value() + (static_cast<uint32_t>(i) << 8));
    const MacAddr mac({0x0a, 0x58, 0, 0, static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)});
    d.neighbours.push_back({device, net, mac});
    d.fdb.push_back({device, mac, IPv4Addr::FromUint32(Ip("192.0.2.0").value() + i)});
    d.routes.push_back({*IPv4Net::Make(net, 24), net, device, true});
  }
  return d;
}

TEST_F(ReconcilerTest, ALongPlanGoesOutInBoundedCallsWithEveryDeleteFirst) {
  // 1,000 peers in the kernel, then 1,500 others wanted instead: 3,000 deletes
  // (one call) and 4,500 adds (more than kMaxChangesPerApply: two calls).
  constexpr int kOld = 1000, kNew = 1500;
  static_assert(3 * kNew > static_cast<int>(kMaxChangesPerApply));
  Run(ManyPeers(vx_, 0, kOld));
  kernel_.apply_calls = 0;
  kernel_.applied.clear();
  const DesiredState d = ManyPeers(vx_, kOld, kNew);
  ReconcileStats s = Run(d);
  EXPECT_EQ(s.added, 3 * kNew);
  EXPECT_EQ(s.removed, 3 * kOld);
  EXPECT_EQ(s.errors, 0);
  ExpectKernelEquals(d);
  EXPECT_EQ(kernel_.apply_calls, 3);
  ASSERT_EQ(kernel_.applied.size(), static_cast<size_t>(3 * (kOld + kNew)));
  for (size_t i = 0; i < kernel_.applied.size(); ++i) {
    EXPECT_EQ(kernel_.applied[i].rfind("delete", 0) == 0, i < 3 * kOld) << i << ": " << kernel_.applied[i];
  }
}

TEST_F(ReconcilerTest, AddsEverythingToAnEmptyKernelThenChangesNothing) {
  DesiredState d;
  for (int i = 1; i <= 3; ++i) AddPeer(d, i);
  ReconcileStats s = Run(d);
  EXPECT_EQ(s.added, 9);
  EXPECT_EQ(s.updated + s.removed + s.errors + s.unchanged, 0);
  EXPECT_EQ(kernel_.apply_calls, 1) << "one batch";
  ExpectKernelEquals(d);

  s = Run(d);
  EXPECT_EQ(s.changes(), 0);
  EXPECT_EQ(s.unchanged, 9);
  EXPECT_EQ(kernel_.apply_calls, 1) << "an unchanged kernel gets no request";
}

TEST_F(ReconcilerTest, RemovesDepartedPeersAndRepairsDrift) {
  DesiredState d;
  for (int i = 1; i <= 3; ++i) AddPeer(d, i);
  Run(d);

  DesiredState two;
  for (int i = 1; i <= 2; ++i) AddPeer(two, i);
  ReconcileStats s = Run(two);
  EXPECT_EQ(s.removed, 3);
  EXPECT_EQ(s.added + s.updated, 0);
  ExpectKernelEquals(two);

  // Someone deletes a route and a neighbour by hand, and edits an FDB entry.
  kernel_.routes.erase(Net("198.18.1.0/24"));
  kernel_.neighbours.erase({vx_, Ip("198.18.2.0")});
  kernel_.fdb.clear();
  kernel_.fdb[{vx_, Mac("0a:58:00:00:00:11"), Ip("192.0.2.99")}] = {vx_, Mac("0a:58:00:00:00:11"), Ip("192.0.2.99")};
  s = Run(two);
  EXPECT_EQ(s.added, 3);    // route, neighbour, fdb of peer 2
  EXPECT_EQ(s.updated, 1);  // fdb of peer 1 points at the wrong host
  ExpectKernelEquals(two);
}

TEST_F(ReconcilerTest, PeerWithNewMacGetsItsEntriesReplaced) {
  DesiredState d;
  AddPeer(d, 1);
  Run(d);
  DesiredState restarted;
  AddPeer(restarted, 1, "99");
  ReconcileStats s = Run(restarted);
  EXPECT_EQ(s.updated, 1);  // neighbour: same IP, new MAC
  EXPECT_EQ(s.added, 1);    // fdb: the new MAC
  EXPECT_EQ(s.removed, 1);  // fdb: the old MAC
  EXPECT_EQ(s.unchanged, 1);  // route
  ExpectKernelEquals(restarted);
}

TEST_F(ReconcilerTest, TouchesOnlyWhatItOwns) {
  // Not ours: a learned ARP entry on our device, a neighbour on another device,
  // a route of another protocol.
  const Neighbour learned{vx_, Ip("198.18.7.0"), Mac("0a:58:00:00:00:07"), NUD_REACHABLE};
  const Neighbour other_dev{eth0_, Ip("192.0.2.7"), Mac("0a:58:00:00:00:08")};
  const Route static_route{Net("203.0.113.0/24"), Ip("192.0.2.254"), eth0_, false, RTPROT_STATIC};
  // Ours but not desired: a permanent neighbour on our device, a route with our protocol.
  const Neighbour stale{vx_, Ip("198.18.8.0"), Mac("0a:58:00:00:00:09")};
  const Route stale_route{Net("198.18.8.0/24"), Ip("198.18.8.0"), vx_, true};
  kernel_.neighbours[{vx_, learned.ip}] = learned;
  kernel_.neighbours[{eth0_, other_dev.ip}] = other_dev;
  kernel_.neighbours[{vx_, stale.ip}] = stale;
  kernel_.routes[static_route.dst] = static_route;
  kernel_.routes[stale_route.dst] = stale_route;

  ReconcileStats s = Run(DesiredState{});
  EXPECT_EQ(s.removed, 2);
  EXPECT_THAT(kernel_.neighbours,
              ::testing::UnorderedElementsAre(Pair(::testing::_, learned), Pair(::testing::_, other_dev)));
  EXPECT_THAT(kernel_.routes, ElementsAre(Pair(static_route.dst, static_route)));
}

TEST_F(ReconcilerTest, LearnedEntryForAPeerIsMadePermanent) {
  DesiredState d;
  AddPeer(d, 1);
  kernel_.neighbours[{vx_, d.neighbours[0].ip}] = {vx_, d.neighbours[0].ip, d.neighbours[0].mac, NUD_STALE};
  ReconcileStats s = Run(d);
  EXPECT_EQ(s.updated, 1);
  ExpectKernelEquals(d);
}

TEST_F(ReconcilerTest, ExtraRemotesOfAnFdbEntryAreRemoved) {
  DesiredState d;
  AddPeer(d, 1);
  const FdbEntry want = d.fdb[0];
  const FdbEntry extra{vx_, want.mac, Ip("192.0.2.200")};
  kernel_.fdb[{vx_, extra.mac, extra.dst}] = extra;
  kernel_.fdb[{vx_, want.mac, want.dst}] = want;
  ReconcileStats s = Run(d);
  EXPECT_EQ(s.removed, 1);
  ExpectKernelEquals(d);
}

TEST_F(ReconcilerTest, RefusedChangesAreCountedAndRetriedNextPass) {
  DesiredState d;
  for (int i = 1; i <= 3; ++i) AddPeer(d, i);
  kernel_.fail_change = [](const Change& c) {
    const auto* r = std::get_if<Route>(&c.object);
    return r && r->dst == Net("198.18.2.0/24") ? absl::InvalidArgumentError("nope") : absl::OkStatus();
  };
  ReconcileStats s = Run(d);
  EXPECT_EQ(s.errors, 1);
  EXPECT_EQ(s.added, 8) << "one refusal does not stop the rest";
  ASSERT_EQ(s.first_errors.size(), 1u);
  EXPECT_THAT(std::string(s.first_errors[0].message()), HasSubstr("nope"));

  kernel_.fail_change = nullptr;
  s = Run(d);
  EXPECT_EQ(s.added, 1);
  EXPECT_EQ(s.errors, 0);
  ExpectKernelEquals(d);
}

TEST_F(ReconcilerTest, DeletingWhatIsAlreadyGoneIsNotAnError) {
  DesiredState d;
  AddPeer(d, 1);
  Run(d);
  kernel_.fail_change = [](const Change& c) {
    return c.op == Change::Op::kDelete ? absl::NotFoundError("gone") : absl::OkStatus();
  };
  ReconcileStats s = Run(DesiredState{});
  EXPECT_EQ(s.removed, 3);
  EXPECT_EQ(s.errors, 0);
}

TEST_F(ReconcilerTest, UnreadableKernelIsAnError) {
  kernel_.fail_all = absl::UnavailableError("netlink down");
  EXPECT_TRUE(absl::IsUnavailable(Reconcile(kernel_, own_, DesiredState{}).status()));
}

TEST_F(ReconcilerTest, DuplicateDesiredObjectsKeepTheFirst) {
  DesiredState d;
  AddPeer(d, 1);
  d.routes.push_back({Net("198.18.1.0/24"), Ip("192.0.2.77"), eth0_, false});
  ReconcileStats s = Run(d);
  EXPECT_EQ(s.added, 3);
  EXPECT_EQ(kernel_.routes.at(Net("198.18.1.0/24")), d.routes[0]);
}

TEST_F(ReconcilerTest, HostGwOwnershipHasNoDevice) {
  own_.devices.clear();
  kernel_.neighbours[{vx_, Ip("198.18.8.0")}] = {vx_, Ip("198.18.8.0"), Mac("0a:58:00:00:00:09")};
  DesiredState d;
  d.routes.push_back({Net("198.18.1.0/24"), Ip("192.0.2.1"), eth0_, false});
  ReconcileStats s = Run(d);
  EXPECT_EQ(s.added, 1);
  EXPECT_EQ(kernel_.neighbours.size(), 1u) << "no device: neighbours are not ours";
  EXPECT_EQ(kernel_.list_calls, 1) << "only routes are dumped";
}

// A dual-stack VXLAN host: flannel.1 and flannel-v6.1, both owned, one pass.
class ReconcilerDualStackTest : public ReconcilerTest {
 protected:
  void SetUp() override {
    ReconcilerTest::SetUp();
    vx6_ = kernel_.AddLink("flannel-v6.1");
    own_.devices = {vx_, vx6_};
  }
  // Peer i over IPv6 (subnet fd42:0:i::/64, underlay fd77:1::i).
  void AddPeer6(DesiredState& d, int i) {
    const IPv6Net subnet = *IPv6Net::Make(
        IPv6Addr::FromUint128(Ip6("fd42::").value() + (absl::uint128(i) << 80)), 64);
    const MacAddr mac = Mac(absl::StrCat("0e:58:00:00:00:", 10 + i));
    d.neighbours.push_back({vx6_, subnet.network(), mac});
    d.fdb.push_back({vx6_, mac, IPv6Addr::FromUint128(Ip6("fd77:1::").value() + i)});
    d.routes.push_back({subnet, subnet.network(), vx6_, true});
  }
  int vx6_ = 0;
};

TEST_F(ReconcilerDualStackTest, BothFamiliesInOnePassAndEachPeerLeavesCleanly) {
  DesiredState d;
  for (int i = 1; i <= 2; ++i) {
    AddPeer(d, i);
    AddPeer6(d, i);
  }
  ReconcileStats s = Run(d);
  EXPECT_EQ(s.added, 12);
  EXPECT_EQ(s.errors, 0);
  EXPECT_EQ(kernel_.apply_calls, 1) << "one batch for both families";
  ExpectKernelEquals(d);
  EXPECT_EQ(kernel_.routes.at(Net6("fd42:0:2::/64")),
            (Route{Net6("fd42:0:2::/64"), Ip6("fd42:0:2::"), vx6_, true}));
  EXPECT_EQ(Run(d).changes(), 0);

  // Peer 2 drops IPv6 (its lease lost IPv6Subnet): only its IPv6 objects go.
  DesiredState less;
  AddPeer(less, 1);
  AddPeer6(less, 1);
  AddPeer(less, 2);
  s = Run(less);
  EXPECT_EQ(s.removed, 3);
  EXPECT_EQ(s.added + s.updated, 0);
  ExpectKernelEquals(less);

  // Drift on the IPv6 device is repaired like on the IPv4 one.
  kernel_.neighbours.erase({vx6_, Ip6("fd42:0:1::")});
  kernel_.routes.erase(Net6("fd42:0:1::/64"));
  kernel_.fdb.clear();
  s = Run(less);
  EXPECT_EQ(s.added, 5);  // neighbour, route and FDB entry over IPv6, 2 FDB entries over IPv4
  ExpectKernelEquals(less);
}

TEST_F(ReconcilerDualStackTest, SameAddressOnTwoDevicesIsTwoNeighbours) {
  // Keys include the device: the IPv4 device's and the IPv6 device's entries never collide.
  DesiredState d;
  d.neighbours.push_back({vx_, Ip("198.18.1.0"), Mac("0a:58:00:00:00:01")});
  d.neighbours.push_back({vx6_, Ip("198.18.1.0"), Mac("0e:58:00:00:00:01")});
  d.fdb.push_back({vx_, Mac("0a:58:00:00:00:01"), Ip("192.0.2.1")});
  d.fdb.push_back({vx6_, Mac("0a:58:00:00:00:01"), Ip6("fd77:1::1")});
  EXPECT_EQ(Run(d).added, 4);
  ExpectKernelEquals(d);
  EXPECT_EQ(Run(d).unchanged, 4);
}

TEST_F(ReconcilerDualStackTest, IPv4OnlyPassRemovesStaleIPv6ObjectsOfOurs) {
  DesiredState d;
  AddPeer(d, 1);
  AddPeer6(d, 1);
  Run(d);
  // The network turned IPv4-only: the backend owns only flannel.1 now, yet our
  // IPv6 routes (protocol 87) on other links are still ours to remove.
  kernel_.routes[Net6("fd42:0:9::/64")] = {Net6("fd42:0:9::/64"), Ip6("fd77:1::9"), eth0_, false};
  own_.devices = {vx_};
  DesiredState v4;
  AddPeer(v4, 1);
  ReconcileStats s = Run(v4);
  EXPECT_EQ(s.removed, 2) << "both IPv6 routes; the IPv6 device's neighbours are no longer looked at";
  EXPECT_EQ(kernel_.neighbours.count({vx6_, Ip6("fd42:0:1::")}), 1u);
}

TEST_F(ReconcilerDualStackTest, IPv6RouteThroughANexthopObjectIsRefusedByTheKernel) {
  own_.manage_nexthops = true;
  DesiredState d;
  AddPeer6(d, 1);
  d.routes.back().nexthop_id = 7;
  d.nexthops.push_back({7, Ip("198.18.1.0"), vx_, true});
  ReconcileStats s = Run(d);
  EXPECT_EQ(s.errors, 1) << "nexthop objects are IPv4-only; IPv6 routes carry their gateway";
}

class ReconcilerNexthopTest : public ReconcilerTest {
 protected:
  void SetUp() override {
    ReconcilerTest::SetUp();
    own_.manage_nexthops = true;
  }
  // Peer i through nexthop object i.
  void AddNexthopPeer(DesiredState& d, int i) {
    AddPeer(d, i);
    Route& r = d.routes.back();
    r.nexthop_id = static_cast<uint32_t>(i);
    d.nexthops.push_back({r.nexthop_id, r.gateway.v4(), vx_, true});
  }
};

TEST_F(ReconcilerNexthopTest, NexthopsGoInBeforeTheirRoutesAndOutAfter) {
  DesiredState d;
  AddNexthopPeer(d, 1);
  ReconcileStats s = Run(d);
  EXPECT_EQ(s.added, 4);
  EXPECT_EQ(s.errors, 0);
  EXPECT_THAT(kernel_.applied,
              ElementsAre(HasSubstr("replace nexthop id 1 via 198.18.1.0"), HasSubstr("replace neighbour"),
                          HasSubstr("replace fdb"), HasSubstr("replace route 198.18.1.0/24 nhid 1")));
  EXPECT_EQ(kernel_.routes.at(Net("198.18.1.0/24")).nexthop_id, 1u);

  s = Run(d);
  EXPECT_EQ(s.changes(), 0);
  EXPECT_EQ(s.unchanged, 4);

  kernel_.applied.clear();
  s = Run(DesiredState{});
  EXPECT_EQ(s.removed, 4);
  EXPECT_THAT(kernel_.applied, ElementsAre(HasSubstr("delete neighbour"), HasSubstr("delete fdb"),
                                           HasSubstr("delete route"), HasSubstr("delete nexthop id 1")));
  EXPECT_TRUE(kernel_.nexthops.empty());
}

TEST_F(ReconcilerNexthopTest, NexthopDeletedByHandComesBackWithItsRoute) {
  DesiredState d;
  AddNexthopPeer(d, 1);
  Run(d);
  ASSERT_TRUE(kernel_.Apply({{Change::Op::kDelete, d.nexthops[0]}}).ok());
  ASSERT_TRUE(kernel_.routes.empty()) << "the kernel drops routes through a deleted nexthop";
  ReconcileStats s = Run(d);
  EXPECT_EQ(s.added, 2);
  EXPECT_EQ(s.unchanged, 2);
}

TEST_F(ReconcilerNexthopTest, AnotherProgramsNexthopIdIsLeftAloneAndTheRouteGoesWithout) {
  const netlink::Nexthop theirs{1, Ip("192.0.2.254"), eth0_, false, RTPROT_STATIC};
  kernel_.nexthops[1] = theirs;
  DesiredState d;
  AddNexthopPeer(d, 1);
  ReconcileStats s = Run(d);
  EXPECT_EQ(s.errors, 0);
  EXPECT_EQ(kernel_.nexthops.at(1), theirs);
  const Route& r = kernel_.routes.at(Net("198.18.1.0/24"));
  EXPECT_EQ(r.nexthop_id, 0u);
  EXPECT_EQ(r.gateway, Ip("198.18.1.0"));
  EXPECT_TRUE(r.onlink);
  EXPECT_EQ(Run(d).changes(), 0) << "and stays that way";
  EXPECT_EQ(kernel_.nexthops.size(), 1u);
}

TEST_F(ReconcilerNexthopTest, WithoutNexthopSupportRoutesCarryTheirOwnHop) {
  own_.manage_nexthops = false;
  kernel_.supports_nexthops = false;
  DesiredState d;
  AddNexthopPeer(d, 1);
  ReconcileStats s = Run(d);
  EXPECT_EQ(s.added, 3);
  EXPECT_EQ(s.errors, 0);
  EXPECT_EQ(kernel_.routes.at(Net("198.18.1.0/24")), (Route{Net("198.18.1.0/24"), Ip("198.18.1.0"), vx_, true}));
  EXPECT_EQ(Run(d).changes(), 0);
}

TEST_F(ReconcilerNexthopTest, ClassicRouteMovesOntoItsNexthop) {
  DesiredState classic;
  AddPeer(classic, 1);
  Run(classic);
  DesiredState d;
  AddNexthopPeer(d, 1);
  ReconcileStats s = Run(d);
  EXPECT_EQ(s.added, 1);    // the nexthop
  EXPECT_EQ(s.updated, 1);  // the route now through it
  EXPECT_EQ(kernel_.routes.at(Net("198.18.1.0/24")).nexthop_id, 1u);
}

// A kernel whose every dump is interrupted once, after objects the attempt that
// follows no longer shows: strays of ours (deleted if remembered), a desired
// neighbour and FDB entry pointing elsewhere (replaced if remembered), and
// someone else's nexthop on a desired id (the route would go without it).
class InterruptedDumps : public FakeProgrammer {
 public:
  absl::Status VisitNeighbours(int index, const Restart& restart, const Visit<Neighbour>& visit) override {
    restart();
    visit({index, Ip("198.18.200.0"), Mac("0a:58:00:00:00:99")});
    visit({index, Ip("198.18.1.0"), Mac("0a:58:00:00:00:98")});
    return FakeProgrammer::VisitNeighbours(index, restart, visit);
  }
  absl::Status VisitFdb(int index, const Restart& restart, const Visit<FdbEntry>& visit) override {
    restart();
    visit({index, Mac("0a:58:00:00:00:99"), Ip("192.0.2.99")});
    visit({index, Mac("0a:58:00:00:00:11"), Ip("192.0.2.98")});
    return FakeProgrammer::VisitFdb(index, restart, visit);
  }
  absl::Status VisitNexthops(uint8_t protocol, const Restart& restart,
                             const Visit<netlink::Nexthop>& visit) override {
    restart();
    visit({1, Ip("192.0.2.254"), 1, false, RTPROT_STATIC});
    visit({99, Ip("198.18.99.0"), 2, true});
    return FakeProgrammer::VisitNexthops(protocol, restart, visit);
  }
  absl::Status VisitRoutes(int index, uint8_t protocol, const Restart& restart, const Visit<Route>& visit) override {
    restart();
    visit({Net("198.18.200.0/24"), Ip("198.18.200.0"), 2, true});
    return FakeProgrammer::VisitRoutes(index, protocol, restart, visit);
  }
};

TEST(ReconcilerInterruptedDumpTest, WhatAnInterruptedAttemptShowedIsForgotten) {
  InterruptedDumps kernel;
  kernel.AddLink("eth0");
  const int vx = kernel.AddLink("flannel.1");
  const Ownership own{{vx}, kWeftRouteProtocol, true};
  const MacAddr mac = Mac("0a:58:00:00:00:11");
  DesiredState d;
  d.neighbours.push_back({vx, Ip("198.18.1.0"), mac});
  d.fdb.push_back({vx, mac, Ip("192.0.2.1")});
  d.routes.push_back({Net("198.18.1.0/24"), Ip("198.18.1.0"), vx, true, kWeftRouteProtocol, 1});
  d.nexthops.push_back({1, Ip("198.18.1.0"), vx, true});

  absl::StatusOr<ReconcileStats> s = Reconcile(kernel, own, d);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->added, 4);
  EXPECT_EQ(s->updated + s->removed + s->errors + s->unchanged, 0);
  EXPECT_EQ(kernel.routes.at(Net("198.18.1.0/24")).nexthop_id, 1u) << "the foreign nexthop was forgotten";

  s = Reconcile(kernel, own, d);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->changes(), 0);
  EXPECT_EQ(s->unchanged, 4);
}

}  // namespace
}  // namespace weft::agent
