#include "common/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace weft {
namespace {

SubprocessOptions Sh(const std::string& script) {
  SubprocessOptions o;
  o.argv = {"/bin/sh", "-c", script};
  return o;
}

std::string TempDir() {
  const char* d = getenv("TEST_TMPDIR");
  return d != nullptr ? d : "/tmp";
}

// An executable script `name` in a new directory; the directory.
std::string ScriptDir(const std::string& dir_name, const std::string& name, const std::string& body) {
  const std::string dir = absl::StrCat(TempDir(), "/", dir_name);
  mkdir(dir.c_str(), 0755);
  const std::string path = absl::StrCat(dir, "/", name);
  std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
  chmod(path.c_str(), 0755);
  return dir;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(RunSubprocessTest, CapturesStdoutAndStderrApart) {
  absl::StatusOr<SubprocessResult> r = RunSubprocess(Sh("echo out; echo err >&2; exit 3"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
}

// A descriptor this process holds without close-on-exec (as one inherited from
// whatever started it may be) does not reach the child: only stdio does.
TEST(RunSubprocessTest, OnlyStdioCrossesTheExec) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);  // no O_CLOEXEC, on purpose
  absl::StatusOr<SubprocessResult> r = RunSubprocess(
      Sh(absl::StrCat("for fd in 0 1 2 ", p[0], " ", p[1], "; do [ -e /proc/self/fd/$fd ] && echo $fd; done")));
  close(p[0]);
  close(p[1]);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out, "0\n1\n2\n");
}

TEST(RunSubprocessTest, MergesStderrIntoStdout) {
  SubprocessOptions o = Sh("echo out; echo err >&2");
  o.merge_stderr = true;
  absl::StatusOr<SubprocessResult> r = RunSubprocess(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out, "out\nerr\n");
  EXPECT_EQ(r->err, "");
}

TEST(RunSubprocessTest, OutputToADescriptor) {
  const std::string path = TempDir() + "/output-to-fd.log";
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  SubprocessOptions o = Sh("echo to-file; echo err-too >&2");
  o.stdout_fd = fd;
  o.merge_stderr = true;
  absl::StatusOr<SubprocessResult> r = RunSubprocess(o);
  close(fd);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out, "");
  EXPECT_EQ(ReadFile(path), "to-file\nerr-too\n");
}

TEST(RunSubprocessTest, InputWithNothingCaptured) {
  const std::string path = TempDir() + "/input-to-fd.log";
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  SubprocessOptions o;
  o.argv = {"/bin/cat"};
  o.input = "fed\n";
  o.stdout_fd = fd;
  o.merge_stderr = true;
  absl::StatusOr<SubprocessResult> r = RunSubprocess(o);
  close(fd);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(ReadFile(path), "fed\n");
}

TEST(RunSubprocessTest, LargeInputAndOutputDoNotDeadlock) {
  const std::string input(4 << 20, 'x');
  SubprocessOptions o;
  o.argv = {"/bin/cat"};
  o.input = input;
  absl::StatusOr<SubprocessResult> r = RunSubprocess(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_TRUE(r->out == input) << r->out.size();
}

TEST(RunSubprocessTest, ChildThatPrintsMuchBeforeReading) {
  SubprocessOptions o = Sh("head -c 2000000 /dev/zero | tr '\\0' x; wc -c >&2");
  o.input = std::string(2000000, 'y');
  absl::StatusOr<SubprocessResult> r = RunSubprocess(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out.size(), 2000000u);
  EXPECT_EQ(r->err, "2000000\n");
}

TEST(RunSubprocessTest, ChildThatIgnoresItsInput) {
  SubprocessOptions o = Sh("echo done");
  o.input = std::string(1 << 20, 'y');
  absl::StatusOr<SubprocessResult> r = RunSubprocess(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->out, "done\n");
}

TEST(RunSubprocessTest, KilledBySignalIs128PlusSignal) {
  absl::StatusOr<SubprocessResult> r = RunSubprocess(Sh("kill -9 $$"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 128 + 9);
}

TEST(RunSubprocessTest, TimeoutKills) {
  SubprocessOptions o = Sh("echo started; exec sleep 1000");
  o.timeout = absl::Milliseconds(200);
  const absl::Time start = absl::Now();
  absl::StatusOr<SubprocessResult> r = RunSubprocess(o);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "did not finish within 200ms")) << r.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(30));
}

TEST(RunSubprocessTest, TimeoutKillsTheGroupOfANewProcessGroup) {
  // Orphans become our children, so the grandchild's death can be waited for.
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  const std::string pid_file = TempDir() + "/grandchild.pid";
  SubprocessOptions o = Sh("sleep 1000 & echo $! >\"$0\"; wait");
  o.argv.push_back(pid_file);
  o.new_process_group = true;
  o.timeout = absl::Milliseconds(300);
  absl::StatusOr<SubprocessResult> r = RunSubprocess(o);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  pid_t grandchild = -1;
  std::ifstream(pid_file) >> grandchild;
  ASSERT_GT(grandchild, 0);
  std::optional<int> status = WaitPid(grandchild, absl::Seconds(30));
  prctl(PR_SET_CHILD_SUBREAPER, 0);
  ASSERT_TRUE(status.has_value()) << "the grandchild outlived the timeout";
  EXPECT_EQ(ExitCode(*status), 128 + SIGKILL);
}

TEST(RunSubprocessTest, CancelledKills) {
  SubprocessOptions o = Sh("exec sleep 1000");
  int asked = 0;
  o.cancelled = [&asked] { return ++asked > 2; };
  absl::StatusOr<SubprocessResult> r = RunSubprocess(o);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled) << r.status();
}

TEST(RunSubprocessTest, MissingProgramIsAClearError) {
  SubprocessOptions o;
  o.argv = {"/nonexistent/program"};
  absl::StatusOr<SubprocessResult> r = RunSubprocess(o);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "No such file or directory")) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "cannot run /nonexistent/program")) << r.status();

  o.argv = {"weft-no-such-program"};
  o.search_path = true;
  r = RunSubprocess(o);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "weft-no-such-program")) << r.status();
}

TEST(RunSubprocessTest, NotExecutableIsAClearError) {
  const std::string path = TempDir() + "/not-executable";
  std::ofstream(path) << "#!/bin/sh\n";
  chmod(path.c_str(), 0644);
  SubprocessOptions o;
  o.argv = {path};
  absl::StatusOr<SubprocessResult> r = RunSubprocess(o);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "Permission denied")) << r.status();
}

TEST(RunSubprocessTest, LooksUpPathThenTheExtraDirectories) {
  const std::string on_path = ScriptDir("on-path", "weft-test-a", "echo a");
  const std::string extra = ScriptDir("extra", "weft-test-b", "echo b");
  SubprocessOptions o;
  o.env = std::vector<std::string>{"PATH=" + on_path};
  o.search_path = true;
  o.extra_search_dirs = {extra};
  o.argv = {"weft-test-a"};
  absl::StatusOr<SubprocessResult> r = RunSubprocess(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out, "a\n");
  o.argv = {"weft-test-b"};
  r = RunSubprocess(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out, "b\n");
  // Without lookup the name is a path relative to the working directory.
  o.search_path = false;
  EXPECT_EQ(RunSubprocess(o).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(RunSubprocessTest, ExactlyTheGivenArgvAndEnvironment) {
  SubprocessOptions o = Sh("echo \"$0 $FOO ${HOME:-nohome}\"");
  o.argv.push_back("arg0");
  o.env = std::vector<std::string>{"FOO=bar"};
  absl::StatusOr<SubprocessResult> r = RunSubprocess(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out, "arg0 bar nohome\n");
}

TEST(RunSubprocessTest, InheritsTheEnvironmentByDefault) {
  setenv("WEFT_TEST_INHERITED", "yes", 1);
  absl::StatusOr<SubprocessResult> r = RunSubprocess(Sh("echo $WEFT_TEST_INHERITED"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out, "yes\n");
}

TEST(RunSubprocessTest, IgnoredSignalsAreDefaultInTheChild) {
  signal(SIGPIPE, SIG_IGN);  // as weft-cni's main does
  absl::StatusOr<SubprocessResult> r = RunSubprocess(Sh("grep SigIgn /proc/self/status"));
  signal(SIGPIPE, SIG_DFL);
  ASSERT_TRUE(r.ok()) << r.status();
  const uint64_t ignored = std::stoull(r->out.substr(r->out.find('\t') + 1), nullptr, 16);
  EXPECT_EQ(ignored & (uint64_t{1} << (SIGPIPE - 1)), 0u) << r->out;
}

TEST(RunSubprocessTest, OutputIsBounded) {
  SubprocessOptions o = Sh("head -c 100000 /dev/zero; exec sleep 1000");
  o.max_output_bytes = 1000;
  absl::StatusOr<SubprocessResult> r = RunSubprocess(o);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
}

TEST(SubprocessTest, SignalAndWait) {
  Subprocess p;
  SubprocessOptions o;
  o.argv = {"/bin/sleep", "1000"};
  ASSERT_TRUE(p.Start(o).ok());
  EXPECT_TRUE(p.running());
  EXPECT_EQ(p.TryWait(), std::nullopt);
  EXPECT_EQ(p.Wait(absl::Milliseconds(10)), std::nullopt);
  ASSERT_TRUE(p.Signal(SIGTERM).ok());
  std::optional<int> status = p.Wait(absl::Seconds(30));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(ExitCode(*status), 128 + SIGTERM);
  EXPECT_FALSE(p.running());
  EXPECT_EQ(p.TryWait(), -1);
  EXPECT_FALSE(p.Signal(SIGTERM).ok());
}

TEST(SubprocessTest, KillsOnDestruction) {
  pid_t pid;
  {
    Subprocess p;
    SubprocessOptions o;
    o.argv = {"/bin/sleep", "1000"};
    ASSERT_TRUE(p.Start(o).ok());
    pid = p.pid();
    ASSERT_EQ(kill(pid, 0), 0);
  }
  // Killed and reaped: the pid is gone.
  EXPECT_EQ(kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

TEST(SubprocessTest, MovedFromOwnsNothing) {
  Subprocess a;
  SubprocessOptions o;
  o.argv = {"/bin/sleep", "1000"};
  ASSERT_TRUE(a.Start(o).ok());
  const pid_t pid = a.pid();
  Subprocess b = std::move(a);
  EXPECT_FALSE(a.running());
  EXPECT_EQ(b.pid(), pid);
  EXPECT_EQ(kill(pid, 0), 0);
}

TEST(SubprocessTest, ReleasedPidIsTheCallersToReap) {
  Subprocess p;
  SubprocessOptions o = Sh("exit 7");
  o.stdout_fd = 2;
  o.stderr_fd = 2;
  ASSERT_TRUE(p.Start(o).ok());
  const pid_t pid = p.Release();
  EXPECT_FALSE(p.running());
  std::optional<int> status = WaitPid(pid, absl::Seconds(30));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(ExitCode(*status), 7);
  EXPECT_EQ(TryWaitPid(pid), -1);  // reaped: no longer ours
}

TEST(SubprocessTest, DiesWithItsParent) {
  // Orphans become our children, so the grandchild's death can be waited for.
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  const pid_t intermediate = fork();
  ASSERT_GE(intermediate, 0);
  if (intermediate == 0) {
    Subprocess p;
    SubprocessOptions o;
    o.argv = {"/bin/sleep", "1000"};
    o.die_with_parent = true;
    o.stdout_fd = o.stderr_fd = 2;
    if (!p.Start(o).ok()) _exit(1);
    const pid_t pid = p.pid();
    (void)!write(pipe_fds[1], &pid, sizeof pid);
    _exit(0);  // no destructor: only the kernel can kill the child now
  }
  close(pipe_fds[1]);
  pid_t grandchild = -1;
  ASSERT_EQ(read(pipe_fds[0], &grandchild, sizeof grandchild), static_cast<ssize_t>(sizeof grandchild));
  close(pipe_fds[0]);
  std::optional<int> status = WaitPid(intermediate, absl::Seconds(30));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(ExitCode(*status), 0);
  status = WaitPid(grandchild, absl::Seconds(30));
  prctl(PR_SET_CHILD_SUBREAPER, 0);
  ASSERT_TRUE(status.has_value()) << "the child outlived its parent";
  EXPECT_EQ(ExitCode(*status), 128 + SIGKILL);
}

TEST(EnvironmentWithTest, ReplacesAndAdds) {
  setenv("WEFT_TEST_A", "old", 1);
  const std::vector<std::string> env = EnvironmentWith({"WEFT_TEST_A=new", "WEFT_TEST_B=b"});
  EXPECT_EQ(std::count(env.begin(), env.end(), "WEFT_TEST_A=new"), 1);
  EXPECT_EQ(std::count(env.begin(), env.end(), "WEFT_TEST_A=old"), 0);
  EXPECT_EQ(std::count(env.begin(), env.end(), "WEFT_TEST_B=b"), 1);
}

TEST(CommandLineTest, QuotesWhatNeedsIt) {
  EXPECT_EQ(CommandLine({"iptables", "-t", "nat", "-A", "a b", ""}), "iptables -t nat -A 'a b' ''");
}

}  // namespace
}  // namespace weft
