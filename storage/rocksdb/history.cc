#include "storage/rocksdb/history.h"

#include <limits>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"
#include "storage/rocksdb/codec.h"
#include "storage/rocksdb/rocks_status.h"

namespace weft::storage {

namespace codec = rocksdb_codec;

namespace {

// Deletions per RocksDB batch during compaction.
constexpr size_t kCompactionBatchOps = 10000;

// Visits the newest record at or below `max_revision` of every key whose index
// entries `it` (bounded above by its ReadOptions) reaches from `lower`, in key order.
absl::Status ForEachNewest(rocksdb::Iterator* it, const std::string& lower, int64_t max_revision,
                           absl::FunctionRef<void(codec::Record&&)> visit) {
  std::string group;   // index prefix (key part) of the entries seen
  std::string newest;  // newest suitable value in the group, if any
  bool have = false;
  auto flush = [&]() -> absl::Status {
    if (!have) return absl::OkStatus();
    have = false;
    ASSIGN_OR_RETURN(codec::Record r, codec::DecodeRecord(newest));
    visit(std::move(r));
    return absl::OkStatus();
  };
  for (it->Seek(lower); it->Valid(); it->Next()) {
    const rocksdb::Slice k = it->key();
    if (k.size() < codec::kIndexPrefix.size() + 8) return absl::DataLossError("short index key");
    const absl::string_view prefix(k.data(), k.size() - 8);
    if (prefix != group) {
      RETURN_IF_ERROR(flush());
      group.assign(prefix.data(), prefix.size());
    }
    if (codec::IndexKeyRevision(absl::string_view(k.data(), k.size())) <= max_revision) {
      newest.assign(it->value().data(), it->value().size());
      have = true;
    }
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "read key index"));
  return flush();
}

}  // namespace

DiskHistory::DiskHistory(rocksdb::DB* db, bool sync, int64_t max_event_bytes)
    : db_(db), sync_(sync), max_event_bytes_(max_event_bytes) {}

absl::Status DiskHistory::Load() {
  std::string v;
  int64_t compact_done = 0;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), std::string(codec::kMetaCompactDone), &v);
  if (!s.IsNotFound()) {
    RETURN_IF_ERROR(FromRocks(s, absl::StrCat("read ", codec::kMetaCompactDone)));
    ASSIGN_OR_RETURN(compact_done, codec::DecodeInt64(v));
  }
  absl::MutexLock l(&mu_);
  compact_done_ = compact_done;
  return absl::OkStatus();
}

absl::Status DiskHistory::ForEachCurrentKey(absl::FunctionRef<void(KeyValue&&)> visit) {
  const std::string index_end = PrefixEnd(std::string(codec::kIndexPrefix));
  rocksdb::ReadOptions index_ro;
  const rocksdb::Slice index_upper(index_end);
  index_ro.iterate_upper_bound = &index_upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(index_ro));
  return ForEachNewest(it.get(), std::string(codec::kIndexPrefix), std::numeric_limits<int64_t>::max(),
                       [&](codec::Record&& r) {
                         if (r.type == Event::Type::kPut) visit(std::move(r.kv));
                       });
}

absl::StatusOr<RangeResponse> DiskHistory::Range(const RangeRequest& req, const rocksdb::Snapshot* snap) {
  std::string lower, upper;
  codec::IndexBounds(req.key, req.range_end, &lower, &upper);
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  const rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  RangeResponse resp;
  RETURN_IF_ERROR(ForEachNewest(it.get(), lower, req.revision, [&](codec::Record&& r) {
    if (r.type != Event::Type::kPut) return;
    ++resp.count;
    if (req.count_only) return;
    if (req.limit > 0 && static_cast<int64_t>(resp.kvs.size()) >= req.limit) {
      resp.more = true;
      return;
    }
    if (req.keys_only) r.kv.value.clear();
    resp.kvs.push_back(std::move(r.kv));
  }));
  return resp;
}

absl::StatusOr<std::vector<Event>> DiskHistory::Events(const WatchRequest& req, int64_t from, int64_t to,
                                                      const rocksdb::Snapshot* snap) {
  std::vector<Event> events;
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  const std::string upper = codec::LogKeyStart(to + 1);
  const rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> log(db_->NewIterator(ro));
  rocksdb::ReadOptions index_ro;
  index_ro.snapshot = snap;
  std::unique_ptr<rocksdb::Iterator> index;
  const int64_t max_bytes = max_event_bytes_;
  int64_t bytes = 0;
  for (log->Seek(codec::LogKeyStart(from)); log->Valid(); log->Next()) {
    ASSIGN_OR_RETURN(codec::Record r,
                     codec::DecodeRecord(absl::string_view(log->value().data(), log->value().size())));
    if (!KeyInRange(r.kv.key, req.key, req.range_end)) continue;
    Event ev;
    ev.type = r.type;
    if (req.prev_kv) {
      // The key's previous index entry, if it is a put, is its previous version.
      if (index == nullptr) index.reset(db_->NewIterator(index_ro));
      const std::string prefix = codec::IndexPrefix(r.kv.key);
      index->SeekForPrev(codec::IndexKey(r.kv.key, r.kv.mod_revision - 1));
      if (index->Valid() && index->key().starts_with(prefix)) {
        ASSIGN_OR_RETURN(codec::Record prev, codec::DecodeRecord(absl::string_view(
                                                 index->value().data(), index->value().size())));
        if (prev.type == Event::Type::kPut) ev.prev_kv = std::move(prev.kv);
      }
      if (index != nullptr) RETURN_IF_ERROR(FromRocks(index->status(), "read key index"));
    }
    ev.kv = std::move(r.kv);
    bytes += static_cast<int64_t>(ev.kv.key.size() + ev.kv.value.size() +
                                  (ev.prev_kv ? ev.prev_kv->key.size() + ev.prev_kv->value.size() : 0));
    if (max_bytes > 0 && bytes > max_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the history this watch asks for (revisions ", from, " to ", to, ") is over ", max_bytes,
          " bytes (--max-watch-history-bytes): watch from a later revision, or read the range and watch from "
          "its revision"));
    }
    events.push_back(std::move(ev));
  }
  RETURN_IF_ERROR(FromRocks(log->status(), "read change log"));
  return events;
}

absl::Status DiskHistory::Compact(int64_t target) {
  absl::MutexLock l(&mu_);
  if (target <= compact_done_) return absl::OkStatus();

  // Keys changed in [compact_done_, target): the only ones with history to drop.
  std::set<std::string> keys;
  {
    rocksdb::ReadOptions ro;
    const std::string upper = codec::LogKeyStart(target);
    const rocksdb::Slice upper_slice(upper);
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> log(db_->NewIterator(ro));
    for (log->Seek(codec::LogKeyStart(compact_done_)); log->Valid(); log->Next()) {
      ASSIGN_OR_RETURN(codec::Record r,
                       codec::DecodeRecord(absl::string_view(log->value().data(), log->value().size())));
      keys.insert(std::move(r.kv.key));
    }
    RETURN_IF_ERROR(FromRocks(log->status(), "read change log"));
  }

  rocksdb::WriteOptions unsynced;
  rocksdb::WriteBatch batch;
  for (const std::string& key : keys) {
    const std::string lower = codec::IndexKey(key, 0);
    const std::string upper = codec::IndexKey(key, target);
    rocksdb::ReadOptions ro;
    const rocksdb::Slice upper_slice(upper);
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    std::string newest_key, newest_value;
    for (it->Seek(lower); it->Valid(); it->Next()) {
      if (!newest_key.empty()) {
        // Superseded before `target`: no read at >= target can need it.
        ASSIGN_OR_RETURN(codec::Record r, codec::DecodeRecord(newest_value));
        batch.Delete(newest_key);
        if (r.kv.mod_revision >= compact_done_) batch.Delete(codec::LogKey(r.kv.mod_revision, r.sub));
      }
      newest_key.assign(it->key().data(), it->key().size());
      newest_value.assign(it->value().data(), it->value().size());
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "read key index"));
    if (!newest_key.empty()) {
      ASSIGN_OR_RETURN(codec::Record r, codec::DecodeRecord(newest_value));
      if (r.type == Event::Type::kDelete) batch.Delete(newest_key);
      if (r.kv.mod_revision >= compact_done_) batch.Delete(codec::LogKey(r.kv.mod_revision, r.sub));
    }
    if (batch.Count() >= kCompactionBatchOps) {
      RETURN_IF_ERROR(FromRocks(db_->Write(unsynced, &batch), "write compaction"));
      batch.Clear();
    }
  }
  batch.Put(std::string(codec::kMetaCompactDone), codec::EncodeInt64(target));
  rocksdb::WriteOptions synced;
  synced.sync = sync_;
  RETURN_IF_ERROR(FromRocks(db_->Write(synced, &batch), "write compaction"));
  compact_done_ = target;
  return absl::OkStatus();
}

}  // namespace weft::storage
