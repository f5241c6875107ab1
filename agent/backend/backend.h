#pragma once
// A backend connects this host's containers to the other hosts' subnets: one
// per data path (vxlan, udp, host-gw, wireguard, aws-vpc, gce, alloc), each in
// its folder under agent/backend/, made by CreateBackend (factory.h).
//
// The agent calls Init once it knows its lease, publishes the returned backend
// data in the lease, writes the MTU to subnet.env, then calls Reconcile with the
// whole lease set at every change and every resync, and Teardown when it stops for
// good. One thread at a time.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/netlink/reconcile_stats.h"
#include "common/net.h"

namespace weft::agent {

// This host's side of the underlay.
struct LocalConfig {
  std::string iface_name;  // external interface, e.g. "eth0"
  int iface_index = 0;
  uint32_t iface_mtu = 1500;
  IPv4Addr iface_ip;      // its IPv4 address: the VXLAN source address (unset in an IPv6-only network)
  IPv4Net iface_network;  // its on-link network: peers inside are L2 neighbours
  IPv4Addr public_ip;     // what peers reach (published as PublicIP); usually iface_ip
  // The IPv6 underlay, set when the network has IPv6 enabled (dual-stack or IPv6-only):
  std::optional<IPv6Addr> iface_ipv6;         // the interface's global IPv6 address
  std::optional<IPv6Net> iface_ipv6_network;  // its on-link IPv6 network
  std::optional<IPv6Addr> public_ipv6;        // published as PublicIPv6; usually iface_ipv6
};

struct OwnLease {
  IPv4Net subnet;   // this host's subnet, e.g. 10.1.19.0/24
  IPv4Net network;  // the cluster network, e.g. 10.1.0.0/16
  // Set when the network has IPv6 enabled (dual-stack or IPv6-only).
  std::optional<IPv6Net> ipv6_subnet;   // e.g. fd42:0:13::/64
  std::optional<IPv6Net> ipv6_network;  // e.g. fd42::/48
  // False in an IPv6-only network (EnableIPv4 false): `subnet` and `network` are
  // then unset (0.0.0.0/0) and must not be used.
  bool ipv4 = true;
};

// What Init returns for the lease and subnet.env.
struct BackendInfo {
  std::string type;       // "vxlan": the lease's BackendType
  std::string data_json;  // the lease's BackendData: {"VNI":1,"VtepMAC":"..."}
  uint32_t mtu = 0;       // for containers: FLANNEL_MTU
  std::string v6_data_json;  // the lease's BackendV6Data (dual-stack); "" for none
};

// Another host, from its lease.
struct Peer {
  IPv4Net subnet;
  IPv4Addr public_ip;
  std::string backend_type;       // BackendType
  std::string backend_data_json;  // BackendData, raw JSON
  // Dual-stack and IPv6-only peers (unset for IPv4-only leases).
  std::optional<IPv6Net> ipv6_subnet;
  std::optional<IPv6Addr> public_ipv6;
  std::string backend_v6_data_json;  // BackendV6Data, raw JSON
  // False for a lease of an IPv6-only network: `subnet` and `public_ip` are then
  // unset and must not be used. Such peers reach only backends with an IPv6 data
  // path (the agent refuses IPv6-only networks for the others).
  bool ipv4 = true;
};

// Whether `peer` is this host's own lease (by its IPv4 subnet, or its IPv6 one in
// an IPv6-only network).
inline bool IsOwnLease(const Peer& peer, const OwnLease& own) {
  if (own.ipv4) return peer.ipv4 && peer.subnet == own.subnet;
  return !peer.ipv4 && peer.ipv6_subnet == own.ipv6_subnet;
}

class Backend {
 public:
  virtual ~Backend() = default;

  // Sets up this host's side (devices, addresses). `backend_config_json` is the
  // network config's "Backend" object ({"Type":"vxlan","VNI":1,...}). Errors:
  // INVALID_ARGUMENT for a bad config; kernel errors otherwise. May be called again
  // (e.g. with a new lease); it then converges to the new setup.
  virtual absl::StatusOr<BackendInfo> Init(const LocalConfig& local, const OwnLease& lease,
                                           absl::string_view backend_config_json) = 0;

  // Makes the data path reach exactly `peers` (this host's own lease may be among
  // them and is ignored). Peers of another backend type or with data that does
  // not parse are skipped and logged. Also repairs this host's own setup when it
  // was changed behind our back. Errors only when the kernel cannot be reached.
  // The list is the backend's: it may free it as soon as it has what it needs
  // (20,000 peers are ~4 MB, otherwise resident while the kernel is read); the
  // agent moves its list in.
  virtual absl::StatusOr<ReconcileStats> Reconcile(std::vector<Peer> peers) = 0;

  // Removes everything Init and Reconcile set up.
  virtual absl::Status Teardown() = 0;

  // The lease's BackendData this host publishes (raw JSON, e.g. vxlan's
  // {"VNI":1,"VtepMAC":"..."}; "" for none). Asked before the lease is acquired,
  // so it must not depend on the lease. May look things up (a cloud backend asks
  // its metadata server for the instance), hence the status.
  virtual absl::StatusOr<std::string> LeaseData() = 0;

  // The lease's BackendV6Data, asked only when the network has IPv6 enabled
  // (vxlan's {"VNI":1,"VtepMAC":"..."} of its IPv6 device). UNIMPLEMENTED from a
  // backend with no IPv6 data path: the agent then says so and stops.
  virtual absl::StatusOr<std::string> LeaseV6Data() {
    return absl::UnimplementedError("this backend has no IPv6 data path");
  }

  // The tunnel device whose kernel counters the agent exports ("flannel.1",
  // "flannel0"); empty when the backend has none (host-gw, cloud routes).
  virtual std::string device_name() const = 0;
  // Its IPv6 tunnel device in a dual-stack network ("flannel-v6.1"); empty
  // when it has none.
  virtual std::string v6_device_name() const { return std::string(); }
};

}  // namespace weft::agent
