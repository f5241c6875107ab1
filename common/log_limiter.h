#pragma once
// Rate limit for log lines that a remote peer can trigger at will (refused
// handshakes, denied requests): at most `burst` lines per `period`; the events
// dropped in between are counted and reported with the next line let through.

#include <cstdint>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace weft {

class LogLimiter {
 public:
  LogLimiter(int burst, absl::Duration period, const Clock* clock = &RealClock::Get())
      : burst_(burst), period_(period), clock_(clock) {}

  // True when this event may be logged; then *suppressed is the number of events
  // refused since the last one allowed. Thread-safe.
  bool Allow(int64_t* suppressed) {
    const absl::Time now = clock_->Now();
    absl::MutexLock l(&mu_);
    if (now - window_start_ >= period_) {
      window_start_ = now;
      in_window_ = 0;
    }
    if (in_window_ >= burst_) {
      ++suppressed_;
      return false;
    }
    ++in_window_;
    *suppressed = suppressed_;
    suppressed_ = 0;
    return true;
  }

 private:
  const int burst_;
  const absl::Duration period_;
  const Clock* const clock_;
  absl::Mutex mu_;
  absl::Time window_start_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int in_window_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t suppressed_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace weft
