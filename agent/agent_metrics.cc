#include "agent/agent_metrics.h"

#include <fstream>

namespace weft::agent {
namespace {

double ReadStat(const std::string& device, const char* stat) {
  std::ifstream f("/sys/class/net/" + device + "/statistics/" + stat);
  double v = 0;
  f >> v;
  return f ? v : 0;
}

}  // namespace

AgentMetrics::AgentMetrics(metrics::Registry& r)
    : lease_seconds_remaining(r.AddGauge("weft_agent_lease_seconds_remaining",
                                         "Seconds until this host's lease expires unless renewed.")
                                  .Get()),
      peers(r.AddGauge("weft_agent_peers", "Other hosts' leases known to this agent.").Get()),
      kernel_objects(r.AddGauge("weft_agent_kernel_objects",
                                "Kernel objects (neighbours, FDB entries, routes) in place for peers after the last pass.")
                         .Get()),
      skipped_peers(r.AddGauge("weft_agent_skipped_peers",
                               "Peer leases left out of the last pass: unreadable (corrupt subnet, PublicIP or "
                               "BackendData) or for another backend type.")
                        .Get()),
      reconcile_duration(r.AddHistogram("weft_agent_reconcile_duration_seconds",
                                        "Time of one reconcile pass (dump, diff, apply).",
                                        metrics::ExponentialBuckets(0.0005, 2, 14))
                             .Get()),
      reconcile_changes(r.AddCounter("weft_agent_reconcile_changes_total",
                                     "Kernel objects added, updated or removed by reconcile passes.", {"change"})),
      reconcile_errors(r.AddCounter("weft_agent_reconcile_errors_total",
                                    "Kernel changes refused, or passes that could not reach the kernel.")
                           .Get()),
      reconciles(r.AddCounter("weft_agent_reconciles_total", "Reconcile passes run.").Get()),
      controller_connected(r.AddGauge("weft_agent_controller_connected",
                                      "1 while the lease watch stream to a controller is open.")
                               .Get()),
      controller_reconnects(r.AddCounter("weft_agent_controller_reconnects_total",
                                         "Times the lease watch was re-established.")
                                .Get()),
      lease_operations(r.AddCounter("weft_agent_lease_operations_total",
                                    "Lease calls to the controller by operation and result.",
                                    {"operation", "result"})),
      watch_revision(r.AddGauge("weft_agent_watch_revision", "The last store revision seen on the lease watch.").Get()),
      ready(r.AddGauge("weft_agent_ready", "1 once the data path and subnet.env are in place.").Get()) {
  for (const char* c : {"added", "updated", "removed"}) reconcile_changes.WithLabels({c});
}

void AgentMetrics::ObserveReconcile(const ReconcileStats& s, double seconds) {
  reconciles.Inc();
  reconcile_duration.Observe(seconds);
  reconcile_changes.WithLabels({"added"}).Inc(s.added);
  reconcile_changes.WithLabels({"updated"}).Inc(s.updated);
  reconcile_changes.WithLabels({"removed"}).Inc(s.removed);
  if (s.errors > 0) reconcile_errors.Inc(s.errors);
  kernel_objects.Set(s.unchanged + s.added + s.updated);
}

}  // namespace weft::agent

namespace weft::agent {

void AgentMetrics::WatchTunnelDevices(metrics::Registry& r, std::function<std::vector<std::string>()> devices) {
  struct Stat {
    const char* name;
    const char* help;
    const char* rx;
    const char* tx;
  };
  static const Stat kStats[] = {
      {"weft_agent_tunnel_packets_total",
       "Packets through the tunnel devices (flannel.<VNI>, flannel-v6.<VNI>), by device and direction.",
       "rx_packets", "tx_packets"},
      {"weft_agent_tunnel_bytes_total", "Bytes through the tunnel device, by direction.", "rx_bytes", "tx_bytes"},
      {"weft_agent_tunnel_drops_total", "Packets the kernel dropped on the tunnel device, by direction.",
       "rx_dropped", "tx_dropped"},
      {"weft_agent_tunnel_errors_total", "Receive and transmit errors on the tunnel device, by direction.",
       "rx_errors", "tx_errors"},
  };
  for (const Stat& st : kStats) {
    r.AddCallbackFamily(metrics::MetricType::kCounter, st.name, st.help, {"device", "direction"}, [devices, st] {
      std::vector<metrics::Sample> out;
      for (const std::string& dev : devices()) {
        out.push_back({{dev, "rx"}, ReadStat(dev, st.rx)});
        out.push_back({{dev, "tx"}, ReadStat(dev, st.tx)});
      }
      return out;
    });
  }
}

}  // namespace weft::agent
