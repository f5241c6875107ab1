// RevisionWaiters on a simulated clock: deadlines move only when the test
// advances it, and the sweep is called by the test (no sweeper thread) except
// where the thread itself is under test.

#include "controller/revision_waiters.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace weft::controller {
namespace {

// Records every answer a waiter gets.
struct Answers {
  std::vector<absl::Status> got;
  RevisionWaiters::Callback Add() {
    return [this](absl::Status s) { got.push_back(std::move(s)); };
  }
};

void RunAll(std::vector<RevisionWaiters::Callback> due) {
  for (auto& then : due) then(absl::OkStatus());
}

TEST(RevisionWaitersTest, ARevisionAlreadyReachedAnswersAtOnce) {
  SimulatedClock clock;
  RevisionWaiters waiters(&clock, absl::Seconds(30));
  RunAll(waiters.Reach(7));
  Answers a;
  waiters.WhenReached(7, a.Add());
  waiters.WhenReached(3, a.Add());
  ASSERT_EQ(a.got.size(), 2u);
  EXPECT_TRUE(a.got[0].ok());
  EXPECT_TRUE(a.got[1].ok());
  EXPECT_TRUE(waiters.Wait(7).ok());
  EXPECT_EQ(waiters.reached(), 7);
}

TEST(RevisionWaitersTest, ReachHandsBackTheWaitersDueInRevisionOrder) {
  SimulatedClock clock;
  RevisionWaiters waiters(&clock, absl::Seconds(30));
  std::vector<int64_t> order;
  for (int64_t rev : {9, 5, 7}) {
    waiters.WhenReached(rev, [&order, rev](absl::Status s) {
      EXPECT_TRUE(s.ok()) << s;
      order.push_back(rev);
    });
  }
  EXPECT_TRUE(order.empty()) << "nothing runs before the index gets there";
  std::vector<RevisionWaiters::Callback> due = waiters.Reach(7);
  EXPECT_EQ(due.size(), 2u);
  EXPECT_TRUE(order.empty()) << "the caller runs them, once it holds no lock";
  RunAll(std::move(due));
  EXPECT_EQ(order, (std::vector<int64_t>{5, 7}));
  EXPECT_TRUE(waiters.Reach(6).empty()) << "a revision going back changes nothing";
  EXPECT_EQ(waiters.reached(), 7);
  RunAll(waiters.Reach(9));
  EXPECT_EQ(order, (std::vector<int64_t>{5, 7, 9}));
}

TEST(RevisionWaitersTest, AWaiterFailsOnlyOnceItsDeadlineHasPassed) {
  SimulatedClock clock;
  RevisionWaiters waiters(&clock, absl::Seconds(30));
  Answers early, late;
  waiters.WhenReached(5, early.Add());
  clock.Advance(absl::Seconds(10));
  waiters.WhenReached(6, late.Add());
  clock.Advance(absl::Seconds(20) - absl::Nanoseconds(1));
  EXPECT_EQ(waiters.SweepLate(), 0);
  clock.Advance(absl::Nanoseconds(1));
  EXPECT_EQ(waiters.SweepLate(), 1);
  ASSERT_EQ(early.got.size(), 1u);
  EXPECT_EQ(early.got[0].code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(early.got[0].message(), "store watch did not deliver revision 5 within 30s");
  EXPECT_TRUE(late.got.empty());
  // The one still waiting is answered when its revision comes; the failed one is gone.
  std::vector<RevisionWaiters::Callback> due = waiters.Reach(6);
  EXPECT_EQ(due.size(), 1u);
  RunAll(std::move(due));
  ASSERT_EQ(late.got.size(), 1u);
  EXPECT_TRUE(late.got[0].ok());
  EXPECT_EQ(early.got.size(), 1u);
}

TEST(RevisionWaitersTest, StopFailsEveryWaiterAndTheLaterOnesAtOnce) {
  SimulatedClock clock;
  RevisionWaiters waiters(&clock, absl::Hours(1));
  Answers a;
  waiters.WhenReached(5, a.Add());
  waiters.WhenReached(8, a.Add());
  waiters.Stop();
  ASSERT_EQ(a.got.size(), 2u);
  for (const absl::Status& s : a.got) {
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
    EXPECT_EQ(s.message(), "controller shutting down");
  }
  waiters.WhenReached(9, a.Add());
  ASSERT_EQ(a.got.size(), 3u);
  EXPECT_EQ(a.got[2].code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(waiters.Reach(9).empty());
  // Even for a revision already reached: stopping comes first.
  waiters.WhenReached(9, a.Add());
  ASSERT_EQ(a.got.size(), 4u);
  EXPECT_EQ(a.got[3].code(), absl::StatusCode::kUnavailable);
}

TEST(RevisionWaitersTest, TheSweeperThreadFailsTheWaitersAtStop) {
  SimulatedClock clock;
  RevisionWaiters waiters(&clock, absl::Hours(1));
  waiters.StartSweeper();
  std::thread::id answered_on;
  absl::Status got;
  waiters.WhenReached(5, [&](absl::Status s) {
    answered_on = std::this_thread::get_id();
    got = std::move(s);
  });
  waiters.Stop();  // joins the sweeper, which answers
  EXPECT_EQ(got.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(answered_on, std::this_thread::get_id());
  EXPECT_NE(answered_on, std::thread::id());
}

TEST(RevisionWaitersTest, TheSweeperThreadFailsAWaiterOnceTheClockPassesItsDeadline) {
  SimulatedClock clock;
  RevisionWaiters waiters(&clock, absl::Seconds(30));  // the sweeper wakes every 1 s
  absl::Notification answered;
  absl::Status got;
  waiters.WhenReached(5, [&](absl::Status s) {
    got = std::move(s);
    answered.Notify();
  });
  waiters.StartSweeper();
  clock.AwaitWaiters(1);  // the sweeper waits for its next pass
  clock.Advance(absl::Seconds(30) - absl::Nanoseconds(1));
  clock.AwaitWaiters(1);  // that pass is done: too early to fail the waiter
  EXPECT_FALSE(answered.HasBeenNotified());
  clock.Advance(absl::Seconds(1));
  answered.WaitForNotification();  // the sweeper's next pass
  EXPECT_EQ(got.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(got.message(), "store watch did not deliver revision 5 within 30s");
}

TEST(RevisionWaitersTest, ABlockingWaitEndsWhenTheRevisionIsReached) {
  SimulatedClock clock;
  RevisionWaiters waiters(&clock, absl::Seconds(30));
  absl::Status got = absl::UnknownError("not answered");
  std::thread waiter([&] { got = waiters.Wait(4); });
  clock.AwaitWaiters(1);
  RunAll(waiters.Reach(4));
  waiter.join();
  EXPECT_TRUE(got.ok()) << got;
  EXPECT_TRUE(waiters.Wait(4).ok()) << "reached: no wait";
}

TEST(RevisionWaitersTest, ABlockingWaitTimesOutOnTheClock) {
  SimulatedClock clock;
  RevisionWaiters waiters(&clock, absl::Seconds(30));
  absl::Notification answered;
  absl::Status got;
  std::thread waiter([&] {
    got = waiters.Wait(1);
    answered.Notify();
  });
  clock.AwaitWaiters(1);
  clock.Advance(absl::Seconds(30) - absl::Nanoseconds(1));
  clock.AwaitWaiters(1);  // still waiting: not yet its deadline
  EXPECT_FALSE(answered.HasBeenNotified());
  clock.Advance(absl::Nanoseconds(1));
  waiter.join();
  EXPECT_EQ(got.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(got.message(), "store watch did not deliver revision 1 within 30s");
  // A zero timeout fails at once, without anyone moving the clock.
  RevisionWaiters impatient(&clock, absl::ZeroDuration());
  absl::Status s = impatient.Wait(1);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "store watch did not deliver revision 1 within 0");
  EXPECT_TRUE(impatient.Wait(0).ok());
}

}  // namespace
}  // namespace weft::controller
