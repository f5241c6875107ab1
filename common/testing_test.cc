#include "common/testing.h"

#include <atomic>
#include <thread>

#include "gtest/gtest.h"

namespace weft {
namespace {

TEST(EventuallyTest, TrueOnceTheConditionHolds) {
  std::atomic<bool> done{false};
  std::thread t([&] { done = true; });
  EXPECT_TRUE(Eventually([&] { return done.load(); }));
  t.join();
}

TEST(EventuallyTest, FalseAfterTheDeadline) {
  EXPECT_FALSE(Eventually([] { return false; }, absl::Milliseconds(5)));
}

TEST(SleepAdvancingClockTest, SleepMovesTheTimeAndIsRecorded) {
  SleepAdvancingClock clock(absl::FromUnixSeconds(1000));
  Timers timers(clock);
  bool fired = false;
  timers.After(absl::Seconds(2), [&] { fired = true; });
  clock.SleepFor(absl::Seconds(1));
  clock.SleepFor(absl::Seconds(2));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(1003));
  EXPECT_TRUE(fired);
  EXPECT_EQ(clock.sleeps(), (std::vector<absl::Duration>{absl::Seconds(1), absl::Seconds(2)}));
  EXPECT_EQ(clock.slept(), absl::Seconds(3));
}

}  // namespace
}  // namespace weft
