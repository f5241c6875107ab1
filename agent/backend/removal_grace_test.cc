// RemovalGrace: held until the grace, due after it, forgotten when wanted again.

#include "agent/backend/removal_grace.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace weft::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

std::vector<std::string> Keys(const std::vector<RemovalGrace::Held>& held) {
  std::vector<std::string> out;
  for (const RemovalGrace::Held& h : held) out.push_back(h.key);
  return out;
}

TEST(RemovalGraceTest, HeldUntilTheGraceThenDue) {
  RemovalGrace g(absl::Seconds(30));
  EXPECT_EQ(g.NextDue(), absl::InfiniteFuture());
  std::vector<RemovalGrace::Held> newly;
  EXPECT_THAT(g.Due({"a"}, kT0, &newly), IsEmpty());
  ASSERT_EQ(newly.size(), 1u);
  EXPECT_EQ(newly[0].key, "a");
  EXPECT_EQ(newly[0].until, kT0 + absl::Seconds(30));
  EXPECT_EQ(g.NextDue(), kT0 + absl::Seconds(30));

  // Later passes within the grace: still held, not reported as new again; "b"
  // starts its own grace.
  newly.clear();
  EXPECT_THAT(g.Due({"a", "b"}, kT0 + absl::Seconds(10), &newly), IsEmpty());
  EXPECT_THAT(Keys(newly), ElementsAre("b"));
  newly.clear();
  EXPECT_THAT(g.Due({"a", "b"}, kT0 + absl::Seconds(30) - absl::Nanoseconds(1), &newly), IsEmpty());
  EXPECT_THAT(newly, IsEmpty());
  EXPECT_EQ(g.NextDue(), kT0 + absl::Seconds(30));

  // At the grace: "a" is due, "b" (first seen 10 s later) is not.
  EXPECT_THAT(g.Due({"b", "a"}, kT0 + absl::Seconds(30), &newly), ElementsAre("a"));
  EXPECT_THAT(newly, IsEmpty());
  EXPECT_EQ(g.NextDue(), kT0 + absl::Seconds(40));
  EXPECT_THAT(g.Due({"a", "b"}, kT0 + absl::Seconds(45)), ElementsAre("a", "b"));
  EXPECT_EQ(g.NextDue(), absl::InfiniteFuture());
}

TEST(RemovalGraceTest, ARemovalThatFailedIsDueAgainAtOnce) {
  RemovalGrace g(absl::Seconds(30));
  g.Due({"a"}, kT0);
  EXPECT_THAT(g.Due({"a"}, kT0 + absl::Seconds(31)), ElementsAre("a"));
  EXPECT_EQ(g.NextDue(), absl::InfiniteFuture());  // released: nothing left to wait for
  // The delete failed: the route is still there at the next pass.
  EXPECT_THAT(g.Due({"a"}, kT0 + absl::Seconds(32)), ElementsAre("a"));
}

TEST(RemovalGraceTest, WantedAgainIsForgottenAndStartsAFreshGrace) {
  RemovalGrace g(absl::Seconds(30));
  std::vector<RemovalGrace::Held> newly;
  g.Due({"a", "b"}, kT0, &newly);
  EXPECT_THAT(Keys(newly), ElementsAre("a", "b"));
  // The lease of "a" arrives: "a" is wanted, "b" still not.
  EXPECT_THAT(g.Due({"b"}, kT0 + absl::Seconds(20)), IsEmpty());
  EXPECT_EQ(g.NextDue(), kT0 + absl::Seconds(30));  // b's
  // "a" unwanted again after the first grace would have ended: a fresh one.
  newly.clear();
  EXPECT_THAT(g.Due({"a", "b"}, kT0 + absl::Seconds(35), &newly), ElementsAre("b"));
  ASSERT_EQ(newly.size(), 1u);
  EXPECT_EQ(newly[0].key, "a");
  EXPECT_EQ(newly[0].until, kT0 + absl::Seconds(65));
  EXPECT_EQ(g.NextDue(), kT0 + absl::Seconds(65));
  EXPECT_THAT(g.Due({"a"}, kT0 + absl::Seconds(64)), IsEmpty());
  EXPECT_THAT(g.Due({"a"}, kT0 + absl::Seconds(65)), ElementsAre("a"));
  // Nothing unwanted: everything forgotten.
  EXPECT_THAT(g.Due({}, kT0 + absl::Seconds(66)), IsEmpty());
  EXPECT_EQ(g.NextDue(), absl::InfiniteFuture());
  newly.clear();
  EXPECT_THAT(g.Due({"a"}, kT0 + absl::Seconds(67), &newly), IsEmpty());
  EXPECT_THAT(Keys(newly), ElementsAre("a"));
}

TEST(RemovalGraceTest, ZeroGraceReleasesAtOnce) {
  RemovalGrace g(absl::ZeroDuration());
  std::vector<RemovalGrace::Held> newly;
  EXPECT_THAT(g.Due({"a", "b", "a"}, kT0, &newly), ElementsAre("a", "b"));
  EXPECT_THAT(newly, IsEmpty());
  EXPECT_EQ(g.NextDue(), absl::InfiniteFuture());
}

}  // namespace
}  // namespace weft::agent
