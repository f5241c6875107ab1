#pragma once
// The embedded store's snapshot: the files of a RocksDB checkpoint in one
// stream, so it can travel over etcd's Maintenance.Snapshot (etcdctl snapshot
// save) and be restored into an empty data directory.
//
// Format (integers big-endian):
//   "WEFTSNAP" u32 version(1)
//   per file: u32 name_length (1-255) name u64 size bytes
//   u32 0 (end) u64 file_count
//   zeros up to a multiple of 512 bytes (etcdctl 3.4 accepts a snapshot only
//   if its size is a multiple of 512, as a bolt file's is, plus the checksum)
//   optional: 32-byte SHA-256 of everything before it (etcd's snapshot stream
//   appends one; etcdctl keeps it in the saved file)

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace weft::storage::snapshot_archive {

// Streams the regular files of `dir` as an archive to `sink`, in pieces of at
// most 1 MiB. A non-OK status from sink stops and is returned.
absl::Status WriteArchive(const std::string& dir, const std::function<absl::Status(absl::string_view)>& sink);

struct RestoreInfo {
  int files = 0;
  int64_t bytes = 0;
  bool checksum_verified = false;  // the archive carried a SHA-256 and it matched
  std::string moved_aside;         // where a forced restore moved the old data dir
};

// Unpacks the archive in `file` into `data_dir`, which must be missing or empty
// unless `force` (then the old one is renamed to <data_dir>.before-restore-<time>).
// Nothing is written to data_dir unless the whole archive is valid.
absl::StatusOr<RestoreInfo> RestoreArchive(const std::string& file, const std::string& data_dir, bool force);

// SHA-256, incrementally (for the etcd snapshot stream's trailer).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(absl::string_view data);
  std::string Final();  // 32 bytes

 private:
  void* ctx_;
};

}  // namespace weft::storage::snapshot_archive
