#pragma once
// The controller's lease messages as the backend's types.

#include <optional>

#include "absl/status/statusor.h"
#include "agent/backend/backend.h"
#include "proto/weft/v1/weft.pb.h"

namespace weft::agent {

// The lease's name: its IPv4 subnet, or its IPv6 subnet when it has none (a
// lease of an IPv6-only network). What renewals and releases name it by.
const std::string& LeaseName(const weft::v1::Lease& lease);

// Another host's lease as a Peer. nullopt when its subnet or PublicIP does not
// parse (in an IPv6-only network, `ipv4` false: its IPv6 subnet or PublicIPv6). A
// dual-stack lease whose IPv6 subnet or PublicIPv6 does not parse keeps its IPv4
// part (the v6 fields stay unset) and sets *ipv6_unreadable.
std::optional<Peer> PeerFromLease(const weft::v1::Lease& lease, bool ipv4, bool* ipv6_unreadable);

// This host's lease from the controller's answer, for a network with the given
// families. With `ipv6` the answer must carry the IPv6 subnet and network, with
// `ipv4` the IPv4 ones: else FAILED_PRECONDITION (a controller that does not
// allocate them). INVALID_ARGUMENT for a field that does not parse.
absl::StatusOr<OwnLease> OwnLeaseFromResponse(const weft::v1::AcquireLeaseResponse& resp, bool ipv4, bool ipv6);

}  // namespace weft::agent
