#include "controller/background_duties.h"

#include <utility>

#include "common/log.h"

namespace weft::controller {

BackgroundDuties::BackgroundDuties(storage::Store* store, const LeaderElection* election, Options options)
    : store_(store), election_(election), opts_(std::move(options)) {}

BackgroundDuties::~BackgroundDuties() { Stop(); }

void BackgroundDuties::Start() {
  if (opts_.compaction_interval <= absl::ZeroDuration()) return;
  compaction_timer_ = timers_.Every(opts_.compaction_interval, [this] { Tick(); });
}

void BackgroundDuties::Stop() {
  if (const Timers::Id id = compaction_timer_.exchange(0); id != 0) timers_.Cancel(id);
}

void BackgroundDuties::Tick() {
  absl::MutexLock l(&mu_);
  if (!election_->leader()) {
    // Start over when leading again: the revision we saw may be another
    // leader's business by then.
    previous_ = 0;
    return;
  }
  const int64_t target = previous_;
  previous_ = store_->CurrentRevision();
  if (target <= 0 || target <= store_->CompactRevision()) return;
  absl::Status s = store_->Compact(target);
  // Another replica (or an operator) compacted past it meanwhile: nothing to do.
  if (storage::IsCompacted(s) || absl::IsOutOfRange(s)) s = absl::OkStatus();
  if (s.ok()) {
    WEFT_LOG(INFO, "store history compacted").With("revision", target);
  } else {
    WEFT_LOG(WARN, "cannot compact the store's history").With("revision", target).Err(s);
  }
  if (opts_.on_compaction) opts_.on_compaction(s, target);
}

}  // namespace weft::controller
