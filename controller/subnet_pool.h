#pragma once
// The free subnets of one pool, as indices 0..size-1 (0 = SubnetMin).
// Every operation is O(1): a dense array of free indices plus each index's
// position in it, so picking a random free subnet never scans the keyspace.
// Not thread-safe; the owner locks.

#include <cstdint>
#include <optional>
#include <vector>

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

}  // namespace weft::controller
