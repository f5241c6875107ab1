#include "storage/rocksdb/maintenance_loop.h"

#include <utility>

namespace weft::storage {

MaintenanceLoop::MaintenanceLoop(Clock& clock, absl::Duration interval, Tasks tasks)
    : clock_(clock), interval_(interval), tasks_(std::move(tasks)) {}

MaintenanceLoop::~MaintenanceLoop() { Stop(); }

void MaintenanceLoop::Start() { thread_ = std::thread(&MaintenanceLoop::Run, this); }

void MaintenanceLoop::RequestCompaction() {
  absl::MutexLock l(&mu_);
  compaction_wanted_ = true;
}

void MaintenanceLoop::Stop() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void MaintenanceLoop::Run() {
  if (tasks_.on_start) tasks_.on_start();
  while (true) {
    bool compact = false;
    {
      absl::MutexLock l(&mu_);
      auto wake = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return stopping_ || compaction_wanted_; };
      if (interval_ > absl::ZeroDuration()) {
        clock_.AwaitWithTimeout(mu_, absl::Condition(&wake), interval_);
      } else {
        mu_.Await(absl::Condition(&wake));
      }
      if (stopping_) return;
      compact = compaction_wanted_;
      compaction_wanted_ = false;
    }
    if (interval_ > absl::ZeroDuration() && tasks_.periodic) tasks_.periodic();
    if (compact && tasks_.compact) tasks_.compact();
  }
}

}  // namespace weft::storage
