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

}  // namespace
}  // namespace weft::controller
