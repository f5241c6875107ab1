#pragma once
// RocksDbStore: the embedded Store (storage/store.h) on one RocksDB database.
//
// Writes: a writer applies its operation to the in-memory state under one mutex
// (which orders operations and assigns revisions) and appends the RocksDB
// mutations to the open commit group. One committer thread writes each group as
// one RocksDB batch with a synced WAL and then wakes the group's writers: writers
// that arrive while a sync runs share the next one (group commit).
//
// Visibility: the in-memory state may run ahead of the disk by the groups being
// committed, but no call returns before everything it has observed is durable:
// a read notes the last operation applied when it read and waits for it to be
// synced. So nothing a caller sees can be lost by a crash, and a read's latency
// may include one group sync while writes are in flight. Watches see only
// durable changes.
//
// Watches: delivered by a ChangeDispatcher (storage/rocksdb/change_dispatcher.h): one dispatch thread,
// unbounded per-watch buffers; a slow watcher delays other watchers, never writers.
//
// Write failures (disk full, I/O errors): the operations not yet durable fail
// with UNAVAILABLE, the in-memory state is reloaded from the durable state on
// disk, and further writes fail fast with UNAVAILABLE while reads, watches and
// lease keep-alives go on. A recovery thread calls RocksDB's Resume() with
// backoff until a synced write succeeds again; then writes resume. Health()
// tells which state the store is in. Acknowledged writes are never lost.
//
// Corruption: Open refuses a database whose write-ahead log has a bad record
// (anywhere but a tail a crash cut short) or whose table files fail their
// checksums, with DATA_LOSS naming the file and what to do. With
// recover_from_corruption it keeps what precedes the first bad WAL record
// (RocksDB's point-in-time recovery) and reports what it dropped.
//
// Quota (quota_bytes > 0): once the database outgrows it the NOSPACE alarm is
// raised, as etcd's --quota-backend-bytes: writes that add data (puts, lease
// grants) fail with RESOURCE_EXHAUSTED until DisarmSpaceAlarm, while deletes,
// revokes and compaction go on.
//
// The parts, each with its own tests: GroupCommitter (group_commit.h), the
// write path; WriteRecovery (write_recovery.h), refused writes and retries;
// SpaceGuard (space_guard.h), free space and quota; DiskHistory (history.h),
// reads of past revisions, watch history, compaction; MaintenanceLoop
// (maintenance_loop.h), lease expiry and automatic compaction on the store's
// Clock; OpenDatabase (database_open.h), corruption; checkpoint.h, snapshots.
// The class's own members: rocksdb_store.cc (lifecycle, commit hooks, health),
// rocksdb_store_kv.cc (reads, transactions, watches), rocksdb_store_leases.cc.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "storage/store.h"
#include "storage/rocksdb/change_dispatcher.h"
#include "storage/rocksdb/group_commit.h"
#include "storage/rocksdb/history.h"
#include "storage/rocksdb/maintenance_loop.h"
#include "storage/rocksdb/space_guard.h"
#include "storage/rocksdb/write_recovery.h"

namespace rocksdb {
class DB;
class Snapshot;
class WriteBatch;
}  // namespace rocksdb

namespace weft::storage {

class RocksDbStore final : public Store {
 public:
  // Counters since Open, for the controller's metrics.
  using CommitStats = GroupCommitter::Stats;

  struct Options {
    std::string path;  // database directory; created if missing
    Clock* clock = &RealClock::Get();
    // false: no fsync at commit (acknowledged writes survive a process crash but
    // not a power loss). Only for benchmarks, as an upper bound.
    bool sync = true;
    // Automatic compaction keeps at least the last `history_revisions` revisions
    // (it runs when history exceeds that by 10%). 0 = only explicit Compact().
    int64_t history_revisions = 100000;
    // How often a background thread revokes expired leases. Zero = no thread;
    // call ExpireDueLeases() instead (tests).
    absl::Duration lease_expiry_interval = absl::Milliseconds(500);
    // Called on the committer thread after each group commit, outside locks:
    // how long the RocksDB write (with fsync) took and how many operations the
    // group carried. Must be quick (it delays the next commit).
    std::function<void(absl::Duration commit_latency, int batch_size)> on_commit;
    // Open a database with a corrupted write-ahead log by dropping the bad record
    // and everything after it (recovery_report() says what went).
    bool recover_from_corruption = false;
    // Size quota of the database on disk (etcd's --quota-backend-bytes); 0 = none.
    int64_t quota_bytes = 0;
    // A watch from an old revision reads the history it asks for into memory
    // before delivering it. More than this many bytes of it (keys and values,
    // previous values included) fail the watch with RESOURCE_EXHAUSTED rather
    // than let one client's watch grow the process without bound. 0 = no limit.
    int64_t max_watch_history_bytes = 64 << 20;
    // Backoff between the recovery thread's Resume() attempts after a write failure.
    absl::Duration resume_backoff_min = absl::Milliseconds(100);
    absl::Duration resume_backoff_max = absl::Seconds(5);
    // Below this much free space on the store's file system, writes are refused
    // as if the disk were full, before RocksDB runs into ENOSPC itself (Debian's
    // RocksDB 7.8 can assert on a write-ahead log that failed a write, and it
    // needs a memtable's worth of space to flush before it takes writes again).
    // 0 = no check.
    int64_t min_free_bytes = 20 << 20;
    // Free bytes on the store's file system; null = statvfs(path). Tests fake a full disk.
    std::function<int64_t()> free_bytes;
    // A write RocksDB itself failed (EIO, or ENOSPC below min_free_bytes) leaves
    // its write-ahead log unusable in this process (Debian's 7.8 asserts on the
    // next write to it). Once RocksDB resumes, this is called (on the recovery
    // thread) instead of writing again: the owner restarts the process, whose
    // reopen recovers every acknowledged write. Null: writes stay refused.
    std::function<void(const std::string& why)> on_reopen_needed;
  };

  // Opens (or creates) the store at options.path. Leases get a fresh deadline of
  // now + TTL, as etcd does after a restart.
  static absl::StatusOr<std::unique_ptr<RocksDbStore>> Open(const Options& options);
  // Finishes the commits in flight, stops the threads and closes the database.
  // No call may be running or start. WatchHandles may outlive the store (they
  // receive nothing more).
  ~RocksDbStore() override;

  absl::StatusOr<RangeResponse> Range(const RangeRequest& req) override;
  absl::StatusOr<PutResponse> Put(const PutRequest& req) override;
  absl::StatusOr<DeleteRangeResponse> DeleteRange(const DeleteRangeRequest& req) override;
  absl::StatusOr<TxnResponse> Txn(const TxnRequest& req) override;
  absl::Status Compact(int64_t revision) override;
  int64_t CurrentRevision() override;
  int64_t CompactRevision() override;
  absl::StatusOr<LeaseGrantResponse> LeaseGrant(int64_t ttl_seconds, int64_t id = 0) override;
  absl::Status LeaseRevoke(int64_t id) override;
  absl::StatusOr<int64_t> LeaseKeepAlive(int64_t id) override;
  absl::StatusOr<LeaseTimeToLiveResponse> LeaseTimeToLive(int64_t id, bool keys) override;
  absl::StatusOr<std::vector<int64_t>> Leases() override;
  absl::StatusOr<std::unique_ptr<WatchHandle>> Watch(
      const WatchRequest& req, std::function<void(const WatchBatch&)> callback) override;

  // Revokes every lease whose deadline is <= clock->Now() (each in its own
  // revision, as etcd does); returns how many.
  absl::StatusOr<int> ExpireDueLeases();

  CommitStats commit_stats();

  StoreHealth Health() override;
  absl::Status DisarmSpaceAlarm() override;
  absl::Status RaiseSpaceAlarm() override;
  absl::Status Defragment() override;
  // A RocksDB checkpoint of the durable state, as a snapshot archive
  // (storage/rocksdb/snapshot_archive.h).
  absl::Status WriteSnapshot(const std::function<absl::Status(absl::string_view chunk)>& sink) override;

  // What Open dropped to recover from corruption; empty if nothing.
  const std::string& recovery_report() const { return recovery_report_; }
  // Size of the database on disk: live table files and write-ahead logs, in bytes.
  int64_t DbSizeBytes();

 private:
  struct KeyState {
    std::string value;
    int64_t create_revision = 0;
    int64_t mod_revision = 0;
    int64_t version = 0;
    int64_t lease = 0;
  };
  struct Lease {
    int64_t ttl_seconds = 0;
    absl::Time deadline;
    std::set<std::string> keys;
  };
  class WriteSet;

  RocksDbStore(const Options& options, std::unique_ptr<rocksdb::DB> db);
  absl::Status Load();
  // Reads keys, leases and revision counters from disk into memory. Leases that
  // are in memory already keep their deadlines.
  absl::Status LoadStateLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartThreads();
  // The committer's hooks (GroupCommitter::Options), on its thread: one group
  // written with its revision record, a group made durable, a group failed.
  GroupCommitter::Options CommitterOptions();
  absl::Status WriteGroup(rocksdb::WriteBatch* group, int64_t revision, bool revision_moved);
  void OnGroupDurable(std::vector<Event> events, int64_t revision, absl::Duration took, int writes);
  // After a failed group commit: drops what is not durable and refuses writes.
  void HandleWriteFailure(const std::string& error);
  // One attempt of the recovery thread (WriteRecovery) to make writes work again.
  absl::Status TryResume(int attempts);
  absl::Status CheckSpaceLocked(const std::vector<RequestOp>& ops) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Reads and writes of the in-memory state, under mu_.
  absl::Status CheckHealthyLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool CompareLocked(const Compare& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckOpsLocked(const std::vector<RequestOp>& ops) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<RangeResponse> RangeLocked(const RangeRequest& req) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  RangeResponse RangeCurrentLocked(const RangeRequest& req) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PutLocked(const PutRequest& req, WriteSet* ws, PutResponse* resp) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DeleteRangeLocked(const DeleteRangeRequest& req, WriteSet* ws, DeleteRangeResponse* resp)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DeleteKeyLocked(std::map<std::string, KeyState>::iterator it, WriteSet* ws,
                       std::optional<KeyValue>* prev) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RevokeLocked(int64_t id, WriteSet* ws) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues the write set for commit; returns its sequence number.
  uint64_t SubmitLocked(WriteSet* ws) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Blocks until operation `seq` (and every one before) is durable.
  absl::Status WaitDurable(uint64_t seq);
  // A snapshot for DiskHistory's reads, taken while their revision is not compacted.
  const rocksdb::Snapshot* SnapshotLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  Clock& clock_;
  std::unique_ptr<rocksdb::DB> db_;
  ChangeDispatcher hub_;

  absl::Mutex mu_;  // the state writers apply to (possibly ahead of the disk)
  std::map<std::string, KeyState> keys_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<int64_t, Lease> leases_ ABSL_GUARDED_BY(mu_);
  int64_t revision_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t compact_revision_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t applied_seq_ ABSL_GUARDED_BY(mu_) = 0;
  absl::BitGen rng_ ABSL_GUARDED_BY(mu_);

  std::atomic<uint64_t> write_errors_{0};
  std::atomic<bool> rocks_write_failed_{false};  // RocksDB itself failed a write
  SpaceGuard space_;  // free-space check, quota and NOSPACE alarm
  GroupCommitter committer_;  // the write path below the in-memory state
  WriteRecovery recovery_;  // whether writes are refused, and the thread that resumes them

  std::string recovery_report_;

  // Change log and key index on disk; its compaction runs outside mu_.
  DiskHistory history_;
  std::atomic<int64_t> compact_revision_hint_{0};

  // Lease expiry and automatic compaction; made by StartThreads.
  std::unique_ptr<MaintenanceLoop> maintenance_;
};

}  // namespace weft::storage
