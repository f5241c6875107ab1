#include "storage/rocksdb/space_guard.h"

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "common/clock.h"
#include "gtest/gtest.h"

namespace weft::storage {
namespace {

class SpaceGuardTest : public ::testing::Test {
 protected:
  SpaceGuard::Options GuardOptions() {
    SpaceGuard::Options o;
    o.path = "/data/store";
    o.free_bytes = [this] { return free_.load(); };
    o.db_size_bytes = [this] {
      ++measured_;
      return size_.load();
    };
    return o;
  }

  SimulatedClock clock_;
  std::atomic<int64_t> free_{int64_t{1} << 30};
  std::atomic<int64_t> size_{1000};
  std::atomic<int> measured_{0};
};

TEST_F(SpaceGuardTest, LowSpaceSaysWhyBelowTheMinimumOnly) {
  SpaceGuard::Options o = GuardOptions();
  o.min_free_bytes = 20 << 20;
  SpaceGuard guard(o, clock_);
  EXPECT_EQ(guard.LowSpace(), "");
  free_ = 1000;
  EXPECT_EQ(guard.LowSpace(),
            "No space left on device: 1000 bytes free on the file system of /data/store, less than the 20971520 "
            "the store keeps free");
  free_ = 20 << 20;  // exactly the minimum is enough
  EXPECT_EQ(guard.LowSpace(), "");
}

TEST_F(SpaceGuardTest, NoMinimumNeverAsksForFreeSpace) {
  SpaceGuard::Options o = GuardOptions();
  o.min_free_bytes = 0;
  o.free_bytes = [] () -> int64_t {
    ADD_FAILURE() << "free space asked for";
    return 0;
  };
  EXPECT_EQ(SpaceGuard(o, clock_).LowSpace(), "");
}

TEST_F(SpaceGuardTest, MeasuresAtMostEvery100MsUnlessForced) {
  SpaceGuard guard(GuardOptions(), clock_);
  EXPECT_EQ(guard.db_size_bytes(), -1);
  guard.CheckQuota(false);
  EXPECT_EQ(guard.db_size_bytes(), 1000);
  size_ = 2000;
  guard.CheckQuota(false);
  EXPECT_EQ(guard.db_size_bytes(), 1000);
  clock_.Advance(absl::Milliseconds(99));
  guard.CheckQuota(false);
  EXPECT_EQ(guard.db_size_bytes(), 1000);
  guard.CheckQuota(true);
  EXPECT_EQ(guard.db_size_bytes(), 2000);
  size_ = 3000;
  clock_.Advance(absl::Milliseconds(100));
  guard.CheckQuota(false);
  EXPECT_EQ(guard.db_size_bytes(), 3000);
  EXPECT_EQ(measured_, 3);
}

TEST_F(SpaceGuardTest, OverQuotaRaisesAlarmUntilDisarmedBelowIt) {
  SpaceGuard::Options o = GuardOptions();
  o.quota_bytes = 5000;
  SpaceGuard guard(o, clock_);
  guard.CheckQuota(true);
  EXPECT_FALSE(guard.alarm());
  size_ = 5001;
  guard.CheckQuota(true);
  EXPECT_TRUE(guard.alarm());
  // Shrinking does not lower the alarm by itself.
  size_ = 100;
  guard.CheckQuota(true);
  EXPECT_TRUE(guard.alarm());
  size_ = 6000;
  absl::Status refused = guard.Disarm();
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(refused.message(), "store is still over its quota: 6000 > 5000 bytes; compact and defragment first");
  EXPECT_TRUE(guard.alarm());
  size_ = 5000;
  EXPECT_TRUE(guard.Disarm().ok());
  EXPECT_FALSE(guard.alarm());
}

TEST_F(SpaceGuardTest, NoQuotaRaisesOnlyByHand) {
  SpaceGuard guard(GuardOptions(), clock_);
  size_ = int64_t{1} << 40;
  guard.CheckQuota(true);
  EXPECT_FALSE(guard.alarm());
  guard.Raise();
  EXPECT_TRUE(guard.alarm());
  EXPECT_TRUE(guard.Disarm().ok());
  EXPECT_FALSE(guard.alarm());
}

}  // namespace
}  // namespace weft::storage
