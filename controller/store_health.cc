#include "controller/store_health.h"

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace weft::controller {

StoreHealthMonitor::StoreHealthMonitor(storage::Store* store, metrics::Registry& registry, Options options)
    : store_(store), options_(std::move(options)) {
  registry.AddCallbackGauge("weft_store_healthy",
                            "1 while the store takes writes (no write failure, no NOSPACE alarm), else 0.",
                            [this] { return Check().ok() ? 1.0 : 0.0; });
  registry.AddCallbackGauge("weft_store_space_alarm", "1 while the store's NOSPACE alarm (quota) is raised.",
                            [this] { return store_->Health().space_alarm ? 1.0 : 0.0; });
  registry.AddCallbackGauge("weft_store_db_size_bytes", "Size of the embedded store on disk; -1 for etcd.",
                            [this] { return static_cast<double>(store_->Health().db_size_bytes); });
  registry.AddCallbackCounter("weft_store_write_errors_total",
                              "Durable writes the store failed to make (disk full, I/O errors).",
                              [this] { return static_cast<double>(store_->Health().write_errors); });
}

StoreHealthMonitor::~StoreHealthMonitor() { Stop(); }

absl::Status StoreHealthMonitor::Check() {
  const storage::StoreHealth h = store_->Health();
  if (!h.writable) return absl::UnavailableError(absl::StrCat("store: ", h.reason));
  if (h.space_alarm) return absl::UnavailableError(absl::StrCat("store: ", h.reason));
  return absl::OkStatus();
}

void StoreHealthMonitor::Start() {
  poll_timer_ = timers_.Every(options_.interval, absl::ZeroDuration(), [this] { Poll(); });
}

void StoreHealthMonitor::Stop() {
  if (const Timers::Id id = poll_timer_.exchange(0); id != 0) timers_.Cancel(id);
}

void StoreHealthMonitor::Poll() {
  const absl::Status s = Check();
  if (s.ok() == serving_) return;
  serving_ = s.ok();
  if (serving_) {
    WEFT_LOG(INFO, "store healthy again: serving");
  } else {
    WEFT_LOG(ERROR, "store unfit for writes: not serving").Err(s);
  }
  if (options_.on_change) options_.on_change(serving_, std::string(s.message()));
}

}  // namespace weft::controller
