#include "storage/rocksdb/maintenance_loop.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "gtest/gtest.h"

namespace weft::storage {
namespace {

constexpr absl::Duration kInterval = absl::Milliseconds(500);

// What the loop ran, in order.
class Journal {
 public:
  void Add(std::string what) {
    absl::MutexLock l(&mu_);
    entries_.push_back(std::move(what));
  }
  std::vector<std::string> entries() {
    absl::MutexLock l(&mu_);
    return entries_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> entries_ ABSL_GUARDED_BY(mu_);
};

// A loop whose tasks note in the journal what ran; `compacted_` is notified at
// the first compaction.
class MaintenanceLoopTest : public ::testing::Test {
 protected:
  MaintenanceLoop& Loop(absl::Duration interval) {
    MaintenanceLoop::Tasks t;
    t.on_start = [this] { journal_.Add("start"); };
    t.periodic = [this] { journal_.Add("periodic"); };
    t.compact = [this] {
      journal_.Add("compact");
      if (!compacted_.HasBeenNotified()) compacted_.Notify();
    };
    loop_ = std::make_unique<MaintenanceLoop>(clock_, interval, std::move(t));
    return *loop_;
  }
  std::vector<std::string> entries() { return journal_.entries(); }

  SimulatedClock clock_;
  Journal journal_;
  absl::Notification compacted_;
  std::unique_ptr<MaintenanceLoop> loop_;
};

TEST_F(MaintenanceLoopTest, RunsThePeriodicTaskEveryIntervalOfTheClock) {
  Loop(kInterval).Start();
  clock_.AwaitWaiters(1);
  EXPECT_EQ(entries(), std::vector<std::string>{"start"});
  clock_.Advance(kInterval - absl::Milliseconds(1));
  EXPECT_EQ(entries(), std::vector<std::string>{"start"});
  clock_.Advance(absl::Milliseconds(1));
  clock_.AwaitWaiters(1);  // waiting again: the pass is done
  EXPECT_EQ(entries(), (std::vector<std::string>{"start", "periodic"}));
  clock_.Advance(kInterval);
  clock_.AwaitWaiters(1);
  EXPECT_EQ(entries(), (std::vector<std::string>{"start", "periodic", "periodic"}));
}

TEST_F(MaintenanceLoopTest, CompactionRequestWakesItWithoutTimePassing) {
  MaintenanceLoop& loop = Loop(kInterval);
  loop.Start();
  clock_.AwaitWaiters(1);
  loop.RequestCompaction();
  compacted_.WaitForNotification();
  // The wake also runs the periodic task, before the compaction.
  EXPECT_EQ(entries(), (std::vector<std::string>{"start", "periodic", "compact"}));
}

TEST_F(MaintenanceLoopTest, RequestsBeforeARunCountAsOne) {
  MaintenanceLoop& loop = Loop(kInterval);
  loop.RequestCompaction();
  loop.RequestCompaction();
  loop.Start();
  compacted_.WaitForNotification();
  clock_.AwaitWaiters(1);
  EXPECT_EQ(entries(), (std::vector<std::string>{"start", "periodic", "compact"}));
}

TEST_F(MaintenanceLoopTest, ZeroIntervalWakesOnlyToCompact) {
  MaintenanceLoop& loop = Loop(absl::ZeroDuration());
  loop.Start();
  clock_.Advance(absl::Hours(1));
  loop.RequestCompaction();
  compacted_.WaitForNotification();
  EXPECT_EQ(entries(), (std::vector<std::string>{"start", "compact"}));
}

TEST_F(MaintenanceLoopTest, StopEndsAWaitAtOnce) {
  MaintenanceLoop& loop = Loop(absl::Hours(1));
  loop.Start();
  clock_.AwaitWaiters(1);
  loop.Stop();
  loop.Stop();  // idempotent
  EXPECT_EQ(entries(), std::vector<std::string>{"start"});
}

TEST_F(MaintenanceLoopTest, NullTasksAreSkipped) {
  MaintenanceLoop loop(clock_, kInterval, MaintenanceLoop::Tasks{});
  loop.Start();
  clock_.AwaitWaiters(1);
  clock_.Advance(kInterval);
  clock_.AwaitWaiters(1);
  loop.RequestCompaction();
}

}  // namespace
}  // namespace weft::storage
