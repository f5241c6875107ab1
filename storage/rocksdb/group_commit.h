#pragma once
// GroupCommitter: the store's write path below its in-memory state. Writers
// hand it each operation's RocksDB mutations and watch events, numbered in the
// order the store applied them; one committer thread writes everything
// submitted since its last write as one RocksDB batch (with a synced WAL), then
// wakes the writers it carried: writers that arrive while a sync runs share the
// next one (group commit).
//
// A failed group write fails every operation not yet durable (Discard), as the
// store's state is rolled back to the disk's; the committer goes on with what is
// submitted after ResetDurable.
//
// Thread-safe. Hooks run on the committer thread without its lock held.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "storage/store.h"

namespace rocksdb {
class WriteBatch;
}  // namespace rocksdb

namespace weft::storage {

class GroupCommitter {
 public:
  // Counters since the start, for the controller's metrics.
  struct Stats {
    uint64_t writes = 0;         // write operations made durable
    uint64_t group_commits = 0;  // RocksDB writes, each carrying >= 1 operation
    uint64_t syncs = 0;          // group commits with an fsync (all of them when sync)
    uint64_t max_group_size = 0;
    absl::Duration commit_time;  // total time spent in RocksDB writes (with syncs)
  };
  // One RocksDB write (or delete) of an operation.
  struct Mutation {
    bool del;
    std::string key;
    std::string value;
  };
  struct Options {
    // Whether writes sync (only counted here, in Stats::syncs).
    bool sync = true;
    // Writes one group durably. `revision` is the newest revision the group
    // carries; `revision_moved` says it is newer than the last durable one (the
    // group should record it). An error fails the group. Required.
    std::function<absl::Status(rocksdb::WriteBatch* group, int64_t revision, bool revision_moved)> write;
    // After a group is durable and its writers are woken: its events (in
    // order), its revision, how long `write` took and how many operations it
    // carried. Required.
    std::function<void(std::vector<Event> events, int64_t revision, absl::Duration took, int writes)> on_durable;
    // After `write` failed, with the error's message: the owner calls Discard
    // and ResetDurable. Required.
    std::function<void(const std::string& error)> on_failure;
  };

  // `clock` times the group writes.
  GroupCommitter(Clock& clock, Options options);
  ~GroupCommitter();  // Stop()
  GroupCommitter(const GroupCommitter&) = delete;
  GroupCommitter& operator=(const GroupCommitter&) = delete;

  void Start();
  // Commits what is submitted, then ends the thread. Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  // Adds operation `seq` (one more than the previous submission's) to the
  // open group. With events it changes keys at `revision`. The caller orders
  // submissions (the store holds its state lock).
  void Submit(uint64_t seq, std::vector<Mutation>& mutations, std::vector<Event> events, int64_t revision)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Blocks until operation `seq` (and every one before it) is durable; the
  // failure that discarded it if it was discarded.
  absl::Status WaitDurable(uint64_t seq) ABSL_LOCKS_EXCLUDED(mu_);
  // Fails with `status` every operation after the last durable one up to
  // `last_seq` (the last submitted), and drops the open group. Returns how many.
  uint64_t Discard(uint64_t last_seq, absl::Status status) ABSL_LOCKS_EXCLUDED(mu_);
  // Declares operation `seq` and `revision` durable: what the disk holds, at
  // start and after Discard. `seq` must be newer than any discarded operation.
  void ResetDurable(uint64_t seq, int64_t revision) ABSL_LOCKS_EXCLUDED(mu_);

  int64_t durable_revision() ABSL_LOCKS_EXCLUDED(mu_);
  Stats stats() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Run();

  Clock& clock_;
  const Options options_;

  absl::Mutex mu_;
  absl::CondVar group_ready_;  // signalled when the open group gets its first write
  absl::CondVar durable_;      // signalled after each group commit
  std::unique_ptr<rocksdb::WriteBatch> open_group_ ABSL_GUARDED_BY(mu_);
  std::vector<Event> open_events_ ABSL_GUARDED_BY(mu_);
  int open_writes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t open_seq_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t open_revision_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t durable_seq_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t durable_revision_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  Stats stats_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> durable_seq_hint_{0};  // fast path of WaitDurable
  // Operations (lo, hi] whose group commit failed: they were never durable.
  struct Discarded {
    uint64_t lo = 0;
    uint64_t hi = 0;
    absl::Status status;
  };
  std::vector<Discarded> discarded_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> discarded_hi_{0};
  std::thread thread_;
};

}  // namespace weft::storage
