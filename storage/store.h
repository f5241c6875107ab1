#pragma once
// The store: revisioned keys with etcd v3 semantics. Implementations: RocksDB
// (storage/rocksdb, embedded, the default) and etcd (storage/etcd).
//
// Semantics (as etcd v3):
// - One global revision. A fresh store is at revision 1. Every write transaction
//   (Put, DeleteRange that deletes something, Txn whose chosen branch writes, lease
//   revoke/expiry that deletes keys) increments it by exactly one; all its changes
//   carry that revision. Read-only operations never change it.
// - Per key: create_revision (revision of the put that created it, since its last
//   delete), mod_revision (last put), version (puts since creation, 1 after create).
// - Range [key, range_end): range_end empty = the single key; range_end == "\0"
//   (one NUL byte) = every key >= key; PrefixEnd(p) gives the end for a prefix.
// - Writes are durable when acknowledged: a call that returns OK has been synced
//   to disk. Concurrent writers share syncs (group commit).
// - Thread-safe: every method may be called from any thread.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace weft::storage {

// The range end that covers every key starting with `prefix`.
std::string PrefixEnd(const std::string& prefix);

// Whether `key` lies in [range_key, range_end) under the rules above.
bool KeyInRange(const std::string& key, const std::string& range_key, const std::string& range_end);

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;  // 0 = no lease
};

struct RangeRequest {
  std::string key;
  std::string range_end;  // see header comment
  int64_t revision = 0;   // 0 = current; else read as of this past revision
  int64_t limit = 0;      // 0 = no limit
  bool keys_only = false;
  bool count_only = false;
};

struct RangeResponse {
  std::vector<KeyValue> kvs;  // sorted by key
  int64_t count = 0;          // keys in range (ignoring limit)
  bool more = false;          // limit cut the answer
  int64_t revision = 0;       // store revision the read was served at (header)
};

struct PutRequest {
  std::string key;
  std::string value;
  int64_t lease = 0;   // attach to this lease (must exist) or 0
  bool prev_kv = false;
};

struct PutResponse {
  int64_t revision = 0;
  std::optional<KeyValue> prev_kv;
};

struct DeleteRangeRequest {
  std::string key;
  std::string range_end;
  bool prev_kv = false;
};

struct DeleteRangeResponse {
  int64_t revision = 0;
  int64_t deleted = 0;
  std::vector<KeyValue> prev_kvs;
};

struct Compare {
  enum class Target { kVersion, kCreateRevision, kModRevision, kValue, kLease };
  enum class Result { kEqual, kNotEqual, kGreater, kLess };
  std::string key;
  std::string range_end;  // etcd allows a range; every key in it must satisfy
  Target target = Target::kVersion;
  Result result = Result::kEqual;
  int64_t operand = 0;  // for version / revisions / lease
  std::string value;    // for kValue
};

struct RequestOp {
  enum class Type { kRange, kPut, kDeleteRange };
  Type type = Type::kRange;
  RangeRequest range;
  PutRequest put;
  DeleteRangeRequest delete_range;
};

struct ResponseOp {
  RequestOp::Type type = RequestOp::Type::kRange;
  RangeResponse range;
  PutResponse put;
  DeleteRangeResponse delete_range;
};

struct TxnRequest {
  std::vector<Compare> compares;
  std::vector<RequestOp> success;
  std::vector<RequestOp> failure;
};

struct TxnResponse {
  bool succeeded = false;
  int64_t revision = 0;
  std::vector<ResponseOp> responses;
};

struct LeaseGrantResponse {
  int64_t id = 0;
  int64_t ttl_seconds = 0;
};

struct LeaseTimeToLiveResponse {
  int64_t id = 0;
  // Remaining, in whole seconds: rounded up by the RocksDB store, truncated by
  // etcd (StoreCapabilities in store_conformance.h); -1 if expired/unknown.
  int64_t ttl_seconds = 0;
  int64_t granted_ttl_seconds = 0;
  std::vector<std::string> keys;  // filled when asked
};

struct Event {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;  // for deletes: key set, mod_revision = revision of the delete
  std::optional<KeyValue> prev_kv;
};

struct WatchRequest {
  std::string key;
  std::string range_end;
  int64_t start_revision = 0;  // 0 = from the next revision (now + 1)
  bool prev_kv = false;
};

// One callback delivery: events with revisions in (after previous delivery, revision].
struct WatchBatch {
  std::vector<Event> events;  // in revision order; may be empty for a progress notice
  int64_t revision = 0;       // the store revision this batch brings the watcher up to
};

// Cancels the watch when destroyed. After the destructor returns, the callback
// is not running and will not be called again.
class WatchHandle {
 public:
  virtual ~WatchHandle() = default;
};

// What a store can say about its own state, for readiness and metrics.
struct StoreHealth {
  // false: writes fail (UNAVAILABLE) while reads and watches keep working, e.g.
  // the disk is full or failing; `reason` says why. The store recovers by itself.
  bool writable = true;
  std::string reason;
  // etcd's NOSPACE alarm: the store is over its size quota; writes that add data
  // fail with RESOURCE_EXHAUSTED until the alarm is disarmed (DisarmSpaceAlarm).
  bool space_alarm = false;
  int64_t db_size_bytes = -1;  // -1 = unknown (a remote store)
  uint64_t write_errors = 0;   // failed durable writes since open
};

class Store {
 public:
  virtual ~Store() = default;

  // Faults, alarms and maintenance. The defaults suit a store that has none of
  // its own (a remote etcd keeps its own alarms and snapshots).
  virtual StoreHealth Health() { return {}; }
  // Clears the NOSPACE alarm; FAILED_PRECONDITION if the store is still over quota.
  virtual absl::Status DisarmSpaceAlarm() { return absl::OkStatus(); }
  // Raises the NOSPACE alarm by hand (etcd's `alarm` ACTIVATE).
  virtual absl::Status RaiseSpaceAlarm() { return absl::UnimplementedError("store has no space alarm"); }
  // Reclaims space on disk (etcd's defragment).
  virtual absl::Status Defragment() { return absl::OkStatus(); }
  // Streams a consistent copy of the durable state, in pieces, to `sink` (a
  // non-OK return from sink aborts). The format is the implementation's own.
  virtual absl::Status WriteSnapshot(const std::function<absl::Status(absl::string_view chunk)>& sink) {
    return absl::UnimplementedError("this store has no snapshots; back up its own storage");
  }

  virtual absl::StatusOr<RangeResponse> Range(const RangeRequest& req) = 0;
  virtual absl::StatusOr<PutResponse> Put(const PutRequest& req) = 0;
  virtual absl::StatusOr<DeleteRangeResponse> DeleteRange(const DeleteRangeRequest& req) = 0;
  // Atomic: compares evaluated, then one branch applied, as one revision (if it writes).
  virtual absl::StatusOr<TxnResponse> Txn(const TxnRequest& req) = 0;

  // Drops history at revisions < `revision`. Later Range at such a revision, or a
  // Watch starting before it, fails with OUT_OF_RANGE ("required revision has been
  // compacted"). Errors: OUT_OF_RANGE if already compacted past it, or > current.
  virtual absl::Status Compact(int64_t revision) = 0;
  virtual int64_t CurrentRevision() = 0;
  virtual int64_t CompactRevision() = 0;

  // Leases. id 0 = let the store choose. TTL counted on the store's clock; a
  // TTL below the store's minimum is granted at the minimum (etcd's: 2 s with
  // its default election timing), and the answer says what was granted.
  virtual absl::StatusOr<LeaseGrantResponse> LeaseGrant(int64_t ttl_seconds, int64_t id = 0) = 0;
  // Deletes the lease and every key attached to it (one revision). NOT_FOUND if unknown.
  virtual absl::Status LeaseRevoke(int64_t id) = 0;
  // Resets the lease's deadline to now + its TTL; returns the TTL. NOT_FOUND if unknown.
  virtual absl::StatusOr<int64_t> LeaseKeepAlive(int64_t id) = 0;
  virtual absl::StatusOr<LeaseTimeToLiveResponse> LeaseTimeToLive(int64_t id, bool keys) = 0;
  virtual absl::StatusOr<std::vector<int64_t>> Leases() = 0;

  // Watch [key, range_end) from start_revision: every change, in revision order, no
  // gaps; history first (if start_revision <= current), then live changes. The
  // callback runs on a store thread, serially for one watch; it must not block
  // for long and must not destroy its own handle. OUT_OF_RANGE if start_revision
  // has been compacted. The embedded store delivers the history of a watch from
  // the past as batches whose last one carries the revision the watch was
  // created at, an empty batch when no event matched: the caller knows when it
  // has caught up. A remote etcd's batches carry their last event's revision.
  virtual absl::StatusOr<std::unique_ptr<WatchHandle>> Watch(
      const WatchRequest& req, std::function<void(const WatchBatch&)> callback) = 0;
};

// A transaction that puts `value` at `key` (attached to `lease`, 0 for none) if
// the key's `target` equals `operand`: (kVersion, 0) creates only if absent,
// (kModRevision, r) updates only if unchanged since r.
TxnRequest PutIf(const std::string& key, Compare::Target target, int64_t operand, const std::string& value,
                 int64_t lease = 0);

// Status helpers, shared by implementations and callers.
absl::Status CompactedError(int64_t compact_revision);
bool IsCompacted(const absl::Status& s);

}  // namespace weft::storage
