#include "agent/lease_fields.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace weft::agent {

const std::string& LeaseName(const weft::v1::Lease& lease) {
  return lease.subnet().empty() ? lease.ipv6_subnet() : lease.subnet();
}

std::optional<Peer> PeerFromLease(const weft::v1::Lease& lease, bool ipv4, bool* ipv6_unreadable) {
  *ipv6_unreadable = false;
  Peer p;
  p.backend_type = lease.backend_type();
  if (ipv4) {
    auto sn = IPv4Net::Parse(lease.subnet());
    auto ip = IPv4Addr::Parse(lease.public_ip());
    if (!sn.ok() || !ip.ok()) return std::nullopt;
    p.subnet = *sn;
    p.public_ip = *ip;
    p.backend_data_json = lease.backend_data();
    if (lease.ipv6_subnet().empty() && lease.public_ipv6().empty()) return p;
  } else {
    p.ipv4 = false;
  }
  auto sn6 = IPv6Net::Parse(lease.ipv6_subnet());
  auto ip6 = IPv6Addr::Parse(lease.public_ipv6());
  if (!sn6.ok() || !ip6.ok()) {
    if (!ipv4) return std::nullopt;  // nothing left to reach
    *ipv6_unreadable = true;
    return p;
  }
  p.ipv6_subnet = *sn6;
  p.public_ipv6 = *ip6;
  p.backend_v6_data_json = lease.backend_v6_data();
  return p;
}

absl::StatusOr<OwnLease> OwnLeaseFromResponse(const weft::v1::AcquireLeaseResponse& resp, bool ipv4, bool ipv6) {
  OwnLease own;
  own.ipv4 = ipv4;
  if (ipv4) {
    if (resp.lease().subnet().empty() || resp.network().empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the network config enables IPv4 but the controller's lease ", LeaseName(resp.lease()),
          " has no IPv4 subnet or network"));
    }
    ASSIGN_OR_RETURN(own.subnet, IPv4Net::Parse(resp.lease().subnet()));
    ASSIGN_OR_RETURN(own.network, IPv4Net::Parse(resp.network()));
  }
  if (!ipv6) return own;
  if (resp.lease().ipv6_subnet().empty() || resp.ipv6_network().empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the network config enables IPv6 but the controller's lease ", LeaseName(resp.lease()),
        " has no IPv6 subnet or network (a controller without dual-stack allocation?)"));
  }
  ASSIGN_OR_RETURN(own.ipv6_subnet, IPv6Net::Parse(resp.lease().ipv6_subnet()));
  ASSIGN_OR_RETURN(own.ipv6_network, IPv6Net::Parse(resp.ipv6_network()));
  return own;
}

}  // namespace weft::agent
