#include "tests/cluster/subnet_env.h"

#include "gtest/gtest.h"

namespace weft::testing {
namespace {

TEST(SubnetEnvTest, ParsesFlannelsFile) {
  absl::StatusOr<SubnetEnv> env = SubnetEnv::Parse(
      "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.19.1/24\nFLANNEL_MTU=1450\n"
      "FLANNEL_IPMASQ=false\n");
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->network, "10.1.0.0/16");
  EXPECT_EQ(env->subnet, "10.1.19.1/24");
  EXPECT_EQ(env->mtu, 1450);
  EXPECT_FALSE(env->ipmasq);
  EXPECT_EQ(env->Gateway(), "10.1.19.1");
  EXPECT_EQ(env->PrefixLength(), 24);
  EXPECT_EQ(env->NetworkAddress(), "10.1.19.0");
  EXPECT_EQ(env->SubnetCidr(), "10.1.19.0/24");

  absl::StatusOr<SubnetEnv> odd = SubnetEnv::Parse("FLANNEL_NETWORK=10.0.0.0/8\n"
                                                    "FLANNEL_SUBNET=10.128.4.1/22\n"
                                                    "FLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n");
  ASSERT_TRUE(odd.ok()) << odd.status();
  EXPECT_EQ(odd->SubnetCidr(), "10.128.4.0/22");
  EXPECT_TRUE(odd->ipmasq);

  EXPECT_FALSE(SubnetEnv::Parse("FLANNEL_NETWORK=10.1.0.0/16\n").ok());
  EXPECT_FALSE(SubnetEnv::Parse("garbage").ok());
}

TEST(SubnetEnvTest, IPv6OnlyAndBadSubnets) {
  absl::StatusOr<SubnetEnv> v6 =
      SubnetEnv::Parse("FLANNEL_IPV6_NETWORK=fd00:1::/56\nFLANNEL_IPV6_SUBNET=fd00:1:0:13::1/64\nFLANNEL_MTU=1430\n");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->ipv6_subnet, "fd00:1:0:13::1/64");
  EXPECT_TRUE(v6->subnet.empty());
  EXPECT_FALSE(SubnetEnv::Parse("FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.300.1/24\nFLANNEL_MTU=1450\n").ok());
  EXPECT_FALSE(SubnetEnv::Parse("FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.3.1\nFLANNEL_MTU=1450\n").ok());
}

}  // namespace
}  // namespace weft::testing
