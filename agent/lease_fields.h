#pragma once
// The controller's lease messages as the backend's types.

#include <optional>

#include "absl/status/statusor.h"
#include "agent/backend/backend.h"
#include "proto/weft/v1/weft.pb.h"

namespace weft::agent {

// Another host's lease as a Peer. nullopt when its subnet or PublicIP does not
// parse. A dual-stack lease whose IPv6 subnet or PublicIPv6 does not parse keeps
// its IPv4 part (the v6 fields stay unset) and sets *ipv6_unreadable.
std::optional<Peer> PeerFromLease(const weft::v1::Lease& lease, bool* ipv6_unreadable);

// This host's lease from the controller's answer. With `ipv6` (the network is
// dual-stack) the answer must carry the IPv6 subnet and network: else
// FAILED_PRECONDITION (a controller that does not allocate them). INVALID_ARGUMENT
// for a field that does not parse.
absl::StatusOr<OwnLease> OwnLeaseFromResponse(const weft::v1::AcquireLeaseResponse& resp, bool ipv6);

}  // namespace weft::agent
