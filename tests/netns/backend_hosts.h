#pragma once
// Two simulated hosts for the backends' kernel tests: network namespaces
// <prefix>a and <prefix>b joined by a veth pair on 192.0.2.0/24 (eth0 192.0.2.1
// and 192.0.2.2), each with its own NetlinkProgrammer (with or without nexthop
// objects), its LocalConfig and a lease (198.18.1.0/24 and 198.18.2.0/24 of
// 198.18.0.0/16). Dual-stack pairs add an IPv6 underlay, fd77:1::1/64 and
// fd77:1::2/64 on eth0 (without DAD, so usable at once), and IPv6 subnets
// fd42:0:1::/64 and fd42:0:2::/64 of fd42::/48 (all ULA test addresses). Each
// test adds its backend.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "agent/backend/backend.h"
#include "agent/netlink/netlink_programmer.h"
#include "tests/netns/netns.h"

namespace weft::testing {

inline constexpr char kHostsNetwork[] = "198.18.0.0/16";
inline constexpr char kHostsIPv6Network[] = "fd42::/48";
inline constexpr char kUnderlayIPv6Network[] = "fd77:1::/64";

struct NetnsHost {
  std::unique_ptr<NetNs> ns;
  std::unique_ptr<netlink::NetlinkProgrammer> kernel;
  agent::LocalConfig local;
  agent::OwnLease lease;

  // Runs a shell command in the namespace; a failure fails the test.
  std::string Sh(absl::string_view cmd);
};

absl::Status MakeHostPair(absl::string_view prefix, bool nexthops, NetnsHost* a, NetnsHost* b,
                          bool dual_stack = false);

// Reconciles `peers`; an error fails the test (and gives empty stats).
agent::ReconcileStats ReconcileOk(agent::Backend& backend, const std::vector<agent::Peer>& peers);

}  // namespace weft::testing
