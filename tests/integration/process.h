#pragma once
// A child process for integration tests: started with fork/exec, killed (SIGKILL)
// by the destructor if still running, so a failing test leaves nothing behind.

#include <signal.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace weft::testing {

class Process {
 public:
  Process() = default;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process() { Kill(SIGKILL); Wait(); }

  // Starts argv[0] with `argv`; stderr and stdout go to `log_path` (appended).
  bool Start(const std::vector<std::string>& argv, const std::string& log_path);
  void Kill(int sig);
  // Waits for exit; returns the wait status, or -1 if not running.
  int Wait();
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();

// Runs a command to completion; returns its exit code and its stdout.
int RunCommand(const std::vector<std::string>& argv, std::string* out, const std::string& stdin_text = "");

// Path of a runfile (a data dependency), e.g. "controller/weft-controller".
std::string Runfile(const std::string& path);

// A "Name:   123 kB" field of /proc/<pid>/status ("VmRSS", "VmHWM", "RssAnon"...)
// in KiB; -1 when the process or the field is not there.
int64_t ProcStatusKiB(pid_t pid, const std::string& field);

// User + system CPU time the process has used, in seconds (/proc/<pid>/stat);
// -1 when it is not there.
double ProcCpuSeconds(pid_t pid);

}  // namespace weft::testing
