#pragma once
// WriteRecovery: whether the store takes writes, and the thread that makes it
// take them again after a write failed (a full disk, an I/O error).
//
// Fail() refuses writes with a status; the thread then tries to resume, first
// after backoff_min and then with the backoff doubling up to backoff_max, until
// an attempt succeeds: then writes are allowed again. Backoff is on an injected
// Clock, so a test moves a SimulatedClock instead of waiting.
//
// Thread-safe. failed() is one atomic load, for the write path.

#include <atomic>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace weft::storage {

class WriteRecovery {
 public:
  struct Options {
    absl::Duration backoff_min = absl::Milliseconds(100);
    absl::Duration backoff_max = absl::Seconds(5);
    // One attempt to make writes work again; `attempts` is how many failed
    // since the failure (0 on the first). OK once writes work. Called on the
    // recovery thread. Required.
    std::function<absl::Status(int attempts)> try_resume;
    // Called on the recovery thread once writes are allowed again. May be null.
    std::function<void()> on_recovered;
  };

  WriteRecovery(Clock& clock, Options options);
  ~WriteRecovery();  // Stop()
  WriteRecovery(const WriteRecovery&) = delete;
  WriteRecovery& operator=(const WriteRecovery&) = delete;

  void Start();
  // Ends the thread, also in the middle of a backoff. Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  // Refuses writes with `status` (not OK) until an attempt to resume succeeds.
  void Fail(absl::Status status) ABSL_LOCKS_EXCLUDED(mu_);
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  // OK while writes are allowed, else why they are not.
  absl::Status status() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Run();

  Clock& clock_;
  const Options options_;
  mutable absl::Mutex mu_;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<bool> failed_{false};
  std::thread thread_;
};

}  // namespace weft::storage
