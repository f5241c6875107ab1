#pragma once
// Runs a program and collects what it prints. Used for iptables (masquerade) and by
// tests; the kernel data path itself never runs a program (it speaks netlink).
//
// The child inherits the calling thread's network namespace, so a call from a
// thread that entered a namespace runs the program there. Thread-safe.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace weft {

struct CommandResult {
  int exit_code = 0;   // 128 + signal when killed by one
  std::string output;  // stdout and stderr, interleaved
};

// Runs argv[0] (looked up on PATH, then in the sbin directories) with `input` on its standard input. Errors only
// when the program cannot be started or outlives `timeout` (it is then killed);
// a non-zero exit is a result, not an error.
absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         absl::string_view input = "",
                                         absl::Duration timeout = absl::Seconds(60));

// "iptables -t nat -S" with each argument quoted when needed, for messages.
std::string CommandLine(const std::vector<std::string>& argv);

}  // namespace weft
