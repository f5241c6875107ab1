#include "storage/rocksdb/maintenance_loop.h"

#include <atomic>
#include <string>
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

MaintenanceLoop::Tasks Record(Journal* journal, absl::Notification* compacted = nullptr) {
  MaintenanceLoop::Tasks t;
  t.on_start = [journal] { journal->Add("start"); };
  t.periodic = [journal] { journal->Add("periodic"); };
  t.compact = [journal, compacted] {
    journal->Add("compact");
    if (compacted != nullptr && !compacted->HasBeenNotified()) compacted->Notify();
  };
  return t;
}

TEST(MaintenanceLoopTest, RunsThePeriodicTaskEveryIntervalOfTheClock) {
  SimulatedClock clock;
  Journal journal;
  MaintenanceLoop loop(clock, kInterval, Record(&journal));
  loop.Start();
  clock.AwaitWaiters(1);
  EXPECT_EQ(journal.entries(), std::vector<std::string>{"start"});
  clock.Advance(kInterval - absl::Milliseconds(1));
  EXPECT_EQ(journal.entries(), std::vector<std::string>{"start"});
  clock.Advance(absl::Milliseconds(1));
  clock.AwaitWaiters(1);  // waiting again: the pass is done
  EXPECT_EQ(journal.entries(), (std::vector<std::string>{"start", "periodic"}));
  clock.Advance(kInterval);
  clock.AwaitWaiters(1);
  EXPECT_EQ(journal.entries(), (std::vector<std::string>{"start", "periodic", "periodic"}));
}

TEST(MaintenanceLoopTest, CompactionRequestWakesItWithoutTimePassing) {
  SimulatedClock clock;
  Journal journal;
  absl::Notification compacted;
  MaintenanceLoop loop(clock, kInterval, Record(&journal, &compacted));
  loop.Start();
  clock.AwaitWaiters(1);
  loop.RequestCompaction();
  compacted.WaitForNotification();
  // The wake also runs the periodic task, before the compaction.
  EXPECT_EQ(journal.entries(), (std::vector<std::string>{"start", "periodic", "compact"}));
}

TEST(MaintenanceLoopTest, RequestsBeforeARunCountAsOne) {
  SimulatedClock clock;
  Journal journal;
  absl::Notification compacted;
  MaintenanceLoop loop(clock, kInterval, Record(&journal, &compacted));
  loop.RequestCompaction();
  loop.RequestCompaction();
  loop.Start();
  compacted.WaitForNotification();
  clock.AwaitWaiters(1);
  EXPECT_EQ(journal.entries(), (std::vector<std::string>{"start", "periodic", "compact"}));
}

TEST(MaintenanceLoopTest, ZeroIntervalWakesOnlyToCompact) {
  SimulatedClock clock;
  Journal journal;
  absl::Notification compacted;
  MaintenanceLoop loop(clock, absl::ZeroDuration(), Record(&journal, &compacted));
  loop.Start();
  clock.Advance(absl::Hours(1));
  loop.RequestCompaction();
  compacted.WaitForNotification();
  EXPECT_EQ(journal.entries(), (std::vector<std::string>{"start", "compact"}));
}

TEST(MaintenanceLoopTest, StopEndsAWaitAtOnce) {
  SimulatedClock clock;
  Journal journal;
  MaintenanceLoop loop(clock, absl::Hours(1), Record(&journal));
  loop.Start();
  clock.AwaitWaiters(1);
  loop.Stop();
  loop.Stop();  // idempotent
  EXPECT_EQ(journal.entries(), std::vector<std::string>{"start"});
}

TEST(MaintenanceLoopTest, NullTasksAreSkipped) {
  SimulatedClock clock;
  MaintenanceLoop loop(clock, kInterval, MaintenanceLoop::Tasks{});
  loop.Start();
  clock.AwaitWaiters(1);
  clock.Advance(kInterval);
  clock.AwaitWaiters(1);
  loop.RequestCompaction();
}

}  // namespace
}  // namespace weft::storage
