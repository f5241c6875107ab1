#pragma once
// Runs a program to completion with a given input, collecting its stdout and
// stderr: how weft-cni calls its delegate, and how tests call weft-cni as a
// runtime would. Thread-compatible.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace weft::cni {

struct ChildOutput {
  int exit_code = 0;  // 128 + signal when killed by one
  std::string out;
  std::string err;
};

// Runs argv[0] (a path: no PATH lookup) with `argv` and exactly the environment
// `env` ("NAME=value" entries), writing `input` to its stdin. stdin, stdout and
// stderr go through one poll loop, so a child that prints much before reading,
// or never reads, cannot deadlock us. Errors only when the program cannot be
// started; a non-zero exit is a result. The caller must ignore SIGPIPE (the
// child's SIGPIPE is reset to the default).
absl::StatusOr<ChildOutput> RunChildProcess(const std::vector<std::string>& argv,
                                            const std::vector<std::string>& env,
                                            absl::string_view input);

// This process's environment, with `overrides` ("NAME=value") replacing or adding
// variables of the same name.
std::vector<std::string> EnvironmentWith(const std::vector<std::string>& overrides);

}  // namespace weft::cni
