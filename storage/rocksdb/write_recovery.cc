#include "storage/rocksdb/write_recovery.h"

#include <algorithm>
#include <string>
#include <utility>

#include "common/log.h"

namespace weft::storage {

WriteRecovery::WriteRecovery(Clock& clock, Options options) : clock_(clock), options_(std::move(options)) {}

WriteRecovery::~WriteRecovery() { Stop(); }

void WriteRecovery::Start() { thread_ = std::thread(&WriteRecovery::Run, this); }

void WriteRecovery::Stop() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void WriteRecovery::Fail(absl::Status status) {
  absl::MutexLock l(&mu_);
  status_ = std::move(status);
  failed_.store(true, std::memory_order_release);
}

absl::Status WriteRecovery::status() const {
  absl::MutexLock l(&mu_);
  return status_;
}

void WriteRecovery::Run() {
  absl::Duration backoff = options_.backoff_min;
  int attempts = 0;
  while (true) {
    {
      absl::MutexLock l(&mu_);
      auto failed_or_stopping = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return stopping_ || failed(); };
      mu_.Await(absl::Condition(&failed_or_stopping));
      if (stopping_) return;
      clock_.AwaitWithTimeout(mu_, absl::Condition(&stopping_), backoff);
      if (stopping_) return;
    }
    const absl::Status s = options_.try_resume(attempts);
    ++attempts;
    if (s.ok()) {
      {
        absl::MutexLock l(&mu_);
        status_ = absl::OkStatus();
        failed_.store(false, std::memory_order_release);
      }
      WEFT_LOG(INFO, "store: writes recovered").With("attempts", attempts);
      attempts = 0;
      backoff = options_.backoff_min;
      if (options_.on_recovered) options_.on_recovered();
    } else {
      if (attempts == 1 || attempts % 20 == 0) {
        WEFT_LOG(WARN, "store: still cannot write").With("attempts", attempts).With("err", std::string(s.message()));
      }
      backoff = std::min(backoff * 2, options_.backoff_max);
    }
  }
}

}  // namespace weft::storage
