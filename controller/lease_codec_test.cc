#include "controller/lease_codec.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace weft::controller {
namespace {

TEST(LeaseCodecTest, KeysAreFlannels) {
  SubnetKey k;
  k.ipv4 = *IPv4Net::Parse("10.1.19.0/24");
  EXPECT_EQ(EncodeSubnetKey("/coreos.com/network", k), "/coreos.com/network/subnets/10.1.19.0-24");
  k.ipv6 = *IPv6Net::Parse("fd00:12:13::/56");
  EXPECT_EQ(EncodeSubnetKey("/p", k), "/p/subnets/10.1.19.0-24&fd00:12:13::-56");
  auto back = ParseSubnetKeySuffix("10.1.19.0-24&fd00:12:13::-56");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->ipv4->ToString(), "10.1.19.0/24");
  EXPECT_EQ(back->ipv6->ToString(), "fd00:12:13::/56");
  EXPECT_FALSE(ParseSubnetKeySuffix("10.1.19.0/24").ok());
  EXPECT_FALSE(ParseSubnetKeySuffix("10.1.19.5-24").ok());
  EXPECT_FALSE(ParseSubnetKeySuffix("a&b&c").ok());
}

TEST(LeaseCodecTest, DualStackAndIPv6OnlyKeysRoundTrip) {
  // flannel's documented dual-stack example, and its IPv6-only form (the zero IPv4 network).
  for (const char* suffix : {"10.42.0.0-24&2001:cafe:42::-64", "0.0.0.0-0&2001:cafe:42::-64",
                             "10.42.0.0-24&fd00:12:0:7::-64"}) {
    auto k = ParseSubnetKeySuffix(suffix);
    ASSERT_TRUE(k.ok()) << suffix << ": " << k.status();
    EXPECT_EQ(EncodeSubnetKey("/coreos.com/network", *k), absl::StrCat("/coreos.com/network/subnets/", suffix));
  }
  auto v6only = ParseSubnetKeySuffix("0.0.0.0-0&2001:cafe:42::-64");
  EXPECT_FALSE(v6only->ipv4.has_value());
  EXPECT_EQ(v6only->ipv6->ToString(), "2001:cafe:42::/64");
  EXPECT_FALSE(ParseSubnetKeySuffix("0.0.0.0-0").ok()) << "names no subnet";
  EXPECT_FALSE(ParseSubnetKeySuffix("10.42.0.0-24&2001:cafe:42::1-64").ok()) << "host bits set";
  EXPECT_FALSE(ParseSubnetKeySuffix("10.42.0.0-24&").ok());
}

TEST(LeaseCodecTest, ValueIsFlannelsJson) {
  LeaseAttrs a;
  a.public_ip = *IPv4Addr::Parse("192.168.64.3");
  a.backend_type = "vxlan";
  a.backend_data = R"({"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"})";
  EXPECT_EQ(EncodeLeaseAttrs(a),
            R"({"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan",)"
            R"("BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}})");
  a.node_name = "node-1";
  auto back = DecodeLeaseAttrs(EncodeLeaseAttrs(a));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->public_ip->ToString(), "192.168.64.3");
  EXPECT_EQ(back->node_name, "node-1");
  EXPECT_EQ(back->backend_type, "vxlan");
  EXPECT_EQ(back->backend_data, a.backend_data);
}

TEST(LeaseCodecTest, DecodesWhatFlannelWrites) {
  auto a = DecodeLeaseAttrs(
      R"({"PublicIP":"10.0.0.5","PublicIPv6":null,"BackendType":"host-gw","BackendData":null,"BackendV6Data":null})");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->backend_type, "host-gw");
  EXPECT_TRUE(a->backend_data.empty());
  EXPECT_TRUE(a->node_name.empty());
}

TEST(LeaseCodecTest, RejectsMalformedValues) {
  EXPECT_FALSE(DecodeLeaseAttrs("{").ok());
  EXPECT_FALSE(DecodeLeaseAttrs("[]").ok());
  EXPECT_FALSE(DecodeLeaseAttrs(R"({"BackendType":"vxlan"})").ok());
  EXPECT_FALSE(DecodeLeaseAttrs(R"({"PublicIP":"300.1.1.1"})").ok());
  EXPECT_FALSE(DecodeLeaseAttrs(R"({"PublicIP":"10.0.0.1","BackendData":"x"})").ok());
  EXPECT_FALSE(NormalizeJsonObject("backend_data", "[1,2]").ok());
  EXPECT_EQ(*NormalizeJsonObject("backend_data", R"({ "VNI" : 1 })"), R"({"VNI":1})");
  EXPECT_EQ(*NormalizeJsonObject("backend_data", ""), "");
}

}  // namespace
}  // namespace weft::controller
