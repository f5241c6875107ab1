#include "agent/masq.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "agent/subprocess.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace weft::agent {
namespace {

constexpr char kComment[] = "weft masq";
// kube-proxy marks what it has NATed already; masquerading it again breaks some
// kernels (flannel skips it too).
constexpr char kKubeProxyMark[] = "0x4000/0x4000";

// What differs between iptables and ip6tables.
struct Family {
  const char* iptables;
  const char* restore;
  const char* multicast;  // never masqueraded
  const char* removed;    // log message
};
constexpr Family kIPv4{"iptables", "iptables-restore", "224.0.0.0/4", "masquerade rules removed"};
constexpr Family kIPv6{"ip6tables", "ip6tables-restore", "ff00::/8", "IPv6 masquerade rules removed"};

std::vector<std::string> JumpRule() {
  return {"POSTROUTING", "-m", "comment", "--comment", kComment, "-j", kMasqChain};
}

absl::StatusOr<CommandResult> Run(const Family& f, std::vector<std::string> argv, absl::string_view input = "") {
  absl::StatusOr<CommandResult> r = RunCommand(argv, input, absl::Seconds(30));
  if (absl::IsFailedPrecondition(r.status())) {
    return absl::FailedPreconditionError(
        absl::StrCat("--ip-masq needs ", f.iptables, ": ", r.status().message()));
  }
  return r;
}

// Runs a command that must succeed.
absl::Status RunOk(const Family& f, std::vector<std::string> argv, absl::string_view input = "") {
  ASSIGN_OR_RETURN(CommandResult r, Run(f, argv, input));
  if (r.exit_code != 0) {
    return absl::InternalError(
        absl::StrCat(CommandLine(argv), " exited ", r.exit_code, ": ", r.output));
  }
  return absl::OkStatus();
}

std::vector<std::string> Iptables(const Family& f, std::vector<std::string> args) {
  std::vector<std::string> argv = {f.iptables, "-w", "-t", "nat"};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

absl::StatusOr<bool> JumpExists(const Family& f) {
  std::vector<std::string> args = {"-C"};
  for (std::string& a : JumpRule()) args.push_back(std::move(a));
  ASSIGN_OR_RETURN(CommandResult r, Run(f, Iptables(f, args)));
  return r.exit_code == 0;
}

// The chain's rules as iptables prints them; empty when the chain does not exist.
absl::StatusOr<std::vector<std::string>> CurrentChain(const Family& f) {
  ASSIGN_OR_RETURN(CommandResult r, Run(f, Iptables(f, {"-S", kMasqChain})));
  if (r.exit_code != 0) return std::vector<std::string>{};
  return std::vector<std::string>(absl::StrSplit(r.output, '\n', absl::SkipEmpty()));
}

std::vector<std::string> Rules(const Family& f, const std::string& net, const std::string& subnet) {
  const std::string tail = absl::StrCat("-m comment --comment \"", kComment, "\" -j ");
  const std::string a = absl::StrCat("-A ", kMasqChain, " ");
  return {
      absl::StrCat("-N ", kMasqChain),
      absl::StrCat(a, "-m mark --mark ", kKubeProxyMark, " ", tail, "RETURN"),
      absl::StrCat(a, "-s ", net, " -d ", net, " ", tail, "RETURN"),
      absl::StrCat(a, "-s ", net, " ! -d ", f.multicast, " ", tail, "MASQUERADE --random-fully"),
      absl::StrCat(a, "! -s ", net, " -d ", subnet, " ", tail, "RETURN"),
      absl::StrCat(a, "! -s ", net, " -d ", net, " ", tail, "MASQUERADE --random-fully"),
  };
}

absl::StatusOr<bool> EnsureRules(const Family& f, const std::vector<std::string>& want) {
  bool changed = false;
  ASSIGN_OR_RETURN(std::vector<std::string> have, CurrentChain(f));
  if (have != want) {
    // Declaring the chain in iptables-restore empties it, even with --noflush, so
    // the new rules replace the old ones in one atomic commit.
    std::string input = absl::StrCat("*nat\n:", kMasqChain, " - [0:0]\n");
    for (size_t i = 1; i < want.size(); ++i) absl::StrAppend(&input, want[i], "\n");
    absl::StrAppend(&input, "COMMIT\n");
    RETURN_IF_ERROR(RunOk(f, {f.restore, "--noflush", "-w"}, input));
    changed = true;
  }
  ASSIGN_OR_RETURN(bool jump, JumpExists(f));
  if (!jump) {
    std::vector<std::string> args = {"-I"};
    std::vector<std::string> rule = JumpRule();
    args.push_back(rule[0]);
    args.push_back("1");  // before Docker's and others' MASQUERADE rules
    args.insert(args.end(), rule.begin() + 1, rule.end());
    RETURN_IF_ERROR(RunOk(f, Iptables(f, args)));
    changed = true;
  }
  return changed;
}

absl::Status RemoveRules(const Family& f) {
  for (;;) {
    ASSIGN_OR_RETURN(bool jump, JumpExists(f));
    if (!jump) break;
    std::vector<std::string> args = {"-D"};
    for (std::string& a : JumpRule()) args.push_back(std::move(a));
    RETURN_IF_ERROR(RunOk(f, Iptables(f, args)));
  }
  ASSIGN_OR_RETURN(std::vector<std::string> have, CurrentChain(f));
  if (have.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(RunOk(f, Iptables(f, {"-F", kMasqChain})));
  RETURN_IF_ERROR(RunOk(f, Iptables(f, {"-X", kMasqChain})));
  WEFT_LOG(INFO, f.removed);
  return absl::OkStatus();
}

}  // namespace

std::vector<std::string> Masquerade::ChainRules(const IPv4Net& network, const IPv4Net& subnet) {
  return Rules(kIPv4, network.ToString(), subnet.ToString());
}

std::vector<std::string> Masquerade::ChainRules(const IPv6Net& network, const IPv6Net& subnet) {
  return Rules(kIPv6, network.ToString(), subnet.ToString());
}

absl::StatusOr<bool> Masquerade::Ensure(const IPv4Net& network, const IPv4Net& subnet) {
  ASSIGN_OR_RETURN(bool changed, EnsureRules(kIPv4, ChainRules(network, subnet)));
  if (changed) {
    WEFT_LOG(INFO, "masquerade rules installed").With("network", network).With("subnet", subnet);
  }
  return changed;
}

absl::StatusOr<bool> Masquerade::Ensure(const IPv6Net& network, const IPv6Net& subnet) {
  ASSIGN_OR_RETURN(bool changed, EnsureRules(kIPv6, ChainRules(network, subnet)));
  if (changed) {
    WEFT_LOG(INFO, "IPv6 masquerade rules installed").With("network", network).With("subnet", subnet);
  }
  return changed;
}

absl::Status Masquerade::Remove() { return RemoveRules(kIPv4); }

absl::Status Masquerade::RemoveIPv6() { return RemoveRules(kIPv6); }

}  // namespace weft::agent
