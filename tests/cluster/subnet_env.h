#pragma once
// subnet.env as a weft agent (or flanneld) writes it, parsed for the cluster harness.

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace weft::testing {

struct SubnetEnv {
  std::map<std::string, std::string> vars;  // every KEY=VALUE line
  std::string network;  // FLANNEL_NETWORK, "10.1.0.0/16"
  std::string subnet;   // FLANNEL_SUBNET, "10.1.19.1/24" (first usable address / length)
  std::string ipv6_subnet;  // FLANNEL_IPV6_SUBNET, "fd00:12:0:13::1/64"; empty without IPv6
  int mtu = 0;          // FLANNEL_MTU
  bool ipmasq = false;  // FLANNEL_IPMASQ

  static absl::StatusOr<SubnetEnv> Parse(absl::string_view text);
  std::string Gateway() const;         // "10.1.19.1", the docker0 address
  int PrefixLength() const;            // 24
  std::string NetworkAddress() const;  // "10.1.19.0"
  std::string SubnetCidr() const;      // "10.1.19.0/24", as in the lease
};

}  // namespace weft::testing
