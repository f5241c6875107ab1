#include "cni/cni_args.h"

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cni/cni_error.h"
#include "common/status_macros.h"

namespace weft::cni {
namespace {

absl::Status InvalidEnv(absl::string_view msg, absl::string_view details = "") {
  return CniError(kInvalidEnvironment, msg, details);
}

absl::Status ValidateContainerId(absl::string_view id) {
  bool ok = !id.empty() && absl::ascii_isalnum(static_cast<unsigned char>(id[0]));
  for (char c : id) {
    ok = ok && (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-');
  }
  if (ok) return absl::OkStatus();
  return InvalidEnv("invalid characters in CNI_CONTAINERID (allowed: letters, digits, '_', '.', "
                    "'-', starting with a letter or digit)",
                    id);
}

absl::Status ValidateIfname(absl::string_view name) {
  // IFNAMSIZ is 16 with the terminating NUL; the kernel refuses '/', ':' and
  // whitespace, and "." and ".." would be directory names under /sys/class/net.
  if (name.empty()) return InvalidEnv("CNI_IFNAME is empty");
  if (name.size() > 15) return InvalidEnv("CNI_IFNAME is longer than 15 characters", name);
  if (name == "." || name == "..") return InvalidEnv("CNI_IFNAME may not be \".\" or \"..\"", name);
  for (char c : name) {
    if (c == '/' || c == ':' || absl::ascii_isspace(static_cast<unsigned char>(c))) {
      return InvalidEnv("CNI_IFNAME holds '/', ':' or whitespace", name);
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view CommandName(Command command) {
  switch (command) {
    case Command::kAdd:
      return "ADD";
    case Command::kDel:
      return "DEL";
    case Command::kCheck:
      return "CHECK";
    case Command::kVersion:
      return "VERSION";
  }
  return "?";
}

std::optional<std::string> ProcessEnv(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

absl::StatusOr<Command> ParseCommand(const EnvLookup& env) {
  const std::optional<std::string> cmd = env("CNI_COMMAND");
  if (!cmd || cmd->empty()) return InvalidEnv("required environment variable CNI_COMMAND is missing");
  for (Command c : {Command::kAdd, Command::kDel, Command::kCheck, Command::kVersion}) {
    if (*cmd == CommandName(c)) return c;
  }
  return InvalidEnv(absl::StrCat("unknown CNI_COMMAND: ", *cmd),
                    "weft-cni knows ADD, DEL, CHECK and VERSION");
}

absl::StatusOr<CniArgs> ParseCniArgs(const EnvLookup& env) {
  CniArgs args;
  ASSIGN_OR_RETURN(args.command, ParseCommand(env));
  if (args.command == Command::kVersion) return args;

  const bool needs_netns = args.command != Command::kDel;
  std::vector<std::string> missing;
  auto get = [&](const char* name, bool required) {
    std::optional<std::string> v = env(name);
    if (required && (!v || v->empty())) missing.push_back(name);
    return v.value_or("");
  };
  args.container_id = get("CNI_CONTAINERID", true);
  args.netns = get("CNI_NETNS", needs_netns);
  args.ifname = get("CNI_IFNAME", true);
  const std::string path = get("CNI_PATH", true);
  if (!missing.empty()) {
    return InvalidEnv(absl::StrCat("required environment variables missing: ", absl::StrJoin(missing, ", ")));
  }
  RETURN_IF_ERROR(ValidateContainerId(args.container_id));
  RETURN_IF_ERROR(ValidateIfname(args.ifname));
  args.path = absl::StrSplit(path, ':', absl::SkipEmpty());
  return args;
}

}  // namespace weft::cni
