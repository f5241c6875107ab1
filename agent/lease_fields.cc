#include "agent/lease_fields.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace weft::agent {

std::optional<Peer> PeerFromLease(const weft::v1::Lease& lease, bool* ipv6_unreadable) {
  *ipv6_unreadable = false;
  auto sn = IPv4Net::Parse(lease.subnet());
  auto ip = IPv4Addr::Parse(lease.public_ip());
  if (!sn.ok() || !ip.ok()) return std::nullopt;
  Peer p{*sn, *ip, lease.backend_type(), lease.backend_data()};
  if (lease.ipv6_subnet().empty() && lease.public_ipv6().empty()) return p;
  auto sn6 = IPv6Net::Parse(lease.ipv6_subnet());
  auto ip6 = IPv6Addr::Parse(lease.public_ipv6());
  if (!sn6.ok() || !ip6.ok()) {
    *ipv6_unreadable = true;
    return p;
  }
  p.ipv6_subnet = *sn6;
  p.public_ipv6 = *ip6;
  p.backend_v6_data_json = lease.backend_v6_data();
  return p;
}

absl::StatusOr<OwnLease> OwnLeaseFromResponse(const weft::v1::AcquireLeaseResponse& resp, bool ipv6) {
  OwnLease own;
  ASSIGN_OR_RETURN(own.subnet, IPv4Net::Parse(resp.lease().subnet()));
  ASSIGN_OR_RETURN(own.network, IPv4Net::Parse(resp.network()));
  if (!ipv6) return own;
  if (resp.lease().ipv6_subnet().empty() || resp.ipv6_network().empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the network config enables IPv6 but the controller's lease ", resp.lease().subnet(),
        " has no IPv6 subnet or network (a controller without dual-stack allocation?)"));
  }
  ASSIGN_OR_RETURN(own.ipv6_subnet, IPv6Net::Parse(resp.lease().ipv6_subnet()));
  ASSIGN_OR_RETURN(own.ipv6_network, IPv6Net::Parse(resp.ipv6_network()));
  return own;
}

}  // namespace weft::agent
