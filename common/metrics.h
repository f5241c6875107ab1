#pragma once
// A small Prometheus metrics registry with text exposition format 0.0.4.
//
// Declare a component's metrics once, at start-up, and keep references to the
// children; the hot path is then one atomic update, with no lookup:
//
//   struct PoolMetrics {
//     explicit PoolMetrics(metrics::Registry& r)
//         : leases(r.AddCounter("weft_leases_acquired_total", "Leases granted.").Get()),
//           rpc_ok(r.AddCounter("weft_rpcs_total", "RPCs.", {"method", "code"})
//                      .WithLabels({"Acquire", "OK"})) {}
//     metrics::Counter& leases;
//     metrics::Counter& rpc_ok;
//   };
//
// Registration errors (an invalid metric or label name, a name already taken,
// a wrong number of label values, unsorted buckets) are programmer errors: they
// abort the process with a message naming the metric.
//
// Thread-safety: everything may be called from any thread. Families and children
// live as long as their Registry; references to them stay valid. Callbacks run
// on the thread that calls Serialize(), with no registry lock held.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace weft::metrics {

enum class MetricType { kCounter, kGauge, kHistogram };

// A monotonically increasing value. Inc() with a negative amount aborts.
class Counter {
 public:
  void Inc(double amount = 1);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double amount);
  void Sub(double amount) { Add(-amount); }
  void Inc() { Add(1); }
  void Dec() { Add(-1); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Counts observations into buckets with upper bounds (le) given at registration;
// the +Inf bucket is implicit.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double v);

  struct Snapshot {
    std::vector<uint64_t> cumulative_counts;  // one per bound, then +Inf
    double sum = 0;
    uint64_t count = 0;  // == cumulative_counts.back()
  };
  Snapshot Read() const;
  const std::vector<double>& upper_bounds() const { return bounds_; }

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_.size() + 1, not cumulative
  std::atomic<double> sum_{0};
};

// Bucket helpers. Prometheus' default: .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10.
std::vector<double> DefaultBuckets();
// start, start*factor, ... (count bounds); start > 0, factor > 1.
std::vector<double> ExponentialBuckets(double start, double factor, int count);
// start, start+width, ... (count bounds); width > 0.
std::vector<double> LinearBuckets(double start, double width, int count);

// Formats a sample value as Prometheus reads it: "+Inf", "-Inf", "NaN",
// integers as plain digits ("3", "1700000000"), others in shortest round-trip form.
std::string FormatValue(double v);

class FamilyBase {
 public:
  FamilyBase(std::string name, std::string help, MetricType type, std::vector<std::string> label_names);
  virtual ~FamilyBase() = default;
  const std::string& name() const { return name_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  MetricType type() const { return type_; }
  // Appends the family's # HELP and # TYPE lines and its samples.
  void Serialize(std::string* out) const;

 protected:
  // Appends the samples only. May call user callbacks.
  virtual void AppendSamples(std::string* out) const = 0;
  // `label_values` matches label_names(); the check aborts when it does not.
  void CheckArity(const std::vector<std::string>& label_values) const;
  // {a="x",b="y"} (with `extra`, e.g. le="0.5", last), or "" for no labels.
  std::string FormatLabels(const std::vector<std::string>& label_values, absl::string_view extra = "") const;

 private:
  const std::string name_;
  const std::string help_;
  const MetricType type_;
  const std::vector<std::string> label_names_;
};

// A metric with fixed label names; one child per distinct list of label values.
template <typename T>
class Family : public FamilyBase {
 public:
  using Factory = std::function<std::unique_ptr<T>()>;
  Family(std::string name, std::string help, MetricType type, std::vector<std::string> label_names, Factory make)
      : FamilyBase(std::move(name), std::move(help), type, std::move(label_names)), make_(std::move(make)) {}

  // The child for these label values (in label-name order), created on first
  // use. Takes a lock: call it at set-up time and keep the reference.
  T& WithLabels(const std::vector<std::string>& label_values);
  // The only child of a family without labels.
  T& Get() { return WithLabels({}); }

 protected:
  void AppendSamples(std::string* out) const override;

 private:
  const Factory make_;
  mutable absl::Mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> children_ ABSL_GUARDED_BY(mu_);
};

extern template class Family<Counter>;
extern template class Family<Gauge>;
extern template class Family<Histogram>;

// One sample of a callback family.
struct Sample {
  std::vector<std::string> label_values;
  double value = 0;
};

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Counter names must end in "_total" (Prometheus' convention).
  Family<Counter>& AddCounter(std::string name, std::string help, std::vector<std::string> label_names = {});
  Family<Gauge>& AddGauge(std::string name, std::string help, std::vector<std::string> label_names = {});
  // `upper_bounds`: finite and strictly increasing; "+Inf" is added.
  Family<Histogram>& AddHistogram(std::string name, std::string help, std::vector<double> upper_bounds,
                                  std::vector<std::string> label_names = {});

  // Values computed at scrape time (e.g. free subnets in a pool). The function
  // must be thread-safe and must not call back into this registry.
  void AddCallbackGauge(std::string name, std::string help, std::function<double()> fn);
  void AddCallbackCounter(std::string name, std::string help, std::function<double()> fn);
  // Several labelled samples from one callback; `type` is kCounter or kGauge.
  void AddCallbackFamily(MetricType type, std::string name, std::string help, std::vector<std::string> label_names,
                         std::function<std::vector<Sample>()> fn);

  // Text format 0.0.4, families in registration order, children sorted by
  // label values.
  std::string Serialize() const;

 private:
  // Checks names and uniqueness, then takes ownership; aborts on a bad family.
  FamilyBase* Register(std::unique_ptr<FamilyBase> family);

  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<FamilyBase>> families_ ABSL_GUARDED_BY(mu_);
  // Every series name in use, including a histogram's _bucket, _sum and _count.
  std::map<std::string, std::string> taken_ ABSL_GUARDED_BY(mu_);
};

// Standard process_* metrics read from /proc at scrape time:
// process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds,
// process_start_time_seconds.
void AddProcessMetrics(Registry& registry);

// weft_build_info{revision="...",version="..."} 1.
void AddBuildInfo(Registry& registry, absl::string_view version, absl::string_view revision);

// Metric names: [a-zA-Z_:][a-zA-Z0-9_:]*. Label names: [a-zA-Z_][a-zA-Z0-9_]*,
// not starting with "__" (reserved).
bool IsValidMetricName(absl::string_view name);
bool IsValidLabelName(absl::string_view name);

}  // namespace weft::metrics
