#include "common/log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/str_split.h"
#include "common/clock.h"
#include "common/net.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace weft::log {
namespace {

using ::testing::ElementsAre;
using ::testing::MatchesRegex;

// Sends log lines to a temporary file and reads them back.
class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::string(getenv("TEST_TMPDIR")) + "/log." + std::to_string(counter_++);
    fd_ = open(path_.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_APPEND | O_CLOEXEC, 0600);
    ASSERT_GE(fd_, 0);
    SetOutput(fd_, /*journald_style=*/false);
    SetClock(&clock_);
    SetLevel(Level::kInfo);
  }
  void TearDown() override {
    SetOutput(STDERR_FILENO, false);
    SetClock(nullptr);
    SetLevel(Level::kInfo);
    close(fd_);
  }
  std::string Output() {
    std::string out;
    int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, n);
    close(fd);
    return out;
  }

  static inline int counter_ = 0;
  SimulatedClock clock_{absl::FromUnixMicros(1714557600123456)};  // 2024-05-01T10:00:00.123456Z
  std::string path_;
  int fd_ = -1;
};

TEST_F(LogTest, WritesOneLogfmtLinePerEvent) {
  WEFT_LOG(INFO, "lease acquired")
      .With("subnet", *IPv4Net::Parse("10.1.19.0/24"))
      .With("node", "n1")
      .With("n", 3)
      .With("ok", true);
  EXPECT_EQ(Output(),
            "ts=2024-05-01T10:00:00.123456Z level=info msg=\"lease acquired\" subnet=10.1.19.0/24 node=n1 n=3 "
            "ok=true\n");
}

TEST_F(LogTest, JournaldStyleHasSyslogPriorityAndNoTimestamp) {
  SetOutput(fd_, /*journald_style=*/true);
  SetLevel(Level::kDebug);
  WEFT_LOG(DEBUG, "d");
  WEFT_LOG(INFO, "i").With("k", "v");
  WEFT_LOG(WARN, "w");
  WEFT_LOG(WARNING, "w2");
  WEFT_LOG(ERROR, "e").Err(absl::UnavailableError("store down"));
  EXPECT_EQ(Output(),
            "<7>level=debug msg=d\n"
            "<6>level=info msg=i k=v\n"
            "<4>level=warn msg=w\n"
            "<4>level=warn msg=w2\n"
            "<3>level=error msg=e err=\"UNAVAILABLE: store down\"\n");
}

TEST_F(LogTest, QuotesAndEscapesValues) {
  WEFT_LOG(INFO, "x")
      .With("plain", "a/b:c.d-e_f")
      .With("empty", "")
      .With("space", "a b")
      .With("quote", "say \"hi\"")
      .With("backslash", "a\\b")
      .With("equals", "a=b")
      .With("newline", "line1\nline2\r\t")
      .With("ctrl", std::string("\x01\x7f", 2))
      .With("utf8", "n\xc3\xb6" "de");
  EXPECT_EQ(Output(),
            "ts=2024-05-01T10:00:00.123456Z level=info msg=x plain=a/b:c.d-e_f empty=\"\" space=\"a b\" "
            "quote=\"say \\\"hi\\\"\" backslash=\"a\\\\b\" equals=\"a=b\" newline=\"line1\\nline2\\r\\t\" "
            "ctrl=\"\\x01\\x7f\" utf8=n\xc3\xb6" "de\n");
}

TEST_F(LogTest, MessagesAreEscapedAndKeysSanitized) {
  WEFT_LOG(INFO, "two\nlines").With("bad key=\"x\"", 1).With("", 2);
  EXPECT_EQ(Output(), "ts=2024-05-01T10:00:00.123456Z level=info msg=\"two\\nlines\" bad_key__x_=1 _=2\n");
}

TEST_F(LogTest, FormatsOtherValueTypes) {
  WEFT_LOG(INFO, "x")
      .With("d", absl::Seconds(90))
      .With("f", 0.5)
      .With("neg", int64_t{-7})
      .With("u", uint64_t{18446744073709551615u})
      .With("st", absl::OkStatus())
      .With("mac", MacAddr())
      .With("s", std::string("str"));
  EXPECT_EQ(Output(),
            "ts=2024-05-01T10:00:00.123456Z level=info msg=x d=1m30s f=0.5 neg=-7 u=18446744073709551615 st=OK "
            "mac=00:00:00:00:00:00 s=str\n");
}

TEST_F(LogTest, DisabledLevelsCostNothing) {
  int evaluated = 0;
  auto expensive = [&] {
    ++evaluated;
    return std::string("v");
  };
  WEFT_LOG(DEBUG, "hidden").With("k", expensive());
  EXPECT_EQ(evaluated, 0);
  EXPECT_EQ(Output(), "");

  SetLevel(Level::kError);
  WEFT_LOG(WARN, "hidden").With("k", expensive());
  WEFT_LOG(ERROR, "shown").With("k", expensive());
  EXPECT_EQ(evaluated, 1);
  EXPECT_EQ(Output(), "ts=2024-05-01T10:00:00.123456Z level=error msg=shown k=v\n");

  // The macro is a single statement.
  if (evaluated == 0)
    WEFT_LOG(ERROR, "not reached");
  else
    WEFT_LOG(ERROR, "else branch");
  EXPECT_THAT(Output(), ::testing::EndsWith("msg=\"else branch\"\n"));
}

TEST_F(LogTest, LogLevelFlagSetsTheLevel) {
  std::string error;
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag("log_level");
  ASSERT_NE(flag, nullptr);
  ASSERT_TRUE(flag->ParseFrom("debug", &error)) << error;
  EXPECT_EQ(GetLevel(), Level::kDebug);
  ASSERT_TRUE(flag->ParseFrom("WARNING", &error)) << error;
  EXPECT_EQ(GetLevel(), Level::kWarning);
  EXPECT_EQ(flag->CurrentValue(), "warn");
  EXPECT_FALSE(flag->ParseFrom("loud", &error));
  EXPECT_THAT(error, ::testing::HasSubstr("want debug, info, warn or error"));
  EXPECT_EQ(GetLevel(), Level::kWarning);
  absl::SetFlag(&FLAGS_log_level, Level::kInfo);
}

TEST(LevelTest, ParsesAndNames) {
  EXPECT_EQ(*ParseLevel("debug"), Level::kDebug);
  EXPECT_EQ(*ParseLevel("Info"), Level::kInfo);
  EXPECT_EQ(*ParseLevel("warn"), Level::kWarning);
  EXPECT_EQ(*ParseLevel("warning"), Level::kWarning);
  EXPECT_EQ(*ParseLevel("ERROR"), Level::kError);
  EXPECT_FALSE(ParseLevel("").ok());
  EXPECT_FALSE(ParseLevel("fatal").ok());
  EXPECT_EQ(LevelName(Level::kWarning), "warn");
}

TEST_F(LogTest, ConcurrentLinesDoNotInterleave) {
  constexpr int kThreads = 4, kLines = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < kLines; ++i) {
        WEFT_LOG(INFO, "tick").With("thread", t).With("i", i).With("pad", std::string(200, 'x'));
      }
    });
  }
  for (auto& th : threads) th.join();
  std::vector<std::string> lines = absl::StrSplit(Output(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), static_cast<size_t>(kThreads * kLines));
  for (const std::string& l : lines) {
    EXPECT_THAT(l, MatchesRegex("ts=\\S+ level=info msg=tick thread=[0-3] i=[0-9]+ pad=x{200}"));
  }
}

TEST(JournalStreamTest, MatchesOnlyTheNamedFile) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  struct stat st;
  ASSERT_EQ(fstat(p[1], &st), 0);
  const std::string mine = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  EXPECT_TRUE(IsJournalStream(p[1], mine.c_str()));
  EXPECT_FALSE(IsJournalStream(p[1], nullptr));
  EXPECT_FALSE(IsJournalStream(p[1], ""));
  EXPECT_FALSE(IsJournalStream(p[1], "garbage"));
  EXPECT_FALSE(IsJournalStream(p[1], (std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1)).c_str()));
  int q[2];
  ASSERT_EQ(pipe(q), 0);
  EXPECT_FALSE(IsJournalStream(q[1], mine.c_str()));  // a redirected stderr is not the journal
  for (int fd : {p[0], p[1], q[0], q[1]}) close(fd);
}

}  // namespace
}  // namespace weft::log
