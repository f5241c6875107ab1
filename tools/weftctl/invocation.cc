#include "tools/weftctl/invocation.h"

#include <algorithm>
#include <functional>
#include <optional>
#include <utility>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/log.h"

ABSL_FLAG(std::string, controller, "127.0.0.1:7800",
          "Controller gRPC endpoints, ADDR[,ADDR...]: status asks each, other commands the first that answers.");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(10), "How long to wait for each answer.");
ABSL_FLAG(std::string, etcd, "127.0.0.1:2379",
          "The controller's etcd API (its --etcd-listen), for snapshot save.");
ABSL_FLAG(std::string, ca_file, "", "CA bundle the controller's certificate must chain to.");
ABSL_FLAG(std::string, cert_file, "",
          "This client's certificate: an operator's (O=weft:admins, tools/certs.sh admin) to change things, any to "
          "read.");
ABSL_FLAG(std::string, key_file, "", "The private key of --cert-file.");

namespace weft::weftctl {
namespace {

struct CommandSpec {
  absl::string_view words;    // "lease show"
  Command command;
  absl::string_view operand;  // "FILE", "SUBNET" or "" for none
};

constexpr CommandSpec kCommands[] = {
    {"status", Command::kStatus, ""},
    {"config get", Command::kConfigGet, ""},
    {"config set", Command::kConfigSet, "FILE"},
    {"leases list", Command::kLeasesList, ""},
    {"lease show", Command::kLeaseShow, "SUBNET"},
    {"reserve", Command::kReserve, "SUBNET"},
    {"unreserve", Command::kUnreserve, "SUBNET"},
    {"snapshot save", Command::kSnapshotSave, "FILE"},
};

// The command `words` name, with its operand.
absl::Status ResolveCommand(const std::vector<std::string>& words, Invocation* inv) {
  if (words.empty()) return absl::InvalidArgumentError("no command");
  for (const CommandSpec& spec : kCommands) {
    const std::vector<absl::string_view> name = absl::StrSplit(spec.words, ' ');
    if (words.size() < name.size() || !std::equal(name.begin(), name.end(), words.begin())) continue;
    const size_t operands = words.size() - name.size();
    if (operands != (spec.operand.empty() ? 0u : 1u)) {
      return absl::InvalidArgumentError(spec.operand.empty() ? absl::StrCat(spec.words, " takes no argument")
                                                             : absl::StrCat(spec.words, " needs ", spec.operand));
    }
    inv->command = spec.command;
    if (operands == 1) inv->operand = spec.operand == "SUBNET" ? SubnetArg(words.back()) : words.back();
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown command \"", absl::StrJoin(words.begin(), words.begin() + std::min<size_t>(words.size(), 2), " "),
      "\""));
}

// A command option: `name` as typed, its `value` when written --name=value
// (else `next` takes the next argument). False when `name` is none.
absl::StatusOr<bool> ParseCommandOption(absl::string_view name, std::optional<std::string> value,
                                        const std::function<std::optional<std::string>()>& next,
                                        CommandOptions* options) {
  if (name == "--force") {
    if (value.has_value()) return absl::InvalidArgumentError("--force takes no value");
    options->force = true;
    return true;
  }
  if (name == "-o" || name == "--output") {
    if (!value.has_value()) value = next();
    static constexpr std::pair<absl::string_view, OutputFormat> kFormats[] = {
        {"table", OutputFormat::kTable}, {"wide", OutputFormat::kWide},
        {"json", OutputFormat::kJson},   {"yaml", OutputFormat::kYaml}};
    for (const auto& [text, format] : kFormats) {
      if (value == text) {
        options->output = format;
        return true;
      }
    }
    return absl::InvalidArgumentError("-o is table, wide, json or yaml");
  }
  const struct {
    absl::string_view name;
    absl::string_view needs;
    std::string* field;
  } kValued[] = {
      {"--public-ip", "an address", &options->public_ip},
      {"--public-ipv6", "an address", &options->public_ipv6},
      {"--ipv6-subnet", "a subnet", &options->ipv6_subnet},
      {"--node", "a name", &options->node},
  };
  for (const auto& v : kValued) {
    if (name != v.name) continue;
    if (!value.has_value()) value = next();
    if (!value.has_value()) return absl::InvalidArgumentError(absl::StrCat(name, " needs ", v.needs));
    *v.field = *std::move(value);
    return true;
  }
  return false;
}

// weftctl's own absl flag named by "--ca-file" / "--ca_file" (Abseil's own,
// such as --flagfile, are not weftctl's).
absl::CommandLineFlag* OwnFlag(absl::string_view name) {
  const absl::string_view bare = absl::StripPrefix(absl::StripPrefix(name, "-"), "-");
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(absl::StrReplaceAll(bare, {{"-", "_"}}));
  if (flag == nullptr || flag->IsRetired() || absl::StrContains(flag->Filename(), "absl/flags/")) return nullptr;
  return flag;
}

// The connection settings from the flags (after ParseFlagsWithEnv).
absl::StatusOr<Connection> ConnectionFromFlags() {
  Connection c;
  c.controllers = absl::StrSplit(absl::GetFlag(FLAGS_controller), ',', absl::SkipWhitespace());
  for (std::string& a : c.controllers) a = std::string(absl::StripAsciiWhitespace(a));
  if (c.controllers.empty()) return absl::InvalidArgumentError("--controller needs an address");
  c.timeout = absl::GetFlag(FLAGS_timeout);
  if (c.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--timeout needs a positive duration like 10s");
  }
  c.tls.ca_file = absl::GetFlag(FLAGS_ca_file);
  c.tls.cert_file = absl::GetFlag(FLAGS_cert_file);
  c.tls.key_file = absl::GetFlag(FLAGS_key_file);
  c.etcd = absl::GetFlag(FLAGS_etcd);
  return c;
}

}  // namespace

std::string SubnetArg(absl::string_view arg) {
  if (absl::StrContains(arg, '/')) return std::string(arg);
  const size_t dash = arg.rfind('-');
  if (dash == absl::string_view::npos || dash + 1 >= arg.size() || dash + 4 < arg.size()) return std::string(arg);
  for (char c : arg.substr(dash + 1)) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return std::string(arg);
  }
  return absl::StrCat(arg.substr(0, dash), "/", arg.substr(dash + 1));
}

absl::StatusOr<Invocation> ParseInvocation(const std::vector<std::string>& args) {
  Invocation inv;
  std::vector<std::string> words;
  // The flags as ParseFlagsWithEnv takes them, each as --name=value (already
  // checked here, so absl's parser, which exits on a bad flag, meets none).
  std::vector<std::string> flag_args = {"weftctl"};
  // weftctl's own lines are warnings and errors unless --log-level says otherwise.
  absl::SetFlag(&FLAGS_log_level, log::Level::kWarning);
  // --help and --version win wherever they are (before "--"), as the daemons'.
  for (const std::string& arg : args) {
    if (arg == "--") break;
    if (arg == "-h" || arg == "--help") return Invocation{.action = Invocation::Action::kHelp};
    if (arg == "--version") return Invocation{.action = Invocation::Action::kVersion};
  }
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      words.insert(words.end(), args.begin() + i + 1, args.end());
      break;
    }
    if (words.empty() && (arg == "help" || arg == "version")) {  // as commands
      inv.action = arg == "help" ? Invocation::Action::kHelp : Invocation::Action::kVersion;
      return inv;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      words.push_back(arg);
      continue;
    }
    const size_t eq = arg.find('=');
    const std::string name = arg.substr(0, eq);
    std::optional<std::string> value;
    if (eq != std::string::npos) value = arg.substr(eq + 1);
    auto next = [&]() -> std::optional<std::string> {
      if (i + 1 >= args.size()) return std::nullopt;
      return args[++i];
    };
    absl::StatusOr<bool> option = ParseCommandOption(name, value, next, &inv.options);
    if (!option.ok()) return option.status();
    if (*option) continue;
    if (name == "--helpfull") {  // Abseil's: every flag, its own included; it exits
      flag_args.push_back(name);
      continue;
    }

    absl::CommandLineFlag* flag = OwnFlag(name);
    if (flag == nullptr) return absl::InvalidArgumentError(absl::StrCat("unknown flag ", name));
    if (!value.has_value()) value = flag->IsOfType<bool>() ? std::optional<std::string>("true") : next();
    if (!value.has_value()) return absl::InvalidArgumentError(absl::StrCat(name, " needs a value"));
    if (std::string error; !flag->ParseFrom(*value, &error)) {
      return absl::InvalidArgumentError(absl::StrCat("bad value for ", name, ": ", error));
    }
    flag_args.push_back(absl::StrCat("--", flag->Name(), "=", *value));
  }

  // The flags again, with $WEFT_<FLAG> for those not given.
  std::vector<char*> argv;
  for (std::string& a : flag_args) argv.push_back(a.data());
  absl::StatusOr<std::vector<char*>> rest = ParseFlagsWithEnv(static_cast<int>(argv.size()), argv.data(), kEnvPrefix);
  if (!rest.ok()) return rest.status();
  absl::StatusOr<Connection> connection = ConnectionFromFlags();
  if (!connection.ok()) return connection.status();
  inv.connection = *std::move(connection);

  if (absl::Status s = ResolveCommand(words, &inv); !s.ok()) return s;
  inv.options.ipv6_subnet = SubnetArg(inv.options.ipv6_subnet);
  if (inv.command == Command::kReserve && inv.options.public_ip.empty() && inv.options.public_ipv6.empty()) {
    return absl::InvalidArgumentError("reserve needs --public-ip (or --public-ipv6)");
  }
  return inv;
}

ProgramHelp Help() {
  return {
      .name = "weftctl",
      .summary = "the operator's command line for a Weft controller.",
      .synopsis =
          "[FLAGS] COMMAND [OPTIONS]\n"
          "\n"
          "Commands:\n"
          "  status                         every controller endpoint (reachable, version, leader, store, revision),\n"
          "                                 the network config, leases used/free/reserved, expiring within the\n"
          "                                 hour, watch streams, the backend\n"
          "  config get                     the network config (flannel's JSON)\n"
          "  config set FILE [--force]      set the network config (FILE - = stdin); --force even if leases\n"
          "                                 would fall outside it\n"
          "  leases list                    every lease, in subnet order\n"
          "  lease show SUBNET              one lease; SUBNET as 10.5.189.0/24 or flannel's key 10.5.189.0-24\n"
          "  reserve SUBNET --public-ip IP [--node NAME] [--ipv6-subnet SUBNET6 --public-ipv6 IP6]\n"
          "                                 a lease that never expires, for a host outside Weft (dual-stack:\n"
          "                                 with its IPv6 subnet; without --ipv6-subnet, the lease's own)\n"
          "  unreserve SUBNET               make a reservation an ordinary lease again\n"
          "  snapshot save FILE             back up the embedded store through the controller's etcd API\n"
          "                                 (--etcd); restore with weft-controller --restore-from FILE\n"
          "  version                        weftctl's version (as --version)\n"
          "\n"
          "Command options (anywhere on the line; not read from the environment):\n"
          "  -o, --output FORMAT            table (default), wide (more columns), json or yaml\n"
          "  --force, --public-ip IP, --public-ipv6 IP6, --ipv6-subnet SUBNET6, --node NAME  as above",
      .groups =
          {
              {"Controller", {"controller", "timeout", "etcd"}},
              {"TLS (docs/security.md)", {"ca_file", "cert_file", "key_file"}},
              {"Logging (weftctl: warnings and errors unless set)", {"log_*"}},
          },
      .footer = "Exit status: 0 done; 1 the controller refused or failed the request; 2 bad usage or input (also "
                "when the controller refuses the input as malformed); 3 no controller reachable, or none answered "
                "in time.",
  };
}

std::string UsageError(absl::string_view why) {
  return absl::StrCat("weftctl: ", why, "\nUsage: weftctl [FLAGS] COMMAND [OPTIONS] (weftctl --help: the commands, "
                      "flags and exit statuses)\n");
}

}  // namespace weft::weftctl
