#include "common/subprocess.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"

extern char** environ;

namespace weft {
namespace {

void CloseFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

absl::Status ErrnoError(absl::string_view what) { return absl::ErrnoToStatus(errno, what); }

absl::string_view NameOf(absl::string_view entry) { return entry.substr(0, entry.find('=')); }

// The program file for argv[0]: itself when it holds a '/' or lookup is off, else
// the first executable regular file of that name on the child's PATH or in the
// extra directories.
absl::StatusOr<std::string> FindProgram(const SubprocessOptions& o) {
  const std::string& name = o.argv[0];
  if (!o.search_path || absl::StrContains(name, '/')) return name;
  std::string path;
  if (o.env.has_value()) {
    for (const std::string& e : *o.env) {
      if (NameOf(e) == "PATH") path = e.substr(5);
    }
  } else if (const char* p = getenv("PATH"); p != nullptr) {
    path = p;
  }
  if (path.empty()) path = "/usr/local/bin:/usr/bin:/bin";
  std::vector<std::string> dirs = absl::StrSplit(path, ':', absl::SkipEmpty());
  dirs.insert(dirs.end(), o.extra_search_dirs.begin(), o.extra_search_dirs.end());
  for (const std::string& dir : dirs) {
    const std::string candidate = absl::StrCat(dir, "/", name);
    struct stat st;
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return absl::FailedPreconditionError(
      absl::StrCat("cannot run ", name, ": not found in ", absl::StrJoin(dirs, ":")));
}

// Everything the child needs, prepared before fork: it may not allocate.
struct ChildSetup {
  const char* program;
  char* const* argv;
  char* const* envp;
  int stdio[3];  // what becomes its stdin, stdout, stderr
  bool new_process_group;
  bool die_with_parent;
  pid_t parent;
  int exec_status_fd;  // CLOEXEC: the exec's errno, or EOF when exec succeeded
};

// Runs in the forked child: async-signal-safe calls only (the parent may have threads).
[[noreturn]] void ExecChild(const ChildSetup& c) {
  if (c.new_process_group) setpgid(0, 0);
  if (c.die_with_parent) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != c.parent) _exit(127);  // the parent died before prctl took effect
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  // exec keeps ignored signals ignored (a parent that ignores SIGPIPE, say): undo that.
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &dfl, nullptr);
  // Move the sources above 2 first, so that one dup2 cannot overwrite another's source.
  int src[3];
  for (int i = 0; i < 3; ++i) src[i] = c.stdio[i] < 3 ? fcntl(c.stdio[i], F_DUPFD_CLOEXEC, 3) : c.stdio[i];
  for (int i = 0; i < 3; ++i) dup2(src[i], i);
  // Nothing but stdio crosses the exec: a descriptor this process (or whatever
  // started it) left inheritable would otherwise live on in a daemon the child
  // becomes (wireguard-go outlives the agent). exec_status_fd is already
  // close-on-exec, so it still reports a failed exec. Kernels before 5.11 lack
  // the flag: the call fails and descriptors are inherited as before.
  syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
  execve(c.program, c.argv, c.envp);
  const int e = errno;
  (void)!write(c.exec_status_fd, &e, sizeof e);
  _exit(127);
}

// poll(2)'s timeout for a wait of `d`: -1 for ever, else whole milliseconds,
// rounded up (so a deadline is not missed by a hair) and capped.
int PollMillis(absl::Duration d) {
  if (d == absl::InfiniteDuration()) return -1;
  return static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(d) + 1, 1 << 30));
}

std::optional<int> ReapNow(pid_t pid) {
  int status = 0;
  pid_t r;
  while ((r = waitpid(pid, &status, WNOHANG)) < 0 && errno == EINTR) {
  }
  if (r == pid) return status;
  if (r < 0) return -1;  // ECHILD: not ours, or reaped already
  return std::nullopt;
}

// Waits for `pid` to exit until `deadline` or until `cancelled` answers true.
std::optional<int> WaitUntil(pid_t pid, absl::Time deadline, const std::function<bool()>& cancelled) {
  std::optional<int> status = ReapNow(pid);
  if (status) return status;
  // A pidfd turns readable when the process exits: no sleeping poll loop.
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  absl::Duration nap = absl::Milliseconds(1);
  while (!(status = ReapNow(pid))) {
    const absl::Time now = absl::Now();
    if (now >= deadline || (cancelled && cancelled())) break;
    absl::Duration wait = deadline - now;
    if (cancelled) wait = std::min(wait, absl::Milliseconds(100));
    if (pidfd >= 0) {
      pollfd p = {pidfd, POLLIN, 0};
      poll(&p, 1, PollMillis(wait));
    } else {
      absl::SleepFor(std::min(wait, nap));
      nap = std::min(nap * 2, absl::Milliseconds(10));
    }
  }
  if (pidfd >= 0) close(pidfd);
  return status;
}

}  // namespace

std::optional<int> TryWaitPid(pid_t pid) { return ReapNow(pid); }

std::optional<int> WaitPid(pid_t pid, absl::Duration timeout) {
  return WaitUntil(pid, absl::Now() + timeout, nullptr);
}

int ExitCode(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return -1;
}

std::vector<std::string> EnvironmentWith(const std::vector<std::string>& overrides) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    bool replaced = false;
    for (const std::string& o : overrides) replaced = replaced || NameOf(*e) == NameOf(o);
    if (!replaced) env.push_back(*e);
  }
  env.insert(env.end(), overrides.begin(), overrides.end());
  return env;
}

std::string CommandLine(const std::vector<std::string>& argv) {
  return absl::StrJoin(argv, " ", [](std::string* out, const std::string& a) {
    const bool plain = !a.empty() && a.find_first_of(" \t\"'\\$") == std::string::npos;
    absl::StrAppend(out, plain ? a : absl::StrCat("'", a, "'"));
  });
}

Subprocess::~Subprocess() { KillAndReap(); }

Subprocess::Subprocess(Subprocess&& other) noexcept { *this = std::move(other); }

Subprocess& Subprocess::operator=(Subprocess&& other) noexcept {
  if (this != &other) {
    KillAndReap();
    options_ = std::move(other.options_);
    pid_ = std::exchange(other.pid_, -1);
    stdin_fd_ = std::exchange(other.stdin_fd_, -1);
    out_fd_ = std::exchange(other.out_fd_, -1);
    err_fd_ = std::exchange(other.err_fd_, -1);
  }
  return *this;
}

void Subprocess::CloseFds() {
  CloseFd(stdin_fd_);
  CloseFd(out_fd_);
  CloseFd(err_fd_);
}

void Subprocess::KillAndReap() {
  CloseFds();
  if (pid_ <= 0) return;
  if (options_.new_process_group) kill(-pid_, SIGKILL);
  kill(pid_, SIGKILL);
  int status;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

pid_t Subprocess::Release() {
  CloseFds();
  return std::exchange(pid_, -1);
}

absl::Status Subprocess::Start(SubprocessOptions options) {
  if (pid_ > 0) return absl::FailedPreconditionError("Subprocess::Start: a child is running already");
  if (options.argv.empty()) return absl::InvalidArgumentError("Subprocess::Start: empty argv");
  options_ = std::move(options);
  absl::StatusOr<std::string> program = FindProgram(options_);
  if (!program.ok()) return program.status();

  // The child's ends, closed here once it has them; ours are kept in members.
  int child_in = -1, child_out = -1, child_err = -1, status_read = -1, status_write = -1;
  auto close_child_ends = [&] {
    for (int* fd : {&child_in, &child_out, &child_err, &status_write}) CloseFd(*fd);
  };
  auto fail = [&](absl::Status s) {
    close_child_ends();
    CloseFd(status_read);
    CloseFds();
    return s;
  };
  if (options_.input.empty()) {
    child_in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (child_in < 0) return fail(ErrnoError("open /dev/null"));
  } else {
    // A socket, not a pipe: writing after the child has gone fails with EPIPE
    // (MSG_NOSIGNAL) instead of raising SIGPIPE in this process.
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return fail(ErrnoError("socketpair"));
    child_in = sv[0];
    stdin_fd_ = sv[1];
  }
  auto capture = [&](int given, int* ours, int* theirs) -> absl::Status {
    if (given >= 0) return absl::OkStatus();
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return ErrnoError("pipe");
    *ours = p[0];
    *theirs = p[1];
    return absl::OkStatus();
  };
  if (absl::Status s = capture(options_.stdout_fd, &out_fd_, &child_out); !s.ok()) return fail(s);
  if (!options_.merge_stderr) {
    if (absl::Status s = capture(options_.stderr_fd, &err_fd_, &child_err); !s.ok()) return fail(s);
  }
  int status_pipe[2];
  if (pipe2(status_pipe, O_CLOEXEC) != 0) return fail(ErrnoError("pipe"));
  status_read = status_pipe[0];
  status_write = status_pipe[1];

  std::vector<char*> argv, envp;
  for (const std::string& a : options_.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  if (options_.env.has_value()) {
    for (const std::string& e : *options_.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
  }
  ChildSetup setup;
  setup.program = program->c_str();
  setup.argv = argv.data();
  setup.envp = options_.env.has_value() ? envp.data() : environ;
  setup.stdio[0] = child_in;
  setup.stdio[1] = options_.stdout_fd >= 0 ? options_.stdout_fd : child_out;
  setup.stdio[2] = options_.merge_stderr ? setup.stdio[1]
                   : options_.stderr_fd >= 0 ? options_.stderr_fd
                                             : child_err;
  setup.new_process_group = options_.new_process_group;
  setup.die_with_parent = options_.die_with_parent;
  setup.parent = getpid();
  setup.exec_status_fd = status_write;

  const pid_t pid = fork();
  if (pid < 0) return fail(ErrnoError("fork"));
  if (pid == 0) ExecChild(setup);
  close_child_ends();
  int exec_errno = 0;
  ssize_t n;
  while ((n = read(status_read, &exec_errno, sizeof exec_errno)) < 0 && errno == EINTR) {
  }
  CloseFd(status_read);
  if (n > 0) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    CloseFds();
    return absl::FailedPreconditionError(absl::StrCat("cannot run ", *program, ": ", std::strerror(exec_errno)));
  }
  pid_ = pid;
  return absl::OkStatus();
}

absl::Status Subprocess::Signal(int sig) {
  if (pid_ <= 0) return absl::FailedPreconditionError("no child process");
  if (kill(pid_, sig) != 0) return ErrnoError(absl::StrCat("kill ", pid_));
  return absl::OkStatus();
}

std::optional<int> Subprocess::TryWait() {
  if (pid_ <= 0) return -1;
  std::optional<int> status = TryWaitPid(pid_);
  if (status) pid_ = -1;
  return status;
}

std::optional<int> Subprocess::Wait(absl::Duration timeout) {
  if (pid_ <= 0) return -1;
  std::optional<int> status = WaitPid(pid_, timeout);
  if (status) pid_ = -1;
  return status;
}

absl::StatusOr<SubprocessResult> Subprocess::Communicate() {
  if (pid_ <= 0) return absl::FailedPreconditionError("Subprocess::Communicate: no child process");
  const absl::Time deadline = absl::Now() + options_.timeout;
  const std::function<bool()>& cancelled = options_.cancelled;
  absl::string_view input = options_.input;
  SubprocessResult result;
  // Why the child had to be killed, if it had to be.
  absl::Status failure;
  // Feed stdin and drain both outputs in one loop: the child may fill any pipe first.
  while (stdin_fd_ >= 0 || out_fd_ >= 0 || err_fd_ >= 0) {
    const absl::Time now = absl::Now();
    if (now >= deadline) {
      failure = absl::DeadlineExceededError("");
      break;
    }
    if (cancelled && cancelled()) {
      failure = absl::CancelledError("");
      break;
    }
    absl::Duration wait = deadline - now;
    if (cancelled) wait = std::min(wait, absl::Milliseconds(100));
    pollfd fds[3] = {{stdin_fd_, POLLOUT, 0}, {out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
    if (poll(fds, 3, PollMillis(wait)) < 0) {
      if (errno == EINTR) continue;
      failure = ErrnoError("poll");
      break;
    }
    if (stdin_fd_ >= 0 && fds[0].revents != 0) {
      const ssize_t w = send(stdin_fd_, input.data(), input.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w > 0) input.remove_prefix(w);
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || input.empty()) CloseFd(stdin_fd_);
    }
    for (int i = 1; i <= 2; ++i) {
      int& fd = i == 1 ? out_fd_ : err_fd_;
      if (fd < 0 || fds[i].revents == 0) continue;
      char buf[65536];
      const ssize_t r = read(fd, buf, sizeof buf);
      if (r > 0) {
        (i == 1 ? result.out : result.err).append(buf, r);
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        CloseFd(fd);
      }
    }
    if (result.out.size() + result.err.size() > options_.max_output_bytes) {
      failure = absl::ResourceExhaustedError("");
      break;
    }
  }
  CloseFd(stdin_fd_);
  if (failure.ok()) {
    // Input written and both streams closed; the child may still run.
    if (std::optional<int> status = WaitUntil(pid_, deadline, cancelled)) {
      pid_ = -1;
      CloseFds();
      result.exit_code = ExitCode(*status);
      return result;
    }
    failure = absl::Now() >= deadline ? absl::DeadlineExceededError("") : absl::CancelledError("");
  }
  KillAndReap();
  const std::string command = CommandLine(options_.argv);
  switch (failure.code()) {
    case absl::StatusCode::kDeadlineExceeded:
      return absl::DeadlineExceededError(absl::StrCat(command, " did not finish within ",
                                                      absl::FormatDuration(options_.timeout), "; killed"));
    case absl::StatusCode::kCancelled:
      return absl::CancelledError(absl::StrCat(command, ": cancelled; killed"));
    case absl::StatusCode::kResourceExhausted:
      return absl::ResourceExhaustedError(
          absl::StrCat(command, " printed more than ", options_.max_output_bytes, " bytes; killed"));
    default:
      return absl::Status(failure.code(), absl::StrCat(command, ": ", failure.message(), "; killed"));
  }
}

absl::StatusOr<SubprocessResult> RunSubprocess(const SubprocessOptions& options) {
  Subprocess child;
  if (absl::Status s = child.Start(options); !s.ok()) return s;
  return child.Communicate();
}

}  // namespace weft
