// The retry hint as a client reads it: only a plain count of milliseconds, capped.

#include "common/retry_hint.h"

#include "gtest/gtest.h"

namespace weft {
namespace {

TEST(ParseRetryAfterTest, AWholeNumberOfMillisecondsIsTheHint) {
  EXPECT_EQ(ParseRetryAfter("2000"), absl::Seconds(2));
  EXPECT_EQ(ParseRetryAfter("0"), absl::ZeroDuration());
}

TEST(ParseRetryAfterTest, ALongHintIsCappedAtAMinute) {
  EXPECT_EQ(ParseRetryAfter("600000"), kMaxRetryAfter);
  EXPECT_EQ(ParseRetryAfter("9223372036854775807"), kMaxRetryAfter);
}

TEST(ParseRetryAfterTest, AnythingElseIsNoHint) {
  for (const char* bad : {"", "-1", "1.5", "2s", "abc", " ", "99999999999999999999999", "0x10"}) {
    EXPECT_EQ(ParseRetryAfter(bad), std::nullopt) << "\"" << bad << "\"";
  }
}

}  // namespace
}  // namespace weft
