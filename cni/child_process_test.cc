#include "cni/child_process.h"

#include <signal.h>
#include <stdlib.h>

#include <algorithm>

#include "gtest/gtest.h"

namespace weft::cni {
namespace {

class ChildProcessTest : public ::testing::Test {
 protected:
  void SetUp() override { signal(SIGPIPE, SIG_IGN); }  // as main does
};

TEST_F(ChildProcessTest, ExactlyTheGivenArgvAndEnvironment) {
  absl::StatusOr<ChildOutput> r =
      RunChildProcess({"/bin/sh", "-c", "echo \"$0 $FOO ${HOME:-nohome}\"; echo err >&2; exit 3", "arg0"},
                      {"FOO=bar"}, "");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->out, "arg0 bar nohome\n");
  EXPECT_EQ(r->err, "err\n");
}

TEST_F(ChildProcessTest, FeedsStdin) {
  absl::StatusOr<ChildOutput> r = RunChildProcess({"/bin/sh", "-c", "tr a-z A-Z"}, {}, "hello");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out, "HELLO");
}

TEST_F(ChildProcessTest, LargeInputAndOutputDoNotDeadlock) {
  // Prints 2 MB before reading anything, then reads all of its 2 MB input.
  absl::StatusOr<ChildOutput> r = RunChildProcess(
      {"/bin/sh", "-c", "head -c 2000000 /dev/zero | tr '\\0' x; wc -c >&2"},
      {"PATH=/usr/bin:/bin"}, std::string(2000000, 'y'));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->out.size(), 2000000u);
  EXPECT_EQ(r->err, "2000000\n");
}

TEST_F(ChildProcessTest, ChildThatIgnoresItsInput) {
  absl::StatusOr<ChildOutput> r = RunChildProcess({"/bin/sh", "-c", "echo '{}'"}, {}, std::string(1 << 20, 'y'));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->out, "{}\n");
}

TEST_F(ChildProcessTest, KilledBySignalAndMissingProgram) {
  absl::StatusOr<ChildOutput> r = RunChildProcess({"/bin/sh", "-c", "kill -9 $$"}, {}, "");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 128 + 9);
  r = RunChildProcess({"/nonexistent/program"}, {}, "");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 127);
}

TEST_F(ChildProcessTest, EnvironmentWithReplacesAndAdds) {
  setenv("WEFT_TEST_A", "old", 1);
  const std::vector<std::string> env = EnvironmentWith({"WEFT_TEST_A=new", "WEFT_TEST_B=b"});
  EXPECT_EQ(std::count(env.begin(), env.end(), "WEFT_TEST_A=new"), 1);
  EXPECT_EQ(std::count(env.begin(), env.end(), "WEFT_TEST_A=old"), 0);
  EXPECT_EQ(std::count(env.begin(), env.end(), "WEFT_TEST_B=b"), 1);
  EXPECT_NE(std::find_if(env.begin(), env.end(), [](const std::string& e) { return e.rfind("PATH=", 0) == 0; }),
            env.end());
}

}  // namespace
}  // namespace weft::cni
