#pragma once
// Every metric the controller exports, declared once and created at start-up
// (no lookups on the hot path). Names follow Prometheus conventions; see
// docs/metrics.md.

#include <array>
#include <atomic>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "common/metrics.h"
#include "controller/lease_manager.h"
#include "controller/lease_fanout.h"
#include "grpcpp/grpcpp.h"

namespace weft::controller {

class ControllerMetrics {
 public:
  explicit ControllerMetrics(metrics::Registry& registry);

  // Pool and lease gauges computed at scrape time from the manager.
  void WatchManager(metrics::Registry& registry, LeaseManager* manager);

  LeaseManagerHooks ManagerHooks();
  LeaseFanoutHooks HubHooks();
  void ObserveRpc(const char* method, grpc::StatusCode code, absl::Duration took);
  void ObserveCommit(absl::Duration latency, int batch_size);
  void ObserveLeadership(bool leader);
  void ObserveCompaction(const absl::Status& result);
  // WatchLeases streams connected now (weftctl status).
  int64_t watch_streams() const { return static_cast<int64_t>(streams_.Value()); }

 private:
  metrics::Family<metrics::Counter>& operations_;
  metrics::Counter& expirations_;
  metrics::Family<metrics::Counter>& corrupt_values_;
  metrics::Counter& retries_;
  metrics::Family<metrics::Histogram>& rpc_latency_;
  metrics::Family<metrics::Counter>& rpcs_;
  // Children of the two RPC families, looked up once per (method, code) and then
  // read without a lock: every RPC passes here.
  struct RpcChildren {
    const char* method;
    std::atomic<metrics::Histogram*> latency{nullptr};
    std::array<std::atomic<metrics::Counter*>, 17> by_code{};  // grpc::StatusCode 0..16
  };
  std::array<RpcChildren, 10> rpc_children_;
  metrics::Histogram& commit_latency_;
  metrics::Histogram& sync_batch_;
  metrics::Histogram& txn_requests_;
  metrics::Gauge& leader_;
  metrics::Counter& leader_changes_;
  metrics::Family<metrics::Counter>& compactions_;
  metrics::Gauge& streams_;
  metrics::Counter& events_sent_;
  metrics::Counter& resyncs_;
  metrics::Family<metrics::Counter>& snapshots_;
  metrics::Histogram& fanout_latency_;
  metrics::Histogram& queue_depth_;
};

}  // namespace weft::controller
