#include "controller/bucket_leases.h"

#include <algorithm>
#include <utility>

#include "common/status_macros.h"

namespace weft::controller {
namespace {

int64_t TtlSeconds(absl::Duration ttl) {
  return absl::ToInt64Seconds(absl::Ceil(ttl + BucketLeases::Width(ttl), absl::Seconds(1)));
}

}  // namespace

BucketLeases::BucketLeases(storage::Store* store, Clock* clock, OnGrant on_grant)
    : store_(store), clock_(clock), on_grant_(std::move(on_grant)) {}

absl::Duration BucketLeases::Width(absl::Duration ttl) {
  return std::clamp(ttl / 100, absl::Seconds(1), absl::Seconds(60));
}

std::optional<BucketLeases::Lease> BucketLeases::CurrentLocked(absl::Duration ttl, absl::Time now) {
  if (lease_ == 0 || ttl_ != ttl || now - start_ >= Width(ttl) || now < start_) return std::nullopt;
  return Lease{lease_, start_ + absl::Seconds(TtlSeconds(ttl))};
}

std::optional<BucketLeases::Lease> BucketLeases::Cached(absl::Duration ttl) {
  absl::MutexLock l(&mu_);
  return CurrentLocked(ttl, clock_->Now());
}

absl::StatusOr<BucketLeases::Lease> BucketLeases::Get(absl::Duration ttl) {
  absl::MutexLock l(&mu_);
  const absl::Time now = clock_->Now();
  if (auto current = CurrentLocked(ttl, now)) return *current;
  ASSIGN_OR_RETURN(storage::LeaseGrantResponse g, store_->LeaseGrant(TtlSeconds(ttl)));
  lease_ = g.id;
  start_ = now;
  ttl_ = ttl;
  const Lease granted{lease_, now + absl::Seconds(TtlSeconds(ttl))};
  if (on_grant_) on_grant_(granted, now);
  return granted;
}

void BucketLeases::Forget() {
  absl::MutexLock l(&mu_);
  lease_ = 0;
}

}  // namespace weft::controller
