#include "tests/integration/process.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>

namespace weft::testing {

bool Process::Start(const std::vector<std::string>& argv, const std::string& log_path) {
  const int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  SubprocessOptions options;
  options.argv = argv;
  options.stdout_fd = log >= 0 ? log : 2;
  options.merge_stderr = true;
  options.die_with_parent = true;
  const absl::Status started = child_.Start(std::move(options));
  if (log >= 0) close(log);
  if (!started.ok()) std::fprintf(stderr, "Process::Start: %s\n", started.ToString().c_str());
  return started.ok();
}

void Process::Kill(int sig) { (void)child_.Signal(sig); }

int Process::Wait() { return *child_.Wait(); }

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

int RunCommand(const std::vector<std::string>& argv, std::string* out, const std::string& stdin_text) {
  SubprocessOptions options;
  options.argv = argv;
  options.input = stdin_text;
  options.stderr_fd = 2;
  options.die_with_parent = true;
  absl::StatusOr<SubprocessResult> r = RunSubprocess(options);
  if (out != nullptr) *out = r.ok() ? std::move(r->out) : r.status().ToString();
  return r.ok() ? r->exit_code : -1;
}

std::string Runfile(const std::string& path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* ws = std::getenv("TEST_WORKSPACE");
  if (srcdir) return std::string(srcdir) + "/" + (ws ? ws : "weft") + "/" + path;
  return path;
}

int64_t ProcStatusKiB(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, field.size() + 1, field + ":") == 0) return std::stoll(line.substr(field.size() + 1));
  }
  return -1;
}

double ProcCpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces), from field 3 on:
  // utime and stime are fields 14 and 15, so the 12th and 13th of these.
  const size_t close = s.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(s.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i >= 14) ticks += std::stod(field);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace weft::testing
