#include "agent/netlink/ip.h"

#include <sys/socket.h>

#include <ostream>

#include "common/check.h"

namespace weft::netlink {

int IPAddr::family() const { return is_v6() ? AF_INET6 : AF_INET; }

IPv4Addr IPAddr::v4() const {
  WEFT_CHECK(!is_v6(), "IPAddr::v4() of an IPv6 address");
  return std::get<IPv4Addr>(addr_);
}

IPv6Addr IPAddr::v6() const {
  WEFT_CHECK(is_v6(), "IPAddr::v6() of an IPv4 address");
  return std::get<IPv6Addr>(addr_);
}

bool IPAddr::IsUnspecified() const { return is_v6() ? v6() == IPv6Addr() : v4() == IPv4Addr(); }

bool IPAddr::IsLinkLocal() const {
  return is_v6() && (v6().value() >> 118) == absl::uint128(0x3fa);  // fe80::/10
}

std::string IPAddr::ToString() const {
  return std::visit([](const auto& v) { return v.ToString(); }, addr_);
}

absl::StatusOr<IPPrefix> IPPrefix::Make(const IPAddr& network, int prefix_len) {
  if (network.is_v6()) {
    absl::StatusOr<IPv6Net> n = IPv6Net::Make(network.v6(), prefix_len);
    if (!n.ok()) return n.status();
    return IPPrefix(*n);
  }
  absl::StatusOr<IPv4Net> n = IPv4Net::Make(network.v4(), prefix_len);
  if (!n.ok()) return n.status();
  return IPPrefix(*n);
}

int IPPrefix::family() const { return is_v6() ? AF_INET6 : AF_INET; }

IPAddr IPPrefix::network() const {
  return std::visit([](const auto& n) { return IPAddr(n.network()); }, net_);
}

int IPPrefix::prefix_len() const {
  return std::visit([](const auto& n) { return n.prefix_len(); }, net_);
}

const IPv4Net& IPPrefix::v4() const {
  WEFT_CHECK(!is_v6(), "IPPrefix::v4() of an IPv6 network");
  return std::get<IPv4Net>(net_);
}

const IPv6Net& IPPrefix::v6() const {
  WEFT_CHECK(is_v6(), "IPPrefix::v6() of an IPv4 network");
  return std::get<IPv6Net>(net_);
}

std::string IPPrefix::ToString() const {
  return std::visit([](const auto& n) { return n.ToString(); }, net_);
}

std::ostream& operator<<(std::ostream& os, const IPAddr& a) { return os << a.ToString(); }
std::ostream& operator<<(std::ostream& os, const IPPrefix& p) { return os << p.ToString(); }

}  // namespace weft::netlink
