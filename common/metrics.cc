#include "common/metrics.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/check.h"

namespace weft::metrics {
namespace {

// A metric defined wrongly is a programming error, found by the first test that
// registers it: WEFT_CHECK's crash, with the reason.
[[noreturn]] void Die(const std::string& msg) {
  WEFT_CHECK(false, ("metrics: " + msg).c_str());
  std::abort();  // not reached
}

void AtomicAdd(std::atomic<double>& a, double amount) {
  double old = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(old, old + amount, std::memory_order_relaxed)) {
  }
}

absl::string_view TypeName(MetricType t) {
  switch (t) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// Escapes \ and newline (HELP text), plus " in label values.
std::string Escape(absl::string_view s, bool quote) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

void AppendSample(std::string* out, absl::string_view name, absl::string_view labels, double value) {
  absl::StrAppend(out, name, labels, " ", FormatValue(value), "\n");
}

}  // namespace

void Counter::Inc(double amount) {
  if (!(amount >= 0)) Die(absl::StrCat("counter incremented by ", FormatValue(amount), ": counters only go up"));
  AtomicAdd(value_, amount);
}

void Gauge::Add(double amount) { AtomicAdd(value_, amount); }

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double v) {
  // The first bucket whose bound is >= v; NaN lands in +Inf only.
  const size_t i = std::isnan(v) ? bounds_.size()
                                 : static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) -
                                                       bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  AtomicAdd(sum_, v);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.cumulative_counts.resize(bounds_.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    s.cumulative_counts[i] = total;
  }
  s.count = total;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> DefaultBuckets() { return {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}; }

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  if (!(start > 0) || !(factor > 1) || count < 1) {
    Die(absl::StrCat("ExponentialBuckets(", start, ", ", factor, ", ", count,
                     "): want start > 0, factor > 1, count >= 1"));
  }
  std::vector<double> b;
  for (int i = 0; i < count; ++i, start *= factor) b.push_back(start);
  return b;
}

std::vector<double> LinearBuckets(double start, double width, int count) {
  if (!(width > 0) || count < 1) {
    Die(absl::StrCat("LinearBuckets(", start, ", ", width, ", ", count, "): want width > 0, count >= 1"));
  }
  std::vector<double> b;
  for (int i = 0; i < count; ++i) b.push_back(start + i * width);
  return b;
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // Integral values (counts, bytes, Unix times) as plain digits; -0 as "0".
  if (v == std::trunc(v) && std::fabs(v) < 1e15) return absl::StrCat(static_cast<int64_t>(v));
  char buf[32];
  const std::to_chars_result r = std::to_chars(buf, buf + sizeof(buf), v);  // shortest round trip
  return std::string(buf, r.ptr);
}

bool IsValidMetricName(absl::string_view name) {
  if (name.empty() || absl::ascii_isdigit(name[0])) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return absl::ascii_isalnum(c) || c == '_' || c == ':'; });
}

bool IsValidLabelName(absl::string_view name) {
  if (name.empty() || absl::ascii_isdigit(name[0]) || absl::StartsWith(name, "__")) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return absl::ascii_isalnum(c) || c == '_'; });
}

FamilyBase::FamilyBase(std::string name, std::string help, MetricType type, std::vector<std::string> label_names)
    : name_(std::move(name)), help_(std::move(help)), type_(type), label_names_(std::move(label_names)) {}

void FamilyBase::Serialize(std::string* out) const {
  absl::StrAppend(out, "# HELP ", name_, " ", Escape(help_, /*quote=*/false), "\n");
  absl::StrAppend(out, "# TYPE ", name_, " ", TypeName(type_), "\n");
  AppendSamples(out);
}

void FamilyBase::CheckArity(const std::vector<std::string>& label_values) const {
  if (label_values.size() != label_names_.size()) {
    Die(absl::StrCat("metric ", name_, " has labels {", absl::StrJoin(label_names_, ","), "} but got ",
                     label_values.size(), " label values {", absl::StrJoin(label_values, ","), "}"));
  }
}

std::string FamilyBase::FormatLabels(const std::vector<std::string>& label_values, absl::string_view extra) const {
  if (label_values.empty() && extra.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < label_values.size(); ++i) {
    absl::StrAppend(&out, i > 0 ? "," : "", label_names_[i], "=\"", Escape(label_values[i], /*quote=*/true), "\"");
  }
  absl::StrAppend(&out, !label_values.empty() && !extra.empty() ? "," : "", extra, "}");
  return out;
}

template <typename T>
T& Family<T>::WithLabels(const std::vector<std::string>& label_values) {
  CheckArity(label_values);
  absl::MutexLock l(&mu_);
  std::unique_ptr<T>& child = children_[label_values];
  if (child == nullptr) child = make_();
  return *child;
}

template <typename T>
void Family<T>::AppendSamples(std::string* out) const {
  absl::MutexLock l(&mu_);
  for (const auto& [label_values, child] : children_) {
    if constexpr (std::is_same_v<T, Histogram>) {
      const Histogram::Snapshot s = child->Read();
      const std::vector<double>& bounds = child->upper_bounds();
      const std::string bucket = absl::StrCat(name(), "_bucket");
      for (size_t i = 0; i <= bounds.size(); ++i) {
        const std::string le =
            absl::StrCat("le=\"", i < bounds.size() ? FormatValue(bounds[i]) : "+Inf", "\"");
        AppendSample(out, bucket, FormatLabels(label_values, le), static_cast<double>(s.cumulative_counts[i]));
      }
      const std::string labels = FormatLabels(label_values);
      AppendSample(out, absl::StrCat(name(), "_sum"), labels, s.sum);
      AppendSample(out, absl::StrCat(name(), "_count"), labels, static_cast<double>(s.count));
    } else {
      AppendSample(out, name(), FormatLabels(label_values), child->Value());
    }
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

namespace {

class CallbackFamily : public FamilyBase {
 public:
  CallbackFamily(MetricType type, std::string name, std::string help, std::vector<std::string> label_names,
                 std::function<std::vector<Sample>()> fn)
      : FamilyBase(std::move(name), std::move(help), type, std::move(label_names)), fn_(std::move(fn)) {}

 protected:
  void AppendSamples(std::string* out) const override {
    for (const Sample& s : fn_()) {
      CheckArity(s.label_values);
      AppendSample(out, name(), FormatLabels(s.label_values), s.value);
    }
  }

 private:
  const std::function<std::vector<Sample>()> fn_;
};

std::function<std::vector<Sample>()> Single(std::function<double()> fn) {
  return [fn = std::move(fn)] { return std::vector<Sample>{{{}, fn()}}; };
}

}  // namespace

FamilyBase* Registry::Register(std::unique_ptr<FamilyBase> family) {
  const std::string& name = family->name();
  if (!IsValidMetricName(name)) {
    Die(absl::StrCat("invalid metric name \"", absl::CHexEscape(name), "\": want [a-zA-Z_:][a-zA-Z0-9_:]*"));
  }
  if (family->type() == MetricType::kCounter && !absl::EndsWith(name, "_total")) {
    Die(absl::StrCat("counter ", name, " must be named *_total"));
  }
  std::set<std::string> seen;
  for (const std::string& label : family->label_names()) {
    if (!IsValidLabelName(label)) {
      Die(absl::StrCat("metric ", name, ": invalid label name \"", absl::CHexEscape(label),
                       "\": want [a-zA-Z_][a-zA-Z0-9_]* not starting with __"));
    }
    if (family->type() == MetricType::kHistogram && label == "le") {
      Die(absl::StrCat("histogram ", name, ": label name \"le\" is reserved"));
    }
    if (!seen.insert(label).second) Die(absl::StrCat("metric ", name, ": label ", label, " given twice"));
  }
  std::vector<std::string> series = {name};
  if (family->type() == MetricType::kHistogram) {
    for (const char* suffix : {"_bucket", "_sum", "_count"}) series.push_back(name + suffix);
  }
  absl::MutexLock l(&mu_);
  for (const std::string& s : series) {
    auto it = taken_.find(s);
    if (it != taken_.end()) {
      Die(absl::StrCat("metric ", name, ": series name ", s, " is already used by metric ", it->second));
    }
  }
  for (const std::string& s : series) taken_[s] = name;
  families_.push_back(std::move(family));
  return families_.back().get();
}

Family<Counter>& Registry::AddCounter(std::string name, std::string help, std::vector<std::string> label_names) {
  auto* f = static_cast<Family<Counter>*>(
      Register(std::make_unique<Family<Counter>>(std::move(name), std::move(help), MetricType::kCounter,
                                                 std::move(label_names), [] { return std::make_unique<Counter>(); })));
  if (f->label_names().empty()) f->Get();  // an unlabelled metric is exposed (as 0) from the start
  return *f;
}

Family<Gauge>& Registry::AddGauge(std::string name, std::string help, std::vector<std::string> label_names) {
  auto* f = static_cast<Family<Gauge>*>(
      Register(std::make_unique<Family<Gauge>>(std::move(name), std::move(help), MetricType::kGauge,
                                               std::move(label_names), [] { return std::make_unique<Gauge>(); })));
  if (f->label_names().empty()) f->Get();
  return *f;
}

Family<Histogram>& Registry::AddHistogram(std::string name, std::string help, std::vector<double> upper_bounds,
                                          std::vector<std::string> label_names) {
  for (size_t i = 0; i < upper_bounds.size(); ++i) {
    if (!std::isfinite(upper_bounds[i]) || (i > 0 && !(upper_bounds[i] > upper_bounds[i - 1]))) {
      Die(absl::StrCat("histogram ", name, ": bucket bounds must be finite and strictly increasing, got ",
                       absl::StrJoin(upper_bounds, ",")));
    }
  }
  auto* f = static_cast<Family<Histogram>*>(Register(std::make_unique<Family<Histogram>>(
      std::move(name), std::move(help), MetricType::kHistogram, std::move(label_names),
      [b = std::move(upper_bounds)] { return std::make_unique<Histogram>(b); })));
  if (f->label_names().empty()) f->Get();
  return *f;
}

void Registry::AddCallbackGauge(std::string name, std::string help, std::function<double()> fn) {
  AddCallbackFamily(MetricType::kGauge, std::move(name), std::move(help), {}, Single(std::move(fn)));
}

void Registry::AddCallbackCounter(std::string name, std::string help, std::function<double()> fn) {
  AddCallbackFamily(MetricType::kCounter, std::move(name), std::move(help), {}, Single(std::move(fn)));
}

void Registry::AddCallbackFamily(MetricType type, std::string name, std::string help,
                                 std::vector<std::string> label_names, std::function<std::vector<Sample>()> fn) {
  if (type == MetricType::kHistogram) Die(absl::StrCat("callback metric ", name, ": histograms are not supported"));
  Register(std::make_unique<CallbackFamily>(type, std::move(name), std::move(help), std::move(label_names),
                                            std::move(fn)));
}

std::string Registry::Serialize() const {
  std::vector<const FamilyBase*> families;
  {
    absl::MutexLock l(&mu_);
    for (const auto& f : families_) families.push_back(f.get());
  }
  // Families are never removed, so the pointers stay valid without the lock,
  // and callbacks run without it.
  std::string out;
  for (const FamilyBase* f : families) f->Serialize(&out);
  return out;
}

namespace {

std::string ReadSmallFile(const char* path) {
  std::string out;
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

// Fields of /proc/self/stat after the command name, which may itself hold spaces
// and parentheses; element 0 is field 3 (state) of proc(5).
std::vector<std::string> ProcSelfStatFields() {
  const std::string stat = ReadSmallFile("/proc/self/stat");
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return {};
  return absl::StrSplit(absl::string_view(stat).substr(paren + 1), ' ', absl::SkipWhitespace());
}

double StatField(int proc5_field) {
  const std::vector<std::string> f = ProcSelfStatFields();
  double v;
  const size_t i = static_cast<size_t>(proc5_field - 3);
  if (i >= f.size() || !absl::SimpleAtod(f[i], &v)) return std::nan("");
  return v;
}

double BootTimeSeconds() {
  for (absl::string_view line : absl::StrSplit(ReadSmallFile("/proc/stat"), '\n')) {
    double v;
    if (absl::ConsumePrefix(&line, "btime ") && absl::SimpleAtod(line, &v)) return v;
  }
  return std::nan("");
}

double CountOpenFds() {
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return std::nan("");
  double n = 0;
  while (const struct dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n - 1;  // not the descriptor opendir itself holds
}

}  // namespace

void AddProcessMetrics(Registry& registry) {
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  // proc(5) fields: 14 utime, 15 stime, 22 starttime (ticks since boot), 23 vsize (bytes), 24 rss (pages).
  registry.AddCallbackCounter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                              [ticks] { return (StatField(14) + StatField(15)) / ticks; });
  registry.AddCallbackGauge("process_resident_memory_bytes", "Resident memory size in bytes.",
                            [page] { return StatField(24) * page; });
  registry.AddCallbackGauge("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                            [] { return StatField(23); });
  registry.AddCallbackGauge("process_open_fds", "Number of open file descriptors.", CountOpenFds);
  registry.AddCallbackGauge("process_max_fds", "Maximum number of open file descriptors.", [] {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return std::nan("");
    return static_cast<double>(rl.rlim_cur);
  });
  const double start = BootTimeSeconds() + StatField(22) / ticks;
  registry.AddCallbackGauge("process_start_time_seconds",
                            "Start time of the process since unix epoch in seconds.", [start] { return start; });
}

void AddBuildInfo(Registry& registry, absl::string_view version, absl::string_view revision) {
  registry
      .AddGauge("weft_build_info", "A metric with a constant '1' value labelled by the build's version and revision.",
                {"version", "revision"})
      .WithLabels({std::string(version), std::string(revision)})
      .Set(1);
}

}  // namespace weft::metrics
