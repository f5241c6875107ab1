#pragma once
// Opening the store's RocksDB database, with RocksDB's options for the store
// and its answer to corruption.
//
// A write-ahead log with a bad record (anywhere but a tail a crash cut short)
// or a table file that fails its checksum refuses the open with DATA_LOSS,
// naming the file and what to do. With recover_from_corruption a bad log record
// and everything after it are dropped (RocksDB's point-in-time recovery), and
// the report says what went. RocksDB's own log goes to ours at WARN and above.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "rocksdb/db.h"
#include "storage/rocksdb/wal_scan.h"

namespace weft::storage {

struct OpenedDatabase {
  std::unique_ptr<rocksdb::DB> db;
  std::string recovery_report;  // what recovery dropped; empty if nothing
};

// Opens (or creates) the database in `path`; checks every table file's checksums.
absl::StatusOr<OpenedDatabase> OpenDatabase(const std::string& path, bool recover_from_corruption);

// What a point-in-time recovery drops, from the scans of a database's logs: the
// first bad record's file from there on, and every later log whole.
std::string DropReport(const std::vector<rocksdb_wal::WalScan>& scans);

}  // namespace weft::storage
