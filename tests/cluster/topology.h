#pragma once
// The wiring of the cluster harness's namespaces with iproute2: the switch (a
// bridge), veth pairs onto it, the router between the two underlay subnets, a
// host's docker0 and its containers' links. Every command names its namespace
// (`ip -n`): nothing here touches the machine's own network.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "tests/cluster/subnet_env.h"

namespace weft::testing {

// `ip args...`, which must carry -n <one of our namespaces>; an error naming the
// command and ip's stderr unless it exits 0.
absl::Status Ip(const std::vector<std::string>& args);

// `sysctl -qw setting` inside `ns` ("net.ipv4.ip_forward=1").
absl::Status SysctlInNamespace(absl::string_view ns, absl::string_view setting);

// Bridge `name`, up, in `ns`.
absl::Status AddBridge(const std::string& ns, const std::string& name);

// A veth pair: `port` on bridge br0 of `switch_ns`, "eth0" in `ns` (MTU 1500,
// up) with `ipv4`/24 and, when not empty, `ipv6`/64 (nodad: usable at once).
absl::Status ConnectToSwitch(const std::string& switch_ns, const std::string& ns, const std::string& port,
                             const std::string& ipv4, const std::string& ipv6);

// Docker's docker0 in `ns` as `--bip=$FLANNEL_SUBNET --mtu=$FLANNEL_MTU` (and
// `--ipv6 --fixed-cidr-v6`) would make it, unless it exists.
absl::Status EnsureDocker0(const std::string& ns, const SubnetEnv& env);

// A container's link: veth `veth` on the host's docker0, "eth0" in `container_ns`,
// both with `mtu`, and its addresses with default routes via the gateways
// (either family may be empty).
struct ContainerLink {
  std::string host_ns, container_ns, veth;
  int mtu = 0;
  std::string ipv4_cidr, ipv4_gateway;  // "10.1.19.2/24", "10.1.19.1"
  std::string ipv6_cidr, ipv6_gateway;  // "fd00:1:13::2/64", "fd00:1:13::1"
};
absl::Status WireContainer(const ContainerLink& link);

// Kills the processes inside namespace `ns`, then deletes it (a half-made one,
// a file without a mount, too).
void DeleteNamespace(const std::string& ns);
// DeleteNamespace of every namespace whose name starts with `prefix` (never all:
// an empty prefix sweeps nothing); how many.
int SweepNamespaces(absl::string_view prefix);

}  // namespace weft::testing
