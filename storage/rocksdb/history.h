#pragma once
// DiskHistory: the store's history on disk, the change log (r/) and the key
// index (k/) of the layout described at the top of rocksdb_store.cc. Reads at
// past revisions and watches from past revisions read it at a RocksDB snapshot
// the caller took while their revision was not compacted; compaction deletes it.
//
// Compaction to C deletes every r/ entry below C, and every k/ entry below C
// except the newest of each key when that one is a put (a read at >= C needs it).
// All of one key's deletions go into one batch, so a crash mid-compaction never
// leaves a delete record gone while older puts of that key remain. m/compact_done
// records how far it got.
//
// Thread-safe; compactions run one at a time.

#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "storage/store.h"

namespace rocksdb {
class DB;
class Snapshot;
}  // namespace rocksdb

namespace weft::storage {

class DiskHistory {
 public:
  // `sync`: whether a compaction's last write is synced. `max_event_bytes`:
  // Events' bound on the history it reads into memory (0 = none).
  DiskHistory(rocksdb::DB* db, bool sync, int64_t max_event_bytes);

  // Reads how far compaction got (m/compact_done). Before Compact.
  absl::Status Load();

  // Visits the current state: the newest index entry of each key, when it is a
  // put, in key order.
  absl::Status ForEachCurrentKey(absl::FunctionRef<void(KeyValue&&)> visit);
  // [key, range_end) as of req.revision (count, limit, keys_only as store.h;
  // the response's revision is left to the caller).
  absl::StatusOr<RangeResponse> Range(const RangeRequest& req, const rocksdb::Snapshot* snap);
  // The changes in revisions [from, to] of the keys `req` watches, with their
  // previous values if it asks; RESOURCE_EXHAUSTED past max_event_bytes.
  absl::StatusOr<std::vector<Event>> Events(const WatchRequest& req, int64_t from, int64_t to,
                                            const rocksdb::Snapshot* snap);
  // Deletes the history below `target`, a durable compact revision (no-op if
  // done already).
  absl::Status Compact(int64_t target) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  rocksdb::DB* const db_;
  const bool sync_;
  const int64_t max_event_bytes_;
  absl::Mutex mu_;  // one compaction at a time
  int64_t compact_done_ ABSL_GUARDED_BY(mu_) = 0;  // history below it is gone
};

}  // namespace weft::storage
