#pragma once
// weftctl's command line, parsed once into an Invocation:
//
//   weftctl [FLAGS] COMMAND [ARGS] [OPTIONS]      (flags and options in any order)
//
// FLAGS say where and how to reach the controller (--controller, --timeout,
// --ca-file, --cert-file, --key-file, --etcd, --log-level). They are absl flags
// read through common/flags.h: a flag given beats $WEFT_<FLAG> beats the default.
//
// OPTIONS belong to the command (-o/--output, --force, --public-ip,
// --public-ipv6, --ipv6-subnet, --node). They are not absl flags because they
// must not come from the environment (an agent's $WEFT_PUBLIC_IP is not a
// reservation's address) and -o is a short alias absl cannot spell.
//
// Every mistake is an INVALID_ARGUMENT whose message is for the user (exit
// status 2); nothing here exits the process.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/flags.h"
#include "common/tls_client.h"

namespace weft::weftctl {

// weftctl's exit statuses, as its --help documents them.
enum ExitCode : int {
  kOk = 0,
  kFailed = 1,       // the controller refused or failed the request
  kUsage = 2,        // bad usage or input (also input the controller refuses as malformed)
  kUnreachable = 3,  // no controller reachable, or none answered within --timeout
};

// The environment sets a flag as WEFT_<FLAG> ($WEFT_CONTROLLER for --controller).
inline constexpr absl::string_view kEnvPrefix = "WEFT_";

enum class OutputFormat { kTable, kWide, kJson, kYaml };

enum class Command { kStatus, kConfigGet, kConfigSet, kLeasesList, kLeaseShow, kReserve, kUnreserve, kSnapshotSave };

// The command's options; subnets already in CIDR form (see SubnetArg).
struct CommandOptions {
  OutputFormat output = OutputFormat::kTable;
  bool force = false;
  std::string public_ip;
  std::string public_ipv6;
  std::string ipv6_subnet;
  std::string node;
};

// Where the controller is and how to talk to it, from the flags.
struct Connection {
  std::vector<std::string> controllers;  // at least one
  absl::Duration timeout;                // positive
  TlsClientFiles tls;
  std::string etcd;  // the controller's etcd API, for snapshot save
};

struct Invocation {
  enum class Action { kRun, kHelp, kVersion };
  Action action = Action::kRun;
  // With kRun:
  Command command = Command::kStatus;
  std::string operand;  // FILE or SUBNET (CIDR form) of the commands that take one
  CommandOptions options;
  Connection connection;
};

// Parses `args` (argv without argv[0]) and sets weftctl's absl flags from them
// and the environment. --help and --version (and the commands help and version)
// stop parsing. Call from one thread; tests hold an absl::FlagSaver.
absl::StatusOr<Invocation> ParseInvocation(const std::vector<std::string>& args);

// flannel's key form of a subnet ("10.5.189.0-24", "fd00::-56") as a CIDR;
// anything else unchanged.
std::string SubnetArg(absl::string_view arg);

// weftctl's --help: its commands, its flags by group, its exit statuses.
ProgramHelp Help();

// A usage mistake as printed on stderr: the reason, then where to read more.
std::string UsageError(absl::string_view why);

}  // namespace weft::weftctl
