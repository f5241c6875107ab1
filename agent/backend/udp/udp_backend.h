#pragma once
// Flannel's UDP backend, wire-compatible with flanneld's: a TUN device
// `flannel0` with MTU = external MTU - 28 (IPv4 + UDP headers), holding this
// lease's network address with the cluster network's prefix length
// (10.1.19.0/16, as flannel configures it) and a route of the whole cluster
// network through it; every inner IPv4 packet travels as the payload of one UDP
// datagram from and to port 8285 (Backend.Port) of the hosts' PublicIPs. The
// lease carries no BackendData (null), as flannel's.
//
// Unlike flanneld, which moves one packet per system call, the data path
// (datapath.h) batches, uses TUN and UDP segmentation offloads and runs one
// worker per queue; packets on the wire are the same.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "agent/backend/backend.h"
#include "agent/backend/udp/datapath.h"
#include "agent/netlink/programmer.h"
#include "common/metrics.h"

namespace weft::agent {

inline constexpr char kUdpBackendType[] = "udp";
inline constexpr uint16_t kDefaultUdpPort = 8285;
inline constexpr char kUdpDevice[] = "flannel0";
// IPv4 header 20 + UDP header 8.
inline constexpr uint32_t kUdpOverhead = 28;

// The network config's Backend object for "udp": only Port. Keys match
// case-insensitively, as flanneld's decoder does; unknown keys are ignored.
struct UdpConfig {
  uint16_t port = kDefaultUdpPort;  // Port; 0 means the default
};
absl::StatusOr<UdpConfig> ParseUdpConfig(absl::string_view json);

// Agent-side knobs (flags), not part of the network config.
struct UdpOptions {
  int workers = 0;        // queues/threads pairs; 0: min(4, cores)
  bool offloads = true;   // TUN/UDP segmentation offloads where the kernel has them
  std::string device = kUdpDevice;
};

// The subnet -> PublicIP routes `peers` call for (this host's own lease and
// peers of other backend types or overlapping subnets are skipped). Pure.
struct UdpSkippedPeer {
  IPv4Net subnet;
  std::string reason;
};
std::vector<udp::PeerRoute> UdpPeerRoutes(const OwnLease& own, IPv4Addr own_public_ip, const std::vector<Peer>& peers,
                                          std::vector<UdpSkippedPeer>* skipped);

// Exports `stats` as weft_agent_udp_* metrics (docs/metrics.md). The registry keeps
// `stats` alive.
void RegisterUdpMetrics(metrics::Registry& registry, std::shared_ptr<udp::DatapathStats> stats);

class UdpBackend : public Backend {
 public:
  // `kernel` must outlive the backend; `registry` may be null (no metrics).
  UdpBackend(netlink::KernelProgrammer* kernel, metrics::Registry* registry, UdpOptions options, UdpConfig config = {});
  ~UdpBackend() override;  // stops the data path: flannel0 goes with it

  absl::StatusOr<BackendInfo> Init(const LocalConfig& local, const OwnLease& lease,
                                   absl::string_view backend_config_json) override;
  absl::StatusOr<ReconcileStats> Reconcile(std::vector<Peer> peers) override;
  absl::Status Teardown() override;
  absl::StatusOr<std::string> LeaseData() override { return std::string(); }
  std::string device_name() const override { return options_.device; }

  const udp::DatapathStats& stats() const { return *stats_; }

 private:
  // Starts the data path when it is not running with this setup; addresses the
  // device, brings it up and routes the cluster network into it.
  absl::StatusOr<ReconcileStats> EnsureDevice();
  void LogSkipped(const std::vector<UdpSkippedPeer>& skipped);

  netlink::KernelProgrammer* kernel_;
  const UdpOptions options_;
  UdpConfig config_;
  std::shared_ptr<udp::DatapathStats> stats_;
  bool initialized_ = false;
  LocalConfig local_;
  OwnLease lease_;
  uint32_t mtu_ = 0;
  std::unique_ptr<udp::Datapath> datapath_;
  int device_index_ = 0;
  std::vector<udp::PeerRoute> routes_;  // what the data path has
  absl::flat_hash_map<IPv4Net, std::string> logged_skips_;
};

}  // namespace weft::agent
