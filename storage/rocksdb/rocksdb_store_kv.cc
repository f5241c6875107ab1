// RocksDbStore's reads, transactions and watches: the in-memory state under
// mu_, history from DiskHistory at a snapshot.

#include <algorithm>
#include <iterator>
#include <optional>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_set.h"
#include "common/status_macros.h"
#include "rocksdb/db.h"
#include "storage/rocksdb/rocksdb_store.h"
#include "storage/rocksdb/rocksdb_store_internal.h"

namespace weft::storage {

namespace {

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

// ---- Watch ----

absl::StatusOr<std::unique_ptr<WatchHandle>> RocksDbStore::Watch(
    const WatchRequest& req, std::function<void(const WatchBatch&)> callback) {
  if (req.key.empty()) return absl::InvalidArgumentError("key is not provided");
  if (req.start_revision < 0) return absl::InvalidArgumentError("start revision must not be negative");
  const rocksdb::Snapshot* snap = nullptr;
  std::unique_ptr<ChangeDispatcher::Watch> watch;
  WatchRequest from = req;
  // What callers may have seen (a read's revision) before they watch: a watch
  // from the past is told when it has caught up with it.
  const int64_t current = committer_.durable_revision();
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
  watch->Start(std::move(history), current);
  return watch;
}

}  // namespace weft::storage
