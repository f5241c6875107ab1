// The watch's reconnect pauses: the backoff, and a draining controller's hint.

#include "agent/controller_client.h"

#include "gtest/gtest.h"

namespace weft::agent {
namespace {

constexpr absl::Duration kBase = absl::Milliseconds(200);
constexpr absl::Duration kCap = absl::Seconds(2);

// Within the jitter (x0.5-1.5) of `nominal`.
void ExpectAround(absl::Duration got, absl::Duration nominal) {
  EXPECT_GE(got, nominal * 0.5) << got;
  EXPECT_LE(got, nominal * 1.5) << got;
}

TEST(WatchRetryDelayTest, WithoutAHintTheBackoffDoublesUpToItsCap) {
  Backoff backoff(kBase, kCap);
  for (absl::Duration nominal : {kBase, 2 * kBase, 4 * kBase, 8 * kBase, kCap, kCap}) {
    ExpectAround(WatchRetryDelay(std::nullopt, 1, backoff), nominal);
  }
}

TEST(WatchRetryDelayTest, AHintIsWaitedWhenThereIsNowhereElseToGoAndResetsTheBackoff) {
  Backoff backoff(kBase, kCap);
  for (int i = 0; i < 5; ++i) WatchRetryDelay(std::nullopt, 1, backoff);  // grown to the cap
  EXPECT_EQ(WatchRetryDelay(absl::Seconds(2), 1, backoff), absl::Seconds(2));
  // The controller is still starting: the backoff starts over from its base.
  ExpectAround(WatchRetryDelay(std::nullopt, 1, backoff), kBase);
  ExpectAround(WatchRetryDelay(std::nullopt, 1, backoff), 2 * kBase);
}

TEST(WatchRetryDelayTest, WithOtherReplicasAHintMeansGoToTheNextOneSoon) {
  Backoff backoff(kBase, kCap);
  for (int i = 0; i < 5; ++i) WatchRetryDelay(std::nullopt, 3, backoff);
  ExpectAround(WatchRetryDelay(absl::Seconds(30), 3, backoff), kBase);
}

}  // namespace
}  // namespace weft::agent
