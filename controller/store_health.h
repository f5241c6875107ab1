#pragma once
// StoreHealthMonitor: turns the store's own health (storage::Store::Health: a
// full or failing disk, the NOSPACE alarm) into the controller's readiness
// (/readyz), its gRPC health status (overall and per service) and metrics.
//
// Thread-safe. Start() polls the store at once and then every `interval` (a
// timer of `clock`), and calls on_change when serving flips; Stop() before the
// store goes away.

#include <atomic>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "storage/store.h"

namespace weft::controller {

class StoreHealthMonitor {
 public:
  struct Options {
    absl::Duration interval = absl::Milliseconds(500);
    // Called on the timer's thread when the store turns unfit (false, with why)
    // or fit again (true).
    std::function<void(bool serving, const std::string& reason)> on_change;
    Clock* clock = &RealClock::Get();  // not owned
  };

  // Registers weft_store_healthy, weft_store_space_alarm, weft_store_db_size_bytes
  // and weft_store_write_errors_total in `registry`.
  StoreHealthMonitor(storage::Store* store, metrics::Registry& registry, Options options);
  ~StoreHealthMonitor();

  // OK, or UNAVAILABLE saying why the store cannot take writes.
  absl::Status Check();

  void Start();
  void Stop();

 private:
  // One poll: Check, and on_change if serving flipped.
  void Poll();

  storage::Store* const store_;
  const Options options_;
  bool serving_ = true;  // only Poll, one run at a time, touches it
  Timers timers_{*options_.clock};
  std::atomic<Timers::Id> poll_timer_{0};
};

}  // namespace weft::controller
