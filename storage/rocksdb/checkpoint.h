#pragma once
// The store's snapshot: a RocksDB checkpoint of the durable state, streamed as a
// snapshot archive (storage/rocksdb/snapshot_archive.h). The checkpoint is
// staged in a temporary directory inside the database directory (hard links to
// the table files need the same file system), removed afterwards; one a crash
// left behind is removed at the next open.

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace rocksdb {
class DB;
}  // namespace rocksdb

namespace weft::storage {

// Streams a checkpoint of `db`, whose directory is `db_path`, to `sink`.
// Thread-safe (each call stages its own directory).
absl::Status WriteCheckpointArchive(rocksdb::DB* db, const std::string& db_path,
                                    const std::function<absl::Status(absl::string_view chunk)>& sink);

// Removes the staging directories a crash left in `db_path`.
void RemoveCheckpointLeftovers(const std::string& db_path);

}  // namespace weft::storage
