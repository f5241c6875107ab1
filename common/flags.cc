#include "common/flags.h"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/version.h"

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

ABSL_CONST_INIT absl::Mutex help_mu(absl::kConstInit);
std::optional<ProgramHelp>* program_help ABSL_GUARDED_BY(help_mu) = nullptr;

std::optional<ProgramHelp> CurrentHelp() {
  absl::MutexLock lock(&help_mu);
  if (program_help == nullptr) return std::nullopt;
  return *program_help;
}

std::string Dashed(absl::string_view name) { return absl::StrReplaceAll(name, {{"_", "-"}}); }

bool GroupHas(const HelpGroup& g, absl::string_view name) {
  for (const std::string& f : g.flags) {
    if (absl::EndsWith(f, "*") ? absl::StartsWith(name, absl::string_view(f).substr(0, f.size() - 1)) : f == name) {
      return true;
    }
  }
  return false;
}

// "STRING", "DURATION"... from the flag's type, for "--name=TYPE".
std::string ValueName(const absl::CommandLineFlag& f) {
  if (f.IsOfType<bool>()) return "";
  if (f.IsOfType<std::string>()) return "=STRING";
  if (f.IsOfType<absl::Duration>()) return "=DURATION";
  if (f.IsOfType<int32_t>() || f.IsOfType<int64_t>() || f.IsOfType<uint32_t>() || f.IsOfType<uint64_t>()) {
    return "=INT";
  }
  if (f.IsOfType<double>()) return "=NUMBER";
  if (f.IsOfType<HostPort>()) return "=HOST:PORT";
  return "=VALUE";
}

// `text` wrapped at `width` columns, every line after the first indented by `indent`.
std::string Wrap(absl::string_view text, size_t indent, size_t width) {
  std::string out;
  size_t col = indent;
  for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (col > indent && col + 1 + word.size() > width) {
      absl::StrAppend(&out, "\n", std::string(indent, ' '));
      col = indent;
    } else if (col > indent) {
      out += ' ';
      ++col;
    }
    absl::StrAppend(&out, word);
    col += word.size();
  }
  return out;
}

void AppendFlag(std::string* out, const absl::CommandLineFlag& f) {
  constexpr size_t kIndent = 6, kWidth = 100;
  absl::StrAppend(out, "  --", Dashed(f.Name()), ValueName(f), "\n");
  std::string text(f.Help());
  const std::string def = f.DefaultValue();
  if (f.IsOfType<bool>()) {
    absl::StrAppend(&text, def == "true" ? absl::StrCat(" (default true; --no-", Dashed(f.Name()), " turns it off)")
                                         : std::string(" (default false)"));
  } else if (!def.empty()) {
    absl::StrAppend(&text, " (default ", def, ")");
  }
  absl::StrAppend(out, std::string(kIndent, ' '), Wrap(text, kIndent, kWidth), "\n");
}

}  // namespace

void SetProgramHelp(ProgramHelp help) {
  const std::string name = help.name;
  {
    absl::MutexLock lock(&help_mu);
    delete program_help;
    program_help = new std::optional<ProgramHelp>(std::move(help));
  }
  absl::SetProgramUsageMessage(absl::StrCat("see ", name, " --help"));
  absl::FlagsUsageConfig config;
  config.contains_help_flags = [](absl::string_view file) { return !absl::StrContains(file, "absl/flags/"); };
  config.contains_helpshort_flags = config.contains_help_flags;
  config.version_string = [name] { return version::Line(name) + "\n"; };
  absl::SetFlagsUsageConfig(config);
}

std::string HelpText(const ProgramHelp& help, absl::string_view env_prefix) {
  std::string out = absl::StrCat(help.name, " ", version::Version(), ": ", help.summary, "\n\nUsage: ", help.name,
                                 " ", help.synopsis, "\n");
  std::map<std::string, const absl::CommandLineFlag*> flags;  // sorted by name
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (!IsAbseilFlag(*flag) && !flag->IsRetired()) flags[std::string(name)] = flag;
  }
  std::set<std::string> shown;
  auto group = [&](const std::string& title, auto&& member) {
    std::string body;
    for (const auto& [name, flag] : flags) {
      if (shown.count(name) > 0 || !member(name)) continue;
      shown.insert(name);
      AppendFlag(&body, *flag);
    }
    if (!body.empty()) absl::StrAppend(&out, "\n", title, ":\n", body);
  };
  for (const HelpGroup& g : help.groups) group(g.title, [&g](const std::string& n) { return GroupHas(g, n); });
  group("Other flags", [](const std::string&) { return true; });
  absl::StrAppend(&out, "\nGeneral:\n  --help     this text\n  --version  the version and the git commit built from\n",
                  "  --helpfull every flag, Abseil's own included\n\n",
                  Wrap(absl::StrCat("Every flag can also be set in the environment as ", env_prefix,
                                    "<FLAG> (upper case, '-' as '_'), e.g. ", env_prefix, "LOG_LEVEL=debug; the "
                                    "command line wins. Flags take --name=value or --name value; bool flags "
                                    "--name or --no-name."),
                       0, 100),
                  "\n");
  if (!help.footer.empty()) absl::StrAppend(&out, "\n", Wrap(help.footer, 0, 100), "\n");
  return out;
}

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
  if (std::optional<ProgramHelp> help = CurrentHelp()) {
    for (int i = 1; i < argc; ++i) {
      const absl::string_view a = argv[i];
      if (a == "--") break;
      if (a == "--help" || a == "-help" || a == "-h") {
        std::fputs(HelpText(*help, env_prefix).c_str(), stdout);
        std::exit(0);
      }
      if (a == "--version" || a == "-version") {
        std::fputs((version::Line(help->name) + "\n").c_str(), stdout);
        std::exit(0);
      }
    }
  }
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
