#pragma once
// Child processes for integration tests, on common/subprocess: a Process is killed
// (SIGKILL) by its destructor if still running, and by the kernel if the test
// dies first, so a failing or crashing test leaves nothing behind.

#include <signal.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/subprocess.h"

namespace weft::testing {

class Process {
 public:
  // Starts argv[0] (a path) with `argv`; stdout and stderr go to `log_path`
  // (appended). False, with the reason on stderr, when it cannot be started.
  // Start from a thread that outlives the child: the child dies with it.
  bool Start(const std::vector<std::string>& argv, const std::string& log_path);
  void Kill(int sig);
  // Waits for exit; returns the wait status, or -1 if not running.
  int Wait();
  bool running() const { return child_.running(); }
  pid_t pid() const { return child_.pid(); }

 private:
  Subprocess child_;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();

// Runs a command (a path) to completion; returns its exit code and its stdout
// (stderr goes to ours); -1, with the reason in *out, when it cannot be run.
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
