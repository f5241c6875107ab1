#pragma once
// Finds the external interface and public IP the way flanneld does:
// --iface (names or addresses, first match wins), else --iface-regex, else the
// interface of the default route, else the first up, non-loopback interface with
// an IPv4 address. --public-ip overrides the address that is published.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/net.h"

namespace weft::agent {

struct ExternalInterface {
  std::string name;
  int index = 0;
  int mtu = 0;
  IPv4Addr address;     // the interface's own IPv4 address (VXLAN local)
  IPv4Net network;      // its on-link network (for DirectRouting / host-gw)
  IPv4Addr public_ip;   // what peers reach: address, or --public-ip
};

struct InterfaceSelector {
  std::vector<std::string> ifaces;         // names or IPv4 addresses
  std::vector<std::string> iface_regexes;  // ECMAScript regexes over names or addresses
  std::string public_ip;                   // optional override
};

// NOT_FOUND naming what was looked for when nothing matches.
absl::StatusOr<ExternalInterface> FindExternalInterface(const InterfaceSelector& sel);

}  // namespace weft::agent
