#include "controller/revision_waiters.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace weft::controller {
namespace {

absl::Status ShuttingDown() { return absl::UnavailableError("controller shutting down"); }

}  // namespace

RevisionWaiters::RevisionWaiters(Clock* clock, absl::Duration timeout) : clock_(clock), timeout_(timeout) {}

RevisionWaiters::~RevisionWaiters() { Stop(); }

void RevisionWaiters::StartSweeper() {
  sweeper_ = std::thread([this] { SweepUntilStopped(); });
}

void RevisionWaiters::Stop() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  if (sweeper_.joinable()) {
    sweeper_.join();  // it fails every wait still pending
  } else {
    SweepLate();
  }
}

std::vector<RevisionWaiters::Callback> RevisionWaiters::Reach(int64_t revision) {
  std::vector<Callback> due;
  absl::MutexLock l(&mu_);
  reached_ = std::max(reached_, revision);
  auto end = waiters_.upper_bound(reached_);
  for (auto it = waiters_.begin(); it != end; ++it) due.push_back(std::move(it->second.then));
  waiters_.erase(waiters_.begin(), end);
  return due;
}

int64_t RevisionWaiters::reached() {
  absl::MutexLock l(&mu_);
  return reached_;
}

void RevisionWaiters::WhenReached(int64_t revision, Callback then) {
  absl::Status now;
  {
    absl::MutexLock l(&mu_);
    if (stopping_) {
      now = ShuttingDown();
    } else if (reached_ < revision) {
      waiters_.emplace(revision, Waiter{clock_->Now() + timeout_, std::move(then)});
      return;
    }
  }
  then(now);
}

absl::Status RevisionWaiters::Wait(int64_t revision) {
  absl::MutexLock l(&mu_);
  auto reached = [this, revision]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return reached_ >= revision; };
  if (!clock_->AwaitWithTimeout(mu_, absl::Condition(&reached), timeout_)) return LateError(revision);
  return absl::OkStatus();
}

absl::Status RevisionWaiters::LateError(int64_t revision) const {
  return absl::UnavailableError(absl::StrCat("store watch did not deliver revision ", revision, " within ",
                                             absl::FormatDuration(timeout_)));
}

int RevisionWaiters::SweepLate() {
  std::vector<std::pair<int64_t, Callback>> late;
  bool stop;
  {
    absl::MutexLock l(&mu_);
    stop = stopping_;
    const absl::Time now = clock_->Now();
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (stop || it->second.deadline <= now) {
        late.emplace_back(it->first, std::move(it->second.then));
        it = waiters_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& [revision, then] : late) then(stop ? ShuttingDown() : LateError(revision));
  return static_cast<int>(late.size());
}

void RevisionWaiters::SweepUntilStopped() {
  const absl::Duration period = std::min(absl::Seconds(1), timeout_ / 4);
  while (true) {
    bool stop;
    {
      absl::MutexLock l(&mu_);
      clock_->AwaitWithTimeout(mu_, absl::Condition(&stopping_), period);
      stop = stopping_;
    }
    SweepLate();
    if (stop) return;
  }
}

}  // namespace weft::controller
