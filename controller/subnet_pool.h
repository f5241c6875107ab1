#pragma once
// The free subnets of one pool, as indices 0..size-1 (0 = SubnetMin).
// Every operation is O(1): a dense array of free indices plus each index's
// position in it, so picking a random free subnet never scans the keyspace.
// Not thread-safe; the owner locks.

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/numeric/int128.h"
#include "absl/random/random.h"

namespace weft::controller {

class SubnetPool {
 public:
  // Weft keeps two 32-bit words per subnet; this bounds the memory to 128 MiB.
  static constexpr uint64_t kMaxSize = uint64_t{1} << 24;

  explicit SubnetPool(uint64_t size);

  uint64_t size() const { return pos_.size(); }
  uint64_t free_count() const { return free_.size(); }
  bool IsFree(uint64_t index) const { return pos_[index] != kTaken; }
  // Both idempotent.
  void Take(uint64_t index);
  void Give(uint64_t index);
  // A uniformly random free index, or nullopt when none is free. Does not take it.
  std::optional<uint64_t> PickRandom(absl::BitGen& gen) const;

 private:
  static constexpr uint32_t kTaken = UINT32_MAX;
  std::vector<uint32_t> free_;
  std::vector<uint32_t> pos_;
};

// The free subnets of a pool too large to enumerate (an IPv6 network: a /32
// holds 2^32 /64 subnets, a /48 with /80s 2^32 too), as indices 0..size-1.
// Up to SubnetPool::kMaxSize subnets it is a SubnetPool; above, it keeps only
// the taken indices, so its memory follows the leases, not the pool: a random
// pick is a uniform draw that is retried while taken (with at most half the
// pool taken, 64 draws all fail with odds of 2^-64), then a walk from a random
// start that meets a free index within taken+1 steps. Every operation is O(1)
// on average. Not thread-safe; the owner locks.
class WideSubnetPool {
 public:
  // `dense_limit`: the largest size kept as a SubnetPool (tests lower it to
  // exercise the sparse form on small pools).
  explicit WideSubnetPool(absl::uint128 size, absl::uint128 dense_limit = SubnetPool::kMaxSize);

  absl::uint128 size() const { return size_; }
  absl::uint128 free_count() const;
  bool IsFree(absl::uint128 index) const;
  // Both idempotent; indices >= size() are ignored.
  void Take(absl::uint128 index);
  void Give(absl::uint128 index);
  // A uniformly random free index, or nullopt when none is free. Does not take it.
  std::optional<absl::uint128> PickRandom(absl::BitGen& gen) const;

 private:
  const absl::uint128 size_;
  std::optional<SubnetPool> dense_;              // size_ <= SubnetPool::kMaxSize
  absl::flat_hash_set<absl::uint128> taken_;     // otherwise
};

}  // namespace weft::controller
