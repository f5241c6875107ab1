#include "storage/rocksdb/group_commit.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "rocksdb/write_batch.h"

namespace weft::storage {

GroupCommitter::GroupCommitter(Clock& clock, Options options) : clock_(clock), options_(std::move(options)) {}

GroupCommitter::~GroupCommitter() { Stop(); }

void GroupCommitter::Start() { thread_ = std::thread(&GroupCommitter::Run, this); }

void GroupCommitter::Stop() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
    group_ready_.Signal();
  }
  if (thread_.joinable()) thread_.join();
}

void GroupCommitter::Submit(uint64_t seq, std::vector<Mutation>& mutations, std::vector<Event> events,
                            int64_t revision) {
  absl::MutexLock l(&mu_);
  if (open_group_ == nullptr) open_group_ = std::make_unique<rocksdb::WriteBatch>();
  for (Mutation& m : mutations) {
    if (m.del) {
      open_group_->Delete(m.key);
    } else {
      open_group_->Put(m.key, m.value);
    }
  }
  if (!events.empty()) {
    open_revision_ = revision;
    if (open_events_.empty()) {
      open_events_ = std::move(events);
    } else {
      std::move(events.begin(), events.end(), std::back_inserter(open_events_));
    }
  }
  open_seq_ = seq;
  if (++open_writes_ == 1) group_ready_.Signal();
}

absl::Status GroupCommitter::WaitDurable(uint64_t seq) {
  if (seq > discarded_hi_.load(std::memory_order_acquire) &&
      durable_seq_hint_.load(std::memory_order_acquire) >= seq) {
    return absl::OkStatus();
  }
  absl::MutexLock l(&mu_);
  while (true) {
    for (const Discarded& d : discarded_) {
      if (seq > d.lo && seq <= d.hi) return d.status;
    }
    if (durable_seq_ >= seq) return absl::OkStatus();
    durable_.Wait(&mu_);
  }
}

uint64_t GroupCommitter::Discard(uint64_t last_seq, absl::Status status) {
  absl::MutexLock l(&mu_);
  Discarded d{durable_seq_, last_seq, std::move(status)};
  const uint64_t count = d.hi - d.lo;
  // A bounded memory of failures: a writer waits for its own operation right
  // after submitting it, well before 64 more failures.
  if (discarded_.size() >= 64) discarded_.erase(discarded_.begin());
  discarded_.push_back(std::move(d));
  discarded_hi_.store(last_seq, std::memory_order_release);
  open_group_.reset();
  open_events_.clear();
  open_writes_ = 0;
  durable_.SignalAll();
  return count;
}

void GroupCommitter::ResetDurable(uint64_t seq, int64_t revision) {
  absl::MutexLock l(&mu_);
  open_revision_ = revision;
  durable_revision_ = revision;
  durable_seq_ = seq;
  open_seq_ = seq;
  durable_seq_hint_.store(seq, std::memory_order_release);
  durable_.SignalAll();
}

int64_t GroupCommitter::durable_revision() {
  absl::MutexLock l(&mu_);
  return durable_revision_;
}

GroupCommitter::Stats GroupCommitter::stats() {
  absl::MutexLock l(&mu_);
  return stats_;
}

void GroupCommitter::Run() {
  while (true) {
    std::unique_ptr<rocksdb::WriteBatch> group;
    std::vector<Event> events;
    int writes = 0;
    uint64_t seq = 0;
    int64_t revision = 0;
    bool revision_moved = false;
    {
      absl::MutexLock l(&mu_);
      while (open_writes_ == 0 && !stopping_) group_ready_.Wait(&mu_);
      if (open_writes_ == 0) return;  // stopping, and every write is committed
      group = std::move(open_group_);
      events.swap(open_events_);
      writes = open_writes_;
      open_writes_ = 0;
      seq = open_seq_;
      revision = std::max(open_revision_, durable_revision_);
      revision_moved = revision > durable_revision_;
    }
    const absl::Time start = clock_.Now();
    const absl::Status st = options_.write(group.get(), revision, revision_moved);
    const absl::Duration took = clock_.Now() - start;
    if (!st.ok()) {
      options_.on_failure(std::string(st.message()));
      continue;
    }
    {
      absl::MutexLock l(&mu_);
      durable_seq_ = seq;
      durable_revision_ = revision;
      durable_seq_hint_.store(seq, std::memory_order_release);
      ++stats_.group_commits;
      if (options_.sync) ++stats_.syncs;
      stats_.writes += writes;
      stats_.max_group_size = std::max<uint64_t>(stats_.max_group_size, writes);
      stats_.commit_time += took;
      durable_.SignalAll();
    }
    options_.on_durable(std::move(events), revision, took, writes);
  }
}

}  // namespace weft::storage
