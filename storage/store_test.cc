#include "storage/store.h"

#include "gtest/gtest.h"

namespace weft::storage {
namespace {

TEST(PrefixEndTest, BumpsLastByte) {
  EXPECT_EQ(PrefixEnd("/coreos.com/network/subnets/"), "/coreos.com/network/subnets0");
  EXPECT_EQ(PrefixEnd("a"), "b");
}

TEST(PrefixEndTest, DropsTrailingFF) {
  EXPECT_EQ(PrefixEnd(std::string("a\xff\xff", 3)), "b");
}

TEST(PrefixEndTest, NoEndMeansAllKeys) {
  EXPECT_EQ(PrefixEnd(""), std::string(1, '\0'));
  EXPECT_EQ(PrefixEnd(std::string("\xff", 1)), std::string(1, '\0'));
}

TEST(KeyInRangeTest, SingleKey) {
  EXPECT_TRUE(KeyInRange("a", "a", ""));
  EXPECT_FALSE(KeyInRange("ab", "a", ""));
}

TEST(KeyInRangeTest, HalfOpenInterval) {
  EXPECT_TRUE(KeyInRange("a", "a", "c"));
  EXPECT_TRUE(KeyInRange("bzz", "a", "c"));
  EXPECT_FALSE(KeyInRange("c", "a", "c"));
  EXPECT_FALSE(KeyInRange("0", "a", "c"));
}

TEST(KeyInRangeTest, NulEndMeansFromKey) {
  const std::string all(1, '\0');
  EXPECT_TRUE(KeyInRange("zzz", "b", all));
  EXPECT_FALSE(KeyInRange("a", "b", all));
  EXPECT_TRUE(KeyInRange("a", all, all));
}

TEST(KeyInRangeTest, PrefixEndCoversPrefix) {
  const std::string p = "/subnets/";
  EXPECT_TRUE(KeyInRange("/subnets/10.1.2.0-24", p, PrefixEnd(p)));
  EXPECT_FALSE(KeyInRange("/subnets0", p, PrefixEnd(p)));
}

TEST(CompactedErrorTest, RoundTrips) {
  absl::Status s = CompactedError(42);
  EXPECT_TRUE(absl::IsOutOfRange(s));
  EXPECT_TRUE(IsCompacted(s));
  EXPECT_NE(s.message().find("42"), absl::string_view::npos);
  EXPECT_FALSE(IsCompacted(absl::OutOfRangeError("required revision is a future revision")));
  EXPECT_FALSE(IsCompacted(absl::OkStatus()));
}

}  // namespace
}  // namespace weft::storage
