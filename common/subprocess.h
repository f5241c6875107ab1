#pragma once
// The one way Weft runs another program: to completion with its output captured
// (RunSubprocess: iptables, CNI delegates, test tools), or as a long-running child
// owned by an object (Subprocess: daemons under test).
//
// Only async-signal-safe calls run between fork and exec, so these may be used from
// any thread of a threaded process. The child inherits the calling thread's network
// namespace. Thread-compatible: one Subprocess is used by one thread at a time.

#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace weft {

// Where administration tools live (iptables, ip, bridge); minimal environments
// (systemd units, Bazel's test runner) often leave them off PATH.
inline const std::vector<std::string>& SbinDirs() {
  static const auto* dirs = new std::vector<std::string>{"/usr/local/sbin", "/usr/sbin", "/sbin"};
  return *dirs;
}

struct SubprocessOptions {
  // argv[0] is the program: a path, or a name to look up (search_path).
  std::vector<std::string> argv;
  // Exactly this environment ("NAME=value" entries); unset: this process's.
  std::optional<std::vector<std::string>> env;
  // Looks argv[0], when it holds no '/', up on the PATH of the child's environment,
  // then in extra_search_dirs. Off: argv[0] is run as given.
  bool search_path = false;
  std::vector<std::string> extra_search_dirs;

  // Written to the child's stdin (RunSubprocess / Communicate), then closed; empty:
  // stdin is /dev/null. A child that exits without reading it all is not an error.
  std::string input;
  // stdout and stderr are captured (RunSubprocess / Communicate) unless sent to a
  // descriptor here; the caller keeps the descriptor (an open log file, or 2 for
  // our own stderr). A long-running child should write to descriptors: captured
  // output is read only by Communicate.
  int stdout_fd = -1;
  int stderr_fd = -1;
  // stderr goes wherever stdout goes (captured into `out`, or stdout_fd).
  bool merge_stderr = false;
  // More captured output than this (both streams together) is an error: the child
  // is killed and RunSubprocess fails with RESOURCE_EXHAUSTED.
  size_t max_output_bytes = 16 << 20;

  // RunSubprocess / Communicate: a child still running after this long is killed
  // (SIGKILL) and the run fails with DEADLINE_EXCEEDED.
  absl::Duration timeout = absl::InfiniteDuration();
  // RunSubprocess / Communicate: asked at least every 100 ms; when it answers true
  // the child is killed and the run fails with CANCELLED.
  std::function<bool()> cancelled;

  // The child leads a process group of its own: a terminal's Ctrl-C does not reach
  // it, and killing it (on timeout, cancellation, destruction) kills the group, so
  // whatever it started goes too.
  bool new_process_group = false;
  // The kernel kills the child (SIGKILL) when the thread that started it exits, so
  // a crashed parent leaves nothing behind. Start it from a thread that lives as
  // long as the child should.
  bool die_with_parent = false;
};

struct SubprocessResult {
  int exit_code = 0;  // 128 + signal when killed by one
  std::string out;    // stdout (and stderr when merged), when captured
  std::string err;    // stderr, when captured apart
};

// Runs the program to completion. Errors when it cannot be started (as
// Subprocess::Start), outlives the timeout, is cancelled or
// prints more than max_output_bytes; a non-zero exit is a result, not an error.
absl::StatusOr<SubprocessResult> RunSubprocess(const SubprocessOptions& options);

// A child process owned by this object: killed (SIGKILL, its group too when it
// leads one) and reaped by the destructor if still running. Movable.
class Subprocess {
 public:
  Subprocess() = default;
  ~Subprocess();
  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&& other) noexcept;
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  // Forks and execs; returns once exec has succeeded or failed. A program that
  // cannot be run (missing, not executable) is FAILED_PRECONDITION with the reason.
  // At most one child per object.
  absl::Status Start(SubprocessOptions options);

  // Feeds options.input, collects captured output until both streams close, and
  // reaps the child: RunSubprocess after Start, for callers that need the pid
  // while it runs. Errors as RunSubprocess.
  absl::StatusOr<SubprocessResult> Communicate();

  // kill(2) the child (not its group); an error once it has been reaped.
  absl::Status Signal(int sig);
  // Reaps the child if it has exited: its waitpid() status (ExitCode turns it into
  // an exit code). nullopt while it runs; -1 when there is no child.
  std::optional<int> TryWait();
  // As TryWait, waiting up to `timeout` for the exit.
  std::optional<int> Wait(absl::Duration timeout = absl::InfiniteDuration());

  // Started and not yet reaped.
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  // Gives up ownership: the caller must reap the pid (TryWaitPid / WaitPid).
  pid_t Release();

 private:
  void KillAndReap();
  void CloseFds();

  SubprocessOptions options_;
  pid_t pid_ = -1;
  int stdin_fd_ = -1;  // our ends of the pipes, while captured
  int out_fd_ = -1;
  int err_fd_ = -1;
};

// Reaps `pid` (a child of ours) if it has exited: its waitpid() status; nullopt
// while it runs; -1 when it is not (or no longer) our child.
std::optional<int> TryWaitPid(pid_t pid);
// As TryWaitPid, waiting up to `timeout` for the exit.
std::optional<int> WaitPid(pid_t pid, absl::Duration timeout);

// The exit code a shell reports for a waitpid() status: the code, or 128 + signal;
// -1 for anything else.
int ExitCode(int wait_status);

// This process's environment with `overrides` ("NAME=value") replacing or adding
// variables of the same name: for SubprocessOptions::env.
std::vector<std::string> EnvironmentWith(const std::vector<std::string>& overrides);

// "iptables -t nat -S" with each argument quoted when needed, for messages.
std::string CommandLine(const std::vector<std::string>& argv);

}  // namespace weft
