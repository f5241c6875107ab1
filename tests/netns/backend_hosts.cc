#include "tests/netns/backend_hosts.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "gtest/gtest.h"

namespace weft::testing {

std::string NetnsHost::Sh(absl::string_view cmd) {
  absl::StatusOr<std::string> out = ns->Sh(cmd);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : "";
}

namespace {

absl::Status MakeHost(NetnsHost* h, bool nexthops, const char* ip, const char* subnet) {
  auto socket = h->ns->Run([] { return netlink::NetlinkSocket::Open(); });
  RETURN_IF_ERROR(socket.status());
  h->kernel = std::make_unique<netlink::NetlinkProgrammer>(std::move(*socket), nexthops);
  ASSIGN_OR_RETURN(netlink::Link eth0, h->kernel->GetLink("eth0"));
  ASSIGN_OR_RETURN(IPv4Addr addr, IPv4Addr::Parse(ip));
  ASSIGN_OR_RETURN(IPv4Net lan, IPv4Net::Parse("192.0.2.0/24"));
  ASSIGN_OR_RETURN(IPv4Net own, IPv4Net::Parse(subnet));
  ASSIGN_OR_RETURN(IPv4Net network, IPv4Net::Parse(kHostsNetwork));
  h->local = agent::LocalConfig{"eth0", eth0.index, eth0.mtu, addr, lan, addr};
  h->lease = agent::OwnLease{own, network};
  return absl::OkStatus();
}

// Host number `n` (1 or 2) gets fd77:1::n/64 on eth0 and the lease fd42:0:n::/64.
absl::Status AddIPv6(NetnsHost* h, int n) {
  const std::string ip = absl::StrCat("fd77:1::", n);
  RETURN_IF_ERROR(h->ns->Sh(absl::StrCat("ip -6 addr add ", ip, "/64 dev eth0 nodad")).status());
  ASSIGN_OR_RETURN(IPv6Addr addr, IPv6Addr::Parse(ip));
  ASSIGN_OR_RETURN(IPv6Net lan, IPv6Net::Parse(kUnderlayIPv6Network));
  ASSIGN_OR_RETURN(IPv6Net own, IPv6Net::Parse(absl::StrCat("fd42:0:", n, "::/64")));
  ASSIGN_OR_RETURN(IPv6Net network, IPv6Net::Parse(kHostsIPv6Network));
  h->local.iface_ipv6 = addr;
  h->local.iface_ipv6_network = lan;
  h->local.public_ipv6 = addr;
  h->lease.ipv6_subnet = own;
  h->lease.ipv6_network = network;
  return absl::OkStatus();
}

}  // namespace

absl::Status MakeHostPair(absl::string_view prefix, bool nexthops, NetnsHost* a, NetnsHost* b,
                          bool dual_stack) {
  ASSIGN_OR_RETURN(a->ns, NetNs::Create(absl::StrCat(prefix, "a")));
  ASSIGN_OR_RETURN(b->ns, NetNs::Create(absl::StrCat(prefix, "b")));
  RETURN_IF_ERROR(ConnectVeth(*a->ns, "eth0", "192.0.2.1/24", *b->ns, "eth0", "192.0.2.2/24"));
  RETURN_IF_ERROR(MakeHost(a, nexthops, "192.0.2.1", "198.18.1.0/24"));
  RETURN_IF_ERROR(MakeHost(b, nexthops, "192.0.2.2", "198.18.2.0/24"));
  if (!dual_stack) return absl::OkStatus();
  RETURN_IF_ERROR(AddIPv6(a, 1));
  return AddIPv6(b, 2);
}

agent::ReconcileStats ReconcileOk(agent::Backend& backend, const std::vector<agent::Peer>& peers) {
  absl::StatusOr<agent::ReconcileStats> s = backend.Reconcile(peers);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : agent::ReconcileStats{};
}

}  // namespace weft::testing
