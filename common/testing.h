#pragma once
// Helpers shared by tests (testonly): the two ways a test lets time pass.

#include <functional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace weft {

// Checks `condition` until it holds or `deadline` of real time has passed;
// returns whether it held. For end-to-end waits on what a test cannot drive
// (real processes, the kernel, another process's threads). A unit that takes a
// Clock is tested by advancing a SimulatedClock instead.
bool Eventually(const std::function<bool()>& condition, absl::Duration deadline = absl::Seconds(10));

// A SimulatedClock whose SleepFor moves the time itself instead of waiting for
// another thread to: for code under test that sleeps on the test's own thread
// (retry backoff). Records every pause. Thread-safe.
class SleepAdvancingClock : public SimulatedClock {
 public:
  using SimulatedClock::SimulatedClock;
  void SleepFor(absl::Duration d) override;
  std::vector<absl::Duration> sleeps() const;
  absl::Duration slept() const;  // their sum

 private:
  mutable absl::Mutex sleeps_mu_;
  std::vector<absl::Duration> sleeps_ ABSL_GUARDED_BY(sleeps_mu_);
};

}  // namespace weft
