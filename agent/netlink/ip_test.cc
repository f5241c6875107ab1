#include "agent/netlink/ip.h"

#include <sys/socket.h>

#include <set>

#include "absl/container/flat_hash_set.h"
#include "agent/netlink/test_literals.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace weft::netlink {
namespace {

using test_literals::Ip;
using test_literals::Ip6;
using test_literals::Net;
using test_literals::Net6;

TEST(IPAddrTest, HoldsEitherFamily) {
  const IPAddr v4 = Ip("192.0.2.1");
  const IPAddr v6 = Ip6("fd77:1::1");
  EXPECT_FALSE(v4.is_v6());
  EXPECT_TRUE(v6.is_v6());
  EXPECT_EQ(v4.family(), AF_INET);
  EXPECT_EQ(v6.family(), AF_INET6);
  EXPECT_EQ(v4.v4(), Ip("192.0.2.1"));
  EXPECT_EQ(v6.v6(), Ip6("fd77:1::1"));
  EXPECT_EQ(v4.ToString(), "192.0.2.1");
  EXPECT_EQ(v6.ToString(), "fd77:1::1");
  EXPECT_EQ(IPAddr(), Ip("0.0.0.0"));
  EXPECT_TRUE(IPAddr().IsUnspecified());
  EXPECT_TRUE(IPAddr(IPv6Addr()).IsUnspecified());
  EXPECT_FALSE(v6.IsUnspecified());
}

TEST(IPAddrTest, FamiliesNeverCompareEqualAndIPv4SortsFirst) {
  // ::c000:201 holds the same 32 bits as 192.0.2.1.
  const IPAddr v4 = Ip("192.0.2.1");
  const IPAddr v6 = IPv6Addr::FromUint128(Ip("192.0.2.1").value());
  EXPECT_NE(v4, v6);
  EXPECT_LT(v4, v6);
  EXPECT_LT(IPAddr(Ip("255.255.255.255")), IPAddr(IPv6Addr()));
  absl::flat_hash_set<IPAddr> set = {v4, v6, v4};
  EXPECT_EQ(set.size(), 2u);
  std::set<IPAddr> ordered = {v6, v4};
  EXPECT_EQ(*ordered.begin(), v4);
}

TEST(IPAddrTest, LinkLocalIsFe80Slash10Only) {
  EXPECT_TRUE(IPAddr(Ip6("fe80::1")).IsLinkLocal());
  EXPECT_TRUE(IPAddr(Ip6("febf:ffff::1")).IsLinkLocal());
  EXPECT_FALSE(IPAddr(Ip6("fec0::1")).IsLinkLocal());
  EXPECT_FALSE(IPAddr(Ip6("fd77:1::1")).IsLinkLocal());
  EXPECT_FALSE(IPAddr(Ip("169.254.1.1")).IsLinkLocal()) << "IPv4 link-local addresses are nobody's special case";
}

TEST(IPPrefixTest, HoldsEitherFamily) {
  const IPPrefix v4 = Net("198.18.2.0/24");
  const IPPrefix v6 = Net6("fd42:0:2::/64");
  EXPECT_EQ(v4.family(), AF_INET);
  EXPECT_EQ(v6.family(), AF_INET6);
  EXPECT_EQ(v4.network(), Ip("198.18.2.0"));
  EXPECT_EQ(v6.network(), Ip6("fd42:0:2::"));
  EXPECT_EQ(v6.prefix_len(), 64);
  EXPECT_EQ(v6.v6(), Net6("fd42:0:2::/64"));
  EXPECT_EQ(v6.ToString(), "fd42:0:2::/64");
  EXPECT_EQ(IPPrefix(), Net("0.0.0.0/0"));
  EXPECT_LT(v4, v6);
  absl::flat_hash_set<IPPrefix> set = {v4, v6, Net("198.18.2.0/25")};
  EXPECT_EQ(set.size(), 3u);
}

TEST(IPPrefixTest, MakeChecksLikeTheFamilyTypes) {
  EXPECT_EQ(*IPPrefix::Make(Ip6("fd42:0:2::"), 64), IPPrefix(Net6("fd42:0:2::/64")));
  EXPECT_EQ(*IPPrefix::Make(Ip("198.18.2.0"), 24), IPPrefix(Net("198.18.2.0/24")));
  EXPECT_TRUE(absl::IsInvalidArgument(IPPrefix::Make(Ip6("fd42:0:2::1"), 64).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(IPPrefix::Make(Ip("198.18.2.0"), 33).status()));
  EXPECT_TRUE(IPPrefix::Make(Ip6("fd42:0:2::1"), 128).ok());
}

}  // namespace
}  // namespace weft::netlink
