#include "agent/node_files.h"

#include <sys/stat.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace weft::agent {
namespace {

using ::testing::HasSubstr;

NodeLease Lease(bool ip_masq) {
  NodeLease l;
  l.network = *IPv4Net::Parse("10.1.0.0/16");
  l.subnet = *IPv4Net::Parse("10.1.19.0/24");
  l.mtu = 1450;
  l.ip_masq = ip_masq;
  return l;
}

NodeLease DualStackLease(bool ip_masq) {
  NodeLease l = Lease(ip_masq);
  l.ipv6_network = *IPv6Net::Parse("fd00:1::/48");
  l.ipv6_subnet = *IPv6Net::Parse("fd00:1:13::/64");
  return l;
}

TEST(NodeFilesTest, SubnetEnvIsFlannels) {
  EXPECT_EQ(RenderSubnetEnv(Lease(true)),
            "FLANNEL_NETWORK=10.1.0.0/16\n"
            "FLANNEL_SUBNET=10.1.19.1/24\n"
            "FLANNEL_MTU=1450\n"
            "FLANNEL_IPMASQ=true\n");
}

TEST(NodeFilesTest, SubnetEnvWithIPv6) {
  const NodeLease l = DualStackLease(false);
  EXPECT_EQ(RenderSubnetEnv(l),
            "FLANNEL_NETWORK=10.1.0.0/16\n"
            "FLANNEL_SUBNET=10.1.19.1/24\n"
            "FLANNEL_MTU=1450\n"
            "FLANNEL_IPMASQ=false\n"
            "FLANNEL_IPV6_NETWORK=fd00:1::/48\n"
            "FLANNEL_IPV6_SUBNET=fd00:1:13::1/64\n");
}

// flannel's files for an IPv6-only network: no IPv4 lines at all.
TEST(NodeFilesTest, IPv6OnlyHasNoIPv4Lines) {
  NodeLease l = DualStackLease(true);
  l.ipv4 = false;
  EXPECT_EQ(RenderSubnetEnv(l),
            "FLANNEL_MTU=1450\n"
            "FLANNEL_IPMASQ=true\n"
            "FLANNEL_IPV6_NETWORK=fd00:1::/48\n"
            "FLANNEL_IPV6_SUBNET=fd00:1:13::1/64\n");
  EXPECT_EQ(RenderDockerOpts(l),
            "DOCKER_OPT_IPMASQ=\"--ip-masq=false\"\n"
            "DOCKER_OPT_MTU=\"--mtu=1450\"\n"
            "DOCKER_OPT_IPV6=\"--ipv6\"\n"
            "DOCKER_OPT_FIXED_CIDR_V6=\"--fixed-cidr-v6=fd00:1:13::/64\"\n"
            "DOCKER_OPTS=\"--ip-masq=false --mtu=1450 --ipv6 --fixed-cidr-v6=fd00:1:13::/64\"\n");
}

TEST(NodeFilesTest, DockerOptsAreMkDockerOpts) {
  // Docker masquerades exactly when the agent does not.
  EXPECT_EQ(RenderDockerOpts(Lease(false)),
            "DOCKER_OPT_BIP=\"--bip=10.1.19.1/24\"\n"
            "DOCKER_OPT_IPMASQ=\"--ip-masq=true\"\n"
            "DOCKER_OPT_MTU=\"--mtu=1450\"\n"
            "DOCKER_OPTS=\"--bip=10.1.19.1/24 --ip-masq=true --mtu=1450\"\n");
  EXPECT_THAT(RenderDockerOpts(Lease(true), "DOCKER_NETWORK_OPTIONS"),
              HasSubstr("DOCKER_NETWORK_OPTIONS=\"--bip=10.1.19.1/24 --ip-masq=false --mtu=1450\"\n"));
}

TEST(NodeFilesTest, DockerOptsWithIPv6) {
  const NodeLease l = DualStackLease(true);
  EXPECT_EQ(RenderDockerOpts(l),
            "DOCKER_OPT_BIP=\"--bip=10.1.19.1/24\"\n"
            "DOCKER_OPT_IPMASQ=\"--ip-masq=false\"\n"
            "DOCKER_OPT_MTU=\"--mtu=1450\"\n"
            "DOCKER_OPT_IPV6=\"--ipv6\"\n"
            "DOCKER_OPT_FIXED_CIDR_V6=\"--fixed-cidr-v6=fd00:1:13::/64\"\n"
            "DOCKER_OPTS=\"--bip=10.1.19.1/24 --ip-masq=false --mtu=1450 --ipv6 "
            "--fixed-cidr-v6=fd00:1:13::/64\"\n");

  const TempDir dir("nf");
  const std::string path = dir.Join("docker_opts.env");
  ASSERT_TRUE(WriteDockerOpts(path, l).ok());
  const int rc = std::system(absl::StrCat(". ", path, " && test \"$DOCKER_OPT_FIXED_CIDR_V6\" = "
                                          "'--fixed-cidr-v6=fd00:1:13::/64'")
                                 .c_str());
  EXPECT_EQ(rc, 0);
}

TEST(NodeFilesTest, DockerOptsFileSourcesInAShell) {
  const TempDir dir("nf");
  const std::string path = dir.Join("run/docker_opts.env");
  ASSERT_TRUE(WriteDockerOpts(path, Lease(false)).ok());
  // What a systemd EnvironmentFile= or `. file` gets.
  const int rc = std::system(absl::StrCat(". ", path, " && test \"$DOCKER_OPTS\" = "
                                          "'--bip=10.1.19.1/24 --ip-masq=true --mtu=1450'")
                                 .c_str());
  EXPECT_EQ(rc, 0);
}

TEST(NodeFilesTest, WritesAtomicallyIntoNewDirectoriesAndReadsThePreviousSubnet) {
  const TempDir dir("nf");
  const std::string path = dir.Join("run/flannel/subnet.env");
  auto none = ReadPreviousSubnet(path);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value()) << "no file: no previous subnet";

  ASSERT_TRUE(WriteSubnetEnv(path, Lease(false)).ok());
  EXPECT_EQ(**ReadFileIfExists(path), RenderSubnetEnv(Lease(false)));
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);

  auto prev = ReadPreviousSubnet(path);
  ASSERT_TRUE(prev.ok()) << prev.status();
  ASSERT_TRUE(prev->has_value());
  EXPECT_EQ(**prev, *IPv4Net::Parse("10.1.19.0/24"));

  // A new lease replaces the file whole.
  NodeLease moved = Lease(false);
  moved.subnet = *IPv4Net::Parse("10.1.20.0/24");
  ASSERT_TRUE(WriteSubnetEnv(path, moved).ok());
  EXPECT_EQ(**ReadPreviousSubnet(path), *IPv4Net::Parse("10.1.20.0/24"));
}

TEST(NodeFilesTest, ReadsThePreviousIPv6Subnet) {
  const TempDir dir("nf");
  const std::string path = dir.Join("subnet.env");
  EXPECT_FALSE(ReadPreviousIPv6Subnet(path)->has_value()) << "no file";
  ASSERT_TRUE(WriteSubnetEnv(path, Lease(false)).ok());
  EXPECT_FALSE(ReadPreviousIPv6Subnet(path)->has_value()) << "IPv4-only lease";

  const NodeLease l = DualStackLease(false);
  ASSERT_TRUE(WriteSubnetEnv(path, l).ok());
  auto prev = ReadPreviousIPv6Subnet(path);
  ASSERT_TRUE(prev.ok()) << prev.status();
  EXPECT_EQ(**prev, *IPv6Net::Parse("fd00:1:13::/64"));
  EXPECT_EQ(**ReadPreviousSubnet(path), *IPv4Net::Parse("10.1.19.0/24")) << "FLANNEL_SUBNET is not confused";

  ASSERT_TRUE(WriteFileAtomically(path, "FLANNEL_SUBNET=10.1.19.1/24\nFLANNEL_IPV6_SUBNET=fd00:1:13::1/129\n").ok());
  auto bad = ReadPreviousIPv6Subnet(path);
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status())) << bad.status();
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("line 2: FLANNEL_IPV6_SUBNET"));
  EXPECT_TRUE(ReadPreviousSubnet(path).ok()) << "a bad IPv6 line does not spoil the IPv4 one";
}

TEST(NodeFilesTest, ReadsAFileFlanneldWrote) {
  const TempDir dir("nf");
  const std::string path = dir.Join("subnet.env");
  ASSERT_TRUE(WriteFileAtomically(path, "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\n"
                                        "FLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n")
                  .ok());
  EXPECT_EQ(**ReadPreviousSubnet(path), *IPv4Net::Parse("10.244.3.0/24"));

  ASSERT_TRUE(WriteFileAtomically(path, "FLANNEL_NETWORK=10.244.0.0/16\n").ok());
  EXPECT_FALSE(ReadPreviousSubnet(path)->has_value());

  ASSERT_TRUE(WriteFileAtomically(path, "FLANNEL_MTU=1450\nFLANNEL_SUBNET=10.244.3.300/24\n").ok());
  auto bad = ReadPreviousSubnet(path);
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status())) << bad.status();
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("line 2"));
}

}  // namespace
}  // namespace weft::agent
