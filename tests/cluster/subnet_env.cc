#include "tests/cluster/subnet_env.h"

#include <cstdint>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/net.h"

namespace weft::testing {

absl::StatusOr<SubnetEnv> SubnetEnv::Parse(absl::string_view text) {
  SubnetEnv env;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    line = absl::StripAsciiWhitespace(line);
    if (absl::StartsWith(line, "#")) continue;
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("subnet.env: not KEY=VALUE: ", line));
    }
    absl::string_view value = line.substr(eq + 1);
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    env.vars[std::string(line.substr(0, eq))] = std::string(value);
  }
  // Looked up without adding: `vars` holds exactly the file's lines.
  auto var = [&env](const char* name) {
    auto it = env.vars.find(name);
    return it == env.vars.end() ? std::string() : it->second;
  };
  env.network = var("FLANNEL_NETWORK");
  env.subnet = var("FLANNEL_SUBNET");
  env.ipv6_subnet = var("FLANNEL_IPV6_SUBNET");
  env.ipmasq = var("FLANNEL_IPMASQ") == "true";
  // An IPv6-only network's file has no IPv4 lines, a dual-stack one both.
  const bool v4 = !env.network.empty() && !env.subnet.empty();
  if ((!v4 && env.ipv6_subnet.empty()) || !absl::SimpleAtoi(var("FLANNEL_MTU"), &env.mtu)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "subnet.env lacks FLANNEL_NETWORK and FLANNEL_SUBNET (or FLANNEL_IPV6_SUBNET), or FLANNEL_MTU:\n", text));
  }
  if (v4 && (env.PrefixLength() <= 0 || !IPv4Addr::Parse(env.Gateway()).ok())) {
    return absl::InvalidArgumentError(absl::StrCat("subnet.env: bad FLANNEL_SUBNET ", env.subnet));
  }
  return env;
}

std::string SubnetEnv::Gateway() const { return subnet.substr(0, subnet.find('/')); }

int SubnetEnv::PrefixLength() const {
  int len = 0;
  const size_t slash = subnet.find('/');
  if (slash == std::string::npos || !absl::SimpleAtoi(subnet.substr(slash + 1), &len)) return -1;
  return len;
}

std::string SubnetEnv::NetworkAddress() const {
  const absl::StatusOr<IPv4Addr> gw = IPv4Addr::Parse(Gateway());
  const int len = PrefixLength();
  if (!gw.ok() || len < 0 || len > 32) return "";
  const uint32_t mask = len == 0 ? 0 : ~uint32_t{0} << (32 - len);
  return IPv4Addr::FromUint32(gw->value() & mask).ToString();
}

std::string SubnetEnv::SubnetCidr() const {
  return absl::StrCat(NetworkAddress(), "/", PrefixLength());
}

}  // namespace weft::testing
