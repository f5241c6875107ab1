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

}  // namespace

absl::Status MakeHostPair(absl::string_view prefix, bool nexthops, NetnsHost* a, NetnsHost* b) {
  ASSIGN_OR_RETURN(a->ns, NetNs::Create(absl::StrCat(prefix, "a")));
  ASSIGN_OR_RETURN(b->ns, NetNs::Create(absl::StrCat(prefix, "b")));
  RETURN_IF_ERROR(ConnectVeth(*a->ns, "eth0", "192.0.2.1/24", *b->ns, "eth0", "192.0.2.2/24"));
  RETURN_IF_ERROR(MakeHost(a, nexthops, "192.0.2.1", "198.18.1.0/24"));
  return MakeHost(b, nexthops, "192.0.2.2", "198.18.2.0/24");
}

agent::ReconcileStats ReconcileOk(agent::Backend& backend, const std::vector<agent::Peer>& peers) {
  absl::StatusOr<agent::ReconcileStats> s = backend.Reconcile(peers);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : agent::ReconcileStats{};
}

}  // namespace weft::testing
