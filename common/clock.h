#pragma once
// The one source of time for leases, renew margins, backoff, bookmarks and
// tickers. Production code takes a Clock& (default RealClock::Get()); tests drive
// a SimulatedClock instead of sleeping, as Envoy's TimeSource and
// SimulatedTimeSystem do.
//
// Nothing outside this file should call absl::Now, absl::SleepFor,
// Notification::WaitForNotificationWithTimeout or Mutex::AwaitWithTimeout for
// time the component's tests would want to move.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace weft {

class Timers;

// Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
  // Blocks the calling thread for `d` of this clock's time.
  virtual void SleepFor(absl::Duration d) = 0;
  // absl::Mutex::AwaitWithTimeout on this clock's time: `mu` is held by the
  // caller and still held on return; `cond` must depend only on state guarded by
  // `mu`. Returns once `cond` holds or `timeout` of this clock's time has passed,
  // with `cond`'s value.
  virtual bool AwaitWithTimeout(absl::Mutex& mu, const absl::Condition& cond, absl::Duration timeout) = 0;
  // Waits until `n` is notified or `timeout` of this clock's time has passed;
  // returns whether `n` was notified.
  virtual bool WaitForNotification(absl::Notification& n, absl::Duration timeout) = 0;

 private:
  friend class Timers;
  // A Timers on this clock asks whether the clock fires it (SimulatedClock, from
  // Advance) or whether it needs a thread of its own (false).
  virtual bool AttachTimers(Timers*) { return false; }
  virtual void DetachTimers(Timers*) {}
};

// Wall-clock time.
class RealClock : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  void SleepFor(absl::Duration d) override { absl::SleepFor(d); }
  bool AwaitWithTimeout(absl::Mutex& mu, const absl::Condition& cond, absl::Duration timeout) override {
    return mu.AwaitWithTimeout(cond, timeout);
  }
  bool WaitForNotification(absl::Notification& n, absl::Duration timeout) override {
    return n.WaitForNotificationWithTimeout(timeout);
  }
  static RealClock& Get() {
    static RealClock* clock = new RealClock();
    return *clock;
  }
};

// Time that only moves when a test calls Advance or SetTime. Thread-safe.
//
// Waits (SleepFor, AwaitWithTimeout, WaitForNotification) end when another thread
// moves the time past their deadline. Timers on this clock have no thread: Advance
// runs every callback that falls due, on the advancing thread and in time order,
// with Now() equal to the callback's time, before it returns. So a callback must
// not wait on this clock itself, nor create or destroy a Timers on it.
class SimulatedClock : public Clock {
 public:
  explicit SimulatedClock(absl::Time start = absl::FromUnixSeconds(1700000000)) : now_(start) {}

  absl::Time Now() const override;
  void SleepFor(absl::Duration d) override;
  bool AwaitWithTimeout(absl::Mutex& mu, const absl::Condition& cond, absl::Duration timeout) override;
  // absl::Notification cannot be woken from outside: Advance ends such a wait at
  // once, a Notify is seen within a millisecond.
  bool WaitForNotification(absl::Notification& n, absl::Duration timeout) override;

  // Moves time forward by `d`, firing due timers on the way.
  void Advance(absl::Duration d);
  // Jumps to `t` (also backwards); fires timers due at or before `t`.
  void SetTime(absl::Time t);
  // Blocks until at least `n` threads wait on this clock's time, so a test
  // advances only once the thread it means to wake is waiting.
  void AwaitWaiters(size_t n) const;

 private:
  // A thread in AwaitWithTimeout. `fired` is guarded by `*mu`; Advance sets it.
  struct Waiter {
    absl::Mutex* mu;
    absl::Time deadline;
    bool fired = false;
    bool claimed = false;  // an Advance took it off the list and will set `fired`
  };
  bool AttachTimers(Timers* t) override;
  void DetachTimers(Timers* t) override;
  // Sets the time, then wakes the waiters it reaches.
  void MoveTo(absl::Time t) ABSL_LOCKS_EXCLUDED(mu_);
  void Register(Waiter* w) ABSL_LOCKS_EXCLUDED(mu_);
  void Unregister(Waiter* w) ABSL_LOCKS_EXCLUDED(mu_);

  // Serializes Advance/SetTime with attaching and detaching timers, so no Timers
  // is destroyed while Advance runs its callbacks.
  absl::Mutex advance_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::vector<Timers*> timers_ ABSL_GUARDED_BY(advance_mu_);
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
  std::vector<Waiter*> waiters_ ABSL_GUARDED_BY(mu_);
};

// A deadline for gRPC (or another library that keeps time itself): such a
// library waits on the wall clock whatever Clock a component was given, so its
// deadlines are the wall clock's.
inline std::chrono::system_clock::time_point WallDeadline(absl::Duration d) {
  return absl::ToChronoTime(absl::Now() + d);
}

// Callbacks at a time or every period, on a Clock's time. Thread-safe.
//
// On a RealClock (or any clock that does not fire timers itself) one thread,
// started with the first timer, runs every callback of this Timers in turn: a
// slow callback delays the others of the same Timers. On a SimulatedClock,
// Advance runs them. A callback may schedule and cancel timers, its own included.
// The destructor cancels every timer.
class Timers {
 public:
  using Id = uint64_t;
  static constexpr absl::Duration kMinPeriod = absl::Milliseconds(1);

  explicit Timers(Clock& clock);
  ~Timers();
  Timers(const Timers&) = delete;
  Timers& operator=(const Timers&) = delete;

  // Runs `fn` once, at `when` (at once if it is past; on a SimulatedClock, at the
  // next Advance or SetTime).
  Id At(absl::Time when, std::function<void()> fn);
  Id After(absl::Duration delay, std::function<void()> fn) { return At(clock_.Now() + delay, std::move(fn)); }
  // Runs `fn` after `first`, then `period` after each run ends (as a loop that
  // calls it and then waits `period`). A period below kMinPeriod (a zero
  // interval from a flag) counts as kMinPeriod, so no timer spins.
  Id Every(absl::Duration period, absl::Duration first, std::function<void()> fn);
  Id Every(absl::Duration period, std::function<void()> fn) { return Every(period, period, std::move(fn)); }
  // After Cancel returns the callback does not run again, and is not running
  // unless Cancel was called from the callback itself. Unknown ids are ignored.
  void Cancel(Id id);

  Clock& clock() const { return clock_; }

 private:
  friend class SimulatedClock;
  struct Timer {
    absl::Time when;
    absl::Duration period;  // zero: once
    std::shared_ptr<std::function<void()>> fn;
  };

  Id Add(absl::Time when, absl::Duration period, std::function<void()> fn) ABSL_LOCKS_EXCLUDED(mu_);
  // The earliest deadline, InfiniteFuture when there is none.
  absl::Time NextDeadline() const ABSL_LOCKS_EXCLUDED(mu_);
  // Runs every callback due at `now`, earliest first.
  void RunDue(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);
  // Runs the earliest timer if it is due at `now`; false when none is.
  bool RunOne(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Loop();

  Clock& clock_;
  const bool driven_by_clock_;
  mutable absl::Mutex mu_;
  std::map<Id, Timer> timers_ ABSL_GUARDED_BY(mu_);
  Id next_id_ ABSL_GUARDED_BY(mu_) = 1;
  Id running_ ABSL_GUARDED_BY(mu_) = 0;  // the timer whose callback runs now
  std::thread::id runner_ ABSL_GUARDED_BY(mu_);
  bool changed_ ABSL_GUARDED_BY(mu_) = false;  // wakes the thread to look again
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace weft
