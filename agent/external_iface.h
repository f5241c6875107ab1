#pragma once
// Finds the external interface and public IP the way flanneld does:
// --iface (names or addresses, first match wins), else --iface-regex, else the
// interface of the default route, else the first up, non-loopback interface with
// an IPv4 address. --public-ip overrides the address that is published.
//
// Unlike flanneld, --iface and --iface-regex also match the interface's IPv6
// addresses. The chosen interface always needs an IPv4 address; its IPv6 address
// is looked up too, and required (RequireIPv6) only when the network is
// dual-stack. --public-ipv6 overrides the IPv6 address that is published.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/net.h"

namespace weft::agent {

struct ExternalInterface {
  std::string name;
  int index = 0;
  int mtu = 0;
  IPv4Addr address;     // the interface's own IPv4 address (VXLAN local)
  IPv4Net network;      // its on-link network (for DirectRouting / host-gw)
  IPv4Addr public_ip;   // what peers reach: address, or --public-ip
  // Its global IPv6 address (scope global; not tentative, deprecated or
  // dadfailed; a permanent one before a dynamic one before a temporary one) and
  // that address's on-link prefix; unset when it has none.
  std::optional<IPv6Addr> ipv6_address;
  std::optional<IPv6Net> ipv6_network;
  std::optional<IPv6Addr> public_ipv6;  // ipv6_address, or --public-ipv6
};

struct InterfaceSelector {
  std::vector<std::string> ifaces;         // names, IPv4 or IPv6 addresses
  std::vector<std::string> iface_regexes;  // ECMAScript regexes over names or addresses
  std::string public_ip;                   // optional override
  std::string public_ipv6;                 // optional override (dual-stack)
};

// The host's addresses as the kernel lists them: what the choice is made from.
struct HostAddresses {
  struct IPv4 {
    std::string iface;
    IPv4Addr addr;
    int prefix_len = 32;
    bool up = false;
    bool loopback = false;
  };
  struct IPv6 {
    std::string iface;
    IPv6Addr addr;
    int prefix_len = 128;
    int scope = 0;       // the kernel's IPV6_ADDR_SCOPE_*: 0x00 global, 0x10 host, 0x20 link
    uint32_t flags = 0;  // IFA_F_* (linux/if_addr.h)
  };
  std::vector<IPv4> ipv4;
  std::vector<IPv6> ipv6;
  std::string default_route_iface;  // the IPv4 default route's; "" when none
};

// Lists the calling thread's network namespace. NOT_FOUND naming what was looked
// for when nothing matches; INVALID_ARGUMENT for a bad regex or override.
absl::StatusOr<ExternalInterface> FindExternalInterface(const InterfaceSelector& sel);

// The choice itself, from `host`; leaves index and mtu 0.
absl::StatusOr<ExternalInterface> ChooseExternalInterface(const HostAddresses& host,
                                                          const InterfaceSelector& sel);

// The lines of /proc/net/if_inet6 ("<32 hex digits> <ifindex> <prefix len>
// <scope> <flags> <name>", numbers in hex); lines that do not parse are skipped.
std::vector<HostAddresses::IPv6> ParseIfInet6(absl::string_view text);

// --public-ipv6: INVALID_ARGUMENT, quoting the value, unless it is a unicast
// IPv6 address peers can reach (not unspecified, loopback, link-local, multicast
// or IPv4-mapped).
absl::StatusOr<IPv6Addr> ParsePublicIPv6(absl::string_view s);

// Dual-stack networks: FAILED_PRECONDITION naming the interface when it has no
// global IPv6 address and no --public-ipv6 was given.
absl::Status RequireIPv6(const ExternalInterface& ext);

}  // namespace weft::agent
