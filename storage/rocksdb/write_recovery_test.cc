#include "storage/rocksdb/write_recovery.h"

#include <atomic>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "gtest/gtest.h"

namespace weft::storage {
namespace {

constexpr absl::Duration kMin = absl::Milliseconds(100);
constexpr absl::Duration kMax = absl::Milliseconds(350);

// Attempts fail until `succeed_after` have been made; the test sees when each ran.
class WriteRecoveryTest : public ::testing::Test {
 protected:
  WriteRecovery::Options RecoveryOptions() {
    WriteRecovery::Options o;
    o.backoff_min = kMin;
    o.backoff_max = kMax;
    o.try_resume = [this](int attempts) {
      absl::MutexLock l(&mu_);
      attempt_args_.push_back(attempts);
      attempt_times_.push_back(clock_.Now());
      if (static_cast<int>(attempt_times_.size()) <= fail_first_) return absl::UnavailableError("disk still full");
      return absl::OkStatus();
    };
    o.on_recovered = [this] {
      absl::MutexLock l(&mu_);
      ++recoveries_;
    };
    return o;
  }
  // Blocks until the thread has recovered `n` times in all.
  void AwaitRecoveries(int n) {
    absl::MutexLock l(&mu_);
    auto done = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return recoveries_ >= n; };
    mu_.Await(absl::Condition(&done));
  }
  int attempts() {
    absl::MutexLock l(&mu_);
    return static_cast<int>(attempt_times_.size());
  }
  // Moves the clock by `d` once the recovery thread waits, and returns once it
  // waits again (its attempt done).
  void AdvanceFailedAttempt(absl::Duration d) {
    clock_.AwaitWaiters(1);
    clock_.Advance(d);
    clock_.AwaitWaiters(1);
  }

  SimulatedClock clock_;
  absl::Mutex mu_;
  int recoveries_ ABSL_GUARDED_BY(mu_) = 0;
  int fail_first_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<int> attempt_args_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Time> attempt_times_ ABSL_GUARDED_BY(mu_);
};

TEST_F(WriteRecoveryTest, WritableUntilAFailure) {
  WriteRecovery r(clock_, RecoveryOptions());
  r.Start();
  EXPECT_FALSE(r.failed());
  EXPECT_TRUE(r.status().ok());
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(attempts(), 0);
}

TEST_F(WriteRecoveryTest, RetriesWithDoublingBackoffUntilAnAttemptSucceeds) {
  {
    absl::MutexLock l(&mu_);
    fail_first_ = 4;
  }
  WriteRecovery r(clock_, RecoveryOptions());
  r.Start();
  const absl::Time failed_at = clock_.Now();
  r.Fail(absl::UnavailableError("store cannot write (No space left on device)"));
  EXPECT_TRUE(r.failed());
  EXPECT_EQ(r.status().message(), "store cannot write (No space left on device)");
  // The first attempt comes after the minimum backoff, not at once.
  clock_.AwaitWaiters(1);
  clock_.Advance(kMin - absl::Milliseconds(1));
  EXPECT_EQ(attempts(), 0);
  clock_.Advance(absl::Milliseconds(1));
  clock_.AwaitWaiters(1);
  AdvanceFailedAttempt(2 * kMin);
  AdvanceFailedAttempt(kMax);  // 400 ms capped at 350
  AdvanceFailedAttempt(kMax);
  EXPECT_TRUE(r.failed());
  clock_.Advance(kMax);
  AwaitRecoveries(1);
  EXPECT_FALSE(r.failed());
  EXPECT_TRUE(r.status().ok());
  absl::MutexLock l(&mu_);
  EXPECT_EQ(attempt_args_, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(attempt_times_,
            (std::vector<absl::Time>{failed_at + kMin, failed_at + 3 * kMin, failed_at + 3 * kMin + kMax,
                                     failed_at + 3 * kMin + 2 * kMax, failed_at + 3 * kMin + 3 * kMax}));
}

TEST_F(WriteRecoveryTest, ANewFailureStartsAgainFromTheMinimumBackoff) {
  {
    absl::MutexLock l(&mu_);
    fail_first_ = 2;
  }
  WriteRecovery r(clock_, RecoveryOptions());
  r.Start();
  r.Fail(absl::UnavailableError("first"));
  AdvanceFailedAttempt(kMin);
  AdvanceFailedAttempt(2 * kMin);
  clock_.Advance(kMax);
  AwaitRecoveries(1);
  r.Fail(absl::UnavailableError("second"));
  clock_.AwaitWaiters(1);
  const absl::Time failed_at = clock_.Now();
  clock_.Advance(kMin);
  AwaitRecoveries(2);  // only the first two attempts fail
  absl::Time last;
  {
    absl::MutexLock l(&mu_);
    ASSERT_EQ(attempt_times_.size(), 4u);
    last = attempt_times_.back();
    EXPECT_EQ(attempt_args_.back(), 0);
  }
  EXPECT_EQ(last, failed_at + kMin);
}

TEST_F(WriteRecoveryTest, StopEndsABackoffAtOnce) {
  WriteRecovery r(clock_, RecoveryOptions());
  r.Start();
  r.Fail(absl::UnavailableError("io error"));
  clock_.AwaitWaiters(1);
  r.Stop();
  r.Stop();  // idempotent
  EXPECT_EQ(attempts(), 0);
  EXPECT_TRUE(r.failed());
}

}  // namespace
}  // namespace weft::storage
