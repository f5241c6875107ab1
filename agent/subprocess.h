#pragma once
// Runs an administration tool (iptables, ip, wireguard-go) and collects what it
// prints: RunSubprocess with the lookup and streams these want. The kernel data
// path itself never runs a program (it speaks netlink).
//
// The child inherits the calling thread's network namespace, so a call from a
// thread that entered a namespace runs the program there. Thread-safe.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/subprocess.h"  // CommandLine, for messages about a command

namespace weft {

struct CommandResult {
  int exit_code = 0;   // 128 + signal when killed by one
  std::string output;  // stdout and stderr, interleaved
};

// Runs argv[0] (looked up on PATH, then in the sbin directories) with `input` on
// its standard input. Errors only when the program cannot be started
// (FAILED_PRECONDITION) or outlives `timeout` (it is then killed); a non-zero exit
// is a result, not an error.
absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         absl::string_view input = "",
                                         absl::Duration timeout = absl::Seconds(60));

}  // namespace weft
