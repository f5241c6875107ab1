#include "agent/network_settings.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace weft::agent {
namespace {

using ::testing::HasSubstr;

TEST(NetworkSettingsTest, IPv4OnlyByDefault) {
  auto s = ParseNetworkSettings(R"({"Network":"10.1.0.0/16","Backend":{"Type":"VXLAN","VNI":4}})");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->ipv4);
  EXPECT_FALSE(s->ipv6);
  EXPECT_EQ(s->backend_type, "vxlan");
  EXPECT_EQ(s->backend_json, R"({"Type":"VXLAN","VNI":4})");
}

TEST(NetworkSettingsTest, NoBackendIsUdp) {
  auto s = ParseNetworkSettings(R"({"Network":"10.1.0.0/16"})");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->backend_type, "udp");
  EXPECT_EQ(s->backend_json, "{}");
  EXPECT_TRUE(absl::IsInvalidArgument(ParseNetworkSettings(R"({"Backend":"vxlan"})").status()));
}

TEST(NetworkSettingsTest, DualStack) {
  auto s = ParseNetworkSettings(
      R"({"Network":"10.1.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:1::/48","Backend":{"Type":"host-gw"}})");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->ipv4);
  EXPECT_TRUE(s->ipv6);
  EXPECT_EQ(s->backend_type, "host-gw");
}

TEST(NetworkSettingsTest, IPv6Only) {
  auto s = ParseNetworkSettings(
      R"({"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:1::/48","Backend":{"Type":"vxlan"}})");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->ipv4);
  EXPECT_TRUE(s->ipv6);
}

TEST(NetworkSettingsTest, NoFamilyIsInvalid) {
  auto s = ParseNetworkSettings(R"({"EnableIPv4":false})");
  EXPECT_TRUE(absl::IsInvalidArgument(s.status())) << s.status();
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("both false"));
}

TEST(NetworkSettingsTest, WrongTypesAreInvalid) {
  for (const char* bad : {R"({"EnableIPv6":"true"})", R"({"EnableIPv4":1})", "[]", "not json"}) {
    auto s = ParseNetworkSettings(bad);
    EXPECT_TRUE(absl::IsInvalidArgument(s.status())) << bad << ": " << s.status();
    EXPECT_THAT(std::string(s.status().message()), HasSubstr("network config")) << bad;
  }
}

}  // namespace
}  // namespace weft::agent
