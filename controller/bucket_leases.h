#pragma once
// BucketLeases: the store leases that lease keys are attached to, one per TTL
// bucket. Every acquisition or renewal within one bucket width (TTL/100,
// between 1 s and 60 s) uses the same store lease, whose TTL is the network's
// lease TTL plus the width, rounded up to whole seconds. A lease thus lives at
// least its TTL and at most TTL + width, and an acquisition costs one
// transaction instead of a lease grant plus a transaction.
//
// Thread-safe. Get() blocks on the store (a grant) once per bucket, holding
// this cache's lock, so that concurrent callers share the grant.

#include <cstdint>
#include <functional>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "storage/store.h"

namespace weft::controller {

class BucketLeases {
 public:
  struct Lease {
    int64_t id = 0;
    absl::Time expiration;  // the bucket's start plus the store lease's TTL
  };
  // Called with each store lease granted, before any caller gets it (with
  // this cache's lock held: LeaseManager takes its mu_ in it), `now` the
  // clock's time of the grant.
  using OnGrant = std::function<void(const Lease& lease, absl::Time now)>;

  BucketLeases(storage::Store* store, Clock* clock, OnGrant on_grant = nullptr);

  // The bucket width for `ttl`: ttl / 100, between 1 s and 60 s.
  static absl::Duration Width(absl::Duration ttl);

  // The current bucket's store lease when it serves `ttl`; nullopt when Get
  // must grant one (no store call here).
  std::optional<Lease> Cached(absl::Duration ttl);
  // The current bucket's store lease for `ttl`, granting a new one (a blocking
  // store call) when the bucket has passed, the TTL changed or the clock went
  // back. The store's error as it is.
  absl::StatusOr<Lease> Get(absl::Duration ttl);
  // The store lost the current lease (a write attached to it was NOT_FOUND:
  // expired, or revoked by hand): the next Get grants a new one.
  void Forget();

 private:
  std::optional<Lease> CurrentLocked(absl::Duration ttl, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  storage::Store* const store_;
  Clock* const clock_;
  const OnGrant on_grant_;

  absl::Mutex mu_;
  int64_t lease_ ABSL_GUARDED_BY(mu_) = 0;  // 0: none
  absl::Time start_ ABSL_GUARDED_BY(mu_);
  absl::Duration ttl_ ABSL_GUARDED_BY(mu_);
};

}  // namespace weft::controller
