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

WideSubnetPool::WideSubnetPool(absl::uint128 size, absl::uint128 dense_limit) : size_(size) {
  if (size <= dense_limit && size <= SubnetPool::kMaxSize) dense_.emplace(absl::Uint128Low64(size));
}

absl::uint128 WideSubnetPool::free_count() const {
  return dense_ ? absl::uint128(dense_->free_count()) : size_ - taken_.size();
}

bool WideSubnetPool::IsFree(absl::uint128 index) const {
  if (index >= size_) return false;
  return dense_ ? dense_->IsFree(absl::Uint128Low64(index)) : !taken_.contains(index);
}

void WideSubnetPool::Take(absl::uint128 index) {
  if (index >= size_) return;
  if (dense_) {
    dense_->Take(absl::Uint128Low64(index));
  } else {
    taken_.insert(index);
  }
}

void WideSubnetPool::Give(absl::uint128 index) {
  if (index >= size_) return;
  if (dense_) {
    dense_->Give(absl::Uint128Low64(index));
  } else {
    taken_.erase(index);
  }
}

std::optional<absl::uint128> WideSubnetPool::PickRandom(absl::BitGen& gen) const {
  if (dense_) {
    auto i = dense_->PickRandom(gen);
    if (!i) return std::nullopt;
    return absl::uint128(*i);
  }
  if (taken_.size() >= size_) return std::nullopt;
  const absl::uint128 start = absl::Uniform<absl::uint128>(gen, 0, size_);
  for (int draw = 0; draw < 64; ++draw) {
    const absl::uint128 i = draw == 0 ? start : absl::Uniform<absl::uint128>(gen, 0, size_);
    if (!taken_.contains(i)) return i;
  }
  // Among any taken+1 consecutive indices one is free.
  absl::uint128 i = start;
  for (size_t step = 0; step <= taken_.size(); ++step) {
    if (!taken_.contains(i)) return i;
    i = (i + 1 == size_) ? 0 : i + 1;
  }
  return std::nullopt;  // unreachable: fewer taken than size
}

}  // namespace weft::controller
