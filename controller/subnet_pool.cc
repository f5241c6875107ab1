#include "controller/subnet_pool.h"

#include "common/check.h"

namespace weft::controller {

SubnetPool::SubnetPool(uint64_t size) : free_(size), pos_(size) {
  WEFT_CHECK(size <= kMaxSize, "subnet pool too large");
  for (uint64_t i = 0; i < size; ++i) {
    free_[i] = static_cast<uint32_t>(i);
    pos_[i] = static_cast<uint32_t>(i);
  }
}

void SubnetPool::Take(uint64_t index) {
  const uint32_t p = pos_[index];
  if (p == kTaken) return;
  const uint32_t last = free_.back();
  free_[p] = last;
  pos_[last] = p;
  free_.pop_back();
  pos_[index] = kTaken;
}

void SubnetPool::Give(uint64_t index) {
  if (pos_[index] != kTaken) return;
  pos_[index] = static_cast<uint32_t>(free_.size());
  free_.push_back(static_cast<uint32_t>(index));
}

std::optional<uint64_t> SubnetPool::PickRandom(absl::BitGen& gen) const {
  if (free_.empty()) return std::nullopt;
  return free_[absl::Uniform<size_t>(gen, 0, free_.size())];
}

}  // namespace weft::controller
