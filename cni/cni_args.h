#pragma once
// The CNI_* environment variables a runtime sets for each call (spec 1.0.0,
// "Parameters"), parsed and validated. Errors are CNI error 4 (invalid
// environment variables) naming the variable.

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace weft::cni {

enum class Command { kAdd, kDel, kCheck, kVersion };

absl::string_view CommandName(Command command);  // "ADD", "DEL", "CHECK", "VERSION"

struct CniArgs {
  Command command = Command::kVersion;
  std::string container_id;            // CNI_CONTAINERID
  std::string netns;                   // CNI_NETNS; may be empty for DEL
  std::string ifname;                  // CNI_IFNAME
  std::vector<std::string> path;       // CNI_PATH, split at ':'
};

// Looks up one environment variable; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const char* name)>;
// The process environment.
std::optional<std::string> ProcessEnv(const char* name);

// CNI_COMMAND alone (VERSION needs nothing else).
absl::StatusOr<Command> ParseCommand(const EnvLookup& env);

// Everything `command` needs: CNI_CONTAINERID, CNI_IFNAME and CNI_PATH for ADD,
// DEL and CHECK, CNI_NETNS for ADD and CHECK. The container ID becomes a file
// name, so it is held to the spec's alphabet (letters, digits, '_', '.', '-',
// starting with a letter or digit); the interface name to what Linux accepts.
absl::StatusOr<CniArgs> ParseCniArgs(const EnvLookup& env);

}  // namespace weft::cni
