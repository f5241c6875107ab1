#include "cni/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

extern char** environ;

namespace weft::cni {
namespace {

absl::Status ErrnoError(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

void CloseFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

absl::string_view NameOf(absl::string_view entry) { return entry.substr(0, entry.find('=')); }

}  // namespace

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

absl::StatusOr<ChildOutput> RunChildProcess(const std::vector<std::string>& argv,
                                            const std::vector<std::string>& env,
                                            absl::string_view input) {
  if (argv.empty()) return absl::InvalidArgumentError("RunChildProcess: empty argv");
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0) return ErrnoError("pipe");
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]), close(in[1]);
    return ErrnoError("pipe");
  }
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(in[0]), close(in[1]), close(out[0]), close(out[1]);
    return ErrnoError("pipe");
  }
  // Built before fork: between fork and exec only async-signal-safe calls.
  std::vector<char*> argvp, envp;
  for (const std::string& a : argv) argvp.push_back(const_cast<char*>(a.c_str()));
  argvp.push_back(nullptr);
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  const pid_t pid = fork();
  if (pid < 0) {
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) close(fd);
    return ErrnoError("fork");
  }
  if (pid == 0) {
    signal(SIGPIPE, SIG_DFL);
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    execve(argvp[0], argvp.data(), envp.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  int to_child = in[1], from_out = out[0], from_err = err[0];
  fcntl(to_child, F_SETFL, O_NONBLOCK);
  if (input.empty()) CloseFd(to_child);

  ChildOutput result;
  char buf[8192];
  while (from_out >= 0 || from_err >= 0) {
    pollfd fds[3] = {{to_child, POLLOUT, 0}, {from_out, POLLIN, 0}, {from_err, POLLIN, 0}};
    if (poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      break;  // cannot happen with valid fds; the child is still reaped below
    }
    if (to_child >= 0 && fds[0].revents != 0) {
      const ssize_t n = write(to_child, input.data(), input.size());
      if (n > 0) input.remove_prefix(n);
      if ((n < 0 && errno != EAGAIN && errno != EINTR) || input.empty()) CloseFd(to_child);
    }
    for (int i = 1; i <= 2; ++i) {
      int& fd = i == 1 ? from_out : from_err;
      if (fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = read(fd, buf, sizeof buf);
      if (n > 0) {
        (i == 1 ? result.out : result.err).append(buf, n);
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        CloseFd(fd);
      }
    }
  }
  CloseFd(to_child);
  CloseFd(from_out);
  CloseFd(from_err);

  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoError("waitpid");
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace weft::cni
