// RocksDbStore's leases: grants and revocations are writes (a TTL record; a
// revocation deletes the lease's keys in the same revision), deadlines live in
// memory only.

#include <algorithm>
#include <limits>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "storage/rocksdb/rocksdb_store.h"
#include "storage/rocksdb/rocksdb_store_internal.h"

namespace weft::storage {

namespace codec = rocksdb_codec;

namespace {

// etcd's limit: larger TTLs are refused.
constexpr int64_t kMaxLeaseTtlSeconds = 9000000000;

}  // namespace

absl::StatusOr<LeaseGrantResponse> RocksDbStore::LeaseGrant(int64_t ttl_seconds, int64_t id) {
  if (ttl_seconds <= 0 || ttl_seconds > kMaxLeaseTtlSeconds) {
    return absl::InvalidArgumentError(absl::StrCat("lease TTL out of range: ", ttl_seconds));
  }
  if (id < 0) return absl::InvalidArgumentError("lease id must not be negative");
  uint64_t seq = 0;
  {
    absl::MutexLock l(&mu_);
    RETURN_IF_ERROR(CheckHealthyLocked());
    if (space_.alarm()) return SpaceExceededError();
    if (id == 0) {
      do {
        id = absl::Uniform<int64_t>(rng_, 1, std::numeric_limits<int64_t>::max());
      } while (leases_.contains(id));
    } else if (leases_.contains(id)) {
      return absl::AlreadyExistsError("lease already exists");
    }
    Lease& lease = leases_[id];
    lease.ttl_seconds = ttl_seconds;
    lease.deadline = clock_.Now() + absl::Seconds(ttl_seconds);
    WriteSet ws(revision_ + 1);
    ws.Put(codec::LeaseKey(id), codec::EncodeInt64(ttl_seconds));
    seq = SubmitLocked(&ws);
  }
  RETURN_IF_ERROR(WaitDurable(seq));
  return LeaseGrantResponse{id, ttl_seconds};
}

void RocksDbStore::RevokeLocked(int64_t id, WriteSet* ws) {
  auto lease = leases_.find(id);
  const std::set<std::string> keys = std::move(lease->second.keys);
  leases_.erase(lease);
  for (const std::string& key : keys) {
    auto it = keys_.find(key);
    if (it != keys_.end()) DeleteKeyLocked(it, ws, nullptr);
  }
  ws->Delete(codec::LeaseKey(id));
  if (ws->changes_keys()) revision_ = ws->revision();
}

absl::Status RocksDbStore::LeaseRevoke(int64_t id) {
  uint64_t seq = 0;
  {
    absl::MutexLock l(&mu_);
    RETURN_IF_ERROR(CheckHealthyLocked());
    if (!leases_.contains(id)) return LeaseNotFoundError();
    WriteSet ws(revision_ + 1);
    RevokeLocked(id, &ws);
    seq = SubmitLocked(&ws);
  }
  return WaitDurable(seq);
}

absl::StatusOr<int> RocksDbStore::ExpireDueLeases() {
  uint64_t seq = 0;
  std::vector<int64_t> due;
  {
    absl::MutexLock l(&mu_);
    RETURN_IF_ERROR(CheckHealthyLocked());
    const absl::Time now = clock_.Now();
    for (const auto& [id, lease] : leases_) {
      if (lease.deadline <= now) due.push_back(id);
    }
    std::sort(due.begin(), due.end());
    seq = applied_seq_;
    for (int64_t id : due) {
      WriteSet ws(revision_ + 1);
      RevokeLocked(id, &ws);
      seq = SubmitLocked(&ws);
    }
  }
  RETURN_IF_ERROR(WaitDurable(seq));
  return static_cast<int>(due.size());
}

absl::StatusOr<int64_t> RocksDbStore::LeaseKeepAlive(int64_t id) {
  uint64_t seq = 0;
  int64_t ttl = 0;
  {
    absl::MutexLock l(&mu_);
        auto it = leases_.find(id);
    const absl::Time now = clock_.Now();
    // An expired lease is as good as revoked, even before the expiry thread runs.
    if (it == leases_.end() || it->second.deadline <= now) return LeaseNotFoundError();
    it->second.deadline = now + absl::Seconds(it->second.ttl_seconds);
    ttl = it->second.ttl_seconds;
    seq = applied_seq_;
  }
  RETURN_IF_ERROR(WaitDurable(seq));
  return ttl;
}

absl::StatusOr<LeaseTimeToLiveResponse> RocksDbStore::LeaseTimeToLive(int64_t id, bool keys) {
  LeaseTimeToLiveResponse resp;
  resp.id = id;
  resp.ttl_seconds = -1;
  uint64_t seq = 0;
  {
    absl::MutexLock l(&mu_);
        seq = applied_seq_;
    auto it = leases_.find(id);
    if (it != leases_.end()) {
      const Lease& lease = it->second;
      resp.granted_ttl_seconds = lease.ttl_seconds;
      const absl::Duration left = lease.deadline - clock_.Now();
      if (left > absl::ZeroDuration()) {
        resp.ttl_seconds = absl::ToInt64Seconds(absl::Ceil(left, absl::Seconds(1)));
      }
      if (keys) resp.keys.assign(lease.keys.begin(), lease.keys.end());
    }
  }
  RETURN_IF_ERROR(WaitDurable(seq));
  return resp;
}

absl::StatusOr<std::vector<int64_t>> RocksDbStore::Leases() {
  std::vector<int64_t> ids;
  uint64_t seq = 0;
  {
    absl::MutexLock l(&mu_);
        seq = applied_seq_;
    ids.reserve(leases_.size());
    for (const auto& [id, lease] : leases_) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  RETURN_IF_ERROR(WaitDurable(seq));
  return ids;
}

}  // namespace weft::storage
