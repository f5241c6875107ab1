#include "common/clock.h"

#include <algorithm>
#include <utility>


namespace weft {

absl::Time SimulatedClock::Now() const {
  absl::MutexLock l(&mu_);
  return now_;
}

void SimulatedClock::SleepFor(absl::Duration d) {
  absl::Mutex mu;
  absl::MutexLock l(&mu);
  Waiter w{&mu, Now() + d};
  Register(&w);
  mu.Await(absl::Condition(&w.fired));
  Unregister(&w);
}

void SimulatedClock::AwaitWaiters(size_t n) const {
  absl::MutexLock l(&mu_);
  auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return waiters_.size() >= n; };
  mu_.Await(absl::Condition(&enough));
}

void SimulatedClock::Register(Waiter* w) {
  absl::MutexLock l(&mu_);
  if (now_ >= w->deadline) {
    w->fired = true;
  } else {
    waiters_.push_back(w);
  }
}

void SimulatedClock::Unregister(Waiter* w) {
  bool claimed;
  {
    absl::MutexLock l(&mu_);
    waiters_.erase(std::remove(waiters_.begin(), waiters_.end(), w), waiters_.end());
    claimed = w->claimed;
  }
  // An Advance took it and is about to set `fired` under the waiter's mutex:
  // let it, so it never touches `w` (or the mutex) after we return.
  if (claimed) w->mu->Await(absl::Condition(&w->fired));
}

void SimulatedClock::MoveTo(absl::Time t) {
  std::vector<Waiter*> due;
  {
    absl::MutexLock l(&mu_);
    now_ = t;
    auto reached = std::stable_partition(waiters_.begin(), waiters_.end(),
                                         [t](const Waiter* w) { return w->deadline > t; });
    for (auto it = reached; it != waiters_.end(); ++it) {
      (*it)->claimed = true;
      due.push_back(*it);
    }
    waiters_.erase(reached, waiters_.end());
  }
  // Not under mu_: a waiter holds its own mutex when it takes mu_.
  for (Waiter* w : due) {
    absl::MutexLock l(w->mu);
    w->fired = true;
  }
}

bool SimulatedClock::AwaitWithTimeout(absl::Mutex& mu, const absl::Condition& cond, absl::Duration timeout) {
  if (cond.Eval()) return true;
  Waiter w{&mu, Now() + timeout};
  Register(&w);
  auto done = [&w, &cond] { return w.fired || cond.Eval(); };
  mu.Await(absl::Condition(&done));
  Unregister(&w);
  return cond.Eval();
}

bool SimulatedClock::WaitForNotification(absl::Notification& n, absl::Duration timeout) {
  if (n.HasBeenNotified()) return true;
  absl::Mutex mu;
  absl::MutexLock l(&mu);
  Waiter w{&mu, Now() + timeout};
  Register(&w);
  while (!w.fired && !n.HasBeenNotified()) mu.AwaitWithTimeout(absl::Condition(&w.fired), absl::Milliseconds(1));
  Unregister(&w);
  return n.HasBeenNotified();
}

void SimulatedClock::Advance(absl::Duration d) {
  absl::MutexLock a(&advance_mu_);
  absl::Time target;
  {
    absl::MutexLock l(&mu_);
    target = now_ + d;
  }
  // Each due timer runs at its own time, earliest first, so a callback sees the
  // time it was scheduled for and a periodic one runs once per period passed.
  while (true) {
    Timers* next = nullptr;
    absl::Time when = absl::InfiniteFuture();
    for (Timers* t : timers_) {
      if (const absl::Time w = t->NextDeadline(); w < when) {
        when = w;
        next = t;
      }
    }
    if (next == nullptr || when > target) break;
    if (when > Now()) MoveTo(when);
    next->RunDue(Now());
  }
  MoveTo(target);
}

void SimulatedClock::SetTime(absl::Time t) {
  if (t >= Now()) return Advance(t - Now());
  absl::MutexLock a(&advance_mu_);
  MoveTo(t);
  for (Timers* timers : timers_) timers->RunDue(t);
}

bool SimulatedClock::AttachTimers(Timers* t) {
  absl::MutexLock a(&advance_mu_);
  timers_.push_back(t);
  return true;
}

void SimulatedClock::DetachTimers(Timers* t) {
  absl::MutexLock a(&advance_mu_);
  timers_.erase(std::remove(timers_.begin(), timers_.end(), t), timers_.end());
}

Timers::Timers(Clock& clock) : clock_(clock), driven_by_clock_(clock.AttachTimers(this)) {}

Timers::~Timers() {
  // First out of the clock's sight, so an Advance on another thread is done with us.
  if (driven_by_clock_) clock_.DetachTimers(this);
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
    timers_.clear();
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return running_ == 0; };
    mu_.Await(absl::Condition(&idle));
  }
  if (thread_.joinable()) thread_.join();
}

Timers::Id Timers::At(absl::Time when, std::function<void()> fn) {
  return Add(when, absl::ZeroDuration(), std::move(fn));
}

Timers::Id Timers::Every(absl::Duration period, absl::Duration first, std::function<void()> fn) {
  return Add(clock_.Now() + first, std::max(period, kMinPeriod), std::move(fn));
}

Timers::Id Timers::Add(absl::Time when, absl::Duration period, std::function<void()> fn) {
  absl::MutexLock l(&mu_);
  const Id id = next_id_++;
  timers_.emplace(id, Timer{when, period, std::make_shared<std::function<void()>>(std::move(fn))});
  changed_ = true;
  if (!driven_by_clock_ && !thread_.joinable()) thread_ = std::thread(&Timers::Loop, this);
  return id;
}

void Timers::Cancel(Id id) {
  absl::MutexLock l(&mu_);
  timers_.erase(id);
  changed_ = true;
  if (runner_ == std::this_thread::get_id()) return;  // from a callback: it is ours that runs
  auto done = [this, id]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return running_ != id; };
  mu_.Await(absl::Condition(&done));
}

absl::Time Timers::NextDeadline() const {
  absl::MutexLock l(&mu_);
  absl::Time next = absl::InfiniteFuture();
  for (const auto& [id, t] : timers_) next = std::min(next, t.when);
  return next;
}

bool Timers::RunOne(absl::Time now) {
  auto earliest = timers_.end();
  for (auto it = timers_.begin(); it != timers_.end(); ++it) {
    if (earliest == timers_.end() || it->second.when < earliest->second.when) earliest = it;
  }
  if (earliest == timers_.end() || earliest->second.when > now) return false;
  const Id id = earliest->first;
  const absl::Duration period = earliest->second.period;
  std::shared_ptr<std::function<void()>> fn = earliest->second.fn;
  if (period == absl::ZeroDuration()) {
    timers_.erase(earliest);
  } else {
    earliest->second.when = absl::InfiniteFuture();  // re-armed when this run ends
  }
  running_ = id;
  runner_ = std::this_thread::get_id();
  mu_.Unlock();
  (*fn)();
  const absl::Time ended = clock_.Now();
  mu_.Lock();
  running_ = 0;
  runner_ = std::thread::id();
  if (auto it = timers_.find(id); it != timers_.end()) it->second.when = ended + period;
  return true;
}

void Timers::RunDue(absl::Time now) {
  absl::MutexLock l(&mu_);
  while (!stopping_ && RunOne(now)) {
  }
}

void Timers::Loop() {
  absl::MutexLock l(&mu_);
  auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return changed_ || stopping_; };
  while (!stopping_) {
    const absl::Time now = clock_.Now();
    if (RunOne(now)) continue;
    absl::Time next = absl::InfiniteFuture();
    for (const auto& [id, t] : timers_) next = std::min(next, t.when);
    changed_ = false;
    if (next == absl::InfiniteFuture()) {
      mu_.Await(absl::Condition(&wake));
    } else {
      clock_.AwaitWithTimeout(mu_, absl::Condition(&wake), next - now);
    }
  }
}

}  // namespace weft
