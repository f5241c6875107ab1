#pragma once
// SpaceGuard: the store's two disk-space guards, kept apart from RocksDB so
// they can be tested on fake sizes.
//
//  - Free space: below min_free_bytes on the store's file system, writes are
//    refused as if the disk were full, before RocksDB runs into ENOSPC itself
//    (Debian's RocksDB 7.8 can assert on a write-ahead log that failed a write).
//  - Quota: once the database outgrows quota_bytes the NOSPACE alarm is raised,
//    as etcd's --quota-backend-bytes; it stays raised until disarmed, and a
//    disarm is refused while the database is still over its quota.
//
// Thread-safe: the size and the alarm are atomics, so the write path checks the
// alarm without a lock.

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "common/clock.h"

namespace weft::storage {

class SpaceGuard {
 public:
  struct Options {
    std::string path;           // the store's directory: named in messages, statvfs'd
    int64_t quota_bytes = 0;    // 0 = no quota
    int64_t min_free_bytes = 0;  // 0 = no free-space check
    // Free bytes on the file system of `path`; null = statvfs(path).
    std::function<int64_t()> free_bytes;
    // The database's size on disk, in bytes. Required.
    std::function<int64_t()> db_size_bytes;
  };
  // `clock` times how often the size is measured (measuring stats files).
  SpaceGuard(Options options, Clock& clock);

  // Non-empty when free space is below min_free_bytes: why writes stop, in the
  // words of ENOSPC ("No space left on device: ...").
  std::string LowSpace() const;

  // Measures the size on disk (unless `force`, at most every 100 ms); raises the
  // NOSPACE alarm when over quota.
  void CheckQuota(bool force);
  bool alarm() const { return alarm_.load(); }
  // The size last measured; -1 before the first CheckQuota.
  int64_t db_size_bytes() const { return db_size_.load(); }
  int64_t quota_bytes() const { return options_.quota_bytes; }

  // Measures now; FAILED_PRECONDITION while still over quota, else lowers the alarm.
  absl::Status Disarm();
  // Raises the alarm whatever the size (etcd's alarm activate, tests).
  void Raise();

 private:
  const Options options_;
  Clock& clock_;
  std::atomic<bool> alarm_{false};
  std::atomic<int64_t> db_size_{-1};
  std::atomic<int64_t> checked_ns_{0};  // clock time of the last measurement
};

}  // namespace weft::storage
