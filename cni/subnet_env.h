#pragma once
// The node's lease as weft-agent (or flanneld) writes it to subnet.env:
//
//   FLANNEL_NETWORK=10.1.0.0/16
//   FLANNEL_SUBNET=10.1.19.1/24
//   FLANNEL_MTU=1450
//   FLANNEL_IPMASQ=false
//   FLANNEL_IPV6_NETWORK=fd00:1::/32      (only with IPv6)
//   FLANNEL_IPV6_SUBNET=fd00:1:13::1/64   (only with IPv6)
//
// Parsed as flannel's CNI plugin does: FLANNEL_NETWORK may list several networks
// separated by commas, subnets are given with a host address (the network is
// what counts), unknown keys are ignored. Stricter than flannel: a value that does
// not parse, or a subnet outside every network, is an error naming the line.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/net.h"

namespace weft::cni {

inline constexpr char kDefaultSubnetFile[] = "/run/flannel/subnet.env";

struct SubnetEnv {
  std::vector<IPv4Net> networks;       // FLANNEL_NETWORK
  std::optional<IPv4Net> subnet;       // FLANNEL_SUBNET, host bits cleared
  std::vector<IPv6Net> ipv6_networks;  // FLANNEL_IPV6_NETWORK
  std::optional<IPv6Net> ipv6_subnet;  // FLANNEL_IPV6_SUBNET, host bits cleared
  uint32_t mtu = 0;                    // FLANNEL_MTU
  bool ipmasq = false;                 // FLANNEL_IPMASQ: the agent masquerades itself
};

// `source` names the file in messages. Needs a network and a subnet of at least
// one family, FLANNEL_MTU and FLANNEL_IPMASQ; errors are plain INVALID_ARGUMENT
// (reported as CNI code 999: the network config is not at fault).
absl::StatusOr<SubnetEnv> ParseSubnetEnv(absl::string_view text, absl::string_view source);

// Reads and parses `path`. A missing file is CNI error 11 (try again later): the
// agent has not written its lease yet, which clears up by itself.
absl::StatusOr<SubnetEnv> ReadSubnetEnv(const std::string& path);

}  // namespace weft::cni
