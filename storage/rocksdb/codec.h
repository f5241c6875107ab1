#pragma once
// The RocksDB store's on-disk encoding: key layout and record values. The layout
// itself is described at the top of rocksdb_store.cc.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "storage/store.h"

namespace weft::storage::rocksdb_codec {

inline constexpr absl::string_view kMetaRevision = "m/revision";
inline constexpr absl::string_view kMetaCompactRevision = "m/compact";
inline constexpr absl::string_view kMetaCompactDone = "m/compact_done";
inline constexpr absl::string_view kLogPrefix = "r/";
inline constexpr absl::string_view kIndexPrefix = "k/";
inline constexpr absl::string_view kLeasePrefix = "l/";

// Big-endian, so that non-negative values sort as numbers.
std::string EncodeInt64(int64_t v);
absl::StatusOr<int64_t> DecodeInt64(absl::string_view s);

// Change log, ordered by revision: "r/" rev sub.
std::string LogKey(int64_t revision, uint32_t sub);
std::string LogKeyStart(int64_t revision);  // first log key of `revision`

// Key index, ordered by (key, revision): "k/" Escape(key) rev. Escape keeps the
// order of keys and is prefix-free, so a key's entries are contiguous and sorted.
std::string EscapeKey(absl::string_view key);
std::string IndexPrefix(absl::string_view key);  // "k/" Escape(key)
std::string IndexKey(absl::string_view key, int64_t revision);
// Revision of an index key (its last 8 bytes).
int64_t IndexKeyRevision(absl::string_view index_key);
// Index key bounds of the user range [key, range_end) (store.h rules): every
// entry of a key in the range is in [lower, upper).
void IndexBounds(const std::string& key, const std::string& range_end, std::string* lower,
                 std::string* upper);

std::string LeaseKey(int64_t id);
absl::StatusOr<int64_t> LeaseIdFromKey(absl::string_view key);

// One change: a put (the key's new state) or a delete (key and revision only),
// stored under both its log key and its index key.
struct Record {
  Event::Type type = Event::Type::kPut;
  uint32_t sub = 0;  // position of the change within its revision
  KeyValue kv;       // kv.mod_revision is the change's revision
};
std::string EncodeRecord(const Record& r);
absl::StatusOr<Record> DecodeRecord(absl::string_view s);

}  // namespace weft::storage::rocksdb_codec
