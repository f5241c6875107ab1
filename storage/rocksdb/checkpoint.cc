#include "storage/rocksdb/checkpoint.h"

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "rocksdb/utilities/checkpoint.h"
#include "storage/rocksdb/rocks_status.h"
#include "storage/rocksdb/snapshot_archive.h"

namespace weft::storage {

namespace {

constexpr absl::string_view kSnapshotTmpPrefix = "weft-snapshot.tmp-";

}  // namespace

absl::Status WriteCheckpointArchive(rocksdb::DB* db, const std::string& db_path,
                                    const std::function<absl::Status(absl::string_view chunk)>& sink) {
  // A checkpoint holds exactly the durable state (hard links to the table
  // files, the memtable flushed first), staged inside the database directory.
  static std::atomic<uint64_t> counter{0};
  const std::string dir = absl::StrCat(db_path, "/", kSnapshotTmpPrefix, getpid(), "-", counter.fetch_add(1));
  rocksdb::Checkpoint* raw = nullptr;
  RETURN_IF_ERROR(FromRocks(rocksdb::Checkpoint::Create(db, &raw), "snapshot"));
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  absl::Cleanup remove = [&] {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  };
  RETURN_IF_ERROR(FromRocks(checkpoint->CreateCheckpoint(dir, /*log_size_for_flush=*/0), "snapshot checkpoint"));
  return snapshot_archive::WriteArchive(dir, sink);
}

void RemoveCheckpointLeftovers(const std::string& db_path) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(db_path, ec)) {
    if (absl::StartsWith(e.path().filename().string(), kSnapshotTmpPrefix)) {
      std::filesystem::remove_all(e.path(), ec);
    }
  }
}

}  // namespace weft::storage
