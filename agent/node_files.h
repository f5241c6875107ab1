#pragma once
// The files other programs read on each node, in flannel's formats:
//
// subnet.env (default /run/flannel/subnet.env), read by the CNI plugin:
//   FLANNEL_NETWORK=10.1.0.0/16
//   FLANNEL_SUBNET=10.1.19.1/24        the lease's first usable address
//   FLANNEL_MTU=1450
//   FLANNEL_IPMASQ=false
//   FLANNEL_IPV6_NETWORK=fd00:1::/48   (only with IPv6)
//   FLANNEL_IPV6_SUBNET=fd00:1:13::1/64
//
// The Docker options file (default /run/docker_opts.env), as mk-docker-opts.sh
// writes it:
//   DOCKER_OPT_BIP="--bip=10.1.19.1/24"
//   DOCKER_OPT_IPMASQ="--ip-masq=true"   (Docker masquerades when we do not)
//   DOCKER_OPT_MTU="--mtu=1450"
//   DOCKER_OPTS="--bip=10.1.19.1/24 --ip-masq=true --mtu=1450"
// and, when the lease has an IPv6 subnet (mk-docker-opts.sh writes nothing for
// IPv6; these are Docker's own flags, after flannel's three):
//   DOCKER_OPT_IPV6="--ipv6"
//   DOCKER_OPT_FIXED_CIDR_V6="--fixed-cidr-v6=fd00:1:13::/64"
//   DOCKER_OPTS="--bip=... --ip-masq=true --mtu=1450 --ipv6 --fixed-cidr-v6=fd00:1:13::/64"
//
// Both are written atomically (see common/atomic_file.h).

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/net.h"

namespace weft::agent {

inline constexpr char kDefaultSubnetFile[] = "/run/flannel/subnet.env";
inline constexpr char kDefaultDockerOptsFile[] = "/run/docker_opts.env";

struct NodeLease {
  bool ipv4 = true;  // false in an IPv6-only network: no IPv4 lines are written
  IPv4Net network;  // the cluster network
  IPv4Net subnet;   // this node's lease, as allocated (10.1.19.0/24)
  uint32_t mtu = 0;
  bool ip_masq = false;  // whether weft-agent masquerades (--ip-masq)
  std::optional<IPv6Net> ipv6_network;
  std::optional<IPv6Net> ipv6_subnet;
};

std::string RenderSubnetEnv(const NodeLease& lease);
// `key` names the combined variable (mk-docker-opts.sh -k; DOCKER_OPTS by default).
std::string RenderDockerOpts(const NodeLease& lease, absl::string_view key = "DOCKER_OPTS");

absl::Status WriteSubnetEnv(const std::string& path, const NodeLease& lease);
absl::Status WriteDockerOpts(const std::string& path, const NodeLease& lease,
                             absl::string_view key = "DOCKER_OPTS");

// The lease a previous run left in subnet.env (FLANNEL_SUBNET with its host bits
// cleared), so the agent can ask for the same subnet again. nullopt when the file
// does not exist or has no FLANNEL_SUBNET; INVALID_ARGUMENT, naming the file and
// line, when the value does not parse.
absl::StatusOr<std::optional<IPv4Net>> ReadPreviousSubnet(const std::string& path);
// The same for FLANNEL_IPV6_SUBNET.
absl::StatusOr<std::optional<IPv6Net>> ReadPreviousIPv6Subnet(const std::string& path);

}  // namespace weft::agent
