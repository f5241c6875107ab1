#include "agent/backend/dual_stack.h"

#include "absl/strings/str_cat.h"

namespace weft::agent {

absl::StatusOr<std::optional<LocalV6>> LocalV6Of(const LocalConfig& local, const OwnLease& lease,
                                                 absl::string_view backend) {
  if (!lease.ipv6_subnet) return std::nullopt;
  if (!local.iface_ipv6 || !local.iface_ipv6_network) {
    return absl::InvalidArgumentError(absl::StrCat(
        backend, ": the network has IPv6 enabled but ", local.iface_name, " has no global IPv6 address"));
  }
  return LocalV6{*lease.ipv6_subnet, *local.iface_ipv6, *local.iface_ipv6_network,
                 local.public_ipv6.value_or(*local.iface_ipv6)};
}

std::string PeerV6Problem(const Peer& peer, const LocalV6& own) {
  if (!peer.ipv6_subnet) return "no IPv6 subnet";
  if (!peer.public_ipv6) return "IPv6 subnet without a PublicIPv6";
  if (peer.ipv6_subnet->Overlaps(own.subnet)) {
    return absl::StrCat("IPv6 subnet ", peer.ipv6_subnet->ToString(), " overlaps this host's ", own.subnet.ToString());
  }
  if (*peer.public_ipv6 == own.public_ip) {
    return absl::StrCat("PublicIPv6 ", peer.public_ipv6->ToString(), " is this host's own");
  }
  return "";
}

}  // namespace weft::agent
