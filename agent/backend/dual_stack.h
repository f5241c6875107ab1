#pragma once
// The IPv6 half of a dual-stack network as the route-programming backends
// (host-gw, vxlan) see it: this host's IPv6 side, checked once at Init, and why
// a peer's IPv6 side cannot be used. The IPv4 and IPv6 halves of a peer are
// independent: a peer whose IPv6 side is unusable still gets its IPv4 routes.

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/backend/backend.h"
#include "common/net.h"

namespace weft::agent {

// This host's IPv6 side.
struct LocalV6 {
  IPv6Net subnet;         // the lease's IPv6 subnet
  IPv6Addr iface_ip;      // the external interface's IPv6 address: the VXLAN source
  IPv6Net iface_network;  // its on-link IPv6 network: peers inside are L2 neighbours
  IPv6Addr public_ip;     // PublicIPv6; iface_ip unless given
};

// nullopt when the network is IPv4-only (the lease has no IPv6 subnet).
// INVALID_ARGUMENT, prefixed with `backend`, when the lease has an IPv6 subnet but
// the external interface has no IPv6 address or network.
absl::StatusOr<std::optional<LocalV6>> LocalV6Of(const LocalConfig& local, const OwnLease& lease,
                                                 absl::string_view backend);

// Why this host cannot use the IPv6 side of `peer`: no IPv6 subnet or no
// PublicIPv6, a subnet that overlaps ours, or our own PublicIPv6. Empty when it
// can.
std::string PeerV6Problem(const Peer& peer, const LocalV6& own);

}  // namespace weft::agent
