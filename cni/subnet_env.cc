#include "cni/subnet_env.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "cni/cni_error.h"
#include "common/status_macros.h"

namespace weft::cni {
namespace {

template <typename Net>
absl::StatusOr<std::vector<Net>> ParseNetworks(absl::string_view value) {
  std::vector<Net> nets;
  for (absl::string_view part : absl::StrSplit(value, ',')) {
    ASSIGN_OR_RETURN(Net n, Net::Parse(absl::StripAsciiWhitespace(part)));
    nets.push_back(n);
  }
  return nets;
}

template <typename Net>
bool InAny(const std::vector<Net>& networks, const Net& subnet) {
  for (const Net& n : networks) {
    if (n.Contains(subnet)) return true;
  }
  return false;
}

// One KEY=VALUE line into `env`; unknown keys are left alone.
absl::Status ParseLine(absl::string_view key, absl::string_view value, SubnetEnv* env) {
  if (key == "FLANNEL_NETWORK") {
    ASSIGN_OR_RETURN(env->networks, ParseNetworks<IPv4Net>(value));
  } else if (key == "FLANNEL_SUBNET") {
    ASSIGN_OR_RETURN(env->subnet, IPv4Net::ParseLoose(value));
  } else if (key == "FLANNEL_IPV6_NETWORK") {
    ASSIGN_OR_RETURN(env->ipv6_networks, ParseNetworks<IPv6Net>(value));
  } else if (key == "FLANNEL_IPV6_SUBNET") {
    ASSIGN_OR_RETURN(env->ipv6_subnet, IPv6Net::ParseLoose(value));
  } else if (key == "FLANNEL_MTU") {
    if (!absl::SimpleAtoi(value, &env->mtu) || env->mtu < 68 || env->mtu > 65535) {
      return absl::InvalidArgumentError(absl::StrCat("\"", value, "\" is not an MTU (68 to 65535)"));
    }
  } else if (key == "FLANNEL_IPMASQ") {
    if (value != "true" && value != "false") {
      return absl::InvalidArgumentError(absl::StrCat("\"", value, "\" is neither true nor false"));
    }
    env->ipmasq = value == "true";
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SubnetEnv> ParseSubnetEnv(absl::string_view text, absl::string_view source) {
  SubnetEnv env;
  bool has_mtu = false;
  bool has_ipmasq = false;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
    if (absl::Status s = ParseLine(kv.first, kv.second, &env); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, " line ", line_no, ": ", kv.first, ": ", s.message()));
    }
    has_mtu = has_mtu || kv.first == "FLANNEL_MTU";
    has_ipmasq = has_ipmasq || kv.first == "FLANNEL_IPMASQ";
  }

  std::vector<std::string> missing;
  if (env.networks.empty() && env.ipv6_networks.empty()) {
    missing.push_back("FLANNEL_NETWORK or FLANNEL_IPV6_NETWORK");
  }
  if (!env.networks.empty() && !env.subnet) missing.push_back("FLANNEL_SUBNET");
  if (!env.ipv6_networks.empty() && !env.ipv6_subnet) missing.push_back("FLANNEL_IPV6_SUBNET");
  if (!has_mtu) missing.push_back("FLANNEL_MTU");
  if (!has_ipmasq) missing.push_back("FLANNEL_IPMASQ");
  if (!missing.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, " is missing ", absl::StrJoin(missing, ", ")));
  }
  if (env.subnet && !InAny(env.networks, *env.subnet)) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": FLANNEL_SUBNET ", env.subnet->ToString(),
                                                   " lies outside FLANNEL_NETWORK"));
  }
  if (env.ipv6_subnet && !InAny(env.ipv6_networks, *env.ipv6_subnet)) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": FLANNEL_IPV6_SUBNET ",
                                                   env.ipv6_subnet->ToString(),
                                                   " lies outside FLANNEL_IPV6_NETWORK"));
  }
  return env;
}

absl::StatusOr<SubnetEnv> ReadSubnetEnv(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    const int err = errno;
    if (err == ENOENT) {
      return CniError(kTryAgainLater,
                      absl::StrCat("no subnet file ", path,
                                   ": this node has no lease yet (is weft-agent, or flanneld, "
                                   "running and healthy?)"),
                      std::strerror(err));
    }
    return absl::InternalError(absl::StrCat("cannot read subnet file ", path, ": ", std::strerror(err)));
  }
  std::stringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return absl::InternalError(absl::StrCat("cannot read subnet file ", path));
  return ParseSubnetEnv(buf.str(), path);
}

}  // namespace weft::cni
