#pragma once
// Flannel's host-gw backend: no device of its own and no encapsulation. For each
// remote lease, one route on the external interface,
//   <peer subnet> via <peer PublicIP> dev <external interface>
// so the hosts must share one L2 segment. The lease carries BackendType
// "host-gw" and no BackendData (flanneld publishes none); containers get the
// external interface's MTU.
//
// A peer whose PublicIP lies outside the external interface's on-link network
// cannot be a next hop: its route is not installed (flanneld tries and logs the
// kernel's "network is unreachable" at every resync). It is logged once, named,
// with the reason, counted in weft_agent_hostgw_unroutable_peers, and the other
// peers are served as usual.
//
// Where the kernel has nexthop objects (5.3+), each route goes through a nexthop
// object of its own, as in the vxlan backend and for the same reason: routes on
// one device that differ only by gateway make every insert scan the others. Its
// id is the peer subnet's network address as a 32-bit number.
//
// Dual-stack (the lease has an IPv6 subnet): each peer with an IPv6 subnet and a
// PublicIPv6 also gets `<peer IPv6 subnet> via <peer PublicIPv6> dev <external
// interface>` when that address is inside the interface's on-link IPv6 network;
// the same rules as for IPv4, decided apart from them (a peer off-link in one
// family is still routed in the other). IPv6 routes carry their own gateway (no
// nexthop objects). There is no BackendV6Data either.

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "agent/backend/backend.h"
#include "agent/netlink/reconciler.h"
#include "agent/backend/dual_stack.h"
#include "agent/netlink/programmer.h"
#include "common/metrics.h"

namespace weft::agent {

inline constexpr char kHostgwBackendType[] = "host-gw";

// The network config's Backend object for "host-gw": flannel defines no option,
// so this only checks that it is a JSON object (unknown keys are ignored, as
// flanneld does) whose Type, when given, is host-gw. INVALID_ARGUMENT otherwise.
absl::Status ValidateHostgwConfig(absl::string_view json);

// What the desired state depends on.
struct HostgwSetup {
  LocalConfig local;
  OwnLease lease;
  bool use_nexthops = false;
  std::optional<LocalV6> v6;  // set when the network is dual-stack
};

// A peer's subnet (IPv4, or IPv6 when only its IPv6 side is left out) left out
// of the desired state.
struct HostgwSkip {
  netlink::IPPrefix subnet;
  netlink::IPAddr public_ip;
  // True when the peer is a host-gw peer that cannot be a next hop (off the
  // external interface's network); false for other reasons (wrong type...).
  bool unroutable = false;
  std::string reason;
};

// The routes (and nexthops) `peers` call for. Pure, for tests.
DesiredState HostgwDesiredState(const HostgwSetup& setup, const std::vector<Peer>& peers,
                                std::vector<HostgwSkip>* skipped);

class HostgwBackend : public Backend {
 public:
  // `kernel` must outlive the backend. `registry` (may be null, in tests) gets
  // the backend's gauge; it must outlive the backend too.
  HostgwBackend(netlink::KernelProgrammer* kernel, metrics::Registry* registry);

  // INVALID_ARGUMENT when the PublicIP (or PublicIPv6) differs from the external
  // interface's address (a NAT: peers could not use it as a next hop; flanneld
  // refuses it too), or when the lease has an IPv6 subnet and the interface no
  // IPv6 address.
  absl::StatusOr<BackendInfo> Init(const LocalConfig& local, const OwnLease& lease,
                                   absl::string_view backend_config_json) override;
  absl::StatusOr<ReconcileStats> Reconcile(std::vector<Peer> peers) override;
  absl::Status Teardown() override;
  absl::StatusOr<std::string> LeaseData() override { return std::string(); }
  absl::StatusOr<std::string> LeaseV6Data() override { return std::string(); }
  std::string device_name() const override { return std::string(); }

  // Peer subnets left out by the last Reconcile because they are off-link (in
  // dual-stack, a peer off-link in both families counts twice).
  int unroutable_peers() const { return unroutable_peers_; }

 private:
  void LogSkips(const std::vector<HostgwSkip>& skipped);

  netlink::KernelProgrammer* kernel_;
  metrics::Gauge* unroutable_gauge_ = nullptr;
  bool initialized_ = false;
  HostgwSetup setup_;
  int unroutable_peers_ = 0;
  // The reason each skipped peer was last logged with: a resync every few
  // seconds must not repeat the line, but a new reason is worth a new one.
  absl::flat_hash_map<netlink::IPPrefix, std::string> logged_;
};

}  // namespace weft::agent
