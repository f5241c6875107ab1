#pragma once
// A backend connects this host's containers to the other hosts' subnets: VXLAN
// today; UDP, host-gw and cloud route tables fit the same interface.
//
// The agent calls Init once it knows its lease, publishes the returned backend
// data in the lease, writes the MTU to subnet.env, then calls Reconcile with the
// whole lease set at every change and every resync, and Teardown when it stops for
// good. One thread at a time.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/reconciler.h"
#include "common/net.h"

namespace weft::agent {

// This host's side of the underlay.
struct LocalConfig {
  std::string iface_name;  // external interface, e.g. "eth0"
  int iface_index = 0;
  uint32_t iface_mtu = 1500;
  IPv4Addr iface_ip;      // its IPv4 address: the VXLAN source address
  IPv4Net iface_network;  // its on-link network: peers inside are L2 neighbours
  IPv4Addr public_ip;     // what peers reach (published as PublicIP); usually iface_ip
};

struct OwnLease {
  IPv4Net subnet;   // this host's subnet, e.g. 10.1.19.0/24
  IPv4Net network;  // the cluster network, e.g. 10.1.0.0/16
};

// What Init returns for the lease and subnet.env.
struct BackendInfo {
  std::string type;       // "vxlan": the lease's BackendType
  std::string data_json;  // the lease's BackendData: {"VNI":1,"VtepMAC":"..."}
  uint32_t mtu = 0;       // for containers: FLANNEL_MTU
};

// Another host, from its lease.
struct Peer {
  IPv4Net subnet;
  IPv4Addr public_ip;
  std::string backend_type;       // BackendType
  std::string backend_data_json;  // BackendData, raw JSON
};

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
  virtual absl::StatusOr<ReconcileStats> Reconcile(const std::vector<Peer>& peers) = 0;

  // Removes everything Init and Reconcile set up.
  virtual absl::Status Teardown() = 0;

  // The lease's BackendData this host publishes (raw JSON, e.g. vxlan's
  // {"VNI":1,"VtepMAC":"..."}; "" for none). Asked before the lease is acquired,
  // so it must not depend on the lease. May look things up (a cloud backend asks
  // its metadata server for the instance), hence the status.
  virtual absl::StatusOr<std::string> LeaseData() = 0;

  // The tunnel device whose kernel counters the agent exports ("flannel.1",
  // "flannel0"); empty when the backend has none (host-gw, cloud routes).
  virtual std::string device_name() const = 0;
};

}  // namespace weft::agent
