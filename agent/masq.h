#pragma once
// --ip-masq: source NAT for traffic from the cluster network to the outside
// world, never between subnets of the cluster network (pods see each other's real
// addresses). The rules are flanneld's, in a chain of our own so they can be
// checked and removed as a whole:
//
//   -A POSTROUTING -m comment --comment "weft masq" -j WEFT-POSTRTG
//   -A WEFT-POSTRTG -m mark --mark 0x4000/0x4000 ... -j RETURN       kube-proxy's, NATed already
//   -A WEFT-POSTRTG -s <network> -d <network> ... -j RETURN          inside the cluster: no NAT
//   -A WEFT-POSTRTG -s <network> ! -d 224.0.0.0/4 ... -j MASQUERADE --random-fully   pods -> outside
//   -A WEFT-POSTRTG ! -s <network> -d <subnet> ... -j RETURN         outside -> our pods: keep source
//   -A WEFT-POSTRTG ! -s <network> -d <network> ... -j MASQUERADE --random-fully     host -> remote pods
//
// Dual-stack networks get the same rules for IPv6 from ip6tables, in a chain of
// the same name in ip6tables' nat table (as flannel uses FLANNEL-POSTRTG for
// both), with ff00::/8 as the multicast range.
//
// Runs iptables-restore --noflush -w and iptables -w (ip6tables-restore and
// ip6tables for IPv6; found on PATH or in the sbin directories), in the caller's
// network namespace. Not thread-safe.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/net.h"

namespace weft::agent {

inline constexpr char kMasqChain[] = "WEFT-POSTRTG";

class Masquerade {
 public:
  // The chain's rules as `iptables -t nat -S WEFT-POSTRTG` prints them.
  static std::vector<std::string> ChainRules(const IPv4Net& network, const IPv4Net& subnet);
  // As `ip6tables -t nat -S WEFT-POSTRTG` prints them.
  static std::vector<std::string> ChainRules(const IPv6Net& network, const IPv6Net& subnet);

  // Makes the chain hold exactly ChainRules(network, subnet) and POSTROUTING jump
  // to it once. Checks first and changes nothing when all is in place; returns
  // whether it changed anything. FAILED_PRECONDITION when iptables is missing.
  absl::StatusOr<bool> Ensure(const IPv4Net& network, const IPv4Net& subnet);
  // The same with ip6tables.
  absl::StatusOr<bool> Ensure(const IPv6Net& network, const IPv6Net& subnet);

  // Removes the jump and the chain (masquerading turned off). OK when absent.
  absl::Status Remove();
  // The same with ip6tables.
  absl::Status RemoveIPv6();
};

}  // namespace weft::agent
