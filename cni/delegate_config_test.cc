#include "cni/delegate_config.h"

#include "gtest/gtest.h"

namespace weft::cni {
namespace {

using json = nlohmann::json;

SubnetEnv Lease(absl::string_view text = "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.19.1/24\n"
                                         "FLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n") {
  absl::StatusOr<SubnetEnv> env = ParseSubnetEnv(text, "test");
  EXPECT_TRUE(env.ok()) << env.status();
  return *env;
}

NetConf Conf(absl::string_view text) {
  absl::StatusOr<NetConf> conf = ParseNetConf(text);
  EXPECT_TRUE(conf.ok()) << conf.status();
  return *conf;
}

TEST(DelegateConfigTest, FlannelsBridgeConfig) {
  const json d = RenderDelegateConfig(Conf(R"({"cniVersion":"1.0.0","name":"weft","type":"weft-cni"})"),
                                      Lease());
  EXPECT_EQ(d, json::parse(R"({
    "cniVersion":"1.0.0","name":"weft","type":"bridge","bridge":"cni0",
    "isGateway":true,"ipMasq":false,"mtu":1450,
    "ipam":{"type":"host-local","ranges":[[{"subnet":"10.1.19.0/24"}]],
            "routes":[{"dst":"10.1.0.0/16","gw":"10.1.19.1"}]}})"));
}

TEST(DelegateConfigTest, IpMasqIsTheOppositeOfTheAgents) {
  const json d = RenderDelegateConfig(
      Conf(R"({"cniVersion":"0.3.1","name":"n"})"),
      Lease("FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.19.1/24\nFLANNEL_MTU=1400\n"
            "FLANNEL_IPMASQ=false\n"));
  EXPECT_EQ(d["ipMasq"], true);
  EXPECT_EQ(d["mtu"], 1400);
  EXPECT_EQ(d["cniVersion"], "0.3.1");
}

TEST(DelegateConfigTest, UserDelegateKeysWinButNotNameOrVersion) {
  const json d = RenderDelegateConfig(Conf(R"({"cniVersion":"1.0.0","name":"weft",
      "delegate":{"name":"other","cniVersion":"0.3.0","bridge":"br-weft","isGateway":false,
                  "ipMasq":true,"mtu":1300,"hairpinMode":true,"isDefaultGateway":true}})"),
                                      Lease());
  EXPECT_EQ(d["name"], "weft");
  EXPECT_EQ(d["cniVersion"], "1.0.0");
  EXPECT_EQ(d["bridge"], "br-weft");
  EXPECT_EQ(d["isGateway"], false);
  EXPECT_EQ(d["ipMasq"], true);
  EXPECT_EQ(d["mtu"], 1300);
  EXPECT_EQ(d["hairpinMode"], true);
  EXPECT_EQ(d["isDefaultGateway"], true);
}

TEST(DelegateConfigTest, OtherDelegateTypesGetNoBridgeKeys) {
  const json d = RenderDelegateConfig(
      Conf(R"({"cniVersion":"1.0.0","name":"n","delegate":{"type":"ipvlan","master":"eth0"}})"), Lease());
  EXPECT_EQ(d["type"], "ipvlan");
  EXPECT_FALSE(d.contains("bridge"));
  EXPECT_FALSE(d.contains("isGateway"));
  EXPECT_EQ(d["ipMasq"], false);
  EXPECT_EQ(d["ipam"]["type"], "host-local");
}

TEST(DelegateConfigTest, IpamMergesTopLevelThenDelegateAndKeepsTheLeaseRanges) {
  const json d = RenderDelegateConfig(Conf(R"({"cniVersion":"1.0.0","name":"n",
      "ipam":{"dataDir":"/top","routes":[{"dst":"192.0.2.0/24"}]},
      "delegate":{"ipam":{"dataDir":"/tmp/ipam","ranges":[[{"subnet":"192.168.0.0/24"}]]}}})"),
                                      Lease());
  EXPECT_EQ(d["ipam"], json::parse(R"({
    "type":"host-local","dataDir":"/tmp/ipam","ranges":[[{"subnet":"10.1.19.0/24"}]],
    "routes":[{"dst":"192.0.2.0/24"},{"dst":"10.1.0.0/16","gw":"10.1.19.1"}]})"));
}

TEST(DelegateConfigTest, DualStack) {
  const json d = RenderDelegateConfig(
      Conf(R"({"cniVersion":"1.0.0","name":"n"})"),
      Lease("FLANNEL_NETWORK=10.1.0.0/16,10.2.0.0/16\nFLANNEL_SUBNET=10.1.19.1/24\n"
            "FLANNEL_IPV6_NETWORK=fd00:1::/32\nFLANNEL_IPV6_SUBNET=fd00:1:13::1/64\n"
            "FLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"));
  EXPECT_EQ(d["ipam"]["ranges"],
            json::parse(R"([[{"subnet":"10.1.19.0/24"}],[{"subnet":"fd00:1:13::/64"}]])"));
  EXPECT_EQ(d["ipam"]["routes"],
            json::parse(R"([{"dst":"10.1.0.0/16","gw":"10.1.19.1"},{"dst":"10.2.0.0/16","gw":"10.1.19.1"},
                            {"dst":"fd00:1::/32","gw":"fd00:1:13::1"}])"));
}

// What the agent writes for an IPv6-only network: one IPv6 range and route.
TEST(DelegateConfigTest, IPv6Only) {
  const json d = RenderDelegateConfig(Conf(R"({"cniVersion":"1.0.0","name":"n"})"),
                                      Lease("FLANNEL_MTU=1430\nFLANNEL_IPMASQ=false\n"
                                            "FLANNEL_IPV6_NETWORK=fd00:1::/48\nFLANNEL_IPV6_SUBNET=fd00:1:0:13::1/64\n"));
  EXPECT_EQ(d["ipam"]["ranges"], json::parse(R"([[{"subnet":"fd00:1:0:13::/64"}]])"));
  EXPECT_EQ(d["ipam"]["routes"], json::parse(R"([{"dst":"fd00:1::/48","gw":"fd00:1:0:13::1"}])"));
  EXPECT_EQ(d["mtu"], 1430);
}

}  // namespace
}  // namespace weft::cni
