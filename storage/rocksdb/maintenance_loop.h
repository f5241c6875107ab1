#pragma once
// MaintenanceLoop: the store's background thread for work that is not on any
// caller's path: expiring leases every interval, and compacting history when the
// commit path asks for it (asking must be cheap: it runs after every commit).
//
// Waits on an injected Clock, so a test moves a SimulatedClock instead of
// sleeping. Thread-safe.

#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace weft::storage {

class MaintenanceLoop {
 public:
  struct Tasks {
    // Runs once on the thread before anything else (finishing work a crash
    // interrupted). May be null.
    std::function<void()> on_start;
    // Runs every time the thread wakes, `interval` after the previous wake or
    // sooner for a compaction; never when `interval` is zero. May be null.
    std::function<void()> periodic;
    // Runs after `periodic` when compaction was requested since the last run.
    std::function<void()> compact;
  };

  // Zero `interval`: the thread wakes only for compactions.
  MaintenanceLoop(Clock& clock, absl::Duration interval, Tasks tasks);
  // Stops the thread; waits for a task that runs to finish.
  ~MaintenanceLoop();
  MaintenanceLoop(const MaintenanceLoop&) = delete;
  MaintenanceLoop& operator=(const MaintenanceLoop&) = delete;

  void Start();
  // Wakes the thread to compact (requests before it runs count as one).
  void RequestCompaction() ABSL_LOCKS_EXCLUDED(mu_);
  // Idempotent; the destructor calls it. A task must not call it.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Run();

  Clock& clock_;
  const absl::Duration interval_;
  const Tasks tasks_;
  absl::Mutex mu_;
  bool compaction_wanted_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace weft::storage
