#pragma once
// Every metric the agent exports, declared once (see docs/metrics.md).

#include "agent/netlink/reconciler.h"
#include <functional>
#include <string>

#include "common/metrics.h"

namespace weft::agent {

class AgentMetrics {
 public:
  explicit AgentMetrics(metrics::Registry& r);

  metrics::Gauge& lease_seconds_remaining;
  metrics::Gauge& peers;
  metrics::Gauge& kernel_objects;
  metrics::Gauge& skipped_peers;
  metrics::Histogram& reconcile_duration;
  metrics::Family<metrics::Counter>& reconcile_changes;  // change: added, updated, removed
  metrics::Counter& reconcile_errors;
  metrics::Counter& reconciles;
  metrics::Gauge& controller_connected;
  metrics::Counter& controller_reconnects;
  metrics::Family<metrics::Counter>& lease_operations;   // operation, result
  metrics::Gauge& watch_revision;
  metrics::Gauge& ready;

  void ObserveReconcile(const ReconcileStats& stats, double seconds);
  // Exports the tunnel devices' kernel counters (read at scrape time from
  // /sys/class/net/<device>/statistics), labelled by device; `devices` may be
  // empty until they exist.
  void WatchTunnelDevices(metrics::Registry& r, std::function<std::vector<std::string>()> devices);
};

}  // namespace weft::agent
