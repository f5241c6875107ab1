#pragma once
// What RocksDbStore's source files (rocksdb_store*.cc) share; not for its users.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "storage/rocksdb/codec.h"
#include "storage/rocksdb/group_commit.h"
#include "storage/rocksdb/rocksdb_store.h"

namespace weft::storage {

inline absl::Status FutureRevisionError() {
  return absl::OutOfRangeError("required revision is a future revision");
}

inline absl::Status LeaseNotFoundError() { return absl::NotFoundError("requested lease not found"); }

// etcd's wording, which its clients match on.
inline absl::Status SpaceExceededError() {
  return absl::ResourceExhaustedError("etcdserver: mvcc: database space exceeded");
}

// The RocksDB mutations and watch events of one write operation.
class RocksDbStore::WriteSet {
 public:
  explicit WriteSet(int64_t revision) : revision_(revision) {}
  int64_t revision() const { return revision_; }
  bool changes_keys() const { return !events_.empty(); }
  bool empty() const { return mutations_.empty(); }

  // A key change at this revision: its log and index records, and its event.
  void AddChange(Event ev) {
    rocksdb_codec::Record r;
    r.type = ev.type;
    r.sub = next_sub_++;
    r.kv = ev.kv;
    std::string value = rocksdb_codec::EncodeRecord(r);
    mutations_.push_back({false, rocksdb_codec::IndexKey(ev.kv.key, revision_), value});
    mutations_.push_back({false, rocksdb_codec::LogKey(revision_, r.sub), std::move(value)});
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

}  // namespace weft::storage
