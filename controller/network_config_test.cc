#include "controller/network_config.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace weft::controller {
namespace {

NetworkConfig MustParse(const std::string& json) {
  auto c = ParseNetworkConfig(json);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : NetworkConfig{};
}

std::string ErrorOf(const std::string& json) {
  auto c = ParseNetworkConfig(json);
  EXPECT_FALSE(c.ok()) << json;
  if (!c.ok()) {
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  }
  return c.ok() ? "" : std::string(c.status().message());
}

TEST(NetworkConfigTest, SeedConfigGetsFlannelDefaults) {
  NetworkConfig c = MustParse(R"({"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}})");
  EXPECT_EQ(c.network.ToString(), "10.1.0.0/16");
  EXPECT_EQ(c.subnet_len, 24);
  EXPECT_EQ(c.subnet_min.ToString(), "10.1.1.0");  // the first subnet is skipped
  EXPECT_EQ(c.subnet_max.ToString(), "10.1.255.0");
  EXPECT_EQ(c.PoolSize(), 255u);
  EXPECT_EQ(c.backend.type, "vxlan");
  EXPECT_EQ(c.backend.vni, 1);
  EXPECT_EQ(c.backend.port, 0);
  EXPECT_EQ(c.lease_ttl, absl::Hours(24));
  EXPECT_TRUE(c.enable_ipv4);
  EXPECT_FALSE(c.enable_ipv6);
}

TEST(NetworkConfigTest, SubnetLenDefaultsFollowNetworkSize) {
  EXPECT_EQ(MustParse(R"({"Network":"10.0.0.0/8"})").subnet_len, 24);
  EXPECT_EQ(MustParse(R"({"Network":"10.0.0.0/22"})").subnet_len, 24);
  EXPECT_EQ(MustParse(R"({"Network":"10.0.0.0/23"})").subnet_len, 25);
  EXPECT_EQ(MustParse(R"({"Network":"10.0.0.0/28"})").subnet_len, 30);
  EXPECT_NE(ErrorOf(R"({"Network":"10.0.0.0/29"})").find("too small"), std::string::npos);
}

TEST(NetworkConfigTest, SubnetLenLimits) {
  EXPECT_EQ(MustParse(R"({"Network":"10.0.0.0/16","SubnetLen":30})").subnet_len, 30);
  EXPECT_NE(ErrorOf(R"({"Network":"10.0.0.0/16","SubnetLen":31})").find("SubnetLen"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"Network":"10.0.0.0/16","SubnetLen":17})").find("four subnets"), std::string::npos);
  EXPECT_EQ(MustParse(R"({"Network":"10.0.0.0/16","SubnetLen":18})").PoolSize(), 3u);
  EXPECT_NE(ErrorOf(R"({"Network":"10.0.0.0/16","SubnetLen":"24"})").find("integer"), std::string::npos);
  // Found by network_config_fuzz: a number only a double holds was converted to
  // int64 (undefined behaviour) before its type was checked.
  EXPECT_NE(ErrorOf(R"({"Network":"10.0.0.0/16","SubnetLen":777777777777777777724})").find("SubnetLen"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"Network":"10.0.0.0/16","SubnetLen":24.5})").find("SubnetLen"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"EnableIPv6":true,"IPv6Network":"fd00::/48","IPv6SubnetLen":1e300,"Network":"10.0.0.0/16"})")
                .find("IPv6SubnetLen"),
            std::string::npos);
}

TEST(NetworkConfigTest, SlashThirtySubnets) {
  NetworkConfig c = MustParse(R"({"Network":"10.0.0.0/28","SubnetLen":30})");
  EXPECT_EQ(c.PoolSize(), 3u);
  EXPECT_EQ(c.PoolSubnet(0).ToString(), "10.0.0.4/30");
  EXPECT_EQ(c.PoolSubnet(2).ToString(), "10.0.0.12/30");
  EXPECT_EQ(*c.PoolIndex(*IPv4Net::Parse("10.0.0.8/30")), 1u);
  EXPECT_FALSE(c.PoolIndex(*IPv4Net::Parse("10.0.0.0/30")).has_value());
}

TEST(NetworkConfigTest, SubnetMinMax) {
  NetworkConfig c =
      MustParse(R"({"Network":"10.1.0.0/16","SubnetMin":"10.1.10.0","SubnetMax":"10.1.20.0"})");
  EXPECT_EQ(c.PoolSize(), 11u);
  EXPECT_EQ(c.PoolSubnet(0).ToString(), "10.1.10.0/24");
  EXPECT_FALSE(c.PoolIndex(*IPv4Net::Parse("10.1.21.0/24")).has_value());
  EXPECT_FALSE(c.PoolIndex(*IPv4Net::Parse("10.1.10.0/25")).has_value());
  EXPECT_NE(ErrorOf(R"({"Network":"10.1.0.0/16","SubnetMin":"10.2.0.0"})").find("SubnetMin"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"Network":"10.1.0.0/16","SubnetMax":"10.1.3.128"})").find("boundary"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"Network":"10.1.0.0/16","SubnetMin":"10.1.9.0","SubnetMax":"10.1.3.0"})").find("above"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"Network":"10.1.0.0/16","SubnetMin":"banana"})").find("SubnetMin"), std::string::npos);
}

TEST(NetworkConfigTest, NetworkErrors) {
  EXPECT_NE(ErrorOf(R"({})").find("Network"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"Network":"10.1.2.3/16"})").find("Network"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"Network":"10.1.0.0/33"})").find("Network"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"Network":42})").find("string"), std::string::npos);
  EXPECT_NE(ErrorOf("not json").find("JSON"), std::string::npos);
  EXPECT_NE(ErrorOf(R"([1])").find("object"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"network":"10.1.0.0/16"})").find("unknown field"), std::string::npos);
}

TEST(NetworkConfigTest, Backends) {
  EXPECT_EQ(MustParse(R"({"Network":"10.1.0.0/16"})").backend.type, "udp");  // flannel's default
  EXPECT_EQ(MustParse(R"({"Network":"10.1.0.0/16"})").backend.port, 8285);
  NetworkConfig v = MustParse(
      R"({"Network":"10.1.0.0/16","Backend":{"Type":"vxlan","VNI":4096,"Port":4789,"DirectRouting":true}})");
  EXPECT_EQ(v.backend.vni, 4096);
  EXPECT_EQ(v.backend.port, 4789);
  EXPECT_TRUE(v.backend.direct_routing);
  EXPECT_NE(ErrorOf(R"({"Network":"10.1.0.0/16","Backend":{"Type":"vxlan","VNI":16777216}})").find("VNI"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"Network":"10.1.0.0/16","Backend":{"Type":"udp","Port":70000}})").find("Port"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"Network":"10.1.0.0/16","Backend":{"Type":"carrier-pigeon"}})").find("Backend.Type"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"Network":"10.1.0.0/16","Backend":"vxlan"})").find("Backend"), std::string::npos);
  NetworkConfig a = MustParse(
      R"({"Network":"10.1.0.0/16","Backend":{"Type":"aws-vpc","RouteTableID":["rtb-1","rtb-2"]}})");
  EXPECT_EQ(a.backend.route_table_ids.size(), 2u);
  EXPECT_EQ(MustParse(R"({"Network":"10.1.0.0/16","Backend":{"Type":"aws-vpc","RouteTableID":"rtb-9"}})")
                .backend.route_table_ids[0],
            "rtb-9");
  EXPECT_NE(ErrorOf(R"({"Network":"10.1.0.0/16","Backend":{"Type":"aws-vpc","RouteTableID":7}})")
                .find("RouteTableID"),
            std::string::npos);
  EXPECT_EQ(MustParse(R"({"Network":"10.1.0.0/16","Backend":{"Type":"host-gw"}})").backend.type, "host-gw");
  // Limits the agents enforce are refused before they are stored.
  EXPECT_NE(ErrorOf(R"({"Network":"10.1.0.0/16","Backend":{"Type":"aws-vpc","RouteLimit":0}})").find("RouteLimit"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"Network":"10.1.0.0/16","Backend":{"Type":"gce","RouteQuota":"many"}})").find("RouteQuota"),
            std::string::npos);
  MustParse(R"({"Network":"10.1.0.0/16","Backend":{"Type":"aws-vpc","RouteLimit":50}})");
  MustParse(R"({"Network":"10.1.0.0/16","Backend":{"Type":"gce","RouteQuota":100}})");
}

TEST(NetworkConfigTest, WireguardAndAlloc) {
  NetworkConfig w = MustParse(
      R"({"Network":"10.1.0.0/16","Backend":{"Type":"wireguard","PSK":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",)"
      R"("ListenPort":51820,"ListenPortV6":51821,"MTU":1420,"Mode":"separate","PersistentKeepaliveInterval":25}})");
  EXPECT_EQ(w.backend.type, "wireguard");
  EXPECT_EQ(w.backend.mtu, 1420);
  EXPECT_EQ(MustParse(R"({"Network":"10.1.0.0/16","Backend":{"Type":"WireGuard"}})").backend.type, "wireguard");
  EXPECT_EQ(MustParse(R"({"Network":"10.1.0.0/16","Backend":{"Type":"alloc"}})").backend.type, "alloc");
  for (const char* bad : {R"("ListenPort":70000)", R"("ListenPortV6":-1)", R"("MTU":"big")",
                          R"("PersistentKeepaliveInterval":65536)", R"("Mode":"tunnel")", R"("Mode":"ipv6")" /* IPv4-only network */,
                          R"("MTU":100)", R"("PSK":"c2VjcmV0")"}) {
    const std::string field = std::string(bad).substr(1, std::string(bad).find('"', 1) - 1);
    const std::string err =
        ErrorOf(absl::StrCat(R"({"Network":"10.1.0.0/16","Backend":{"Type":"wireguard",)", bad, "}}"));
    EXPECT_NE(err.find(field), std::string::npos) << bad << ": " << err;
    EXPECT_EQ(err.find("c2VjcmV0"), std::string::npos) << "a PSK is never quoted: " << err;
  }
}

// flanneld's single-device modes reach peers at one family's address: that
// family must be enabled.
TEST(NetworkConfigTest, WireguardModeNeedsItsFamily) {
  const char* kDual = R"({"Network":"10.1.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:1::/48",)";
  const char* kV6Only = R"({"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:1::/48",)";
  for (const char* mode : {"separate", "auto", "ipv4", "ipv6"}) {
    const std::string backend = absl::StrCat(R"("Backend":{"Type":"wireguard","Mode":")", mode, R"("}})");
    EXPECT_TRUE(ParseNetworkConfig(absl::StrCat(kDual, backend)).ok()) << mode;
    EXPECT_EQ(ParseNetworkConfig(absl::StrCat(kV6Only, backend)).ok(), std::string(mode) != "ipv4") << mode;
  }
  EXPECT_NE(ErrorOf(absl::StrCat(kV6Only, R"("Backend":{"Type":"wireguard","Mode":"ipv4"}})")).find("EnableIPv4"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"Network":"10.1.0.0/16","Backend":{"Type":"wireguard","Mode":"ipv6"}})").find("EnableIPv6"),
            std::string::npos);
}

TEST(NetworkConfigTest, IPv6) {
  NetworkConfig c = MustParse(
      R"({"Network":"10.1.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:1::/48","Backend":{"Type":"vxlan"}})");
  EXPECT_TRUE(c.enable_ipv6);
  EXPECT_EQ(c.ipv6_subnet_len, 64);
  EXPECT_EQ(c.ipv6_subnet_min.ToString(), "fd00:1:0:1::");
  EXPECT_EQ(c.ipv6_subnet_max.ToString(), "fd00:1:0:ffff::");
  EXPECT_TRUE(c.InIPv6Pool(*IPv6Net::Parse("fd00:1:0:5::/64")));
  EXPECT_FALSE(c.InIPv6Pool(*IPv6Net::Parse("fd00:1::/64")));
  EXPECT_EQ(MustParse(R"({"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00::/120"})").ipv6_subnet_len, 122);
  EXPECT_NE(ErrorOf(R"({"Network":"10.1.0.0/16","EnableIPv6":true})").find("IPv6Network"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"Network":"10.1.0.0/16","EnableIPv6":true,"IPv6Network":"fd00::/48","IPv6SubnetLen":127})")
                .find("IPv6SubnetLen"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"EnableIPv4":false})").find("EnableIPv4"), std::string::npos);
}

TEST(NetworkConfigTest, IPv6PoolIndices) {
  // fd00:1::/48 with /64 subnets, the first skipped: 65,535 subnets.
  NetworkConfig c = MustParse(R"({"Network":"10.1.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:1::/48"})");
  EXPECT_EQ(c.IPv6PoolSize(), 65535);
  EXPECT_EQ(c.IPv6PoolSubnet(0).ToString(), "fd00:1:0:1::/64");
  EXPECT_EQ(c.IPv6PoolSubnet(65534).ToString(), "fd00:1:0:ffff::/64");
  EXPECT_EQ(*c.IPv6PoolIndex(*IPv6Net::Parse("fd00:1:0:ffff::/64")), 65534);
  EXPECT_FALSE(c.IPv6PoolIndex(*IPv6Net::Parse("fd00:1::/64")).has_value());       // below IPv6SubnetMin
  EXPECT_FALSE(c.IPv6PoolIndex(*IPv6Net::Parse("fd00:2::/64")).has_value());       // outside the network
  EXPECT_FALSE(c.IPv6PoolIndex(*IPv6Net::Parse("fd00:1:0:5::/80")).has_value());   // wrong length
  for (absl::uint128 i : {absl::uint128(0), absl::uint128(77), absl::uint128(65534)}) {
    EXPECT_EQ(*c.IPv6PoolIndex(c.IPv6PoolSubnet(i)), i);
  }
  // A /32 with /64 subnets: 2^32 - 1, beyond any enumeration; Min/Max bound it.
  NetworkConfig huge = MustParse(R"({"Network":"10.1.0.0/16","EnableIPv6":true,"IPv6Network":"2001:db8::/32"})");
  EXPECT_EQ(huge.IPv6PoolSize(), (absl::uint128(1) << 32) - 1);
  EXPECT_EQ(huge.IPv6PoolSubnet(huge.IPv6PoolSize() - 1).ToString(), "2001:db8:ffff:ffff::/64");
  NetworkConfig bounded = MustParse(
      R"({"Network":"10.1.0.0/16","EnableIPv6":true,"IPv6Network":"2001:db8::/32",)"
      R"("IPv6SubnetMin":"2001:db8:0:10::","IPv6SubnetMax":"2001:db8:0:13::"})");
  EXPECT_EQ(bounded.IPv6PoolSize(), 4);
  EXPECT_FALSE(bounded.InIPv6Pool(*IPv6Net::Parse("2001:db8:0:14::/64")));
  EXPECT_TRUE(bounded.InIPv6Pool(*IPv6Net::Parse("2001:db8:0:13::/64")));
  EXPECT_EQ(MustParse(R"({"Network":"10.1.0.0/16"})").IPv6PoolSize(), 0);
}

TEST(NetworkConfigTest, LeaseTtl) {
  EXPECT_EQ(MustParse(R"({"Network":"10.1.0.0/16","LeaseTTL":"1h30m"})").lease_ttl, absl::Minutes(90));
  EXPECT_EQ(MustParse(R"({"Network":"10.1.0.0/16","LeaseTTL":600})").lease_ttl, absl::Minutes(10));
  EXPECT_NE(ErrorOf(R"({"Network":"10.1.0.0/16","LeaseTTL":"1s"})").find("LeaseTTL"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"Network":"10.1.0.0/16","LeaseTTL":"soon"})").find("LeaseTTL"), std::string::npos);
}

}  // namespace
}  // namespace weft::controller
