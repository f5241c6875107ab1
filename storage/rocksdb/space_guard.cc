#include "storage/rocksdb/space_guard.h"

#include <sys/statvfs.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace weft::storage {

SpaceGuard::SpaceGuard(Options options, Clock& clock) : options_(std::move(options)), clock_(clock) {}

std::string SpaceGuard::LowSpace() const {
  if (options_.min_free_bytes <= 0) return "";
  int64_t free = 0;
  if (options_.free_bytes) {
    free = options_.free_bytes();
  } else {
    struct statvfs st;
    if (statvfs(options_.path.c_str(), &st) != 0) return "";  // cannot tell: let RocksDB try
    free = static_cast<int64_t>(st.f_bavail) * static_cast<int64_t>(st.f_frsize);
  }
  if (free >= options_.min_free_bytes) return "";
  return absl::StrCat("No space left on device: ", free, " bytes free on the file system of ", options_.path,
                      ", less than the ", options_.min_free_bytes, " the store keeps free");
}

void SpaceGuard::CheckQuota(bool force) {
  const int64_t now = absl::ToUnixNanos(clock_.Now());
  if (!force && now - checked_ns_.load() < 100'000'000) return;
  checked_ns_.store(now);
  const int64_t size = options_.db_size_bytes();
  db_size_.store(size);
  if (options_.quota_bytes > 0 && size > options_.quota_bytes && !alarm_.exchange(true)) {
    WEFT_LOG(ERROR, "store: over its quota, NOSPACE alarm raised; writes that add data are refused")
        .With("db_size_bytes", size)
        .With("quota_bytes", options_.quota_bytes);
  }
}

absl::Status SpaceGuard::Disarm() {
  CheckQuota(true);
  if (options_.quota_bytes > 0 && db_size_.load() > options_.quota_bytes) {
    return absl::FailedPreconditionError(absl::StrCat("store is still over its quota: ", db_size_.load(), " > ",
                                                      options_.quota_bytes, " bytes; compact and defragment first"));
  }
  if (alarm_.exchange(false)) {
    WEFT_LOG(INFO, "store: NOSPACE alarm disarmed");
  }
  return absl::OkStatus();
}

void SpaceGuard::Raise() {
  if (!alarm_.exchange(true)) {
    WEFT_LOG(WARN, "store: NOSPACE alarm raised by hand");
  }
}

}  // namespace weft::storage
