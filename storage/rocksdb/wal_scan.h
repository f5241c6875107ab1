#pragma once
// Reads RocksDB write-ahead logs (the *.log files of a database directory) on
// its own, to say exactly what a corruption costs: RocksDB stops replaying at
// the first bad record (kPointInTimeRecovery) but does not say how much it left
// behind. The format is RocksDB's log format (db/log_format.h): 32 KiB blocks
// of records, each a 7-byte header (masked crc32c, length, type) and payload;
// a write batch (12-byte header: sequence, count) is one record or a
// first/middle.../last chain.

#include <cstdint>
#include <string>
#include <vector>

namespace weft::storage::rocksdb_wal {

struct WalScan {
  std::string file;           // path of the log file
  uint64_t size_bytes = 0;
  bool corrupt = false;       // a record fails its checksum or is malformed
  uint64_t corrupt_offset = 0;  // where the first bad record starts
  std::string what;           // why it is bad
  // From the first bad record to the end of the file: what a point-in-time
  // recovery drops from this file.
  uint64_t bytes_dropped = 0;
  uint64_t batches_dropped = 0;     // write batches that start after the bad record
  uint64_t operations_dropped = 0;  // their operations (RocksDB puts and deletes)
  uint64_t batches_ok = 0;          // write batches before it
};

// Scans one log file. An incomplete record at the very end (a write a crash
// cut short) is not corruption, as RocksDB's kTolerateCorruptedTailRecords.
WalScan ScanWalFile(const std::string& path);

// Scans every *.log file of a database directory, in file-number order.
std::vector<WalScan> ScanWalDir(const std::string& dir);

// crc32c (Castagnoli), as RocksDB computes it; exposed for tests.
uint32_t Crc32c(uint32_t init_crc, const char* data, size_t n);

}  // namespace weft::storage::rocksdb_wal
