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
#include <limits>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_set.h"
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

namespace weft::storage {

namespace codec = rocksdb_codec;

namespace {

// etcd's limit: larger TTLs are refused.
constexpr int64_t kMaxLeaseTtlSeconds = 9000000000;

absl::Status FutureRevisionError() {
  return absl::OutOfRangeError("required revision is a future revision");
}

absl::Status LeaseNotFoundError() { return absl::NotFoundError("requested lease not found"); }

const std::string& AllKeysEnd() {
  static const std::string* end = new std::string(1, '\0');
  return *end;
}

absl::Status ValidateRange(const RangeRequest& r) {
  if (r.key.empty()) return absl::InvalidArgumentError("key is not provided");
  if (r.limit < 0) return absl::InvalidArgumentError("limit must not be negative");
  if (r.revision < 0) return absl::InvalidArgumentError("revision must not be negative");
  return absl::OkStatus();
}

// etcd's checks on a branch: keys present, no key put twice, no key both put
// and deleted.
absl::Status ValidateOps(const std::vector<RequestOp>& ops) {
  absl::flat_hash_set<absl::string_view> put_keys;
  for (const RequestOp& op : ops) {
    switch (op.type) {
      case RequestOp::Type::kRange:
        RETURN_IF_ERROR(ValidateRange(op.range));
        break;
      case RequestOp::Type::kPut:
        if (op.put.key.empty()) return absl::InvalidArgumentError("key is not provided");
        if (op.put.lease < 0) return absl::InvalidArgumentError("lease id must not be negative");
        if (!put_keys.insert(op.put.key).second) {
          return absl::InvalidArgumentError("duplicate key given in txn request");
        }
        break;
      case RequestOp::Type::kDeleteRange:
        if (op.delete_range.key.empty()) return absl::InvalidArgumentError("key is not provided");
        break;
    }
  }
  for (const RequestOp& op : ops) {
    if (op.type != RequestOp::Type::kDeleteRange) continue;
    for (absl::string_view k : put_keys) {
      if (KeyInRange(std::string(k), op.delete_range.key, op.delete_range.range_end)) {
        return absl::InvalidArgumentError("duplicate key given in txn request");
      }
    }
  }
  return absl::OkStatus();
}

template <typename T>
bool CompareResult(const T& actual, const T& operand, Compare::Result result) {
  switch (result) {
    case Compare::Result::kEqual:
      return actual == operand;
    case Compare::Result::kNotEqual:
      return actual != operand;
    case Compare::Result::kGreater:
      return actual > operand;
    case Compare::Result::kLess:
      return actual < operand;
  }
  return false;
}

// The keys of `m` in [key, range_end) (store.h rules), as an iterator pair.
template <typename Map>
std::pair<typename Map::iterator, typename Map::iterator> RangeOf(Map& m, const std::string& key,
                                                                const std::string& range_end) {
  auto begin = m.lower_bound(key);
  if (range_end.empty()) {
    auto end = begin;
    if (end != m.end() && end->first == key) ++end;
    return {begin, end};
  }
  if (range_end == AllKeysEnd()) return {begin, m.end()};
  if (range_end <= key) return {begin, begin};
  return {begin, m.lower_bound(range_end)};
}

}  // namespace

// The RocksDB mutations and watch events of one write operation.
class RocksDbStore::WriteSet {
 public:
  explicit WriteSet(int64_t revision) : revision_(revision) {}
  int64_t revision() const { return revision_; }
  bool changes_keys() const { return !events_.empty(); }
  bool empty() const { return mutations_.empty(); }

  // A key change at this revision: its log and index records, and its event.
  void AddChange(Event ev) {
    codec::Record r;
    r.type = ev.type;
    r.sub = next_sub_++;
    r.kv = ev.kv;
    std::string value = codec::EncodeRecord(r);
    mutations_.push_back({false, codec::IndexKey(ev.kv.key, revision_), value});
    mutations_.push_back({false, codec::LogKey(revision_, r.sub), std::move(value)});
    events_.push_back(std::move(ev));
  }
  void Put(std::string key, std::string value) {
    mutations_.push_back({false, std::move(key), std::move(value)});
  }
  void Delete(std::string key) { mutations_.push_back({true, std::move(key), {}}); }

 private:
  friend class RocksDbStore;
  using Mutation = GroupCommitter::Mutation;
  const int64_t revision_;
  uint32_t next_sub_ = 0;
  std::vector<Mutation> mutations_;
  std::vector<Event> events_;
};

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
  // etcd's wording, which its clients match on.
  if (puts && space_.alarm()) return absl::ResourceExhaustedError("etcdserver: mvcc: database space exceeded");
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

// ---- Reads ----

RangeResponse RocksDbStore::RangeCurrentLocked(const RangeRequest& req) {
  RangeResponse resp;
  resp.revision = revision_;
  auto [it, end] = RangeOf(keys_, req.key, req.range_end);
  for (; it != end; ++it) {
    ++resp.count;
    if (req.count_only) continue;
    if (req.limit > 0 && static_cast<int64_t>(resp.kvs.size()) >= req.limit) {
      resp.more = true;
      continue;
    }
    const KeyState& st = it->second;
    resp.kvs.push_back({it->first, req.keys_only ? std::string() : st.value, st.create_revision,
                        st.mod_revision, st.version, st.lease});
  }
  return resp;
}

const rocksdb::Snapshot* RocksDbStore::SnapshotLocked() {
  // Compaction deletes history only after moving compact_revision_ (under mu_),
  // so a snapshot taken under mu_ keeps all history at or above compact_revision_.
  return db_->GetSnapshot();
}

absl::StatusOr<RangeResponse> RocksDbStore::RangeLocked(const RangeRequest& req) {
  if (req.revision == 0) return RangeCurrentLocked(req);
  // A past revision: it is on disk once all applied so far is. Waiting under mu_
  // stalls writers for one sync; reads of the past inside a txn are rare.
  RETURN_IF_ERROR(WaitDurable(applied_seq_));
  const rocksdb::Snapshot* snap = SnapshotLocked();
  absl::Cleanup release = [&] { db_->ReleaseSnapshot(snap); };
  ASSIGN_OR_RETURN(RangeResponse resp, history_.Range(req, snap));
  resp.revision = revision_;
  return resp;
}

absl::StatusOr<RangeResponse> RocksDbStore::Range(const RangeRequest& req) {
  RETURN_IF_ERROR(ValidateRange(req));
  uint64_t seq = 0;
  int64_t revision = 0;
  std::optional<RangeResponse> current;
  {
    absl::MutexLock l(&mu_);
        if (req.revision > revision_) return FutureRevisionError();
    if (req.revision > 0 && req.revision < compact_revision_) return CompactedError(compact_revision_);
    seq = applied_seq_;
    revision = revision_;
    if (req.revision == 0 || req.revision == revision_) current = RangeCurrentLocked(req);
  }
  RETURN_IF_ERROR(WaitDurable(seq));
  if (current.has_value()) return *std::move(current);
  // A past revision, read from disk without holding up writers.
  const rocksdb::Snapshot* snap = nullptr;
  {
    absl::MutexLock l(&mu_);
    if (req.revision < compact_revision_) return CompactedError(compact_revision_);
    snap = SnapshotLocked();
  }
  absl::Cleanup release = [&] { db_->ReleaseSnapshot(snap); };
  ASSIGN_OR_RETURN(RangeResponse resp, history_.Range(req, snap));
  resp.revision = revision;
  return resp;
}

int64_t RocksDbStore::CurrentRevision() {
  return committer_.durable_revision();
}

int64_t RocksDbStore::CompactRevision() {
  absl::MutexLock l(&mu_);
  return compact_revision_;
}

// ---- Writes ----

bool RocksDbStore::CompareLocked(const Compare& c) {
  auto matches = [&c](const KeyState& st) {
    switch (c.target) {
      case Compare::Target::kVersion:
        return CompareResult(st.version, c.operand, c.result);
      case Compare::Target::kCreateRevision:
        return CompareResult(st.create_revision, c.operand, c.result);
      case Compare::Target::kModRevision:
        return CompareResult(st.mod_revision, c.operand, c.result);
      case Compare::Target::kLease:
        return CompareResult(st.lease, c.operand, c.result);
      case Compare::Target::kValue:
        return CompareResult(st.value, c.value, c.result);
    }
    return false;
  };
  auto [it, end] = RangeOf(keys_, c.key, c.range_end);
  // As etcd: no key compares as a zero key (version 0...), except by value.
  if (it == end) return c.target != Compare::Target::kValue && matches(KeyState{});
  for (; it != end; ++it) {
    if (!matches(it->second)) return false;
  }
  return true;
}

absl::Status RocksDbStore::CheckOpsLocked(const std::vector<RequestOp>& ops) {
  for (const RequestOp& op : ops) {
    if (op.type == RequestOp::Type::kPut) {
      if (op.put.lease != 0 && !leases_.contains(op.put.lease)) return LeaseNotFoundError();
    } else if (op.type == RequestOp::Type::kRange) {
      if (op.range.revision > revision_) return FutureRevisionError();
      if (op.range.revision > 0 && op.range.revision < compact_revision_) {
        return CompactedError(compact_revision_);
      }
    }
  }
  return absl::OkStatus();
}

void RocksDbStore::PutLocked(const PutRequest& req, WriteSet* ws, PutResponse* resp) {
  auto it = keys_.lower_bound(req.key);
  Event ev;
  ev.type = Event::Type::kPut;
  int64_t old_lease = 0;
  if (it != keys_.end() && it->first == req.key) {
    KeyState& st = it->second;
    // The old value is overwritten below: move it.
    ev.prev_kv = KeyValue{it->first, std::move(st.value), st.create_revision, st.mod_revision,
                          st.version, st.lease};
    if (req.prev_kv) resp->prev_kv = ev.prev_kv;
    old_lease = st.lease;
  } else {
    it = keys_.emplace_hint(it, req.key, KeyState{});
    it->second.create_revision = ws->revision();
  }
  KeyState& st = it->second;
  st.value = req.value;
  st.mod_revision = ws->revision();
  ++st.version;
  st.lease = req.lease;
  if (old_lease != req.lease) {
    if (old_lease != 0) {
      auto old = leases_.find(old_lease);
      if (old != leases_.end()) old->second.keys.erase(req.key);
    }
    if (req.lease != 0) leases_[req.lease].keys.insert(req.key);
  }
  ev.kv = KeyValue{req.key, req.value, st.create_revision, st.mod_revision, st.version, st.lease};
  ws->AddChange(std::move(ev));
}

void RocksDbStore::DeleteKeyLocked(std::map<std::string, KeyState>::iterator it, WriteSet* ws,
                                   std::optional<KeyValue>* prev) {
  const KeyState& st = it->second;
  if (st.lease != 0) {
    auto lease = leases_.find(st.lease);
    if (lease != leases_.end()) lease->second.keys.erase(it->first);
  }
  Event ev;
  ev.type = Event::Type::kDelete;
  ev.kv.key = it->first;
  ev.kv.mod_revision = ws->revision();
  ev.prev_kv = KeyValue{it->first, std::move(it->second.value), st.create_revision,
                        st.mod_revision, st.version, st.lease};
  if (prev != nullptr) *prev = ev.prev_kv;
  keys_.erase(it);
  ws->AddChange(std::move(ev));
}

void RocksDbStore::DeleteRangeLocked(const DeleteRangeRequest& req, WriteSet* ws,
                                     DeleteRangeResponse* resp) {
  auto [it, end] = RangeOf(keys_, req.key, req.range_end);
  while (it != end) {
    auto next = std::next(it);
    std::optional<KeyValue> prev;
    DeleteKeyLocked(it, ws, req.prev_kv ? &prev : nullptr);
    if (prev) resp->prev_kvs.push_back(std::move(*prev));
    ++resp->deleted;
    it = next;
  }
}

absl::StatusOr<TxnResponse> RocksDbStore::Txn(const TxnRequest& req) {
  for (const Compare& c : req.compares) {
    if (c.key.empty()) return absl::InvalidArgumentError("compare key is not provided");
  }
  RETURN_IF_ERROR(ValidateOps(req.success));
  RETURN_IF_ERROR(ValidateOps(req.failure));
  TxnResponse resp;
  uint64_t seq = 0;
  {
    absl::MutexLock l(&mu_);
    resp.succeeded = std::all_of(req.compares.begin(), req.compares.end(),
                                 [this](const Compare& c) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                                   return CompareLocked(c);
                                 });
    const std::vector<RequestOp>& ops = resp.succeeded ? req.success : req.failure;
    RETURN_IF_ERROR(CheckSpaceLocked(ops));
    RETURN_IF_ERROR(CheckOpsLocked(ops));
    resp.responses.resize(ops.size());
    // Reads of past revisions first: they may fail, and nothing is applied yet.
    // (They do not see this txn's writes either way: those come at a new revision.)
    for (size_t i = 0; i < ops.size(); ++i) {
      resp.responses[i].type = ops[i].type;
      if (ops[i].type == RequestOp::Type::kRange && ops[i].range.revision != 0) {
        ASSIGN_OR_RETURN(resp.responses[i].range, RangeLocked(ops[i].range));
      }
    }
    WriteSet ws(revision_ + 1);
    for (size_t i = 0; i < ops.size(); ++i) {
      ResponseOp& r = resp.responses[i];
      switch (ops[i].type) {
        case RequestOp::Type::kRange:
          if (ops[i].range.revision == 0) r.range = RangeCurrentLocked(ops[i].range);
          break;
        case RequestOp::Type::kPut:
          PutLocked(ops[i].put, &ws, &r.put);
          break;
        case RequestOp::Type::kDeleteRange:
          DeleteRangeLocked(ops[i].delete_range, &ws, &r.delete_range);
          break;
      }
    }
    if (ws.changes_keys()) revision_ = ws.revision();
    resp.revision = revision_;
    for (ResponseOp& r : resp.responses) {
      r.range.revision = r.put.revision = r.delete_range.revision = revision_;
    }
    seq = ws.empty() ? applied_seq_ : SubmitLocked(&ws);
  }
  RETURN_IF_ERROR(WaitDurable(seq));
  return resp;
}

absl::StatusOr<PutResponse> RocksDbStore::Put(const PutRequest& req) {
  TxnRequest txn;
  txn.success.resize(1);
  txn.success[0].type = RequestOp::Type::kPut;
  txn.success[0].put = req;
  ASSIGN_OR_RETURN(TxnResponse resp, Txn(txn));
  return std::move(resp.responses[0].put);
}

absl::StatusOr<DeleteRangeResponse> RocksDbStore::DeleteRange(const DeleteRangeRequest& req) {
  TxnRequest txn;
  txn.success.resize(1);
  txn.success[0].type = RequestOp::Type::kDeleteRange;
  txn.success[0].delete_range = req;
  ASSIGN_OR_RETURN(TxnResponse resp, Txn(txn));
  return std::move(resp.responses[0].delete_range);
}

// ---- Leases ----

absl::StatusOr<LeaseGrantResponse> RocksDbStore::LeaseGrant(int64_t ttl_seconds, int64_t id) {
  if (ttl_seconds <= 0 || ttl_seconds > kMaxLeaseTtlSeconds) {
    return absl::InvalidArgumentError(absl::StrCat("lease TTL out of range: ", ttl_seconds));
  }
  if (id < 0) return absl::InvalidArgumentError("lease id must not be negative");
  uint64_t seq = 0;
  {
    absl::MutexLock l(&mu_);
    RETURN_IF_ERROR(CheckHealthyLocked());
    if (space_.alarm()) return absl::ResourceExhaustedError("etcdserver: mvcc: database space exceeded");
    if (id == 0) {
      do {
        id = absl::Uniform<int64_t>(rng_, 1, std::numeric_limits<int64_t>::max());
      } while (leases_.contains(id));
    } else if (leases_.contains(id)) {
      return absl::AlreadyExistsError("lease already exists");
    }
    Lease& lease = leases_[id];
    lease.ttl_seconds = ttl_seconds;
    lease.deadline = clock_.Now() + absl::Seconds(ttl_seconds);
    WriteSet ws(revision_ + 1);
    ws.Put(codec::LeaseKey(id), codec::EncodeInt64(ttl_seconds));
    seq = SubmitLocked(&ws);
  }
  RETURN_IF_ERROR(WaitDurable(seq));
  return LeaseGrantResponse{id, ttl_seconds};
}

void RocksDbStore::RevokeLocked(int64_t id, WriteSet* ws) {
  auto lease = leases_.find(id);
  const std::set<std::string> keys = std::move(lease->second.keys);
  leases_.erase(lease);
  for (const std::string& key : keys) {
    auto it = keys_.find(key);
    if (it != keys_.end()) DeleteKeyLocked(it, ws, nullptr);
  }
  ws->Delete(codec::LeaseKey(id));
  if (ws->changes_keys()) revision_ = ws->revision();
}

absl::Status RocksDbStore::LeaseRevoke(int64_t id) {
  uint64_t seq = 0;
  {
    absl::MutexLock l(&mu_);
    RETURN_IF_ERROR(CheckHealthyLocked());
    if (!leases_.contains(id)) return LeaseNotFoundError();
    WriteSet ws(revision_ + 1);
    RevokeLocked(id, &ws);
    seq = SubmitLocked(&ws);
  }
  return WaitDurable(seq);
}

absl::StatusOr<int> RocksDbStore::ExpireDueLeases() {
  uint64_t seq = 0;
  std::vector<int64_t> due;
  {
    absl::MutexLock l(&mu_);
    RETURN_IF_ERROR(CheckHealthyLocked());
    const absl::Time now = clock_.Now();
    for (const auto& [id, lease] : leases_) {
      if (lease.deadline <= now) due.push_back(id);
    }
    std::sort(due.begin(), due.end());
    seq = applied_seq_;
    for (int64_t id : due) {
      WriteSet ws(revision_ + 1);
      RevokeLocked(id, &ws);
      seq = SubmitLocked(&ws);
    }
  }
  RETURN_IF_ERROR(WaitDurable(seq));
  return static_cast<int>(due.size());
}

absl::StatusOr<int64_t> RocksDbStore::LeaseKeepAlive(int64_t id) {
  uint64_t seq = 0;
  int64_t ttl = 0;
  {
    absl::MutexLock l(&mu_);
        auto it = leases_.find(id);
    const absl::Time now = clock_.Now();
    // An expired lease is as good as revoked, even before the expiry thread runs.
    if (it == leases_.end() || it->second.deadline <= now) return LeaseNotFoundError();
    it->second.deadline = now + absl::Seconds(it->second.ttl_seconds);
    ttl = it->second.ttl_seconds;
    seq = applied_seq_;
  }
  RETURN_IF_ERROR(WaitDurable(seq));
  return ttl;
}

absl::StatusOr<LeaseTimeToLiveResponse> RocksDbStore::LeaseTimeToLive(int64_t id, bool keys) {
  LeaseTimeToLiveResponse resp;
  resp.id = id;
  resp.ttl_seconds = -1;
  uint64_t seq = 0;
  {
    absl::MutexLock l(&mu_);
        seq = applied_seq_;
    auto it = leases_.find(id);
    if (it != leases_.end()) {
      const Lease& lease = it->second;
      resp.granted_ttl_seconds = lease.ttl_seconds;
      const absl::Duration left = lease.deadline - clock_.Now();
      if (left > absl::ZeroDuration()) {
        resp.ttl_seconds = absl::ToInt64Seconds(absl::Ceil(left, absl::Seconds(1)));
      }
      if (keys) resp.keys.assign(lease.keys.begin(), lease.keys.end());
    }
  }
  RETURN_IF_ERROR(WaitDurable(seq));
  return resp;
}

absl::StatusOr<std::vector<int64_t>> RocksDbStore::Leases() {
  std::vector<int64_t> ids;
  uint64_t seq = 0;
  {
    absl::MutexLock l(&mu_);
        seq = applied_seq_;
    ids.reserve(leases_.size());
    for (const auto& [id, lease] : leases_) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  RETURN_IF_ERROR(WaitDurable(seq));
  return ids;
}

// ---- Watch ----

absl::StatusOr<std::unique_ptr<WatchHandle>> RocksDbStore::Watch(
    const WatchRequest& req, std::function<void(const WatchBatch&)> callback) {
  if (req.key.empty()) return absl::InvalidArgumentError("key is not provided");
  if (req.start_revision < 0) return absl::InvalidArgumentError("start revision must not be negative");
  const rocksdb::Snapshot* snap = nullptr;
  std::unique_ptr<ChangeDispatcher::Watch> watch;
  WatchRequest from = req;
  {
    absl::MutexLock l(&mu_);
        if (from.start_revision > 0 && from.start_revision < compact_revision_) {
      return CompactedError(compact_revision_);
    }
    if (from.start_revision == 0) {
      // "Now" is what callers have seen: the durable revision, which the hub's
      // published revision may trail by a group commit.
      from.start_revision = committer_.durable_revision() + 1;
    }
    // Under mu_, so no compaction deletes history this snapshot needs; under the
    // hub's lock, so it holds every revision the hub has published.
    watch = hub_.Register(from, std::move(callback), [&](int64_t) ABSL_NO_THREAD_SAFETY_ANALYSIS {
      snap = SnapshotLocked();
    });
  }
  absl::Cleanup release = [&] { db_->ReleaseSnapshot(snap); };
  std::vector<Event> history;
  if (watch->start_revision() <= watch->history_revision()) {
    ASSIGN_OR_RETURN(history,
                     history_.Events(req, watch->start_revision(), watch->history_revision(), snap));
  }
  watch->Start(std::move(history));
  return watch;
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
