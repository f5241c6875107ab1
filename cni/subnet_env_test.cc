#include "cni/subnet_env.h"

#include <fstream>

#include "cni/cni_error.h"
#include "gtest/gtest.h"

namespace weft::cni {
namespace {

constexpr char kAgentFile[] =
    "FLANNEL_NETWORK=10.1.0.0/16\n"
    "FLANNEL_SUBNET=10.1.19.1/24\n"
    "FLANNEL_MTU=1450\n"
    "FLANNEL_IPMASQ=true\n";

void ExpectError(absl::string_view text, absl::string_view mentions) {
  absl::StatusOr<SubnetEnv> env = ParseSubnetEnv(text, "/run/flannel/subnet.env");
  ASSERT_FALSE(env.ok()) << text;
  EXPECT_NE(env.status().message().find(mentions), absl::string_view::npos) << env.status();
  EXPECT_NE(env.status().message().find("/run/flannel/subnet.env"), absl::string_view::npos);
  EXPECT_EQ(CniCodeOf(env.status()), kOther);
}

TEST(SubnetEnvTest, ParsesWhatTheAgentWrites) {
  absl::StatusOr<SubnetEnv> env = ParseSubnetEnv(kAgentFile, "f");
  ASSERT_TRUE(env.ok()) << env.status();
  ASSERT_EQ(env->networks.size(), 1u);
  EXPECT_EQ(env->networks[0].ToString(), "10.1.0.0/16");
  ASSERT_TRUE(env->subnet);
  EXPECT_EQ(env->subnet->ToString(), "10.1.19.0/24");  // host bits of .1 cleared
  EXPECT_EQ(env->mtu, 1450u);
  EXPECT_TRUE(env->ipmasq);
  EXPECT_TRUE(env->ipv6_networks.empty());
  EXPECT_FALSE(env->ipv6_subnet);
}

TEST(SubnetEnvTest, DualStackAndSeveralNetworks) {
  absl::StatusOr<SubnetEnv> env = ParseSubnetEnv(
      "FLANNEL_NETWORK=10.1.0.0/16,10.2.0.0/16\n"
      "FLANNEL_SUBNET=10.2.3.1/24\n"
      "FLANNEL_IPV6_NETWORK=fd00:1::/32\n"
      "FLANNEL_IPV6_SUBNET=fd00:1:13::1/64\n"
      "FLANNEL_MTU=1400\n"
      "FLANNEL_IPMASQ=false\n",
      "f");
  ASSERT_TRUE(env.ok()) << env.status();
  ASSERT_EQ(env->networks.size(), 2u);
  EXPECT_EQ(env->networks[1].ToString(), "10.2.0.0/16");
  EXPECT_EQ(env->subnet->ToString(), "10.2.3.0/24");
  ASSERT_EQ(env->ipv6_networks.size(), 1u);
  EXPECT_EQ(env->ipv6_subnet->ToString(), "fd00:1:13::/64");
  EXPECT_FALSE(env->ipmasq);
}

TEST(SubnetEnvTest, IPv6Only) {
  absl::StatusOr<SubnetEnv> env = ParseSubnetEnv(
      "FLANNEL_IPV6_NETWORK=fd00:1::/32\nFLANNEL_IPV6_SUBNET=fd00:1:13::1/64\n"
      "FLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n",
      "f");
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_TRUE(env->networks.empty());
  EXPECT_FALSE(env->subnet);
}

TEST(SubnetEnvTest, ToleratesCommentsBlankLinesCrLfAndUnknownKeys) {
  absl::StatusOr<SubnetEnv> env = ParseSubnetEnv(
      "# written by weft-agent\r\n\r\nFLANNEL_NETWORK=10.1.0.0/16\r\nFLANNEL_SUBNET=10.1.19.1/24\r\n"
      "FLANNEL_MTU=1450\r\nFLANNEL_IPMASQ=false\r\nWEFT_SOMETHING_NEW=1\r\n",
      "f");
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->subnet->ToString(), "10.1.19.0/24");
}

TEST(SubnetEnvTest, NamesWhatIsMissing) {
  ExpectError("", "FLANNEL_NETWORK or FLANNEL_IPV6_NETWORK");
  ExpectError("FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n", "FLANNEL_SUBNET");
  ExpectError("FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.19.1/24\nFLANNEL_IPMASQ=true\n",
              "FLANNEL_MTU");
  ExpectError("FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.19.1/24\nFLANNEL_MTU=1450\n",
              "FLANNEL_IPMASQ");
  ExpectError(
      "FLANNEL_IPV6_NETWORK=fd00:1::/32\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
      "FLANNEL_IPV6_SUBNET");
}

TEST(SubnetEnvTest, NamesTheBadLine) {
  ExpectError("FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.19/24\n", "line 2: FLANNEL_SUBNET");
  ExpectError("FLANNEL_NETWORK=10.1.0.1/16\n", "line 1: FLANNEL_NETWORK");
  ExpectError("FLANNEL_MTU=9x\n", "FLANNEL_MTU");
  ExpectError("FLANNEL_MTU=10\n", "FLANNEL_MTU");
  ExpectError("FLANNEL_IPMASQ=yes\n", "FLANNEL_IPMASQ");
}

TEST(SubnetEnvTest, SubnetMustLieInTheNetwork) {
  ExpectError(
      "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.9.19.1/24\nFLANNEL_MTU=1450\n"
      "FLANNEL_IPMASQ=true\n",
      "outside FLANNEL_NETWORK");
}

TEST(SubnetEnvTest, MissingFileIsTryAgainLaterAndNamesThePath) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/no/subnet.env";
  absl::StatusOr<SubnetEnv> env = ReadSubnetEnv(path);
  ASSERT_FALSE(env.ok());
  EXPECT_EQ(CniCodeOf(env.status()), kTryAgainLater);
  EXPECT_NE(env.status().message().find(path), absl::string_view::npos) << env.status();
}

TEST(SubnetEnvTest, ReadsAFile) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/subnet.env";
  std::ofstream(path) << kAgentFile;
  absl::StatusOr<SubnetEnv> env = ReadSubnetEnv(path);
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->subnet->ToString(), "10.1.19.0/24");
}

}  // namespace
}  // namespace weft::cni
