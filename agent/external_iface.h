#pragma once
// Finds the external interface and public IP the way flanneld does:
// --iface (names or addresses, first match wins), else --iface-regex, else
// --iface-can-reach (the interface the route to that address leaves by), else the
// interface of the default route, else the first up, non-loopback interface with
// an IPv4 address. --public-ip overrides the address that is published.
//
// Unlike flanneld, --iface and --iface-regex also match the interface's IPv6
// addresses. For IPv4-only and dual-stack networks the chosen interface needs an
// IPv4 address; its IPv6 address is looked up too, and required (RequireIPv6)
// only when the network is dual-stack. For IPv6-only networks (ipv6_only) the
// choice is made among interfaces with a usable global IPv6 address, the same
// way, with the IPv6 default route's interface in place of the IPv4 one; no
// IPv4 address is needed or published. --public-ipv6 overrides the IPv6 address
// that is published.

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
  // False when chosen for an IPv6-only network: address, network and public_ip
  // are then unset.
  bool ipv4 = true;
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
  std::string public_ipv6;                 // optional override (dual-stack, IPv6-only)
  // --iface-can-reach: an IPv4 or IPv6 address; the interface the kernel would
  // send to it from is chosen (when neither ifaces nor iface_regexes is given).
  std::string can_reach;
  bool ipv6_only = false;                  // the network is IPv6-only (EnableIPv4 false)
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
    bool up = true;      // the interface's
    bool loopback = false;
  };
  std::vector<IPv4> ipv4;
  std::vector<IPv6> ipv6;
  std::string default_route_iface;   // the IPv4 default route's; "" when none
  std::string default_route6_iface;  // the IPv6 default route's; "" when none
};

// Lists the calling thread's network namespace. NOT_FOUND naming what was looked
// for when nothing matches; INVALID_ARGUMENT for a bad regex, override or
// --iface-can-reach address; UNAVAILABLE when that address has no route.
absl::StatusOr<ExternalInterface> FindExternalInterface(const InterfaceSelector& sel);

// --iface-can-reach: the local address the kernel would send from to `target`
// (an IPv4 or IPv6 address), asked by connecting a UDP socket, which sends
// nothing. In the calling thread's network namespace.
absl::StatusOr<std::string> SourceAddressFor(absl::string_view target);

// The choice itself, from `host`; leaves index and mtu 0.
absl::StatusOr<ExternalInterface> ChooseExternalInterface(const HostAddresses& host,
                                                          const InterfaceSelector& sel);

// The lines of /proc/net/if_inet6 ("<32 hex digits> <ifindex> <prefix len>
// <scope> <flags> <name>", numbers in hex); lines that do not parse are skipped.
std::vector<HostAddresses::IPv6> ParseIfInet6(absl::string_view text);

// The interface of the IPv6 default route (::/0, not via the loopback, which is
// how the kernel lists an unreachable one) in /proc/net/ipv6_route's text; "" when
// there is none.
std::string ParseIPv6DefaultRouteIface(absl::string_view text);

// --public-ipv6: INVALID_ARGUMENT, quoting the value, unless it is a unicast
// IPv6 address peers can reach (not unspecified, loopback, link-local, multicast
// or IPv4-mapped).
absl::StatusOr<IPv6Addr> ParsePublicIPv6(absl::string_view s);

// Dual-stack and IPv6-only networks: FAILED_PRECONDITION naming the interface
// when it has no global IPv6 address and no --public-ipv6 was given.
absl::Status RequireIPv6(const ExternalInterface& ext);

}  // namespace weft::agent
