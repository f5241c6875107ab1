#include "common/flags.h"

#include <cstdlib>
#include <set>
#include <string>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"

namespace weft {
namespace {

const absl::CommandLineFlag* FindFlag(absl::string_view name) {
  const absl::CommandLineFlag* f = absl::FindCommandLineFlag(name);
  return f != nullptr && !f->IsRetired() ? f : nullptr;
}

bool IsBoolFlag(absl::string_view name) {
  const absl::CommandLineFlag* f = FindFlag(name);
  return f != nullptr && f->IsOfType<bool>();
}

// Abseil's own flags (--help, --flagfile, --fromenv...) are not read from the
// environment.
bool IsAbseilFlag(const absl::CommandLineFlag& f) { return absl::StrContains(f.Filename(), "absl/flags/"); }

// One command-line argument rewritten for Abseil: dashes in the flag name become
// underscores, "--no-foo" becomes "--nofoo" for a bool flag foo. `given` is the
// flag the argument sets (empty when it names no known flag). `takes_next` says
// the next argument is this flag's value ("--port 80").
struct Rewritten {
  std::string arg;
  std::string given;
  bool takes_next = false;
};

Rewritten RewriteFlagArg(absl::string_view arg) {
  const absl::string_view dashes = absl::StartsWith(arg, "--") ? "--" : "-";
  absl::string_view body = arg.substr(dashes.size());
  const size_t eq = body.find('=');
  const absl::string_view value = eq == absl::string_view::npos ? "" : body.substr(eq);  // with '='
  std::string name = absl::StrReplaceAll(body.substr(0, eq), {{"-", "_"}});

  Rewritten r;
  if (FindFlag(name) != nullptr) {
    r.given = name;
    r.takes_next = eq == absl::string_view::npos && !IsBoolFlag(name);
  } else if (absl::StartsWith(name, "no") && IsBoolFlag(absl::StripPrefix(name, "no"))) {
    r.given = std::string(absl::StripPrefix(name, "no"));
  } else if (absl::StartsWith(name, "no_") && IsBoolFlag(absl::StripPrefix(name, "no_"))) {
    r.given = std::string(absl::StripPrefix(name, "no_"));
    name = absl::StrCat("no", r.given);
  }
  r.arg = absl::StrCat(dashes, name, value);
  return r;
}

}  // namespace

std::string EnvVarForFlag(absl::string_view env_prefix, absl::string_view flag_name) {
  return absl::StrCat(env_prefix, absl::AsciiStrToUpper(absl::StrReplaceAll(flag_name, {{"-", "_"}})));
}

absl::StatusOr<std::vector<char*>> ParseFlagsWithEnv(int argc, char* argv[], absl::string_view env_prefix) {
  // Arguments that are not rewritten keep their original pointers, so the
  // positional arguments returned point into the caller's argv.
  std::vector<std::string> storage;
  storage.reserve(argc);
  std::vector<char*> args;
  std::set<std::string> on_command_line;
  for (int i = 0; i < argc; ++i) {
    const absl::string_view a = argv[i];
    if (i == 0 || a.size() < 2 || a[0] != '-') {
      args.push_back(argv[i]);
      continue;
    }
    if (a == "--") {  // the rest is positional
      for (; i < argc; ++i) args.push_back(argv[i]);
      break;
    }
    Rewritten r = RewriteFlagArg(a);
    storage.push_back(std::move(r.arg));
    args.push_back(storage.back().data());
    if (!r.given.empty()) on_command_line.insert(r.given);
    if (r.takes_next && i + 1 < argc) args.push_back(argv[++i]);
  }

  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (IsAbseilFlag(*flag) || on_command_line.count(std::string(name)) > 0) continue;
    const std::string var = EnvVarForFlag(env_prefix, name);
    const char* value = std::getenv(var.c_str());
    if (value == nullptr) continue;
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      return absl::InvalidArgumentError(absl::StrCat("environment variable ", var, "=\"", absl::CHexEscape(value),
                                                     "\" is not a valid value for --", name, ": ", error));
    }
  }

  std::vector<char*> positional = absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  return positional;
}

}  // namespace weft
