#include "controller/controller_metrics.h"

#include <cstring>
#include <tuple>

namespace weft::controller {
namespace {

const char* CodeName(grpc::StatusCode c) {
  static const char* const kNames[] = {
      "OK",        "CANCELLED",         "UNKNOWN",          "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
      "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
      "OUT_OF_RANGE", "UNIMPLEMENTED",   "INTERNAL",          "UNAVAILABLE",      "DATA_LOSS",        "UNAUTHENTICATED"};
  const int i = static_cast<int>(c);
  return i >= 0 && i < static_cast<int>(sizeof(kNames) / sizeof(kNames[0])) ? kNames[i] : "UNKNOWN";
}

std::vector<double> LatencyBuckets() {
  return metrics::ExponentialBuckets(0.0001, 2, 16);  // 100 us .. ~3.3 s
}

}  // namespace

ControllerMetrics::ControllerMetrics(metrics::Registry& r)
    : operations_(r.AddCounter("weft_controller_lease_operations_total",
                               "Lease operations by kind (acquire, renew, release, reserve, unreserve) and result.",
                               {"operation", "result"})),
      expirations_(r.AddCounter("weft_controller_lease_expirations_total",
                                "Leases that expired (their node stopped renewing them).")
                       .Get()),
      corrupt_values_(r.AddCounter("weft_controller_corrupt_values_total",
                                   "Values in the store that could not be read and were skipped, by kind (lease, config).",
                                   {"kind"})),
      retries_(r.AddCounter("weft_controller_allocation_retries_total",
                            "Allocation attempts repeated after losing a compare-and-swap race.")
                   .Get()),
      rpc_latency_(r.AddHistogram("weft_controller_rpc_duration_seconds", "gRPC call latency by method.",
                                  LatencyBuckets(), {"method"})),
      rpcs_(r.AddCounter("weft_controller_rpcs_total", "gRPC calls by method and status code.",
                         {"method", "code"})),
      commit_latency_(r.AddHistogram("weft_store_commit_duration_seconds",
                                     "Time from a write's submission to its durable (fsynced) commit.",
                                     LatencyBuckets())
                          .Get()),
      sync_batch_(r.AddHistogram("weft_store_sync_batch_size",
                                 "Writes made durable by one fsync (group commit).",
                                 metrics::ExponentialBuckets(1, 2, 10))
                      .Get()),
      txn_requests_(r.AddHistogram("weft_controller_lease_txn_requests",
                                   "Lease writes (acquire, renew, release, reserve) carried by one store transaction.",
                                   metrics::ExponentialBuckets(1, 2, 8))
                        .Get()),
      leader_(r.AddGauge("weft_controller_leader",
                         "1 when this replica is the elected one that runs the background duties, else 0.")
                  .Get()),
      leader_changes_(r.AddCounter("weft_controller_leader_changes_total",
                                   "Times this replica became or stopped being the elected one.")
                          .Get()),
      compactions_(r.AddCounter("weft_store_compactions_total",
                                "Compactions of the etcd store's history run by this replica, by result.",
                                {"result"})),
      streams_(r.AddGauge("weft_controller_watch_streams", "WatchLeases streams connected.").Get()),
      events_sent_(r.AddCounter("weft_controller_watch_events_sent_total",
                                "Lease events written to watch streams.")
                       .Get()),
      resyncs_(r.AddCounter("weft_controller_watch_resyncs_total",
                            "Watch streams that fell too far behind and were sent a fresh snapshot.")
                   .Get()),
      snapshots_(r.AddCounter("weft_controller_watch_snapshots_total",
                              "Lease snapshots sent to watch streams, by whether one was encoded for the stream or "
                              "shared with others that started at the same revision.",
                              {"encoding"})),
      fanout_latency_(r.AddHistogram("weft_controller_watch_fanout_duration_seconds",
                                     "Time from a lease change being applied to its write to a stream completing.",
                                     LatencyBuckets())
                          .Get()),
      queue_depth_(r.AddHistogram("weft_controller_watch_queue_depth",
                                  "Messages queued on a watch stream, sampled at each enqueue.",
                                  metrics::ExponentialBuckets(1, 4, 7))
                       .Get()) {
  static const char* const kMethods[] = {"AcquireLease",     "RenewLease",       "ReleaseLease",
                                         "GetLease",         "ListLeases",       "GetNetworkConfig",
                                         "SetNetworkConfig", "Reserve",          "Unreserve",
                                         "GetStatus"};
  static_assert(sizeof(kMethods) / sizeof(kMethods[0]) == std::tuple_size<decltype(rpc_children_)>::value);
  for (size_t i = 0; i < rpc_children_.size(); ++i) rpc_children_[i].method = kMethods[i];
  // Both results exist from the start, so rate() works from the first failure on.
  compactions_.WithLabels({"ok"});
  compactions_.WithLabels({"error"});
  corrupt_values_.WithLabels({"lease"});
  corrupt_values_.WithLabels({"config"});
  snapshots_.WithLabels({"encoded"});
  snapshots_.WithLabels({"shared"});
}

void ControllerMetrics::WatchManager(metrics::Registry& r, LeaseManager* m) {
  r.AddCallbackGauge("weft_controller_pool_subnets", "Subnets in the pool (SubnetMin..SubnetMax).",
                     [m] { return static_cast<double>(m->Stats().size); });
  r.AddCallbackGauge("weft_controller_pool_free_subnets", "Subnets of the pool neither leased nor reserved.",
                     [m] { return static_cast<double>(m->Stats().free); });
  r.AddCallbackGauge("weft_controller_pool_ipv6_subnets",
                     "Subnets in the IPv6 pool (IPv6SubnetMin..IPv6SubnetMax; 0 unless IPv6 is enabled).",
                     [m] { return static_cast<double>(m->Stats().ipv6_size); });
  r.AddCallbackGauge("weft_controller_pool_free_ipv6_subnets", "Subnets of the IPv6 pool neither leased nor reserved.",
                     [m] { return static_cast<double>(m->Stats().ipv6_free); });
  r.AddCallbackGauge("weft_controller_leases", "Leases with a TTL currently held.",
                     [m] { return static_cast<double>(m->Stats().leases); });
  r.AddCallbackGauge("weft_controller_reservations", "Reserved subnets (no TTL).",
                     [m] { return static_cast<double>(m->Stats().reservations); });
  r.AddCallbackGauge("weft_controller_store_revision", "The store revision the controller has applied.",
                     [m] { return static_cast<double>(m->AppliedRevision()); });
}

LeaseManagerHooks ControllerMetrics::ManagerHooks() {
  LeaseManagerHooks h;
  h.on_result = [this](const char* op, const char* result) { operations_.WithLabels({op, result}).Inc(); };
  h.on_expired = [this] { expirations_.Inc(); };
  h.on_retry = [this](int) { retries_.Inc(); };
  h.on_corrupt = [this](const char* kind) { corrupt_values_.WithLabels({kind}).Inc(); };
  h.on_txn = [this](int n) { txn_requests_.Observe(n); };
  return h;
}

LeaseFanoutHooks ControllerMetrics::HubHooks() {
  LeaseFanoutHooks h;
  h.on_streams = [this](int d) { streams_.Add(d); };
  h.on_events_sent = [this](int64_t n) { events_sent_.Inc(static_cast<double>(n)); };
  h.on_resync = [this] { resyncs_.Inc(); };
  h.on_snapshot = [this](bool shared) { snapshots_.WithLabels({shared ? "shared" : "encoded"}).Inc(); };
  h.on_fanout_latency = [this](absl::Duration d) { fanout_latency_.Observe(absl::ToDoubleSeconds(d)); };
  h.on_queue_depth = [this](int64_t d) { queue_depth_.Observe(static_cast<double>(d)); };
  return h;
}

void ControllerMetrics::ObserveRpc(const char* method, grpc::StatusCode code, absl::Duration took) {
  const int c = static_cast<int>(code);
  for (RpcChildren& m : rpc_children_) {
    if (std::strcmp(m.method, method) != 0) continue;
    metrics::Histogram* h = m.latency.load(std::memory_order_acquire);
    if (h == nullptr) {
      h = &rpc_latency_.WithLabels({method});
      m.latency.store(h, std::memory_order_release);
    }
    h->Observe(absl::ToDoubleSeconds(took));
    if (c < 0 || c >= static_cast<int>(m.by_code.size())) {
      rpcs_.WithLabels({method, CodeName(code)}).Inc();
      return;
    }
    metrics::Counter* n = m.by_code[c].load(std::memory_order_acquire);
    if (n == nullptr) {
      n = &rpcs_.WithLabels({method, CodeName(code)});
      m.by_code[c].store(n, std::memory_order_release);
    }
    n->Inc();
    return;
  }
  // A method (or code) not in the table: the plain lookup.
  rpc_latency_.WithLabels({method}).Observe(absl::ToDoubleSeconds(took));
  rpcs_.WithLabels({method, CodeName(code)}).Inc();
}

void ControllerMetrics::ObserveLeadership(bool leader) {
  leader_.Set(leader ? 1 : 0);
  leader_changes_.Inc();
}

void ControllerMetrics::ObserveCompaction(const absl::Status& result) {
  compactions_.WithLabels({result.ok() ? "ok" : "error"}).Inc();
}

void ControllerMetrics::ObserveCommit(absl::Duration latency, int batch_size) {
  commit_latency_.Observe(absl::ToDoubleSeconds(latency));
  sync_batch_.Observe(batch_size);
}

}  // namespace weft::controller
