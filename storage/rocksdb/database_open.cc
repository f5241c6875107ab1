#include "storage/rocksdb/database_open.h"

#include <cstdarg>
#include <cstdio>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "rocksdb/listener.h"
#include "rocksdb/options.h"
#include "storage/rocksdb/rocks_status.h"

namespace weft::storage {

namespace {

// RocksDB's own log, at WARN and above, into ours; the lines about corruption
// are kept for the error message that refuses to open.
class StoreLogger final : public rocksdb::Logger {
 public:
  StoreLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override { Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap); }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    char buf[1024];
    vsnprintf(buf, sizeof(buf), format, ap);
    const std::string line(buf);
    WEFT_LOG(WARN, "rocksdb").With("msg", line);
    if (absl::StrContains(line, "orrupt") || absl::StrContains(line, "dropping")) {
      absl::MutexLock l(&mu_);
      if (lines_.size() < 8) lines_.push_back(line);
    }
  }
  std::vector<std::string> Lines() {
    absl::MutexLock l(&mu_);
    return lines_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
};

// RocksDB's background errors (a flush or compaction that hit a full disk) are
// logged; the store notices them at its next write, which fails the same way.
class ErrorListener final : public rocksdb::EventListener {
 public:
  void OnBackgroundError(rocksdb::BackgroundErrorReason reason, rocksdb::Status* bg_error) override {
    WEFT_LOG(ERROR, "store: rocksdb background error")
        .With("reason", static_cast<int>(reason))
        .With("err", bg_error->ToString());
  }
  void OnErrorRecoveryEnd(const rocksdb::BackgroundErrorRecoveryInfo& info) override {
    WEFT_LOG(INFO, "store: rocksdb error recovery ended")
        .With("old_error", info.old_bg_error.ToString())
        .With("new_error", info.new_bg_error.ToString());
  }
};

absl::Status CorruptionError(const std::string& path, const std::string& what,
                             const std::vector<std::string>& rocks_lines) {
  std::string where;
  for (const auto& w : rocksdb_wal::ScanWalDir(path)) {
    if (w.corrupt) {
      absl::StrAppend(&where, " Bad write-ahead log record in ", w.file, " at offset ", w.corrupt_offset, " (",
                      w.what, "): starting with --recover-from-corruption drops ", w.bytes_dropped, " bytes (",
                      w.batches_dropped, " write batches) from there on.");
      break;
    }
  }
  if (where.empty() && !rocks_lines.empty()) absl::StrAppend(&where, " RocksDB: ", rocks_lines.front());
  return absl::DataLossError(absl::StrCat(
      "store at ", path, " is corrupted: ", what, ".", where,
      " Nothing was changed. Restore a backup (weft-controller --restore-from FILE --data-dir NEW_DIR)",
      what.find(".log") != std::string::npos || !where.empty()
          ? ", or start once with --recover-from-corruption to keep what precedes the damage."
          : "; a damaged table file cannot be recovered in place."));
}

}  // namespace

std::string DropReport(const std::vector<rocksdb_wal::WalScan>& scans) {
  std::string out;
  bool after = false;
  for (const auto& w : scans) {
    if (!w.corrupt && !after) continue;
    if (!out.empty()) out += "; ";
    if (w.corrupt && !after) {
      absl::StrAppend(&out, w.file, ": ", w.what, " at offset ", w.corrupt_offset, ", dropping ",
                      w.bytes_dropped, " bytes (", w.batches_dropped, " write batches, at least ",
                      w.operations_dropped, " operations; ", w.batches_ok, " batches before it kept)");
    } else {
      absl::StrAppend(&out, w.file, ": after the corruption, dropping all ", w.size_bytes, " bytes");
    }
    after = true;
  }
  if (out.empty()) out = "no bad write-ahead log record found (table file corruption cannot be recovered this way)";
  return out;
}

absl::StatusOr<OpenedDatabase> OpenDatabase(const std::string& path, bool recover_from_corruption) {
  auto logger = std::make_shared<StoreLogger>();
  rocksdb::Options ro;
  ro.create_if_missing = true;
  ro.info_log = logger;
  ro.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  ro.keep_log_file_num = 3;
  // After a full disk RocksDB clears its error (and our Resume() succeeds) only
  // once a memtable's worth of space is free again: 16 MiB rather than the
  // default 64 MiB (a lease store is tens of MB; smaller memtables cost nothing).
  ro.write_buffer_size = 16 << 20;
  ro.paranoid_checks = true;
  // A bad record anywhere but a tail a crash cut short stops the open: the
  // default (point in time) would silently drop it and everything after it.
  ro.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  ro.listeners.push_back(std::make_shared<ErrorListener>());

  OpenedDatabase opened;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(ro, path, &raw);
  if (s.IsCorruption() && recover_from_corruption) {
    // Keep what precedes the first bad record; say exactly what goes.
    const std::vector<rocksdb_wal::WalScan> scans = rocksdb_wal::ScanWalDir(path);
    opened.recovery_report = DropReport(scans);
    WEFT_LOG(WARN, "store: recovering from corruption, dropping data").With("dropped", opened.recovery_report);
    ro.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
    s = rocksdb::DB::Open(ro, path, &raw);
  }
  if (s.IsCorruption()) return CorruptionError(path, s.ToString(), logger->Lines());
  RETURN_IF_ERROR(FromRocks(s, absl::StrCat("open store at ", path)));
  opened.db.reset(raw);
  // Table files are checked whole at start-up (a few MB; a flipped bit in a
  // block nobody reads yet would otherwise surface only when a watch needs it).
  if (rocksdb::Status v = opened.db->VerifyChecksum(); !v.ok()) {
    if (v.IsCorruption()) return CorruptionError(path, v.ToString(), logger->Lines());
    return FromRocks(v, "verify store checksums");
  }
  return opened;
}

}  // namespace weft::storage
