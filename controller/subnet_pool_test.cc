#include "controller/subnet_pool.h"

#include <set>

#include "gtest/gtest.h"

namespace weft::controller {
namespace {

TEST(SubnetPoolTest, TakeGiveAndExhaustion) {
  SubnetPool pool(4);
  absl::BitGen gen;
  EXPECT_EQ(pool.free_count(), 4u);
  pool.Take(2);
  pool.Take(2);  // idempotent
  EXPECT_EQ(pool.free_count(), 3u);
  EXPECT_FALSE(pool.IsFree(2));
  std::set<uint64_t> seen;
  for (int i = 0; i < 200; ++i) seen.insert(*pool.PickRandom(gen));
  EXPECT_EQ(seen, (std::set<uint64_t>{0, 1, 3}));
  pool.Take(0);
  pool.Take(1);
  pool.Take(3);
  EXPECT_FALSE(pool.PickRandom(gen).has_value());
  pool.Give(1);
  pool.Give(1);
  EXPECT_EQ(pool.free_count(), 1u);
  EXPECT_EQ(*pool.PickRandom(gen), 1u);
}

TEST(SubnetPoolTest, DrainsEveryIndexExactlyOnce) {
  SubnetPool pool(1000);
  absl::BitGen gen;
  std::set<uint64_t> taken;
  while (auto i = pool.PickRandom(gen)) {
    EXPECT_TRUE(taken.insert(*i).second);
    pool.Take(*i);
  }
  EXPECT_EQ(taken.size(), 1000u);
}

// The sparse form (taken indices only), forced on small pools so that the
// random draws and the walk after them both run: every free index is found,
// none twice, and a full pool says so.
TEST(WideSubnetPoolTest, SparseDrainsEveryIndexExactlyOnce) {
  for (int size : {1, 2, 7, 300}) {
    WideSubnetPool pool(size, /*dense_limit=*/0);
    absl::BitGen gen;
    std::set<absl::uint128> taken;
    while (auto i = pool.PickRandom(gen)) {
      ASSERT_LT(*i, absl::uint128(size));
      EXPECT_TRUE(taken.insert(*i).second);
      pool.Take(*i);
    }
    EXPECT_EQ(taken.size(), static_cast<size_t>(size));
    EXPECT_EQ(pool.free_count(), 0);
    pool.Give(size - 1);
    EXPECT_EQ(*pool.PickRandom(gen), absl::uint128(size - 1));
  }
}

TEST(WideSubnetPoolTest, HugePoolCostsOnlyItsLeases) {
  // A /32 IPv6 network with /64 subnets: 2^32 subnets, nothing allocated per subnet.
  const absl::uint128 size = absl::uint128(1) << 32;
  WideSubnetPool pool(size);
  absl::BitGen gen;
  EXPECT_EQ(pool.free_count(), size);
  std::set<absl::uint128> picked;
  for (int i = 0; i < 1000; ++i) {
    auto p = pool.PickRandom(gen);
    ASSERT_TRUE(p.has_value());
    ASSERT_LT(*p, size);
    ASSERT_TRUE(pool.IsFree(*p));
    pool.Take(*p);
    picked.insert(*p);
  }
  EXPECT_EQ(picked.size(), 1000u);
  EXPECT_EQ(pool.free_count(), size - 1000);
  // Picks spread over the whole pool, not the start of it.
  EXPECT_GT(*picked.rbegin(), size / 2);
  pool.Take(size);  // out of range: ignored
  EXPECT_FALSE(pool.IsFree(size));
  EXPECT_EQ(pool.free_count(), size - 1000);
  // A /64 network with /126 subnets: 2^62 subnets.
  WideSubnetPool vast(absl::uint128(1) << 62);
  EXPECT_TRUE(vast.PickRandom(gen).has_value());
}

TEST(WideSubnetPoolTest, DenseBelowTheLimit) {
  WideSubnetPool pool(4);
  absl::BitGen gen;
  pool.Take(0);
  pool.Take(1);
  pool.Take(3);
  EXPECT_EQ(*pool.PickRandom(gen), 2);
  pool.Take(2);
  EXPECT_FALSE(pool.PickRandom(gen).has_value());
}

}  // namespace
}  // namespace weft::controller
