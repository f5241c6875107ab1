#include "common/net.h"

#include <sstream>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace weft {
namespace {

using ::testing::HasSubstr;

template <typename T>
T Must(absl::StatusOr<T> v) {
  EXPECT_TRUE(v.ok()) << v.status();
  return *std::move(v);
}

IPv4Addr V4(absl::string_view s) { return Must(IPv4Addr::Parse(s)); }
IPv6Addr V6(absl::string_view s) { return Must(IPv6Addr::Parse(s)); }
IPv4Net N4(absl::string_view s) { return Must(IPv4Net::Parse(s)); }
IPv6Net N6(absl::string_view s) { return Must(IPv6Net::Parse(s)); }

void ExpectInvalid(const absl::Status& st, absl::string_view substr) {
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr(std::string(substr)));
}

TEST(IPv4AddrTest, ParsesAndFormats) {
  EXPECT_EQ(V4("10.1.19.7").value(), 0x0a011307u);
  EXPECT_EQ(V4("0.0.0.0").value(), 0u);
  EXPECT_EQ(V4("255.255.255.255").value(), 0xffffffffu);
  for (const char* s : {"10.1.19.7", "0.0.0.0", "255.255.255.255", "192.168.64.3", "1.0.0.10"}) {
    EXPECT_EQ(V4(s).ToString(), s);
  }
  EXPECT_EQ(IPv4Addr::FromUint32(0xc0a80001).ToString(), "192.168.0.1");
  EXPECT_EQ(IPv4Addr().value(), 0u);
}

TEST(IPv4AddrTest, RejectsAnythingButAStrictDottedQuad) {
  for (const char* s : {"", "1.2.3", "1.2.3.4.5", "1.2.3.256", "1.2.3.-1", "01.2.3.4", "1.2.3.04",
                        "1..3.4", "1.2.3.", ".1.2.3", " 1.2.3.4", "1.2.3.4 ", "1.2.3.4/24", "0x1.2.3.4",
                        "1.2.3.1000", "a.b.c.d", "::1", "1.2.3.+4"}) {
    EXPECT_FALSE(IPv4Addr::Parse(s).ok()) << s;
  }
  ExpectInvalid(IPv4Addr::Parse("1.2.3.256").status(), "256 is greater than 255");
  ExpectInvalid(IPv4Addr::Parse("1.2.3").status(), "four dot-separated");
  ExpectInvalid(IPv4Addr::Parse("01.2.3.4").status(), "leading zeros");
  // Control bytes in the input are escaped in the message.
  ExpectInvalid(IPv4Addr::Parse(absl::string_view("1.2.3.\n", 7)).status(), "\"1.2.3.\\n\"");
}

TEST(IPv4AddrTest, Compares) {
  EXPECT_LT(V4("10.0.0.9"), V4("10.0.0.10"));
  EXPECT_LT(V4("9.255.255.255"), V4("10.0.0.0"));
  EXPECT_EQ(V4("10.0.0.1"), IPv4Addr::FromUint32(0x0a000001));
  EXPECT_NE(V4("10.0.0.1"), V4("10.0.0.2"));
  EXPECT_GE(V4("10.0.0.2"), V4("10.0.0.2"));
  EXPECT_GT(V4("10.0.0.3"), V4("10.0.0.2"));
  EXPECT_LE(V4("10.0.0.2"), V4("10.0.0.3"));
  absl::flat_hash_set<IPv4Addr> set = {V4("10.0.0.1"), V4("10.0.0.1"), V4("10.0.0.2")};
  EXPECT_EQ(set.size(), 2u);
}

TEST(IPv4NetTest, ParsesAndFormats) {
  IPv4Net n = N4("10.1.19.0/24");
  EXPECT_EQ(n.network(), V4("10.1.19.0"));
  EXPECT_EQ(n.prefix_len(), 24);
  EXPECT_EQ(n.broadcast(), V4("10.1.19.255"));
  EXPECT_EQ(n.size(), 256u);
  EXPECT_EQ(n.ToString(), "10.1.19.0/24");
  EXPECT_EQ(n.FlannelKey(), "10.1.19.0-24");

  EXPECT_EQ(N4("0.0.0.0/0").size(), uint64_t{1} << 32);
  EXPECT_EQ(N4("0.0.0.0/0").broadcast(), V4("255.255.255.255"));
  EXPECT_EQ(N4("10.1.2.3/32").size(), 1u);
  EXPECT_EQ(N4("10.1.2.3/32").broadcast(), V4("10.1.2.3"));
  EXPECT_EQ(N4("10.1.2.2/31").broadcast(), V4("10.1.2.3"));
  EXPECT_EQ(N4("10.0.0.0/8").broadcast(), V4("10.255.255.255"));
  EXPECT_EQ(IPv4Net().ToString(), "0.0.0.0/0");
}

TEST(IPv4NetTest, RejectsBadNetworks) {
  for (const char* s : {"", "10.1.19.0", "10.1.19.0/", "/24", "10.1.19.0/33", "10.1.19.0/-1", "10.1.19.0/024",
                        "10.1.19.0/2x", "10.1.19.0/24/24", "10.1.19.0 /24", "10.1.19.0/ 24", "10.1.19/24",
                        "10.1.19.0-24", "10.1.19.1/24", "10.1.19.0/+24", "10.1.19.0/1000"}) {
    EXPECT_FALSE(IPv4Net::Parse(s).ok()) << s;
  }
  ExpectInvalid(IPv4Net::Parse("10.1.19.0/33").status(), "prefix length 33 is greater than 32");
  ExpectInvalid(IPv4Net::Parse("10.1.19.0").status(), "ADDRESS/PREFIX-LENGTH");
  ExpectInvalid(IPv4Net::Parse("10.1.19.0/x").status(), "prefix length \"x\" is not a decimal number");
  ExpectInvalid(IPv4Net::Parse("10.1.300.0/24").status(), "octet 300 is greater than 255");
  const absl::Status host = IPv4Net::Parse("10.1.19.7/24").status();
  ExpectInvalid(host, "host bits are set");
  ExpectInvalid(host, "10.1.19.0");
  ExpectInvalid(host, "\"10.1.19.7/24\"");
}

TEST(IPv4NetTest, ParseLooseClearsHostBits) {
  EXPECT_EQ(Must(IPv4Net::ParseLoose("10.1.19.7/24")), N4("10.1.19.0/24"));
  EXPECT_EQ(Must(IPv4Net::ParseLoose("10.1.19.1/24")).ToString(), "10.1.19.0/24");
  EXPECT_EQ(Must(IPv4Net::ParseLoose("255.255.255.255/0")), N4("0.0.0.0/0"));
  EXPECT_EQ(Must(IPv4Net::ParseLoose("10.1.19.7/32")), N4("10.1.19.7/32"));
  EXPECT_FALSE(IPv4Net::ParseLoose("10.1.19.7/33").ok());
  EXPECT_FALSE(IPv4Net::ParseLoose("10.1.19.7").ok());
}

TEST(IPv4NetTest, MakeChecksPrefixAndHostBits) {
  EXPECT_EQ(Must(IPv4Net::Make(V4("10.1.0.0"), 16)), N4("10.1.0.0/16"));
  ExpectInvalid(IPv4Net::Make(V4("10.1.0.1"), 16).status(), "host bits are set");
  ExpectInvalid(IPv4Net::Make(V4("10.1.0.0"), 33).status(), "prefix length 33");
  ExpectInvalid(IPv4Net::Make(V4("10.1.0.0"), -1).status(), "prefix length -1");
  EXPECT_EQ(Must(IPv4Net::MakeLoose(V4("10.1.2.3"), 16)), N4("10.1.0.0/16"));
  EXPECT_FALSE(IPv4Net::MakeLoose(V4("10.1.2.3"), 40).ok());
}

TEST(IPv4NetTest, Contains) {
  IPv4Net n = N4("10.1.0.0/16");
  EXPECT_TRUE(n.Contains(V4("10.1.0.0")));
  EXPECT_TRUE(n.Contains(V4("10.1.255.255")));
  EXPECT_TRUE(n.Contains(V4("10.1.19.7")));
  EXPECT_FALSE(n.Contains(V4("10.2.0.0")));
  EXPECT_FALSE(n.Contains(V4("10.0.255.255")));
  EXPECT_TRUE(N4("0.0.0.0/0").Contains(V4("255.255.255.255")));
  EXPECT_TRUE(N4("10.1.2.3/32").Contains(V4("10.1.2.3")));
  EXPECT_FALSE(N4("10.1.2.3/32").Contains(V4("10.1.2.4")));

  EXPECT_TRUE(n.Contains(n));
  EXPECT_TRUE(n.Contains(N4("10.1.19.0/24")));
  EXPECT_TRUE(n.Contains(N4("10.1.255.255/32")));
  EXPECT_FALSE(n.Contains(N4("10.0.0.0/8")));  // bigger, though it holds n
  EXPECT_FALSE(n.Contains(N4("10.2.0.0/24")));
  EXPECT_TRUE(N4("0.0.0.0/0").Contains(n));
}

TEST(IPv4NetTest, Overlaps) {
  IPv4Net n = N4("10.1.0.0/16");
  EXPECT_TRUE(n.Overlaps(n));
  EXPECT_TRUE(n.Overlaps(N4("10.0.0.0/8")));
  EXPECT_TRUE(N4("10.0.0.0/8").Overlaps(n));
  EXPECT_TRUE(n.Overlaps(N4("10.1.19.0/24")));
  EXPECT_FALSE(n.Overlaps(N4("10.2.0.0/16")));
  EXPECT_FALSE(n.Overlaps(N4("10.0.255.0/24")));
  EXPECT_FALSE(N4("10.1.2.2/31").Overlaps(N4("10.1.2.4/31")));
  EXPECT_TRUE(N4("0.0.0.0/0").Overlaps(N4("192.168.0.0/16")));
}

TEST(IPv4NetTest, Next) {
  EXPECT_EQ(Must(N4("10.1.19.0/24").Next()), N4("10.1.20.0/24"));
  EXPECT_EQ(Must(N4("10.1.255.0/24").Next()), N4("10.2.0.0/24"));
  EXPECT_EQ(Must(N4("10.1.2.3/32").Next()), N4("10.1.2.4/32"));
  EXPECT_EQ(Must(N4("10.0.0.0/8").Next()), N4("11.0.0.0/8"));
  EXPECT_EQ(Must(N4("0.0.0.0/1").Next()), N4("128.0.0.0/1"));
  EXPECT_EQ(N4("255.255.255.0/24").Next().status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(N4("255.255.255.255/32").Next().status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(N4("0.0.0.0/0").Next().status().code(), absl::StatusCode::kOutOfRange);

  // Walking a pool visits every subnet once.
  IPv4Net pool = N4("10.1.0.0/22");
  int count = 0;
  for (IPv4Net s = N4("10.1.0.0/24"); pool.Contains(s); s = Must(s.Next())) ++count;
  EXPECT_EQ(count, 4);
}

TEST(IPv4NetTest, FlannelKey) {
  EXPECT_EQ(Must(IPv4Net::ParseFlannelKey("10.1.19.0-24")), N4("10.1.19.0/24"));
  EXPECT_EQ(N4("10.12.13.0/24").FlannelKey(), "10.12.13.0-24");
  EXPECT_EQ(Must(IPv4Net::ParseFlannelKey(N4("0.0.0.0/0").FlannelKey())), N4("0.0.0.0/0"));
  for (const char* s : {"10.1.19.0/24", "10.1.19.0", "10.1.19.0-", "10.1.19.1-24", "10.1.19.0-33",
                        "10.1.19.0--24", "10.1.19.0-24&fd00::-56"}) {
    EXPECT_FALSE(IPv4Net::ParseFlannelKey(s).ok()) << s;
  }
  ExpectInvalid(IPv4Net::ParseFlannelKey("10.1.19.0/24").status(), "ADDRESS-PREFIX-LENGTH");
  ExpectInvalid(IPv4Net::ParseFlannelKey("10.1.19.1-24").status(), "host bits are set");
}

TEST(IPv4NetTest, OrdersAndHashes) {
  EXPECT_LT(N4("10.0.0.0/8"), N4("10.0.0.0/16"));
  EXPECT_LT(N4("10.0.0.0/16"), N4("10.1.0.0/16"));
  EXPECT_GT(N4("10.1.0.0/16"), N4("10.0.0.0/8"));
  EXPECT_LE(N4("10.1.0.0/16"), N4("10.1.0.0/16"));
  EXPECT_GE(N4("10.1.0.0/16"), N4("10.1.0.0/16"));
  EXPECT_NE(N4("10.0.0.0/8"), N4("10.0.0.0/16"));
  absl::flat_hash_set<IPv4Net> set = {N4("10.0.0.0/8"), N4("10.0.0.0/16"), N4("10.0.0.0/8")};
  EXPECT_EQ(set.size(), 2u);
}

TEST(IPv6AddrTest, ParsesAndFormatsRfc5952) {
  EXPECT_EQ(V6("::").value(), 0);
  EXPECT_EQ(V6("::1").value(), 1);
  EXPECT_EQ(V6("fd00::1").value(), absl::MakeUint128(0xfd00000000000000, 1));
  EXPECT_EQ(V6("FD00:0:0:0:0:0:0:1").ToString(), "fd00::1");
  EXPECT_EQ(V6("fd00:0012:0013:0000::").ToString(), "fd00:12:13::");
  EXPECT_EQ(V6("2001:db8:0:0:1:0:0:1").ToString(), "2001:db8::1:0:0:1");  // longest run first
  EXPECT_EQ(V6("2001:db8:0:1:1:1:1:1").ToString(), "2001:db8:0:1:1:1:1:1");  // no :: for one group
  EXPECT_EQ(V6("::ffff:10.0.0.1").ToString(), "::ffff:10.0.0.1");
  EXPECT_EQ(V6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff").value(), ~absl::uint128(0));
  EXPECT_EQ(IPv6Addr().ToString(), "::");
  EXPECT_EQ(IPv6Addr::FromUint128(absl::MakeUint128(0x20010db800000000, 0x42)).ToString(), "2001:db8::42");
}

TEST(IPv6AddrTest, Bytes) {
  std::array<uint8_t, 16> b = V6("2001:db8::1:2").ToBytes();
  EXPECT_EQ(b[0], 0x20);
  EXPECT_EQ(b[1], 0x01);
  EXPECT_EQ(b[2], 0x0d);
  EXPECT_EQ(b[3], 0xb8);
  EXPECT_EQ(b[13], 0x01);
  EXPECT_EQ(b[15], 0x02);
  EXPECT_EQ(IPv6Addr::FromBytes(b), V6("2001:db8::1:2"));
}

TEST(IPv6AddrTest, RejectsBadAddresses) {
  for (const char* s : {"", ":", ":::", "1::2::3", "fd00::1%eth0", "[fd00::1]", " ::1", "::1 ", "10.0.0.1",
                        "fd00::g", "1:2:3:4:5:6:7:8:9", "12345::", "fd00::/64"}) {
    EXPECT_FALSE(IPv6Addr::Parse(s).ok()) << s;
  }
  EXPECT_FALSE(IPv6Addr::Parse(absl::string_view("::1\0junk", 8)).ok());
  EXPECT_FALSE(IPv6Addr::Parse(std::string(100, '1')).ok());
  ExpectInvalid(IPv6Addr::Parse("1::2::3").status(), "invalid IPv6 address \"1::2::3\"");
}

TEST(IPv6AddrTest, Compares) {
  EXPECT_LT(V6("fd00::1"), V6("fd00::2"));
  EXPECT_LT(V6("fd00::ffff"), V6("fd00:0:0:1::"));  // crosses the 64-bit halves
  EXPECT_LT(V6("::ffff:ffff:ffff:ffff"), V6("0:0:0:1::"));
  EXPECT_EQ(V6("fd00::1"), V6("fd00:0::1"));
  absl::flat_hash_set<IPv6Addr> set = {V6("fd00::1"), V6("fd00::1"), V6("fd00::2")};
  EXPECT_EQ(set.size(), 2u);
}

TEST(IPv6NetTest, ParsesAndFormats) {
  IPv6Net n = N6("fd00:12:13::/56");
  EXPECT_EQ(n.prefix_len(), 56);
  EXPECT_EQ(n.network(), V6("fd00:12:13::"));
  EXPECT_EQ(n.broadcast(), V6("fd00:12:13:ff:ffff:ffff:ffff:ffff"));
  EXPECT_EQ(n.size(), absl::uint128(1) << 72);
  EXPECT_EQ(n.ToString(), "fd00:12:13::/56");
  EXPECT_EQ(n.FlannelKey(), "fd00:12:13::-56");
  EXPECT_EQ(N6("::/0").size(), ~absl::uint128(0));  // saturated
  EXPECT_EQ(N6("::/1").size(), absl::uint128(1) << 127);
  EXPECT_EQ(N6("fd00::1/128").size(), 1);
  EXPECT_EQ(N6("fd00::/64").broadcast(), V6("fd00::ffff:ffff:ffff:ffff"));
  EXPECT_EQ(IPv6Net().ToString(), "::/0");
  EXPECT_EQ(N6("FD00:0012::/32").ToString(), "fd00:12::/32");
}

TEST(IPv6NetTest, RejectsBadNetworks) {
  for (const char* s : {"fd00::", "fd00::/", "fd00::/129", "fd00::1/64", "fd00::/064", "fd00::-64",
                        "10.0.0.0/8", "fd00::/6x"}) {
    EXPECT_FALSE(IPv6Net::Parse(s).ok()) << s;
  }
  ExpectInvalid(IPv6Net::Parse("fd00::/129").status(), "prefix length 129 is greater than 128");
  const absl::Status host = IPv6Net::Parse("fd00:12:13::1/56").status();
  ExpectInvalid(host, "host bits are set");
  ExpectInvalid(host, "fd00:12:13::");
  ExpectInvalid(IPv6Net::Parse("10.0.0.0/8").status(), "invalid IPv6 network");
}

TEST(IPv6NetTest, LooseContainsOverlapsNext) {
  EXPECT_EQ(Must(IPv6Net::ParseLoose("fd00:12:13::1/56")), N6("fd00:12:13::/56"));
  EXPECT_EQ(Must(IPv6Net::ParseLoose("fd00::1/0")), N6("::/0"));
  IPv6Net pool = N6("fd00::/48");
  EXPECT_TRUE(pool.Contains(V6("fd00::1")));
  EXPECT_TRUE(pool.Contains(V6("fd00:0:0:ffff:ffff:ffff:ffff:ffff")));
  EXPECT_FALSE(pool.Contains(V6("fd00:0:1::")));
  EXPECT_TRUE(pool.Contains(N6("fd00:0:0:100::/56")));
  EXPECT_FALSE(N6("fd00:0:0:100::/56").Contains(pool));
  EXPECT_TRUE(N6("fd00:0:0:100::/56").Overlaps(pool));
  EXPECT_FALSE(N6("fd00:0:0:100::/56").Overlaps(N6("fd00:0:0:200::/56")));
  EXPECT_TRUE(N6("::/0").Contains(pool));

  EXPECT_EQ(Must(N6("fd00:12:13::/56").Next()), N6("fd00:12:13:100::/56"));
  EXPECT_EQ(Must(N6("fd00:0:0:0:ffff:ffff:ffff:ff00/120").Next()), N6("fd00:0:0:1::/120"));
  EXPECT_EQ(Must(N6("::/1").Next()), N6("8000::/1"));
  EXPECT_EQ(N6("ff00::/8").Next().status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(N6("::/0").Next().status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(Must(IPv6Net::Make(V6("fd00::"), 64)), N6("fd00::/64"));
  EXPECT_FALSE(IPv6Net::Make(V6("fd00::1"), 64).ok());
  EXPECT_FALSE(IPv6Net::Make(V6("fd00::"), 129).ok());
}

TEST(IPv6NetTest, FlannelKey) {
  EXPECT_EQ(Must(IPv6Net::ParseFlannelKey("fd00:12:13::-56")), N6("fd00:12:13::/56"));
  EXPECT_EQ(Must(IPv6Net::ParseFlannelKey("::-0")), N6("::/0"));
  EXPECT_EQ(Must(IPv6Net::ParseFlannelKey("fd00::1-128")), N6("fd00::1/128"));
  EXPECT_FALSE(IPv6Net::ParseFlannelKey("fd00:12:13::/56").ok());
  EXPECT_FALSE(IPv6Net::ParseFlannelKey("fd00:12:13::1-56").ok());
  EXPECT_FALSE(IPv6Net::ParseFlannelKey("fd00:12:13::-129").ok());
  for (absl::string_view s : {"fd00:12:13::/56", "::/0", "2001:db8::/32", "fd00::1/128"}) {
    IPv6Net n = N6(s);
    EXPECT_EQ(Must(IPv6Net::ParseFlannelKey(n.FlannelKey())), n);
  }
}

TEST(MacAddrTest, ParsesAndFormats) {
  MacAddr m = Must(MacAddr::Parse("C6:d2:32:6F:8f:44"));
  EXPECT_EQ(m.ToString(), "c6:d2:32:6f:8f:44");
  EXPECT_EQ(m.bytes(), (std::array<uint8_t, 6>{0xc6, 0xd2, 0x32, 0x6f, 0x8f, 0x44}));
  EXPECT_EQ(m, Must(MacAddr::Parse("c6:d2:32:6f:8f:44")));
  EXPECT_EQ(MacAddr(m.bytes()), m);
  EXPECT_FALSE(m.IsZero());
  EXPECT_FALSE(m.IsMulticast());
  EXPECT_TRUE(MacAddr().IsZero());
  EXPECT_EQ(MacAddr().ToString(), "00:00:00:00:00:00");
  EXPECT_TRUE(Must(MacAddr::Parse("01:00:5e:00:00:01")).IsMulticast());
  EXPECT_TRUE(Must(MacAddr::Parse("ff:ff:ff:ff:ff:ff")).IsMulticast());
  EXPECT_FALSE(Must(MacAddr::Parse("02:00:00:00:00:01")).IsMulticast());
  EXPECT_LT(Must(MacAddr::Parse("00:00:00:00:00:01")), Must(MacAddr::Parse("00:00:00:00:01:00")));
}

TEST(MacAddrTest, RejectsBadAddresses) {
  for (const char* s : {"", "c6:d2:32:6f:8f", "c6:d2:32:6f:8f:44:00", "c6-d2-32-6f-8f-44", "c6d2.326f.8f44",
                        "c6:d2:32:6f:8f:4", "c6:d2:32:6f:8f:444", "c6:d2:32:6f:8f:4g", "c6:d2:32:6f:8f:",
                        " c6:d2:32:6f:8f:44", "c6:d2:32:6f:8f:+4"}) {
    EXPECT_FALSE(MacAddr::Parse(s).ok()) << s;
  }
  ExpectInvalid(MacAddr::Parse("c6:d2:32:6f:8f:4g").status(), "group \"4g\" is not two hex digits");
  ExpectInvalid(MacAddr::Parse("c6:d2").status(), "six colon-separated");
}

TEST(NodeNameTest, AcceptsDnsSubdomains) {
  for (const char* s : {"n1", "node-1", "a", "0", "worker-3.example.com", "ip-10-0-0-1.ec2.internal",
                        "1-2", "a.b.c"}) {
    EXPECT_TRUE(IsValidNodeName(s)) << s;
    EXPECT_TRUE(ValidateNodeName(s).ok()) << s;
  }
  EXPECT_TRUE(IsValidNodeName(std::string(63, 'a')));
  // 253 characters: four 63-character labels minus one, joined by dots.
  const std::string l63(63, 'a');
  const std::string longest = l63 + "." + l63 + "." + l63 + "." + std::string(61, 'b');
  ASSERT_EQ(longest.size(), 253u);
  EXPECT_TRUE(IsValidNodeName(longest));
  EXPECT_FALSE(IsValidNodeName(longest + "b"));
}

TEST(NodeNameTest, SaysWhatIsWrong) {
  ExpectInvalid(ValidateNodeName(""), "must not be empty");
  ExpectInvalid(ValidateNodeName("Node1"), "character \"N\" at offset 0 is not allowed");
  ExpectInvalid(ValidateNodeName("node_1"), "character \"_\" at offset 4");
  ExpectInvalid(ValidateNodeName("node 1"), "character \" \"");
  ExpectInvalid(ValidateNodeName("node\n"), "character \"\\n\"");
  ExpectInvalid(ValidateNodeName("-node"), "label \"-node\" must start and end with a letter or digit");
  ExpectInvalid(ValidateNodeName("node-"), "must start and end");
  ExpectInvalid(ValidateNodeName("a.-b.c"), "label \"-b\"");
  ExpectInvalid(ValidateNodeName(".node"), "empty label");
  ExpectInvalid(ValidateNodeName("node."), "empty label");
  ExpectInvalid(ValidateNodeName("a..b"), "empty label");
  ExpectInvalid(ValidateNodeName(std::string(64, 'a')), "is 64 characters long; at most 63");
  ExpectInvalid(ValidateNodeName(std::string(254, 'a')), "is 254 characters long; at most 253");
  for (const char* s : {"Node1", "node_1", "-a", "a-", ".a", "a.", "a..b", "nöde", "a/b", "a:b"}) {
    EXPECT_FALSE(IsValidNodeName(s)) << s;
  }
}

TEST(HostPortTest, Parses) {
  EXPECT_EQ(Must(ParseHostPort("127.0.0.1:8080")), (HostPort{"127.0.0.1", 8080}));
  EXPECT_EQ(Must(ParseHostPort("[::1]:0")), (HostPort{"::1", 0}));
  EXPECT_EQ(Must(ParseHostPort("[fd00::1]:65535")), (HostPort{"fd00::1", 65535}));
  EXPECT_EQ(Must(ParseHostPort("localhost:9090")), (HostPort{"localhost", 9090}));
  EXPECT_EQ(Must(ParseHostPort("Etcd-1.Example.com:2379")), (HostPort{"Etcd-1.Example.com", 2379}));
  EXPECT_EQ(Must(ParseHostPort(":8472")), (HostPort{"", 8472}));
  EXPECT_EQ(Must(ParseHostPort("[fd00::1]:80")).ToString(), "[fd00::1]:80");
  EXPECT_EQ(Must(ParseHostPort("10.0.0.1:80")).ToString(), "10.0.0.1:80");
  EXPECT_EQ(Must(ParseHostPort(":80")).ToString(), ":80");
}

TEST(HostPortTest, SaysWhatIsWrong) {
  ExpectInvalid(ParseHostPort("127.0.0.1").status(), "missing \":PORT\"");
  ExpectInvalid(ParseHostPort("127.0.0.1:").status(), "port \"\" is not a decimal number");
  ExpectInvalid(ParseHostPort("127.0.0.1:http").status(), "port \"http\" is not a decimal number");
  ExpectInvalid(ParseHostPort("127.0.0.1:-1").status(), "not a decimal number");
  ExpectInvalid(ParseHostPort("127.0.0.1:65536").status(), "port 65536 is greater than 65535");
  ExpectInvalid(ParseHostPort("127.0.0.1:123456").status(), "not a decimal number");
  ExpectInvalid(ParseHostPort("::1:80").status(), "IPv6 address needs brackets");
  ExpectInvalid(ParseHostPort("[::1]80").status(), "missing \":PORT\" after");
  ExpectInvalid(ParseHostPort("[::1:80").status(), "missing ']'");
  ExpectInvalid(ParseHostPort("[::g]:80").status(), "invalid host:port \"[::g]:80\"");
  ExpectInvalid(ParseHostPort("127.0.0.256:80").status(), "octet 256 is greater than 255");
  ExpectInvalid(ParseHostPort("bad_host:80").status(), "host \"bad_host\" is neither");
  ExpectInvalid(ParseHostPort("-a.b:80").status(), "neither an IPv4 address nor a valid host name");
  ExpectInvalid(ParseHostPort("a..b:80").status(), "neither");
  ExpectInvalid(ParseHostPort("").status(), "missing");
}

TEST(HostPortTest, IsAFlagType) {
  HostPort hp;
  std::string err;
  EXPECT_TRUE(AbslParseFlag("[::1]:53", &hp, &err));
  EXPECT_EQ(AbslUnparseFlag(hp), "[::1]:53");
  EXPECT_FALSE(AbslParseFlag("nope", &hp, &err));
  EXPECT_THAT(err, HasSubstr("missing"));
  EXPECT_EQ(hp, (HostPort{"::1", 53}));  // unchanged on error
}

TEST(NetPrintTest, StreamsAsStrings) {
  std::ostringstream os;
  os << V4("10.0.0.1") << " " << N4("10.0.0.0/8") << " " << V6("fd00::1") << " " << N6("fd00::/8") << " "
     << MacAddr();
  EXPECT_EQ(os.str(), "10.0.0.1 10.0.0.0/8 fd00::1 fd00::/8 00:00:00:00:00:00");
}

}  // namespace
}  // namespace weft
