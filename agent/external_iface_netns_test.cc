// FindExternalInterface against a real kernel's address flags, in a namespace.

#include "agent/external_iface.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/netns/netns.h"

namespace weft::agent {
namespace {

using weft::testing::NetNs;

TEST(ExternalIfaceNetnsTest, ReadsTheNamespacesAddressesAndFlags) {
  auto ns = NetNs::Create("eif");
  ASSERT_TRUE(ns.ok()) << ns.status();
  // A deprecated address (preferred_lft 0) is listed first and must be passed over.
  absl::StatusOr<std::string> out = (*ns)->Sh(
      "ip link add ext0 mtu 1400 type veth peer name ext0p && ip link set ext0p up && ip link set ext0 up && "
      "ip addr add 192.0.2.10/24 dev ext0 && "
      "ip -6 addr add 2001:db8:1::5/64 dev ext0 nodad preferred_lft 0 && "
      "ip -6 addr add 2001:db8:2::6/48 dev ext0 nodad && "
      "ip route add default via 192.0.2.1");
  ASSERT_TRUE(out.ok()) << out.status();

  auto e = (*ns)->Run([] { return FindExternalInterface({}); });
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->name, "ext0");
  EXPECT_EQ(e->mtu, 1400);
  EXPECT_GT(e->index, 0);
  EXPECT_EQ(e->address.ToString(), "192.0.2.10");
  ASSERT_TRUE(e->ipv6_address.has_value());
  EXPECT_EQ(e->ipv6_address->ToString(), "2001:db8:2::6");
  EXPECT_EQ(e->ipv6_network->ToString(), "2001:db8:2::/48");

  ASSERT_TRUE((*ns)->Sh("ip -6 addr del 2001:db8:2::6/48 dev ext0").ok());
  e = (*ns)->Run([] { return FindExternalInterface({}); });
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_FALSE(e->ipv6_address.has_value()) << "only a deprecated one is left";
  EXPECT_TRUE(absl::IsFailedPrecondition(RequireIPv6(*e)));
}

// --iface-can-reach: the interface the route to the address leaves by, for
// either family, whichever interface has the default route.
TEST(ExternalIfaceNetnsTest, IfaceCanReachFollowsTheRoute) {
  auto ns = NetNs::Create("eifr");
  ASSERT_TRUE(ns.ok()) << ns.status();
  absl::StatusOr<std::string> out = (*ns)->Sh(
      "for i in 0 1; do ip link add ext$i type veth peer name ext${i}p && ip link set ext${i}p up && "
      "ip link set ext$i up; done && "
      "ip addr add 192.0.2.10/24 dev ext0 && ip addr add 198.51.100.7/24 dev ext1 && "
      "ip -6 addr add 2001:db8:1::5/64 dev ext0 nodad && ip -6 addr add 2001:db8:2::6/64 dev ext1 nodad && "
      "ip route add default via 192.0.2.1 && ip route add 203.0.113.0/24 via 198.51.100.1 && "
      "ip -6 route add 2001:db8:99::/48 via 2001:db8:2::1");
  ASSERT_TRUE(out.ok()) << out.status();

  auto pick = [&](const std::string& target, bool ipv6_only = false) {
    return (*ns)->Run([&] {
      InterfaceSelector sel;
      sel.can_reach = target;
      sel.ipv6_only = ipv6_only;
      return FindExternalInterface(sel);
    });
  };
  EXPECT_EQ(pick("203.0.113.9")->name, "ext1") << "the specific route, not the default";
  EXPECT_EQ(pick("203.0.113.9")->address.ToString(), "198.51.100.7");
  EXPECT_EQ(pick("198.18.0.9")->name, "ext0") << "the default route (connect() sends nothing)";
  auto v6 = pick("2001:db8:99::1", /*ipv6_only=*/true);
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->name, "ext1");
  EXPECT_EQ(v6->ipv6_address->ToString(), "2001:db8:2::6");
  EXPECT_EQ(pick("2001:db8:1::9")->name, "ext0") << "IPv6 target, IPv4 network: the interface, its IPv4";

  auto none = pick("2001:db8:77::1");  // no IPv6 default route
  EXPECT_TRUE(absl::IsUnavailable(none.status())) << none.status();
  EXPECT_THAT(std::string(none.status().message()), ::testing::HasSubstr("no route to 2001:db8:77::1"));
  auto bad = pick("not-an-ip");
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status())) << bad.status();
  // --iface wins over --iface-can-reach.
  auto both = (*ns)->Run([] {
    InterfaceSelector sel;
    sel.ifaces = {"ext1"};
    sel.can_reach = "192.0.2.99";
    return FindExternalInterface(sel);
  });
  EXPECT_EQ(both->name, "ext1");
}

}  // namespace
}  // namespace weft::agent
