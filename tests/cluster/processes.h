#pragma once
// How the cluster harness runs programs: each child leads its own process group
// (a terminal's Ctrl-C reaches only the harness; killing the group kills all it
// started), dies with the thread that started it, finds /usr/sbin on PATH, and
// is tracked in the cleanup registry until reaped.

#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace weft::testing {

// What a program printed and how it ended.
struct ExecResult {
  int exit_code = 0;  // 128 + signal number when killed by a signal
  std::string out;    // standard output
  std::string err;    // standard error
  std::string ToString() const;  // for failure messages
};

// Adds the sbin directories to PATH when missing: children need iptables, sysctl
// and bridge even under Bazel's strict action environment.
void EnsureSbinOnPath();

// Starts `argv` inside namespace `ns` (`ip netns exec`) with stdout and stderr
// appended to `log_file` after a banner line. Not reaped: see TryReap, WaitExit,
// Terminate, KillAndReap.
absl::StatusOr<pid_t> SpawnLogged(const std::string& ns, const std::vector<std::string>& argv,
                                  const std::string& log_file);
// Reaps `pid` if it has exited: its wait status.
std::optional<int> TryReap(pid_t pid);
// Waits up to `timeout` for `pid` to exit: its wait status.
std::optional<int> WaitExit(pid_t pid, absl::Duration timeout);
// SIGTERM, up to `timeout`, then SIGKILL; the exit code, and whether it had to be
// killed. Whatever it left in its process group is killed either way.
std::pair<int, bool> Terminate(pid_t pid, absl::Duration timeout);
// SIGKILL to the process and its group, then reaped.
void KillAndReap(pid_t pid);

// Runs argv in the current namespace, capturing both streams; an error only when
// it cannot run or outlives `timeout`. A `cancellable` run is killed when an
// interrupt arrives (cleanup commands are not).
absl::StatusOr<ExecResult> RunCaptured(const std::vector<std::string>& argv, absl::Duration timeout,
                                       bool cancellable = false);
// RunCaptured of argv inside namespace `ns`, cancellable. Never in the machine's
// own namespace: an empty `ns` is an error.
absl::StatusOr<ExecResult> ExecInNamespace(absl::string_view ns, const std::vector<std::string>& argv,
                                           absl::Duration timeout);
// ExecInNamespace of `sh -c command`; its stdout, or an error unless it exits 0.
absl::StatusOr<std::string> ShInNamespace(absl::string_view ns, absl::string_view command,
                                          absl::Duration timeout = absl::Seconds(30));
// SIGKILL to every process inside namespace `ns` (they would keep it alive
// after its name is gone), except this one.
void KillProcessesIn(const std::string& ns);

// The prefix of a command line that runs the rest in a new mount namespace in
// which `dir` is mounted on /run/wireguard (wireguard-go's fixed socket
// directory, /var/run/wireguard): each host its own, invisible to the machine.
std::vector<std::string> PrivateRunWireguard(const std::string& dir);

// The last `lines` lines of a log, indented, for error messages.
std::string TailOfFile(const std::string& path, int lines);

}  // namespace weft::testing
