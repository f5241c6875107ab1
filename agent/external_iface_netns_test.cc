// FindExternalInterface against a real kernel's address flags, in a namespace.

#include "agent/external_iface.h"

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

}  // namespace
}  // namespace weft::agent
