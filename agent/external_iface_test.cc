#include "agent/external_iface.h"

#include <linux/if_addr.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace weft::agent {
namespace {

using ::testing::HasSubstr;

IPv6Addr V6(const char* s) { return *IPv6Addr::Parse(s); }

HostAddresses::IPv6 Addr6(const char* iface, const char* addr, int prefix_len, uint32_t flags, int scope = 0) {
  HostAddresses::IPv6 a;
  a.iface = iface;
  a.addr = V6(addr);
  a.prefix_len = prefix_len;
  a.scope = scope;
  a.flags = flags;
  return a;
}

// lo, eth0 (default route) and eth1, each with IPv4; IPv6 on eth0 and eth1.
HostAddresses Host() {
  HostAddresses h;
  h.ipv4 = {{"lo", *IPv4Addr::Parse("127.0.0.1"), 8, true, true},
            {"eth0", *IPv4Addr::Parse("192.0.2.10"), 24, true, false},
            {"eth1", *IPv4Addr::Parse("198.51.100.7"), 24, true, false}};
  h.ipv6 = {Addr6("lo", "::1", 128, IFA_F_PERMANENT, 0x10),
            Addr6("eth0", "fe80::1", 64, IFA_F_PERMANENT, 0x20),
            Addr6("eth0", "2001:db8:0:1::10", 64, IFA_F_PERMANENT),
            Addr6("eth1", "2001:db8:0:2::7", 64, IFA_F_PERMANENT)};
  h.default_route_iface = "eth0";
  return h;
}

TEST(ExternalIfaceTest, FindsTheDefaultRouteInterfaceWithBothFamilies) {
  auto e = ChooseExternalInterface(Host(), {});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->name, "eth0");
  EXPECT_EQ(e->address.ToString(), "192.0.2.10");
  EXPECT_EQ(e->network.ToString(), "192.0.2.0/24");
  EXPECT_EQ(e->public_ip.ToString(), "192.0.2.10");
  ASSERT_TRUE(e->ipv6_address.has_value());
  EXPECT_EQ(e->ipv6_address->ToString(), "2001:db8:0:1::10");
  EXPECT_EQ(e->ipv6_network->ToString(), "2001:db8:0:1::/64");
  EXPECT_EQ(*e->public_ipv6, *e->ipv6_address);
  EXPECT_TRUE(RequireIPv6(*e).ok());
}

TEST(ExternalIfaceTest, IPv4OnlyInterfaceStillWorksUntilIPv6IsRequired) {
  HostAddresses h = Host();
  h.ipv6.erase(h.ipv6.begin() + 2);  // eth0's global address
  auto e = ChooseExternalInterface(h, {});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->name, "eth0");
  EXPECT_FALSE(e->ipv6_address.has_value()) << "fe80:: is link-local";
  EXPECT_FALSE(e->public_ipv6.has_value());
  absl::Status s = RequireIPv6(*e);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("interface eth0 has no usable global IPv6 address"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("--public-ipv6"));
}

TEST(ExternalIfaceTest, SkipsUnsettledAddressesAndPrefersPermanentOverTemporary) {
  HostAddresses h = Host();
  h.ipv6 = {Addr6("eth0", "2001:db8:0:1::a", 64, IFA_F_TENTATIVE | IFA_F_PERMANENT),
            Addr6("eth0", "2001:db8:0:1::b", 64, IFA_F_DEPRECATED),
            Addr6("eth0", "2001:db8:0:1::c", 64, IFA_F_DADFAILED | IFA_F_PERMANENT),
            Addr6("eth0", "2001:db8:0:1::d", 64, IFA_F_TEMPORARY),
            Addr6("eth0", "2001:db8:0:1::e", 64, 0),  // SLAAC
            Addr6("eth0", "2001:db8:0:9ab::f", 56, IFA_F_PERMANENT)};
  auto e = ChooseExternalInterface(h, {});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->ipv6_address->ToString(), "2001:db8:0:9ab::f");
  EXPECT_EQ(e->ipv6_network->ToString(), "2001:db8:0:900::/56");

  h.ipv6.pop_back();
  e = ChooseExternalInterface(h, {});
  EXPECT_EQ(e->ipv6_address->ToString(), "2001:db8:0:1::e") << "a SLAAC address before a temporary one";
  h.ipv6.pop_back();
  e = ChooseExternalInterface(h, {});
  EXPECT_EQ(e->ipv6_address->ToString(), "2001:db8:0:1::d") << "a temporary one rather than none";
  h.ipv6.pop_back();
  e = ChooseExternalInterface(h, {});
  EXPECT_FALSE(e->ipv6_address.has_value());
}

TEST(ExternalIfaceTest, IfaceMatchesNamesAndAddressesOfBothFamilies) {
  InterfaceSelector sel;
  sel.ifaces = {"eth1"};
  EXPECT_EQ(ChooseExternalInterface(Host(), sel)->name, "eth1");
  sel.ifaces = {"198.51.100.7"};
  EXPECT_EQ(ChooseExternalInterface(Host(), sel)->name, "eth1");

  // An IPv6 address, in any spelling, picks its interface and is the one published.
  HostAddresses h = Host();
  h.ipv6.push_back(Addr6("eth1", "2001:db8:0:2::70", 64, IFA_F_PERMANENT));
  sel.ifaces = {"nope", "2001:db8:0:2:0:0:0:70"};
  auto e = ChooseExternalInterface(h, sel);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->name, "eth1");
  EXPECT_EQ(e->address.ToString(), "198.51.100.7");
  EXPECT_EQ(e->ipv6_address->ToString(), "2001:db8:0:2::70");
  EXPECT_EQ(e->public_ipv6->ToString(), "2001:db8:0:2::70");

  // An interface with no IPv4 address cannot be chosen, even by its IPv6 address.
  h.ipv6.push_back(Addr6("eth9", "2001:db8:0:9::9", 64, IFA_F_PERMANENT));
  sel.ifaces = {"2001:db8:0:9::9"};
  e = ChooseExternalInterface(h, sel);
  EXPECT_TRUE(absl::IsNotFound(e.status())) << e.status();
  EXPECT_THAT(std::string(e.status().message()), HasSubstr("no interface with an IPv4 address matches"));

  // Nor by an address it cannot use yet (DAD still running).
  h.ipv6.push_back(Addr6("eth1", "2001:db8:0:2::71", 64, IFA_F_TENTATIVE | IFA_F_PERMANENT));
  sel.ifaces = {"2001:db8:0:2::71"};
  e = ChooseExternalInterface(h, sel);
  EXPECT_TRUE(absl::IsNotFound(e.status())) << e.status();
  EXPECT_THAT(std::string(e.status().message()), HasSubstr("not tentative"));
}

TEST(ExternalIfaceTest, IfaceRegexMatchesIPv6Addresses) {
  InterfaceSelector sel;
  sel.iface_regexes = {"^2001:db8:0:2:"};
  auto e = ChooseExternalInterface(Host(), sel);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->name, "eth1");
  EXPECT_EQ(e->ipv6_address->ToString(), "2001:db8:0:2::7");

  sel.iface_regexes = {"^fe80:"};  // link-local addresses are never chosen
  EXPECT_TRUE(absl::IsNotFound(ChooseExternalInterface(Host(), sel).status()));
  sel.iface_regexes = {"[unclosed"};
  EXPECT_TRUE(absl::IsInvalidArgument(ChooseExternalInterface(Host(), sel).status()));
}

TEST(ExternalIfaceTest, PublicIPv6OverridesTheInterfacesAddress) {
  InterfaceSelector sel;
  sel.public_ipv6 = "2001:db8:ffff::1";
  auto e = ChooseExternalInterface(Host(), sel);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->ipv6_address->ToString(), "2001:db8:0:1::10") << "the local address stays";
  EXPECT_EQ(e->public_ipv6->ToString(), "2001:db8:ffff::1");

  // Enough for dual-stack on an interface with no global IPv6 address of its own.
  HostAddresses h = Host();
  h.ipv6.clear();
  e = ChooseExternalInterface(h, sel);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_FALSE(e->ipv6_address.has_value());
  EXPECT_TRUE(RequireIPv6(*e).ok());

  sel.public_ipv6 = "fe80::1";
  EXPECT_TRUE(absl::IsInvalidArgument(ChooseExternalInterface(Host(), sel).status()));
}

TEST(ExternalIfaceTest, PublicIPv6IsValidated) {
  EXPECT_EQ(ParsePublicIPv6("2001:db8::1")->ToString(), "2001:db8::1");
  EXPECT_EQ(ParsePublicIPv6("fd00:12::1")->ToString(), "fd00:12::1");
  for (const char* bad : {"", "10.0.0.1", "2001:db8::1/64", "[2001:db8::1]", "::", "::1", "fe80::1", "febf::1",
                          "ff02::1", "::ffff:10.0.0.1"}) {
    absl::StatusOr<IPv6Addr> ip = ParsePublicIPv6(bad);
    EXPECT_TRUE(absl::IsInvalidArgument(ip.status())) << bad << ": " << ip.status();
    EXPECT_THAT(std::string(ip.status().message()), HasSubstr("--public-ipv6")) << bad;
  }
  EXPECT_THAT(std::string(ParsePublicIPv6("fe80::1").status().message()), HasSubstr("link-local"));
}

TEST(ExternalIfaceTest, ParsesProcNetIfInet6) {
  const std::vector<HostAddresses::IPv6> got = ParseIfInet6(
      "fe8000000000000000fc00fffe000001 04 40 20 80     eth0\n"
      "00000000000000000000000000000001 01 80 10 80       lo\n"
      "20010db8000000010000000000000010 04 40 00 801     eth0\n"  // flags above 0xff (IFA_F_NOPREFIXROUTE)
      "not an address line\n"
      "20010db8000000010000000000000010 04 81 00 80     eth0\n");  // prefix 129: skipped
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].iface, "eth0");
  EXPECT_EQ(got[0].addr.ToString(), "fe80::fc:ff:fe00:1");
  EXPECT_EQ(got[0].prefix_len, 64);
  EXPECT_EQ(got[0].scope, 0x20);
  EXPECT_EQ(got[0].flags, uint32_t{IFA_F_PERMANENT});
  EXPECT_EQ(got[1].addr.ToString(), "::1");
  EXPECT_EQ(got[1].prefix_len, 128);
  EXPECT_EQ(got[2].addr.ToString(), "2001:db8:0:1::10");
  EXPECT_EQ(got[2].scope, 0);
  EXPECT_EQ(got[2].flags, 0x801u);
}

// An IPv6-only host: eth0 has no IPv4 address, the IPv6 default route is via eth1.
HostAddresses V6OnlyHost() {
  HostAddresses h;
  h.ipv4 = {{"lo", *IPv4Addr::Parse("127.0.0.1"), 8, true, true}};
  h.ipv6 = {Addr6("lo", "::1", 128, IFA_F_PERMANENT, 0x10),
            Addr6("eth0", "fe80::1", 64, IFA_F_PERMANENT, 0x20),
            Addr6("eth0", "2001:db8:0:1::10", 64, IFA_F_PERMANENT),
            Addr6("eth1", "2001:db8:0:2::7", 64, 0),  // SLAAC first ...
            Addr6("eth1", "2001:db8:0:2::8", 64, IFA_F_PERMANENT)};  // ... a configured one wins
  h.ipv6[0].loopback = true;
  h.default_route6_iface = "eth1";
  return h;
}

TEST(ExternalIfaceTest, IPv6OnlyNetworkTakesTheIPv6DefaultRouteInterface) {
  InterfaceSelector sel;
  sel.ipv6_only = true;
  auto e = ChooseExternalInterface(V6OnlyHost(), sel);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->name, "eth1");
  EXPECT_FALSE(e->ipv4);
  EXPECT_EQ(e->public_ip, IPv4Addr());
  EXPECT_EQ(e->ipv6_address->ToString(), "2001:db8:0:2::8");
  EXPECT_EQ(e->ipv6_network->ToString(), "2001:db8:0:2::/64");
  EXPECT_EQ(*e->public_ipv6, *e->ipv6_address);

  // Without a default route: the first up interface with a usable address.
  HostAddresses h = V6OnlyHost();
  h.default_route6_iface.clear();
  EXPECT_EQ(ChooseExternalInterface(h, sel)->name, "eth0");
  h.ipv6[2].up = false;  // eth0 down
  h.ipv6[1].up = false;
  EXPECT_EQ(ChooseExternalInterface(h, sel)->name, "eth1");
  // A host whose interfaces carry only IPv4 cannot run an IPv6-only network.
  auto none = ChooseExternalInterface(Host(), sel);
  ASSERT_TRUE(none.ok());  // Host() has IPv6 on eth0: taken, IPv4 unused
  EXPECT_EQ(none->name, "eth0");
  HostAddresses v4only = Host();
  v4only.ipv6.resize(2);  // lo and eth0's link-local
  auto missing = ChooseExternalInterface(v4only, sel);
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("IPv6-only"));
}

TEST(ExternalIfaceTest, IPv6OnlyNetworkHonoursIfaceAndRegexAndPublicIPv6) {
  InterfaceSelector sel;
  sel.ipv6_only = true;
  sel.ifaces = {"eth0"};
  EXPECT_EQ(ChooseExternalInterface(V6OnlyHost(), sel)->ipv6_address->ToString(), "2001:db8:0:1::10");
  sel.ifaces = {"2001:db8:0:2::7"};  // an address names itself, not the interface's best
  EXPECT_EQ(ChooseExternalInterface(V6OnlyHost(), sel)->ipv6_address->ToString(), "2001:db8:0:2::7");
  sel.ifaces = {"192.0.2.10"};  // an IPv4 address names its interface
  EXPECT_EQ(ChooseExternalInterface(Host(), sel)->ipv6_address->ToString(), "2001:db8:0:1::10");
  sel.ifaces = {"fe80::1"};  // link-local: not usable
  EXPECT_TRUE(absl::IsNotFound(ChooseExternalInterface(V6OnlyHost(), sel).status()));

  sel.ifaces.clear();
  sel.iface_regexes = {"^eth1$"};
  EXPECT_EQ(ChooseExternalInterface(V6OnlyHost(), sel)->ipv6_address->ToString(), "2001:db8:0:2::8");
  sel.iface_regexes = {"::1\\d$"};
  EXPECT_EQ(ChooseExternalInterface(V6OnlyHost(), sel)->name, "eth0");
  sel.iface_regexes = {"("};
  EXPECT_TRUE(absl::IsInvalidArgument(ChooseExternalInterface(V6OnlyHost(), sel).status()));

  sel.iface_regexes.clear();
  sel.public_ipv6 = "2001:db8:ffff::1";
  EXPECT_EQ(ChooseExternalInterface(V6OnlyHost(), sel)->public_ipv6->ToString(), "2001:db8:ffff::1");
  sel.public_ipv6 = "fe80::9";
  EXPECT_TRUE(absl::IsInvalidArgument(ChooseExternalInterface(V6OnlyHost(), sel).status()));
}

TEST(ExternalIfaceTest, ParsesProcNetIPv6Route) {
  const std::string unreachable =
      "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
      "00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n";
  const std::string link =
      "20010db8000000010000000000000000 40 00000000000000000000000000000000 00 "
      "00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n";
  const std::string dflt =
      "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
      "20010db8000000010000000000000001 00000400 00000001 00000000 00000003     eth0\n";
  EXPECT_EQ(ParseIPv6DefaultRouteIface(link + unreachable + dflt), "eth0");
  EXPECT_EQ(ParseIPv6DefaultRouteIface(link + unreachable), "");
  EXPECT_EQ(ParseIPv6DefaultRouteIface("garbage\n\n"), "");
}

TEST(ExternalIfaceTest, FindsThisHostsInterface) {
  // Whatever this machine has: the kernel-reading half runs and agrees with itself.
  auto e = FindExternalInterface({});
  if (!e.ok()) GTEST_SKIP() << e.status();
  EXPECT_FALSE(e->name.empty());
  EXPECT_GT(e->index, 0);
  EXPECT_GE(e->mtu, 68);
}

}  // namespace
}  // namespace weft::agent
