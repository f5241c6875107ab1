#include "cni/delegate.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cni/cni_error.h"

extern char** environ;

namespace weft::cni {
namespace {

struct ChildOutput {
  int exit_code = 0;
  std::string out;
  std::string err;
};

absl::Status ErrnoError(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

void CloseFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

// Runs `path` with `env`, feeding `input` and collecting stdout and stderr, all
// through one poll loop so that neither side can block the other.
absl::StatusOr<ChildOutput> RunChild(const std::string& path, const std::vector<std::string>& env,
                                     absl::string_view input) {
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
  std::vector<char*> envp;
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  char* argv[] = {const_cast<char*>(path.c_str()), nullptr};

  const pid_t pid = fork();
  if (pid < 0) {
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) close(fd);
    return ErrnoError("fork");
  }
  if (pid == 0) {
    // Between fork and exec only async-signal-safe calls.
    signal(SIGPIPE, SIG_DFL);
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    execve(path.c_str(), argv, envp.data());
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

// This process's environment with CNI_COMMAND replaced.
std::vector<std::string> ChildEnv(Command command) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!absl::StartsWith(*e, "CNI_COMMAND=")) env.push_back(*e);
  }
  env.push_back(absl::StrCat("CNI_COMMAND=", CommandName(command)));
  return env;
}

}  // namespace

absl::StatusOr<std::string> FindPlugin(absl::string_view type, const std::vector<std::string>& dirs) {
  for (const std::string& dir : dirs) {
    const std::string path = absl::StrCat(dir, "/", type);
    struct stat st;
    if (stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0) {
      return path;
    }
  }
  return CniError(kOther, absl::StrCat("cannot find the delegate plugin \"", type, "\" on CNI_PATH"),
                  absl::StrCat("CNI_PATH=", absl::StrJoin(dirs, ":")));
}

absl::Status DelegateFailure(absl::string_view type, Command command, int exit_code,
                             absl::string_view output, absl::string_view errors) {
  const std::string what = absl::StrCat("delegate ", type, " ", CommandName(command), " failed");
  nlohmann::json j = nlohmann::json::parse(output.begin(), output.end(), nullptr, false);
  if (j.is_object() && j.contains("code") && j["code"].is_number_unsigned() && j.contains("msg") &&
      j["msg"].is_string()) {
    std::string details = j.value("details", "");
    return CniError(j["code"].get<int>(), absl::StrCat(what, ": ", j["msg"].get<std::string>()), details);
  }
  const std::string how = exit_code > 128 ? absl::StrCat("killed by signal ", exit_code - 128)
                                          : absl::StrCat("exit code ", exit_code);
  return CniError(kOther, absl::StrCat(what, " (", how, ") without a CNI error"),
                  absl::StrCat("stdout: ", output, "\nstderr: ", errors));
}

absl::StatusOr<std::string> ExecDelegateRunner::Run(absl::string_view type, Command command,
                                                    absl::string_view config) {
  absl::StatusOr<std::string> path = FindPlugin(type, cni_path_);
  if (!path.ok()) return path.status();
  absl::StatusOr<ChildOutput> child = RunChild(*path, ChildEnv(command), config);
  if (!child.ok()) {
    return CniError(kOther, absl::StrCat("cannot run delegate ", *path, ": ", child.status().message()));
  }
  // Runtimes log plugins' stderr: keep the delegate's where they look.
  if (!child->err.empty()) (void)!write(2, child->err.data(), child->err.size());
  if (child->exit_code != 0) {
    return DelegateFailure(type, command, child->exit_code, child->out, child->err);
  }
  return std::move(child->out);
}

}  // namespace weft::cni
