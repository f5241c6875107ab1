#include "common/clock.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace weft {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1700000000);

TEST(SimulatedClockTest, MovesOnlyWhenTold) {
  SimulatedClock clock(kStart);
  EXPECT_EQ(clock.Now(), kStart);
  clock.Advance(absl::Hours(24));
  EXPECT_EQ(clock.Now(), kStart + absl::Hours(24));
  clock.SetTime(kStart);
  EXPECT_EQ(clock.Now(), kStart);
}

TEST(SimulatedClockTest, SleepForEndsWhenTimePassesItsDeadline) {
  SimulatedClock clock(kStart);
  std::atomic<bool> woke{false};
  std::thread sleeper([&] {
    clock.SleepFor(absl::Seconds(10));
    woke = true;
  });
  clock.AwaitWaiters(1);
  clock.Advance(absl::Seconds(9));
  clock.AwaitWaiters(1);  // still asleep: 9 s is not enough
  EXPECT_FALSE(woke);
  clock.Advance(absl::Seconds(1));
  sleeper.join();
  EXPECT_TRUE(woke);
}

TEST(SimulatedClockTest, AwaitWithTimeoutEndsWhenTheConditionHolds) {
  SimulatedClock clock(kStart);
  absl::Mutex mu;
  bool ready = false;
  bool result = false;
  std::thread waiter([&] {
    absl::MutexLock l(&mu);
    result = clock.AwaitWithTimeout(mu, absl::Condition(&ready), absl::Hours(1));
  });
  clock.AwaitWaiters(1);
  {
    absl::MutexLock l(&mu);
    ready = true;
  }
  waiter.join();
  EXPECT_TRUE(result);
  EXPECT_EQ(clock.Now(), kStart);  // no time had to pass
}

TEST(SimulatedClockTest, AwaitWithTimeoutEndsWhenTimePassesTheDeadline) {
  SimulatedClock clock(kStart);
  absl::Mutex mu;
  bool ready = false;
  bool result = true;
  std::thread waiter([&] {
    absl::MutexLock l(&mu);
    result = clock.AwaitWithTimeout(mu, absl::Condition(&ready), absl::Minutes(5));
  });
  clock.AwaitWaiters(1);
  clock.Advance(absl::Minutes(5));
  waiter.join();
  EXPECT_FALSE(result);
}

TEST(SimulatedClockTest, AwaitWithTimeoutAnswersAtOnceWithoutTimeLeft) {
  SimulatedClock clock(kStart);
  absl::Mutex mu;
  bool ready = false;
  absl::MutexLock l(&mu);
  EXPECT_FALSE(clock.AwaitWithTimeout(mu, absl::Condition(&ready), absl::ZeroDuration()));
  ready = true;
  EXPECT_TRUE(clock.AwaitWithTimeout(mu, absl::Condition(&ready), absl::Hours(1)));
}

TEST(SimulatedClockTest, ManyWaitersOnOneMutexWakeAtTheirOwnDeadlines) {
  SimulatedClock clock(kStart);
  absl::Mutex mu;
  bool never = false;
  std::atomic<int> woke{0};
  std::vector<std::thread> waiters;
  for (int i = 1; i <= 3; ++i) {
    waiters.emplace_back([&, i] {
      absl::MutexLock l(&mu);
      clock.AwaitWithTimeout(mu, absl::Condition(&never), absl::Seconds(i));
      ++woke;
    });
  }
  clock.AwaitWaiters(3);
  clock.Advance(absl::Seconds(2));
  clock.AwaitWaiters(1);  // the 3 s one is left
  clock.Advance(absl::Seconds(1));
  for (std::thread& t : waiters) t.join();
  EXPECT_EQ(woke, 3);
}

TEST(SimulatedClockTest, WaitForNotificationEndsOnNotify) {
  SimulatedClock clock(kStart);
  absl::Notification n;
  bool result = false;
  std::thread waiter([&] { result = clock.WaitForNotification(n, absl::Hours(1)); });
  clock.AwaitWaiters(1);
  n.Notify();
  waiter.join();
  EXPECT_TRUE(result);
}

TEST(SimulatedClockTest, WaitForNotificationEndsWhenTimePassesTheDeadline) {
  SimulatedClock clock(kStart);
  absl::Notification n;
  bool result = true;
  std::thread waiter([&] { result = clock.WaitForNotification(n, absl::Seconds(30)); });
  clock.AwaitWaiters(1);
  clock.Advance(absl::Seconds(30));
  waiter.join();
  EXPECT_FALSE(result);
}

TEST(TimersTest, AtRunsWhenTimeReachesIt) {
  SimulatedClock clock(kStart);
  Timers timers(clock);
  std::vector<absl::Time> ran;
  timers.At(kStart + absl::Seconds(10), [&] { ran.push_back(clock.Now()); });
  clock.Advance(absl::Seconds(9));
  EXPECT_TRUE(ran.empty());
  clock.Advance(absl::Seconds(5));
  ASSERT_EQ(ran.size(), 1u);
  EXPECT_EQ(ran[0], kStart + absl::Seconds(10));  // at its own time, not the end of the step
  clock.Advance(absl::Hours(1));
  EXPECT_EQ(ran.size(), 1u);
}

TEST(TimersTest, AfterCountsFromNow) {
  SimulatedClock clock(kStart);
  Timers timers(clock);
  clock.Advance(absl::Seconds(100));
  bool ran = false;
  timers.After(absl::Seconds(1), [&] { ran = true; });
  clock.Advance(absl::Milliseconds(999));
  EXPECT_FALSE(ran);
  clock.Advance(absl::Milliseconds(1));
  EXPECT_TRUE(ran);
}

TEST(TimersTest, EveryRunsOncePerPeriodPassed) {
  SimulatedClock clock(kStart);
  Timers timers(clock);
  std::vector<absl::Time> ran;
  timers.Every(absl::Seconds(10), [&] { ran.push_back(clock.Now()); });
  clock.Advance(absl::Seconds(35));
  EXPECT_EQ(ran, (std::vector<absl::Time>{kStart + absl::Seconds(10), kStart + absl::Seconds(20),
                                          kStart + absl::Seconds(30)}));
}

TEST(TimersTest, AZeroPeriodDoesNotSpin) {
  SimulatedClock clock(kStart);
  Timers timers(clock);
  int runs = 0;
  timers.Every(absl::ZeroDuration(), [&] { ++runs; });
  clock.Advance(absl::Milliseconds(10));
  EXPECT_EQ(runs, 11);  // at once (the first delay is the zero period), then every millisecond
}

TEST(TimersTest, EveryWithAFirstDelay) {
  SimulatedClock clock(kStart);
  Timers timers(clock);
  std::vector<absl::Time> ran;
  timers.Every(absl::Seconds(10), absl::ZeroDuration(), [&] { ran.push_back(clock.Now()); });
  clock.Advance(absl::ZeroDuration());
  clock.Advance(absl::Seconds(10));
  EXPECT_EQ(ran, (std::vector<absl::Time>{kStart, kStart + absl::Seconds(10)}));
}

TEST(TimersTest, TimersOfSeveralQueuesRunInTimeOrder) {
  SimulatedClock clock(kStart);
  Timers a(clock), b(clock);
  std::vector<std::string> ran;
  a.Every(absl::Seconds(3), [&] { ran.push_back("a"); });
  b.Every(absl::Seconds(2), [&] { ran.push_back("b"); });
  clock.Advance(absl::Seconds(6));
  // b at 2, a at 3, b at 4, then both due at 6: a was scheduled there first
  EXPECT_EQ(ran.size(), 5u);
  EXPECT_EQ(ran[0], "b");
  EXPECT_EQ(ran[1], "a");
  EXPECT_EQ(ran[2], "b");
}

TEST(TimersTest, CancelledTimersDoNotRun) {
  SimulatedClock clock(kStart);
  Timers timers(clock);
  int once = 0, every = 0;
  const Timers::Id a = timers.After(absl::Seconds(1), [&] { ++once; });
  const Timers::Id b = timers.Every(absl::Seconds(1), [&] { ++every; });
  clock.Advance(absl::Seconds(2));
  EXPECT_EQ(once, 1);
  EXPECT_EQ(every, 2);
  timers.Cancel(a);  // already ran: ignored
  timers.Cancel(b);
  timers.Cancel(12345);
  clock.Advance(absl::Seconds(10));
  EXPECT_EQ(every, 2);
}

TEST(TimersTest, ACallbackMayCancelItselfAndScheduleMore) {
  SimulatedClock clock(kStart);
  Timers timers(clock);
  int runs = 0, follow_ups = 0;
  Timers::Id id = 0;
  id = timers.Every(absl::Seconds(1), [&] {
    if (++runs == 3) {
      timers.Cancel(id);
      timers.After(absl::Seconds(5), [&] { ++follow_ups; });
    }
  });
  clock.Advance(absl::Seconds(100));
  EXPECT_EQ(runs, 3);
  EXPECT_EQ(follow_ups, 1);
}

TEST(TimersTest, DestroyingTimersCancelsEverything) {
  SimulatedClock clock(kStart);
  int runs = 0;
  {
    Timers timers(clock);
    timers.Every(absl::Seconds(1), [&] { ++runs; });
    clock.Advance(absl::Seconds(1));
  }
  clock.Advance(absl::Seconds(10));
  EXPECT_EQ(runs, 1);
}

// On the real clock one thread runs the callbacks; the waits below are upper
// bounds, not sleeps.
TEST(TimersTest, RealClockRunsDueTimersOnItsThread) {
  Timers timers(RealClock::Get());
  absl::Notification once;
  std::atomic<int> ticks{0};
  absl::Notification three_ticks;
  timers.After(absl::ZeroDuration(), [&] { once.Notify(); });
  timers.Every(absl::Milliseconds(1), [&] {
    if (++ticks == 3) three_ticks.Notify();
  });
  EXPECT_TRUE(once.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_TRUE(three_ticks.WaitForNotificationWithTimeout(absl::Seconds(30)));
}

TEST(TimersTest, RealClockCancelWaitsForARunningCallback) {
  Timers timers(RealClock::Get());
  absl::Notification started, release;
  std::atomic<bool> finished{false};
  const Timers::Id id = timers.After(absl::ZeroDuration(), [&] {
    started.Notify();
    release.WaitForNotification();
    finished = true;
  });
  started.WaitForNotification();
  std::thread releaser([&] { release.Notify(); });
  timers.Cancel(id);
  EXPECT_TRUE(finished);
  releaser.join();
}

TEST(TimersTest, RealClockFarTimersDoNotHoldUpDestruction) {
  Timers timers(RealClock::Get());
  timers.Every(absl::Hours(24), [] {});
  timers.After(absl::Hours(1), [] {});
}

}  // namespace
}  // namespace weft
