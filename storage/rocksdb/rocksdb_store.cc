// Persistent layout: one RocksDB column family, keys by prefix (integers are
// 8-byte big-endian so that they sort; encodings in codec.h):
//
//   m/revision            current revision; written with every group that moves it
//   m/compact             compact revision: reads and watches below it are refused
//   m/compact_done        history below it has been deleted from disk; trails
//                         m/compact only while (or if a crash cut) a compaction runs
//   r/<rev><sub>          change log in revision order, one Record per changed key
//                         (sub = its position within the revision); watches replay it
//   k/<Escape(key)><rev>  key index: the same Record by key, then revision; reads at
//                         past revisions use it, and Open loads the current state
//                         (the newest entry of each key, when it is a put) from it
//   l/<id>                lease: its granted TTL in seconds. Deadlines are not
//                         persisted; a reopened store gives each lease now + TTL.
//
// History (r/ and k/), its reads and its compaction: history.h.
//
// In memory: the current keys (a sorted map, for fast prefix ranges), leases with
// deadlines and attached keys, and the revision counters.

#include "storage/rocksdb/rocksdb_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/transaction_log.h"
#include "rocksdb/write_batch.h"
#include "storage/rocksdb/checkpoint.h"
#include "storage/rocksdb/codec.h"
#include "storage/rocksdb/database_open.h"
#include "storage/rocksdb/rocks_status.h"
#include "storage/rocksdb/rocksdb_store_internal.h"

namespace weft::storage {

namespace codec = rocksdb_codec;

absl::StatusOr<std::unique_ptr<RocksDbStore>> RocksDbStore::Open(const Options& options) {
  if (options.path.empty()) return absl::InvalidArgumentError("store path is empty");
  if (options.clock == nullptr) return absl::InvalidArgumentError("store clock is null");
  if (options.history_revisions < 0) return absl::InvalidArgumentError("history_revisions < 0");
  if (options.quota_bytes < 0) return absl::InvalidArgumentError("quota_bytes < 0");
  if (options.max_watch_history_bytes < 0) return absl::InvalidArgumentError("max_watch_history_bytes < 0");
  RemoveCheckpointLeftovers(options.path);
  ASSIGN_OR_RETURN(OpenedDatabase opened, OpenDatabase(options.path, options.recover_from_corruption));
  std::unique_ptr<RocksDbStore> store(new RocksDbStore(options, std::move(opened.db)));
  store->recovery_report_ = std::move(opened.recovery_report);
  RETURN_IF_ERROR(store->Load());
  store->space_.CheckQuota(true);
  store->StartThreads();
  return store;
}

namespace {

SpaceGuard::Options SpaceGuardOptions(const RocksDbStore::Options& o, std::function<int64_t()> db_size_bytes) {
  SpaceGuard::Options s;
  s.path = o.path;
  s.quota_bytes = o.quota_bytes;
  s.min_free_bytes = o.min_free_bytes;
  s.free_bytes = o.free_bytes;
  s.db_size_bytes = std::move(db_size_bytes);
  return s;
}

WriteRecovery::Options WriteRecoveryOptions(const RocksDbStore::Options& o,
                                            std::function<absl::Status(int)> try_resume,
                                            std::function<void()> on_recovered) {
  WriteRecovery::Options r;
  r.backoff_min = o.resume_backoff_min;
  r.backoff_max = o.resume_backoff_max;
  r.try_resume = std::move(try_resume);
  r.on_recovered = std::move(on_recovered);
  return r;
}

}  // namespace

// The size on disk is measured at most every 100 ms of real time: the limit
// bounds real work (listing files), so it is not the store's (maybe simulated) clock.
RocksDbStore::RocksDbStore(const Options& options, std::unique_ptr<rocksdb::DB> db)
    : options_(options),
      clock_(*options.clock),
      db_(std::move(db)),
      space_(SpaceGuardOptions(options, [this] { return DbSizeBytes(); }), RealClock::Get()),
      committer_(clock_, CommitterOptions()),
      recovery_(clock_, WriteRecoveryOptions(options, [this](int attempts) { return TryResume(attempts); },
                                              [this] { space_.CheckQuota(true); })),
      history_(db_.get(), options.sync, options.max_watch_history_bytes) {}

GroupCommitter::Options RocksDbStore::CommitterOptions() {
  GroupCommitter::Options c;
  c.sync = options_.sync;
  c.write = [this](rocksdb::WriteBatch* group, int64_t revision, bool revision_moved) {
    return WriteGroup(group, revision, revision_moved);
  };
  c.on_durable = [this](std::vector<Event> events, int64_t revision, absl::Duration took, int writes) {
    OnGroupDurable(std::move(events), revision, took, writes);
  };
  c.on_failure = [this](const std::string& error) { HandleWriteFailure(error); };
  return c;
}

RocksDbStore::~RocksDbStore() {
  if (maintenance_ != nullptr) maintenance_->Stop();
  committer_.Stop();
  recovery_.Stop();
  hub_.Shutdown();
  db_.reset();
}

absl::Status RocksDbStore::Load() {
  absl::MutexLock l(&mu_);
  RETURN_IF_ERROR(LoadStateLocked());
  RETURN_IF_ERROR(history_.Load());
  committer_.ResetDurable(applied_seq_, revision_);
  return absl::OkStatus();
}

absl::Status RocksDbStore::LoadStateLocked() {
  auto read_meta = [this](absl::string_view key, int64_t dflt) -> absl::StatusOr<int64_t> {
    std::string v;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), rocksdb::Slice(key.data(), key.size()), &v);
    if (s.IsNotFound()) return dflt;
    RETURN_IF_ERROR(FromRocks(s, absl::StrCat("read ", key)));
    return codec::DecodeInt64(v);
  };
  const absl::Time now = clock_.Now();
  ASSIGN_OR_RETURN(int64_t revision, read_meta(codec::kMetaRevision, 1));
  ASSIGN_OR_RETURN(int64_t compact_revision, read_meta(codec::kMetaCompactRevision, 0));

  std::map<std::string, KeyState> keys;
  RETURN_IF_ERROR(history_.ForEachCurrentKey([&](KeyValue&& kv) {
    KeyState st{std::move(kv.value), kv.create_revision, kv.mod_revision, kv.version, kv.lease};
    keys.emplace_hint(keys.end(), std::move(kv.key), std::move(st));
  }));

  absl::flat_hash_map<int64_t, Lease> leases;
  const std::string lease_end = PrefixEnd(std::string(codec::kLeasePrefix));
  rocksdb::ReadOptions lease_ro;
  const rocksdb::Slice lease_upper(lease_end);
  lease_ro.iterate_upper_bound = &lease_upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(lease_ro));
  for (it->Seek(std::string(codec::kLeasePrefix)); it->Valid(); it->Next()) {
    ASSIGN_OR_RETURN(int64_t id, codec::LeaseIdFromKey(absl::string_view(it->key().data(), it->key().size())));
    ASSIGN_OR_RETURN(int64_t ttl, codec::DecodeInt64(absl::string_view(it->value().data(), it->value().size())));
    Lease& lease = leases[id];
    lease.ttl_seconds = ttl;
    auto known = leases_.find(id);
    lease.deadline = known != leases_.end() ? known->second.deadline : now + absl::Seconds(ttl);
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "read leases"));
  for (const auto& [key, st] : keys) {
    if (st.lease == 0) continue;
    auto lease = leases.find(st.lease);
    if (lease == leases.end()) {
      // Revoking a lease deletes its keys in the same batch: this cannot happen.
      return absl::DataLossError(absl::StrCat("key ", key, " is attached to missing lease ", st.lease));
    }
    lease->second.keys.insert(key);
  }
  keys_ = std::move(keys);
  leases_ = std::move(leases);
  revision_ = revision;
  compact_revision_ = compact_revision;
  compact_revision_hint_ = compact_revision;
  return absl::OkStatus();
}

void RocksDbStore::StartThreads() {
  int64_t compact_revision = 0;
  int64_t revision = 0;
  {
    absl::MutexLock l(&mu_);
    // As read from disk: nobody has called us yet.
    compact_revision = compact_revision_;
    revision = revision_;
  }
  // Everything on disk counts as published: watches replay it from history.
  hub_.Publish(std::make_shared<const std::vector<Event>>(), revision);
  MaintenanceLoop::Tasks tasks;
  // Finish a compaction a crash interrupted.
  tasks.on_start = [this, compact_revision] {
    if (absl::Status s = history_.Compact(compact_revision); !s.ok()) {
      WEFT_LOG(ERROR, "store compaction failed").Err(s);
    }
  };
  // Nothing expires while writes fail (an expiry is a write); deadlines that
  // passed meanwhile are honoured once the store recovers.
  tasks.periodic = [this] {
    if (recovery_.failed()) return;
    absl::StatusOr<int> expired = ExpireDueLeases();
    if (!expired.ok()) {
      WEFT_LOG(ERROR, "lease expiry failed").Err(expired.status());
    }
  };
  tasks.compact = [this] {
    const int64_t target = CurrentRevision() - options_.history_revisions;
    if (target > CompactRevision()) {
      absl::Status s = Compact(target);
      if (!s.ok() && !IsCompacted(s)) {
        WEFT_LOG(ERROR, "store auto-compaction failed").Err(s);
      }
    }
  };
  maintenance_ = std::make_unique<MaintenanceLoop>(clock_, options_.lease_expiry_interval, std::move(tasks));
  committer_.Start();
  maintenance_->Start();
  recovery_.Start();
}

absl::Status RocksDbStore::CheckHealthyLocked() {
  if (!recovery_.failed()) return absl::OkStatus();
  return recovery_.status();
}

// ---- Commit pipeline ----

uint64_t RocksDbStore::SubmitLocked(WriteSet* ws) {
  const uint64_t seq = ++applied_seq_;
  committer_.Submit(seq, ws->mutations_, std::move(ws->events_), ws->revision());
  return seq;
}

absl::Status RocksDbStore::WaitDurable(uint64_t seq) { return committer_.WaitDurable(seq); }

absl::Status RocksDbStore::WriteGroup(rocksdb::WriteBatch* group, int64_t revision, bool revision_moved) {
  if (revision_moved) group->Put(std::string(codec::kMetaRevision), codec::EncodeInt64(revision));
  const std::string low = space_.LowSpace();
  if (!low.empty()) return absl::UnavailableError(low);
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync;
  const rocksdb::Status st = db_->Write(wo, group);
  if (st.ok()) return absl::OkStatus();
  rocks_write_failed_.store(true);
  return absl::UnavailableError(st.ToString());
}

void RocksDbStore::OnGroupDurable(std::vector<Event> events, int64_t revision, absl::Duration took, int writes) {
  space_.CheckQuota(false);
  if (!events.empty()) {
    hub_.Publish(std::make_shared<const std::vector<Event>>(std::move(events)), revision);
  }
  if (options_.on_commit) options_.on_commit(took, writes);
  const int64_t history = options_.history_revisions;
  const int64_t compact_slack = std::max<int64_t>(history / 10, 1);
  if (history > 0 && revision - compact_revision_hint_.load() >= history + compact_slack) {
    maintenance_->RequestCompaction();
  }
}

void RocksDbStore::HandleWriteFailure(const std::string& error) {
  write_errors_.fetch_add(1);
  const bool first = !recovery_.failed();
  // Under mu_ no writer applies anything: what is in memory is the durable
  // state plus the operations being discarded here.
  absl::MutexLock l(&mu_);
  const absl::Status failed = absl::UnavailableError(absl::StrCat(
      "store cannot write (", error, "); writes resume once the disk recovers, reads and watches still work"));
  const uint64_t discarded = committer_.Discard(applied_seq_, failed);
  recovery_.Fail(failed);
  // Back to the durable state. Reading needs no write: it works on a full disk.
  if (absl::Status s = LoadStateLocked(); !s.ok()) {
    // Memory no longer matches anything we can vouch for: stop rather than serve it.
    WEFT_LOG(ERROR, "store: cannot reload the durable state after a write failure").Err(s);
    std::abort();
  }
  // Reads from now on observe only durable state: give them a sequence number
  // that is durable and not discarded.
  committer_.ResetDurable(++applied_seq_, revision_);
  if (first) {
    WEFT_LOG(ERROR, "store: write failed; refusing writes until the disk recovers")
        .With("err", error)
        .With("discarded_operations", discarded)
        .With("revision", revision_);
  }
}

absl::Status RocksDbStore::TryResume(int attempts) {
  // Resume() clears RocksDB's background error (flushing to a new WAL); the
  // synced probe write proves the log takes writes again.
  const std::string low = space_.LowSpace();
  rocksdb::Status s = low.empty() ? db_->Resume() : rocksdb::Status::NoSpace(low);
  if (s.ok() && rocks_write_failed_.load()) {
    // Writing again to the log that failed would abort the process: hand over.
    const std::string why = "RocksDB failed a write-ahead log write; the store must be reopened";
    if (options_.on_reopen_needed) {
      options_.on_reopen_needed(why);
    } else if (attempts == 0) {
      WEFT_LOG(ERROR, "store: writes stay refused until the store is reopened").With("why", why);
    }
    s = rocksdb::Status::Aborted(why);
  } else if (s.ok()) {
    std::string v;
    s = db_->Get(rocksdb::ReadOptions(), std::string(codec::kMetaRevision), &v);
    if (s.IsNotFound()) {
      s = rocksdb::Status::OK();
      v = codec::EncodeInt64(1);
    }
    if (s.ok()) {
      rocksdb::WriteOptions wo;
      wo.sync = options_.sync;
      rocksdb::WriteBatch probe;
      probe.Put(std::string(codec::kMetaRevision), v);
      s = db_->Write(wo, &probe);
    }
  }
  // The recovery thread logs the message: RocksDB's own words.
  return s.ok() ? absl::OkStatus() : absl::UnavailableError(s.ToString());
}

int64_t RocksDbStore::DbSizeBytes() {
  // What the database uses: its live table files and write-ahead logs. Files
  // RocksDB has made obsolete (deleted in the background) do not count, so a
  // compaction and defragmentation shows at once.
  uint64_t sst = 0;
  db_->GetIntProperty(rocksdb::DB::Properties::kLiveSstFilesSize, &sst);
  int64_t total = static_cast<int64_t>(sst);
  rocksdb::VectorLogPtr wals;
  if (db_->GetSortedWalFiles(wals).ok()) {
    for (const auto& w : wals) {
      if (w->Type() == rocksdb::kAliveLogFile) total += static_cast<int64_t>(w->SizeFileBytes());
    }
  }
  return total;
}

absl::Status RocksDbStore::CheckSpaceLocked(const std::vector<RequestOp>& ops) {
  bool writes = false;
  bool puts = false;
  for (const RequestOp& op : ops) {
    writes = writes || op.type != RequestOp::Type::kRange;
    puts = puts || op.type == RequestOp::Type::kPut;
  }
  if (writes) RETURN_IF_ERROR(CheckHealthyLocked());
  if (puts && space_.alarm()) return SpaceExceededError();
  return absl::OkStatus();
}

StoreHealth RocksDbStore::Health() {
  StoreHealth h;
  if (recovery_.failed()) {
    const absl::Status failure = recovery_.status();
    h.writable = failure.ok();
    h.reason = std::string(failure.message());
  }
  h.space_alarm = space_.alarm();
  if (h.space_alarm && h.writable) {
    h.reason = absl::StrCat("NOSPACE alarm: the store is over its quota of ", options_.quota_bytes, " bytes");
  }
  space_.CheckQuota(false);
  h.db_size_bytes = space_.db_size_bytes();
  h.write_errors = write_errors_.load();
  return h;
}

absl::Status RocksDbStore::DisarmSpaceAlarm() { return space_.Disarm(); }

absl::Status RocksDbStore::RaiseSpaceAlarm() {
  space_.Raise();
  return absl::OkStatus();
}

absl::Status RocksDbStore::Defragment() {
  rocksdb::CompactRangeOptions co;
  co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  RETURN_IF_ERROR(FromRocks(db_->CompactRange(co, nullptr, nullptr), "defragment store"));
  space_.CheckQuota(true);
  return absl::OkStatus();
}

absl::Status RocksDbStore::WriteSnapshot(const std::function<absl::Status(absl::string_view chunk)>& sink) {
  return WriteCheckpointArchive(db_.get(), options_.path, sink);
}

RocksDbStore::CommitStats RocksDbStore::commit_stats() {
  return committer_.stats();
}

// ---- Compaction and maintenance ----

absl::Status RocksDbStore::Compact(int64_t revision) {
  uint64_t seq = 0;
  {
    absl::MutexLock l(&mu_);
    RETURN_IF_ERROR(CheckHealthyLocked());
    if (revision <= compact_revision_) return CompactedError(compact_revision_);
    if (revision > revision_) return FutureRevisionError();
    compact_revision_ = revision;
    compact_revision_hint_ = revision;
    WriteSet ws(revision_ + 1);
    ws.Put(std::string(codec::kMetaCompactRevision), codec::EncodeInt64(revision));
    seq = SubmitLocked(&ws);
  }
  // History goes only once the new compact revision is durable: a crash before
  // must not leave reads allowed at revisions whose history is gone.
  RETURN_IF_ERROR(WaitDurable(seq));
  return history_.Compact(revision);
}

}  // namespace weft::storage
