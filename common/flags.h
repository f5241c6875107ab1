#pragma once
// Command-line flags with environment fallbacks, as flanneld users know them
// (--etcd-endpoints or FLANNELD_ETCD_ENDPOINTS).
//
// Flags are ordinary absl flags with underscores in their names
// (ABSL_FLAG(std::string, etcd_endpoints, ...)). ParseFlagsWithEnv():
//  - accepts --etcd-endpoints as well as --etcd_endpoints (and --no-ip-masq for
//    a bool flag ip_masq);
//  - for every flag of the program (Abseil's own --help, --flagfile... aside)
//    that is not on the command line, takes the value of the environment variable
//    PREFIX + upper-case name, e.g. WEFT_ETCD_ENDPOINTS: the command line wins;
//  - with a ProgramHelp set (SetProgramHelp), answers --help / -h with the
//    program's own flags, grouped and described (HelpText), and --version with
//    common/version.h's line, both on stdout with exit status 0; --helpfull
//    stays Abseil's (every flag, Abseil's own included);
//  - then parses the command line with absl::ParseCommandLine, which exits with
//    a message on an unknown flag or a bad value.
//
// HostPort and ParseHostPort("127.0.0.1:8080") live in common/net.h (included
// here): HostPort works as a flag type, ABSL_FLAG(weft::HostPort, listen, ...).

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/net.h"

namespace weft {

// Returns the positional arguments, argv[0] first (as absl::ParseCommandLine).
// INVALID_ARGUMENT, naming the variable, when an environment value does not
// parse for its flag. Call once, early in main, before other threads start.
absl::StatusOr<std::vector<char*>> ParseFlagsWithEnv(int argc, char* argv[], absl::string_view env_prefix);

// The environment variable consulted for `flag_name`: ("WEFT_", "etcd_endpoints")
// -> "WEFT_ETCD_ENDPOINTS".
std::string EnvVarForFlag(absl::string_view env_prefix, absl::string_view flag_name);

// A titled group of flags in --help. `flags` are flag names with underscores;
// one ending in '*' is a prefix ("etcd_*").
struct HelpGroup {
  std::string title;
  std::vector<std::string> flags;
};

// What --help says about a program. Flags of the program that no group names
// are listed under "Other flags", so none is ever hidden.
struct ProgramHelp {
  std::string name;      // "weft-controller"
  std::string summary;   // one sentence: what the program does
  std::string synopsis;  // "[FLAGS]"
  std::vector<HelpGroup> groups;
  std::string footer;    // optional closing paragraph
};

// Registers the help of this program (and points Abseil's own usage and
// --version at it). Call once in main before ParseFlagsWithEnv.
void SetProgramHelp(ProgramHelp help);

// The --help text: every flag of the program (Abseil's aside) as --dashed-name,
// its type, description and default, by group; then how the environment sets
// flags (`env_prefix`).
std::string HelpText(const ProgramHelp& help, absl::string_view env_prefix);

}  // namespace weft
