#include "tests/cluster/processes.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/subprocess.h"
#include "tests/cluster/cleanup_registry.h"

namespace weft::testing {
namespace {

// How the harness runs everything: `argv` looked up on PATH, in a process group
// of its own, dying with the calling thread.
SubprocessOptions HarnessOptions(const std::vector<std::string>& argv) {
  SubprocessOptions options;
  options.argv = argv;
  options.search_path = true;
  options.new_process_group = true;
  options.die_with_parent = true;
  return options;
}

// Starts `argv` with stdout and stderr on the given descriptor and stdin on
// /dev/null, tracked until reaped.
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv, int out_fd, int err_fd) {
  SubprocessOptions options = HarnessOptions(argv);
  options.stdout_fd = out_fd;
  options.stderr_fd = err_fd;
  Subprocess child;
  if (absl::Status s = child.Start(std::move(options)); !s.ok()) return s;
  const pid_t pid = child.Release();
  TrackPid(pid);
  return pid;
}

}  // namespace

std::string ExecResult::ToString() const {
  return absl::StrCat("exit ", exit_code, "\n--- stdout\n", out, "--- stderr\n", err);
}

void EnsureSbinOnPath() {
  const char* path = getenv("PATH");
  std::string p = path ? path : "/usr/local/bin:/usr/bin:/bin";
  bool changed = false;
  for (const char* dir : {"/usr/sbin", "/sbin", "/usr/bin", "/bin"}) {
    std::vector<absl::string_view> parts = absl::StrSplit(p, ':');
    if (std::find(parts.begin(), parts.end(), dir) == parts.end()) {
      absl::StrAppend(&p, ":", dir);
      changed = true;
    }
  }
  if (changed) setenv("PATH", p.c_str(), 1);
}

absl::StatusOr<pid_t> SpawnLogged(const std::string& ns, const std::vector<std::string>& argv,
                                  const std::string& log_file) {
  const int log = open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) return absl::InternalError(absl::StrCat("open ", log_file, ": ", std::strerror(errno)));
  const std::string banner =
      absl::StrCat("### ", absl::FormatTime(absl::Now()), " start: ", absl::StrJoin(argv, " "), "\n");
  (void)!write(log, banner.data(), banner.size());
  std::vector<std::string> full = {"ip", "netns", "exec", ns};
  full.insert(full.end(), argv.begin(), argv.end());
  absl::StatusOr<pid_t> pid = Spawn(full, log, log);
  close(log);
  return pid;
}

std::optional<int> TryReap(pid_t pid) {
  std::optional<int> status = TryWaitPid(pid);
  if (status) UntrackPid(pid);
  return status;
}

std::optional<int> WaitExit(pid_t pid, absl::Duration timeout) {
  std::optional<int> status = WaitPid(pid, timeout);
  if (status) UntrackPid(pid);
  return status;
}

std::pair<int, bool> Terminate(pid_t pid, absl::Duration timeout) {
  kill(pid, SIGTERM);
  if (std::optional<int> s = WaitExit(pid, timeout)) {
    kill(-pid, SIGKILL);  // anything it left in its group
    return {ExitCode(*s), false};
  }
  kill(-pid, SIGKILL);
  kill(pid, SIGKILL);
  std::optional<int> s = WaitExit(pid, absl::Seconds(10));
  return {s ? ExitCode(*s) : -1, true};
}

void KillAndReap(pid_t pid) {
  kill(-pid, SIGKILL);
  kill(pid, SIGKILL);
  WaitExit(pid, absl::Seconds(10));
}

absl::StatusOr<ExecResult> RunCaptured(const std::vector<std::string>& argv, absl::Duration timeout,
                                       bool cancellable) {
  SubprocessOptions options = HarnessOptions(argv);
  options.timeout = timeout;
  if (cancellable) options.cancelled = [] { return InterruptReceived(); };
  Subprocess child;
  if (absl::Status s = child.Start(std::move(options)); !s.ok()) return s;
  const pid_t pid = child.pid();
  TrackPid(pid);
  absl::StatusOr<SubprocessResult> r = child.Communicate();
  UntrackPid(pid);
  if (absl::IsCancelled(r.status())) return absl::CancelledError("interrupted");
  if (!r.ok()) return r.status();
  ExecResult result;
  result.exit_code = r->exit_code;
  result.out = std::move(r->out);
  result.err = std::move(r->err);
  return result;
}

absl::StatusOr<ExecResult> ExecInNamespace(absl::string_view ns, const std::vector<std::string>& argv,
                                           absl::Duration timeout) {
  // A typo must not touch the real host.
  if (ns.empty()) return absl::InvalidArgumentError("Exec needs a namespace");
  std::vector<std::string> full = {"ip", "netns", "exec", std::string(ns)};
  full.insert(full.end(), argv.begin(), argv.end());
  return RunCaptured(full, timeout, /*cancellable=*/true);
}

absl::StatusOr<std::string> ShInNamespace(absl::string_view ns, absl::string_view command,
                                          absl::Duration timeout) {
  absl::StatusOr<ExecResult> r = ExecInNamespace(ns, {"sh", "-c", std::string(command)}, timeout);
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    return absl::InternalError(absl::StrCat("in ", ns, ": `", command, "` ", r->ToString()));
  }
  return r->out;
}

void KillProcessesIn(const std::string& ns) {
  if (absl::StatusOr<ExecResult> pids = RunCaptured({"ip", "netns", "pids", ns}, absl::Seconds(10));
      pids.ok()) {
    for (absl::string_view p : absl::StrSplit(pids->out, '\n', absl::SkipWhitespace())) {
      int pid;
      if (absl::SimpleAtoi(p, &pid) && pid > 1 && pid != getpid()) kill(pid, SIGKILL);
    }
  }
}

std::vector<std::string> PrivateRunWireguard(const std::string& dir) {
  return {"unshare", "--mount", "--propagation", "private", "sh", "-c",
          "mkdir -p /run/wireguard && mount --bind \"$0\" /run/wireguard && exec \"$@\"", dir};
}

std::string TailOfFile(const std::string& path, int lines) {
  std::ifstream f(path);
  if (!f) return "(no log)";
  std::vector<std::string> all;
  for (std::string line; std::getline(f, line);) all.push_back(line);
  const size_t from = all.size() > static_cast<size_t>(lines) ? all.size() - lines : 0;
  std::string out;
  for (size_t i = from; i < all.size(); ++i) absl::StrAppend(&out, "  | ", all[i], "\n");
  return out;
}

}  // namespace weft::testing
