#include "agent/node_files.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/atomic_file.h"
#include "common/status_macros.h"

namespace weft::agent {
namespace {

// "10.1.19.1/24": the first usable address with the lease's prefix length, which
// is what Docker's --bip and the bridge plugin want as the gateway.
std::string FirstAddress(const IPv4Net& subnet) {
  return absl::StrCat(IPv4Addr::FromUint32(subnet.network().value() + 1).ToString(), "/",
                      subnet.prefix_len());
}

std::string FirstAddress(const IPv6Net& subnet) {
  return absl::StrCat(IPv6Addr::FromUint128(subnet.network().value() + 1).ToString(), "/",
                      subnet.prefix_len());
}

const char* Bool(bool b) { return b ? "true" : "false"; }

}  // namespace

std::string RenderSubnetEnv(const NodeLease& lease) {
  // flannel's layout: an IPv6-only network has no FLANNEL_NETWORK or FLANNEL_SUBNET.
  std::string out;
  if (lease.ipv4) {
    out = absl::StrCat("FLANNEL_NETWORK=", lease.network.ToString(), "\n", "FLANNEL_SUBNET=", FirstAddress(lease.subnet),
                       "\n");
  }
  absl::StrAppend(&out, "FLANNEL_MTU=", lease.mtu, "\n", "FLANNEL_IPMASQ=", Bool(lease.ip_masq), "\n");
  if (lease.ipv6_network) {
    absl::StrAppend(&out, "FLANNEL_IPV6_NETWORK=", lease.ipv6_network->ToString(), "\n");
  }
  if (lease.ipv6_subnet) {
    absl::StrAppend(&out, "FLANNEL_IPV6_SUBNET=", FirstAddress(*lease.ipv6_subnet), "\n");
  }
  return out;
}

std::string RenderDockerOpts(const NodeLease& lease, absl::string_view key) {
  // Docker must not masquerade container traffic when the agent already does.
  const std::string ipmasq = absl::StrCat("--ip-masq=", Bool(!lease.ip_masq));
  const std::string mtu = absl::StrCat("--mtu=", lease.mtu);
  std::string out, all;
  if (lease.ipv4) {  // an IPv6-only network has no IPv4 bridge address to give
    const std::string bip = absl::StrCat("--bip=", FirstAddress(lease.subnet));
    out = absl::StrCat("DOCKER_OPT_BIP=\"", bip, "\"\n");
    all = absl::StrCat(bip, " ");
  }
  absl::StrAppend(&out, "DOCKER_OPT_IPMASQ=\"", ipmasq, "\"\n", "DOCKER_OPT_MTU=\"", mtu, "\"\n");
  absl::StrAppend(&all, ipmasq, " ", mtu);
  if (lease.ipv6_subnet) {
    // Docker gives its bridge the subnet's first address and containers the rest.
    const std::string cidr6 = absl::StrCat("--fixed-cidr-v6=", lease.ipv6_subnet->ToString());
    absl::StrAppend(&out, "DOCKER_OPT_IPV6=\"--ipv6\"\n", "DOCKER_OPT_FIXED_CIDR_V6=\"", cidr6, "\"\n");
    absl::StrAppend(&all, " --ipv6 ", cidr6);
  }
  absl::StrAppend(&out, key, "=\"", all, "\"\n");
  return out;
}

absl::Status WriteSubnetEnv(const std::string& path, const NodeLease& lease) {
  return WriteFileAtomically(path, RenderSubnetEnv(lease));
}

absl::Status WriteDockerOpts(const std::string& path, const NodeLease& lease,
                             absl::string_view key) {
  return WriteFileAtomically(path, RenderDockerOpts(lease, key));
}

namespace {

// The last `key`=value line of the file, parsed loosely (host bits cleared).
template <typename Net>
absl::StatusOr<std::optional<Net>> ReadPreviousNet(const std::string& path, absl::string_view key) {
  ASSIGN_OR_RETURN(std::optional<std::string> text, ReadFileIfExists(path));
  if (!text) return std::nullopt;
  int line_no = 0;
  std::optional<Net> subnet;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (!absl::ConsumePrefix(&line, key) || !absl::ConsumePrefix(&line, "=")) continue;
    absl::StatusOr<Net> parsed = Net::ParseLoose(line);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, " line ", line_no, ": ", key, ": ", parsed.status().message()));
    }
    subnet = *parsed;
  }
  return subnet;
}

}  // namespace

absl::StatusOr<std::optional<IPv4Net>> ReadPreviousSubnet(const std::string& path) {
  return ReadPreviousNet<IPv4Net>(path, "FLANNEL_SUBNET");
}

absl::StatusOr<std::optional<IPv6Net>> ReadPreviousIPv6Subnet(const std::string& path) {
  return ReadPreviousNet<IPv6Net>(path, "FLANNEL_IPV6_SUBNET");
}

}  // namespace weft::agent
