#include "common/testing.h"

#include <sys/stat.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace weft {
namespace {

TEST(EventuallyTest, TrueOnceTheConditionHolds) {
  std::atomic<bool> done{false};
  std::thread t([&] { done = true; });
  EXPECT_TRUE(Eventually([&] { return done.load(); }));
  t.join();
}

TEST(EventuallyTest, FalseAfterTheDeadline) {
  EXPECT_FALSE(Eventually([] { return false; }, absl::Milliseconds(5)));
}

TEST(SleepAdvancingClockTest, SleepMovesTheTimeAndIsRecorded) {
  SleepAdvancingClock clock(absl::FromUnixSeconds(1000));
  Timers timers(clock);
  bool fired = false;
  timers.After(absl::Seconds(2), [&] { fired = true; });
  clock.SleepFor(absl::Seconds(1));
  clock.SleepFor(absl::Seconds(2));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(1003));
  EXPECT_TRUE(fired);
  EXPECT_EQ(clock.sleeps(), (std::vector<absl::Duration>{absl::Seconds(1), absl::Seconds(2)}));
  EXPECT_EQ(clock.slept(), absl::Seconds(3));
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

TEST(TempDirTest, MakesAFreshDirectoryUnderTestTmpDir) {
  TempDir a("tdtest");
  TempDir b("tdtest");
  EXPECT_NE(a.path(), b.path());
  EXPECT_EQ(a.path().rfind(absl::StrCat(std::getenv("TEST_TMPDIR"), "/tdtest"), 0), 0u) << a.path();
  struct stat st;
  ASSERT_EQ(stat(a.path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(a.Join("x/y"), a.path() + "/x/y");
}

TEST(TempDirTest, ShortRootIsTmp) {
  absl::StatusOr<TempDir> d = TempDir::Make("tdtest", TempDir::Root::kTmp);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->path().rfind("/tmp/tdtest", 0), 0u) << d->path();
}

TEST(TempDirTest, RemovesTheWholeTreeWhenItGoes) {
  std::string path;
  {
    TempDir d("tdtest");
    path = d.path();
    ASSERT_EQ(mkdir(d.Join("sub").c_str(), 0700), 0);
    std::ofstream(d.Join("sub/file")) << "x";
    ASSERT_TRUE(Exists(d.Join("sub/file")));
  }
  EXPECT_FALSE(Exists(path));
}

TEST(TempDirTest, AMovedFromDirectoryRemovesNothing) {
  TempDir a("tdtest");
  const std::string path = a.path();
  {
    TempDir b = std::move(a);
    EXPECT_EQ(b.path(), path);
    EXPECT_TRUE(a.path().empty());  // NOLINT(bugprone-use-after-move): the contract
    TempDir c("tdtest");
    const std::string replaced = c.path();
    c = std::move(b);
    EXPECT_FALSE(Exists(replaced));  // assigning over a directory removes it
    EXPECT_TRUE(Exists(path));
  }
  EXPECT_FALSE(Exists(path));
}

TEST(TempDirTest, AKeptDirectoryStays) {
  std::string path;
  {
    TempDir d("tdtest");
    path = d.path();
    d.Keep();
  }
  EXPECT_TRUE(Exists(path));
  std::error_code ignored;
  std::filesystem::remove_all(path, ignored);

  {
    TempDir d("tdtest");
    path = d.path();
    d.Keep();
    d.Keep(false);  // changed its mind: it passed
  }
  EXPECT_FALSE(Exists(path));
}

TEST(TempDirTest, MakeReportsAFailure) {
  const char* saved = std::getenv("TEST_TMPDIR");
  const std::string restore = saved != nullptr ? saved : "";
  setenv("TEST_TMPDIR", "/nonexistent/weft", 1);
  absl::StatusOr<TempDir> d = TempDir::Make("tdtest");
  setenv("TEST_TMPDIR", restore.c_str(), 1);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("/nonexistent/weft/tdtest"), absl::string_view::npos) << d.status();
}

}  // namespace
}  // namespace weft
