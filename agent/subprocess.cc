#include "agent/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

extern char** environ;

namespace weft {
namespace {

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { Close(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

absl::Status ErrnoError(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// PATH, plus the sbin directories: administration tools (iptables, bridge) live
// there, and minimal environments (systemd units, Bazel's test runner) often
// leave them out.
std::string SearchPath() {
  const char* path = getenv("PATH");
  std::string out = path != nullptr && *path != '\0' ? path : "/usr/local/bin:/usr/bin:/bin";
  for (const char* dir : {"/usr/local/sbin", "/usr/sbin", "/sbin"}) {
    const std::string padded = absl::StrCat(":", out, ":");
    if (padded.find(absl::StrCat(":", dir, ":")) == std::string::npos) absl::StrAppend(&out, ":", dir);
  }
  return out;
}

// The program file for argv0: itself when it holds a '/', else the first
// executable of that name on SearchPath().
std::string FindProgram(const std::string& argv0) {
  if (argv0.find('/') != std::string::npos) return argv0;
  for (absl::string_view dir : absl::StrSplit(SearchPath(), ':', absl::SkipEmpty())) {
    std::string candidate = absl::StrCat(dir, "/", argv0);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return argv0;
}

}  // namespace

std::string CommandLine(const std::vector<std::string>& argv) {
  return absl::StrJoin(argv, " ", [](std::string* out, const std::string& a) {
    const bool plain = !a.empty() && a.find_first_of(" \t\"'\\$") == std::string::npos;
    absl::StrAppend(out, plain ? a : absl::StrCat("'", a, "'"));
  });
}

absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         absl::string_view input, absl::Duration timeout) {
  if (argv.empty()) return absl::InvalidArgumentError("RunCommand: empty argv");
  int in_pipe[2], out_pipe[2];
  // stdin is a socket so that writing after the child has gone fails with EPIPE
  // (MSG_NOSIGNAL) instead of killing us with SIGPIPE.
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in_pipe) != 0) {
    return ErrnoError("socketpair");
  }
  Fd in_read(in_pipe[0]), in_write(in_pipe[1]);
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return ErrnoError("pipe");
  Fd out_read(out_pipe[0]), out_write(out_pipe[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_read.get(), 0);
  posix_spawn_file_actions_adddup2(&actions, out_write.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, out_write.get(), 2);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  const std::string program = FindProgram(argv[0]);
  const int err = posix_spawn(&pid, program.c_str(), &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot run ", argv[0], ": ", std::strerror(err)));
  }
  in_read.Close();
  out_write.Close();
  if (input.empty()) in_write.Close();

  // Feed stdin and drain stdout together: either side may fill a pipe.
  CommandResult result;
  size_t written = 0;
  const absl::Time deadline = absl::Now() + timeout;
  bool timed_out = false;
  while (out_read.get() >= 0) {
    pollfd fds[2];
    int n = 0;
    fds[n++] = {out_read.get(), POLLIN, 0};
    if (in_write.get() >= 0) fds[n++] = {in_write.get(), POLLOUT, 0};
    const int64_t left_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left_ms <= 0) {
      timed_out = true;
      break;
    }
    if (poll(fds, n, static_cast<int>(left_ms)) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[4096];
      const ssize_t r = read(out_read.get(), buf, sizeof(buf));
      if (r > 0) {
        result.output.append(buf, r);
      } else if (r == 0 || errno != EINTR) {
        out_read.Close();
      }
    }
    if (n == 2 && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
      const ssize_t w = send(in_write.get(), input.data() + written, input.size() - written,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w > 0) written += w;
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) in_write.Close();
    }
  }
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return absl::DeadlineExceededError(absl::StrCat(CommandLine(argv), " did not finish within ",
                                                    absl::FormatDuration(timeout), "; killed"));
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace weft
