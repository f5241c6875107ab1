#include "common/testing.h"

#include <algorithm>

#include "absl/time/clock.h"

namespace weft {

bool Eventually(const std::function<bool()>& condition, absl::Duration deadline) {
  const absl::Time end = absl::Now() + deadline;
  // Short polls first, for what is nearly there; then at most every 50 ms.
  absl::Duration poll = absl::Milliseconds(1);
  while (!condition()) {
    if (absl::Now() >= end) return condition();
    absl::SleepFor(std::min(poll, end - absl::Now()));
    poll = std::min(poll * 2, absl::Milliseconds(50));
  }
  return true;
}

void SleepAdvancingClock::SleepFor(absl::Duration d) {
  {
    absl::MutexLock l(&sleeps_mu_);
    sleeps_.push_back(d);
  }
  Advance(std::max(d, absl::ZeroDuration()));
}

std::vector<absl::Duration> SleepAdvancingClock::sleeps() const {
  absl::MutexLock l(&sleeps_mu_);
  return sleeps_;
}

absl::Duration SleepAdvancingClock::slept() const {
  absl::MutexLock l(&sleeps_mu_);
  absl::Duration sum;
  for (absl::Duration d : sleeps_) sum += d;
  return sum;
}

}  // namespace weft
