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
//  - then parses the command line with absl::ParseCommandLine, which handles
//    --help and exits with a message on an unknown flag or a bad value.
//
// HostPort and ParseHostPort("127.0.0.1:8080") live in common/net.h (included
// here): HostPort works as a flag type, ABSL_FLAG(weft::HostPort, listen, ...).

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

}  // namespace weft
