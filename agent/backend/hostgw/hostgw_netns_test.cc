// The host-gw backend against the real kernel: two "hosts" (network namespaces
// joined by a veth pair on 192.0.2.0/24), each with its subnet's first address on
// lo (standing in for a container), each programmed by its own NetlinkProgrammer + HostgwBackend.
// Their containers' addresses must reach each other over plain routes, with
// nexthop objects (a modern kernel) and without (before 5.3). Dual-stack hosts
// (an IPv6 underlay on the same veth) must also reach each other's IPv6 subnets.

#include "absl/strings/str_cat.h"
#include "agent/backend/hostgw/hostgw_backend.h"
#include "agent/netlink/netlink_programmer.h"
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

using netlink::NetlinkProgrammer;
using netlink::Route;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

struct Host : weft::testing::NetnsHost {
  std::unique_ptr<HostgwBackend> backend;

  Peer AsPeer() const {
    return Peer{lease.subnet, local.public_ip, "host-gw", "", lease.ipv6_subnet, local.public_ipv6, ""};
  }
  // From this host's container address to `to`.
  bool Ping(const char* to) {
    const std::string from = IPv4Addr::FromUint32(lease.subnet.network().value() + 1).ToString();
    return ns->Sh(absl::StrCat("ping -c 1 -W 2 -I ", from, " ", to)).ok();
  }
  // The same over IPv6, from this host's IPv6 container address (subnet::1).
  bool Ping6(const char* to) {
    return ns->Sh(absl::StrCat("ping -6 -c 1 -W 2 -I ", ContainerIPv6(), " ", to)).ok();
  }
  std::string ContainerIPv6() const {
    return IPv6Addr::FromUint128(lease.ipv6_subnet->network().value() + 1).ToString();
  }
};

class HostgwNetnsTest : public ::testing::TestWithParam<bool> {
 protected:
  bool nexthops() const { return GetParam(); }
  std::string RouteLine(const char* subnet, const char* gw) const {
    const std::string nhid = nexthops() ? absl::StrCat(" nhid ", Net(subnet).network().value()) : "";
    return absl::StrCat(subnet, nhid, " via ", gw, " dev eth0");
  }

  void SetUp() override { Start(/*dual_stack=*/false); }

  void Start(bool dual_stack) {
    ASSERT_TRUE(weft::testing::MakeHostPair(dual_stack ? "hg6" : "hg", nexthops(), &a_, &b_, dual_stack).ok());
    for (Host* h : {&a_, &b_}) {
      h->backend = std::make_unique<HostgwBackend>(h->kernel.get(), nullptr);
      // The subnet's first address on lo stands in for a container.
      const std::string gw = IPv4Addr::FromUint32(h->lease.subnet.network().value() + 1).ToString();
      h->Sh(absl::StrCat("ip addr add ", gw, "/32 dev lo"));
      if (dual_stack) h->Sh(absl::StrCat("ip -6 addr add ", h->ContainerIPv6(), "/128 dev lo nodad"));
      absl::StatusOr<BackendInfo> info = h->backend->Init(h->local, h->lease, R"({"Type":"host-gw"})");
      ASSERT_TRUE(info.ok()) << info.status();
      EXPECT_EQ(info->mtu, h->local.iface_mtu);
    }
  }

  std::vector<Peer> AllLeases() { return {a_.AsPeer(), b_.AsPeer()}; }
  ReconcileStats Reconcile(Host& h, const std::vector<Peer>& peers) {
    return weft::testing::ReconcileOk(*h.backend, peers);
  }

  Host a_, b_;
};

TEST_P(HostgwNetnsTest, RoutesViaPeersAndTrafficFlows) {
  EXPECT_FALSE(a_.Ping("198.18.2.1")) << "nothing routes before Reconcile";
  ReconcileStats s = Reconcile(a_, AllLeases());
  EXPECT_EQ(s.added, nexthops() ? 2 : 1);
  EXPECT_EQ(s.errors, 0);
  Reconcile(b_, AllLeases());

  Route want{Net("198.18.2.0/24"), Ip("192.0.2.2"), a_.local.iface_index, false};
  if (nexthops()) want.nexthop_id = Ip("198.18.2.0").value();
  EXPECT_THAT(*a_.kernel->ListRoutes(0, netlink::kWeftRouteProtocol), UnorderedElementsAre(want));
  EXPECT_THAT(a_.Sh("ip route show proto 87"), HasSubstr(RouteLine("198.18.2.0/24", "192.0.2.2")));
  EXPECT_TRUE(a_.Ping("198.18.2.1"));
  EXPECT_TRUE(b_.Ping("198.18.1.1"));
}

TEST_P(HostgwNetnsTest, RepairsDriftAndRemovesDepartedPeers) {
  Reconcile(a_, AllLeases());
  Reconcile(b_, AllLeases());
  a_.Sh("ip route del 198.18.2.0/24");
  EXPECT_FALSE(a_.Ping("198.18.2.1")) << "the route was really gone";
  EXPECT_EQ(Reconcile(a_, AllLeases()).added, 1);
  EXPECT_TRUE(a_.Ping("198.18.2.1"));
  EXPECT_EQ(Reconcile(a_, AllLeases()).changes(), 0);

  Reconcile(a_, {a_.AsPeer()});  // b left
  EXPECT_THAT(a_.Sh("ip route show proto 87"), Not(HasSubstr("198.18.2.0/24")));
  EXPECT_FALSE(a_.Ping("198.18.2.1"));
}

TEST_P(HostgwNetnsTest, OffLinkPeerIsSkippedAndTheOthersStillServed) {
  Peer far{Net("198.18.9.0/24"), Ip("198.51.100.9"), "host-gw", ""};
  ReconcileStats s = Reconcile(a_, {a_.AsPeer(), b_.AsPeer(), far});
  EXPECT_EQ(s.errors, 0) << "the kernel was never asked for the impossible route";
  EXPECT_EQ(s.skipped_peers, 1);
  EXPECT_EQ(a_.backend->unroutable_peers(), 1);
  const std::string routes = a_.Sh("ip route show proto 87");
  EXPECT_THAT(routes, Not(HasSubstr("198.18.9.0/24")));
  EXPECT_THAT(routes, HasSubstr(RouteLine("198.18.2.0/24", "192.0.2.2")));
}

TEST_P(HostgwNetnsTest, TeardownRemovesOurRoutesOnly) {
  a_.Sh("ip route add 10.9.0.0/16 via 192.0.2.2 dev eth0");  // someone else's
  Reconcile(a_, AllLeases());
  ASSERT_TRUE(a_.backend->Teardown().ok());
  EXPECT_THAT(*a_.kernel->ListRoutes(0, netlink::kWeftRouteProtocol), IsEmpty());
  EXPECT_THAT(a_.Sh("ip route"), HasSubstr("10.9.0.0/16 via 192.0.2.2 dev eth0"));
  if (nexthops()) {
    EXPECT_EQ(a_.Sh("ip nexthop show proto 87"), "");
  }
}

class HostgwDualStackNetnsTest : public HostgwNetnsTest {
 protected:
  void SetUp() override { Start(/*dual_stack=*/true); }
};

TEST_P(HostgwDualStackNetnsTest, RoutesBothFamiliesAndIPv6TrafficFlows) {
  EXPECT_FALSE(a_.Ping6("fd42:0:2::1")) << "nothing routes before Reconcile";
  ReconcileStats s = Reconcile(a_, AllLeases());
  EXPECT_EQ(s.added, nexthops() ? 3 : 2);
  EXPECT_EQ(s.errors, 0);
  Reconcile(b_, AllLeases());

  const Route want6{Net6("fd42:0:2::/64"), Ip6("fd77:1::2"), a_.local.iface_index, false};
  Route want4{Net("198.18.2.0/24"), Ip("192.0.2.2"), a_.local.iface_index, false};
  if (nexthops()) want4.nexthop_id = Ip("198.18.2.0").value();
  EXPECT_THAT(*a_.kernel->ListRoutes(0, netlink::kWeftRouteProtocol), UnorderedElementsAre(want4, want6));
  EXPECT_THAT(a_.Sh("ip -6 route show proto 87"), HasSubstr("fd42:0:2::/64 via fd77:1::2 dev eth0"));
  EXPECT_TRUE(a_.Ping6("fd42:0:2::1"));
  EXPECT_TRUE(b_.Ping6("fd42:0:1::1"));
  EXPECT_TRUE(a_.Ping("198.18.2.1")) << "IPv4 still works beside it";
  EXPECT_EQ(Reconcile(a_, AllLeases()).changes(), 0);
}

TEST_P(HostgwDualStackNetnsTest, RepairsIPv6DriftRemovesDepartedAndTearsDown) {
  Reconcile(a_, AllLeases());
  Reconcile(b_, AllLeases());
  a_.Sh("ip -6 route del fd42:0:2::/64");
  EXPECT_FALSE(a_.Ping6("fd42:0:2::1")) << "the route was really gone";
  EXPECT_EQ(Reconcile(a_, AllLeases()).added, 1);
  EXPECT_TRUE(a_.Ping6("fd42:0:2::1"));

  Reconcile(a_, {a_.AsPeer()});  // b left
  EXPECT_EQ(a_.Sh("ip -6 route show proto 87"), "");
  EXPECT_FALSE(a_.Ping6("fd42:0:2::1"));

  Reconcile(a_, AllLeases());
  ASSERT_TRUE(a_.backend->Teardown().ok());
  EXPECT_THAT(*a_.kernel->ListRoutes(0, netlink::kWeftRouteProtocol), IsEmpty());
  EXPECT_EQ(a_.Sh("ip -6 route show proto 87"), "");
}

std::string KernelName(const ::testing::TestParamInfo<bool>& p) {
  return p.param ? "NexthopObjects" : "PlainRoutes";
}
INSTANTIATE_TEST_SUITE_P(Kernel, HostgwNetnsTest, ::testing::Bool(), KernelName);
INSTANTIATE_TEST_SUITE_P(Kernel, HostgwDualStackNetnsTest, ::testing::Bool(), KernelName);

}  // namespace
}  // namespace weft::agent
