#pragma once
// The seam between the agent's backends and the kernel: the few link, address,
// neighbour, FDB and route operations a backend needs, for IPv4 and IPv6 alike
// (addresses are IPAddr/IPPrefix, see ip.h). NetlinkProgrammer
// (netlink_programmer.h) implements it over rtnetlink; FakeProgrammer
// (fake_programmer.h) keeps the same state in memory for unit tests.
//
// Implementations are not thread-safe: one caller at a time.

#include <linux/neighbour.h>
#include <linux/rtnetlink.h>

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/netlink/ip.h"
#include "common/net.h"

namespace weft::netlink {

// Weft's routes carry this rtm_protocol (an unassigned number, 'W'), so that
// listing and deleting only ever sees our own routes. `ip route show proto 87`.
inline constexpr uint8_t kWeftRouteProtocol = 87;
// The kernel's VXLAN port when none is given, and flannel's default.
inline constexpr uint16_t kDefaultVxlanPort = 8472;

// Attributes of a VXLAN device that can only be set when it is created.
struct VxlanInfo {
  uint32_t vni = 0;
  IPAddr local;  // IFLA_VXLAN_LOCAL or, for an IPv6 underlay, IFLA_VXLAN_LOCAL6
  int underlay_index = 0;  // IFLA_VXLAN_LINK; 0: none
  uint16_t port = kDefaultVxlanPort;
  bool learning = false;
  bool gbp = false;
  friend bool operator==(const VxlanInfo& a, const VxlanInfo& b) {
    return a.vni == b.vni && a.local == b.local && a.underlay_index == b.underlay_index &&
           a.port == b.port && a.learning == b.learning && a.gbp == b.gbp;
  }
  friend bool operator!=(const VxlanInfo& a, const VxlanInfo& b) { return !(a == b); }
};

struct VxlanLinkSpec {
  std::string name;  // "flannel.1"
  VxlanInfo info;
  uint32_t mtu = 0;  // 0: the kernel's choice
  MacAddr mac;       // zero: the kernel's choice
};

struct Link {
  int index = 0;
  std::string name;
  std::string kind;  // IFLA_INFO_KIND: "vxlan", "veth"...; empty for none
  MacAddr mac;
  uint32_t mtu = 0;
  bool up = false;  // administratively (IFF_UP)
  std::optional<VxlanInfo> vxlan;
};

struct InterfaceAddress {
  int ifindex = 0;
  IPAddr address;
  int prefix_len = 32;  // 128 for an IPv6 host address
  friend bool operator==(const InterfaceAddress& a, const InterfaceAddress& b) {
    return a.ifindex == b.ifindex && a.address == b.address && a.prefix_len == b.prefix_len;
  }
};

// An ARP entry, or for an IPv6 address an NDP entry:
// `ip neigh replace <ip> lladdr <mac> dev <ifindex> nud permanent`.
struct Neighbour {
  int ifindex = 0;
  IPAddr ip;
  MacAddr mac;
  uint16_t state = NUD_PERMANENT;  // NUD_*; only PERMANENT is ever written
  friend bool operator==(const Neighbour& a, const Neighbour& b) {
    return a.ifindex == b.ifindex && a.ip == b.ip && a.mac == b.mac && a.state == b.state;
  }
};

// A VXLAN forwarding entry:
// `bridge fdb replace <mac> dev <ifindex> dst <dst> self permanent`; dst is the
// remote VTEP's underlay address, IPv6 for a VXLAN device over IPv6.
struct FdbEntry {
  int ifindex = 0;
  MacAddr mac;
  IPAddr dst;
  uint16_t state = NUD_PERMANENT;
  friend bool operator==(const FdbEntry& a, const FdbEntry& b) {
    return a.ifindex == b.ifindex && a.mac == b.mac && a.dst == b.dst && a.state == b.state;
  }
};

// A nexthop object (kernel 5.3+):
// `ip nexthop replace id <id> via <gateway> dev <ifindex> [onlink] proto <protocol>`.
// Routes that share nothing but their device scale badly in the kernel when each
// carries its own gateway (every route insert scans all the others: the fib_info
// hash ignores the gateway); a route through a nexthop object does not.
// IPv4 only: IPv6 routes carry their own gateway (the fib_info scan above is
// IPv4's; the IPv6 FIB keeps each route's next hop with the route).
struct Nexthop {
  uint32_t id = 0;
  IPv4Addr gateway;
  int ifindex = 0;
  bool onlink = false;
  uint8_t protocol = kWeftRouteProtocol;
  friend bool operator==(const Nexthop& a, const Nexthop& b) {
    return a.id == b.id && a.gateway == b.gateway && a.ifindex == b.ifindex &&
           a.onlink == b.onlink && a.protocol == b.protocol;
  }
};

// A unicast route of the main table, IPv4 or IPv6 (by dst):
// `ip route replace <dst> via <gateway> dev <ifindex> [onlink] proto <protocol>`, or,
// with a nexthop_id (IPv4 only), `ip route replace <dst> nhid <id> proto <protocol>`
// (gateway, ifindex and onlink then describe that nexthop and are not sent).
struct Route {
  IPPrefix dst;
  // Of dst's family; its unspecified address (0.0.0.0 or ::): none (a direct route).
  IPAddr gateway;
  int ifindex = 0;
  bool onlink = false;
  uint8_t protocol = kWeftRouteProtocol;
  uint32_t nexthop_id = 0;  // 0: the route carries its next hop itself
  friend bool operator==(const Route& a, const Route& b) {
    return a.dst == b.dst && a.gateway == b.gateway && a.ifindex == b.ifindex &&
           a.onlink == b.onlink && a.protocol == b.protocol && a.nexthop_id == b.nexthop_id;
  }
};

// One kernel change for KernelProgrammer::Apply. Replace creates or overwrites;
// delete removes (a neighbour by ifindex+ip, an FDB entry by ifindex+mac+dst, a
// route by dst+protocol, a nexthop by id; deleting a nexthop deletes the routes
// through it).
struct Change {
  enum class Op { kReplace, kDelete };
  using Object = std::variant<Neighbour, FdbEntry, Route, Nexthop>;
  Op op = Op::kReplace;
  Object object;
  // "replace route 10.1.2.0/24 via 10.1.2.0 dev 5 onlink proto 87"
  std::string ToString() const;
};

std::string ToString(const Neighbour& n);
std::string ToString(const FdbEntry& f);
std::string ToString(const Route& r);
std::string ToString(const Nexthop& n);
std::ostream& operator<<(std::ostream& os, const Neighbour& n);
std::ostream& operator<<(std::ostream& os, const FdbEntry& f);
std::ostream& operator<<(std::ostream& os, const Route& r);
std::ostream& operator<<(std::ostream& os, const Nexthop& n);

class KernelProgrammer {
 public:
  virtual ~KernelProgrammer() = default;

  // NOT_FOUND when no such link.
  virtual absl::StatusOr<Link> GetLink(absl::string_view name) = 0;
  virtual absl::StatusOr<Link> GetLinkByIndex(int index) = 0;

  // Creates the VXLAN device `spec.name`, or keeps the existing one. A device
  // whose VxlanInfo differs from spec.info (or that is not VXLAN) is deleted and
  // created again: those attributes cannot change in place. MTU and MAC are set
  // in place. Does not bring the link up. Returns the device as it is now.
  virtual absl::StatusOr<Link> EnsureVxlan(const VxlanLinkSpec& spec) = 0;
  virtual absl::Status DeleteLink(int index) = 0;
  virtual absl::Status SetLinkUp(int index) = 0;

  // Makes `address` the only address of its family on link `index` (any other
  // is removed, as flannel does: a subnet from an earlier lease must stop
  // attracting traffic). Addresses of the other family stay, and so does the
  // kernel's IPv6 link-local (fe80::/10) address. An IPv6 address is added
  // without duplicate address detection (it is usable at once; the lease makes
  // it unique).
  virtual absl::Status EnsureAddress(const InterfaceAddress& address) = 0;
  // Both families, link-local addresses included.
  virtual absl::StatusOr<std::vector<InterfaceAddress>> ListAddresses(int index) = 0;

  // The neighbours (ARP and NDP) and the FDB entries with an IPv4 or IPv6
  // destination of link `index`, in any state, but for the kernel's NOARP
  // entries of multicast addresses (ff02::16 on every IPv6 link that is up).
  virtual absl::StatusOr<std::vector<Neighbour>> ListNeighbours(int index) = 0;
  virtual absl::StatusOr<std::vector<FdbEntry>> ListFdb(int index) = 0;
  // The main table's IPv4 and IPv6 routes of `protocol`, on link `index` (0: any link).
  virtual absl::StatusOr<std::vector<Route>> ListRoutes(int index, uint8_t protocol) = 0;
  // IPv4 single nexthops (not groups) of `protocol` (0: of any protocol).
  // UNIMPLEMENTED when the kernel has no nexthop objects (before 5.3).
  virtual absl::StatusOr<std::vector<Nexthop>> ListNexthops(uint8_t protocol) = 0;

  // The same dumps, each object handed to `visit` as it is read, so that a caller
  // keeps only what it needs of them (the reconciler, 60,000 objects with 20,000
  // peers). A dump the kernel interrupts is read again from the start: `restart`
  // is called before every attempt, the first one included, and whatever the
  // earlier attempts visited must be forgotten. Errors as the List calls. The
  // defaults list, then visit.
  template <typename T>
  using Visit = std::function<void(const T&)>;
  using Restart = std::function<void()>;
  virtual absl::Status VisitNeighbours(int index, const Restart& restart, const Visit<Neighbour>& visit);
  virtual absl::Status VisitFdb(int index, const Restart& restart, const Visit<FdbEntry>& visit);
  virtual absl::Status VisitRoutes(int index, uint8_t protocol, const Restart& restart, const Visit<Route>& visit);
  virtual absl::Status VisitNexthops(uint8_t protocol, const Restart& restart, const Visit<Nexthop>& visit);

  // Applies `changes` in order, many per round trip. Returns one status per
  // change: OK, or an error naming the change and the kernel's reason; a failed
  // change does not stop the others. A non-OK result means the channel to the
  // kernel failed and the outcome of some changes is unknown.
  virtual absl::StatusOr<std::vector<absl::Status>> Apply(const std::vector<Change>& changes) = 0;
};

}  // namespace weft::netlink
