#pragma once
// RevisionWaiters: requests waiting until the lease index has applied a store
// revision (their node's previous write, a fresh revision, the write that beat
// them), each with a deadline.
//
// The index's owner reports every revision it has applied (Reach); a waiter
// runs with OK once its revision is reached, or with UNAVAILABLE when its
// deadline (the clock's Now() + timeout when it began waiting) passes first,
// or at Stop(). Deadlines are enforced by SweepLate(): the sweeper thread
// (StartSweeper) calls it every min(1 s, timeout / 4) of the clock's time (so
// moving a SimulatedClock wakes it), and a test can call it itself.
//
// Thread-safe. No callback runs with this object's lock held. LeaseManager
// calls Reach with its own mu_ held, so that the index and the waiters move
// together; nothing here takes mu_ (lock order: mu_, then this lock).

#include <cstdint>
#include <functional>
#include <map>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace weft::controller {

class RevisionWaiters {
 public:
  using Callback = std::function<void(absl::Status)>;

  RevisionWaiters(Clock* clock, absl::Duration timeout);
  // Stop().
  ~RevisionWaiters();

  // Starts the sweeper thread. At most once.
  void StartSweeper();
  // Fails every waiter with UNAVAILABLE ("shutting down"), on the sweeper's
  // thread when it runs (and joins it), else on this one; later WhenReached
  // calls fail at once. Blocking Waits are not ended by it.
  void Stop();

  // The index has applied every revision up to `revision` (a lower one than
  // already reached changes nothing). Returns the waiters now due, for the
  // caller to run with OK once it holds no lock of its own.
  [[nodiscard]] std::vector<Callback> Reach(int64_t revision);
  int64_t reached();

  // Calls `then` once `revision` is reached: at once (on this thread) when it
  // is, or when stopped (UNAVAILABLE); else from Reach's caller, or with
  // UNAVAILABLE from SweepLate once the deadline has passed.
  void WhenReached(int64_t revision, Callback then);
  // Blocks until `revision` is reached; UNAVAILABLE after the timeout (the
  // clock's time).
  absl::Status Wait(int64_t revision);

  // Fails the waiters whose deadline has passed (every one once stopped), on
  // this thread. Returns how many.
  int SweepLate();

 private:
  void SweepUntilStopped();
  absl::Status LateError(int64_t revision) const;

  Clock* const clock_;
  const absl::Duration timeout_;

  absl::Mutex mu_;
  int64_t reached_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  struct Waiter {
    absl::Time deadline;
    Callback then;
  };
  std::multimap<int64_t, Waiter> waiters_ ABSL_GUARDED_BY(mu_);
  std::thread sweeper_;
};

}  // namespace weft::controller
