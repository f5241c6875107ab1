// End to end, on the real kernel: a controller, hosts and containers in network
// namespaces (tests/cluster/harness.h), the real weft-controller, weft-agent and
// weftctl binaries, and the VXLAN data path between the hosts. Checks what a
// flannel user relies on: containers on different hosts reach each other, the
// kernel state on each host is the one flannel's vxlan backend programs, and hosts
// that leave (release, lease expiry) vanish from the others while restarts of an
// agent or of the controller leave the data path alone.

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/cluster/e2e_util.h"
#include "tests/cluster/harness.h"

namespace weft::testing {
namespace {

constexpr absl::Duration kConverge = absl::Seconds(20);  // watch -> reconcile on every host
// After a controller restart the agents must first reconnect (with backoff).
constexpr absl::Duration kReconnect = absl::Seconds(45);

// The lines of `text` that contain every one of `words` as whole tokens.
std::vector<std::string> LinesWith(const std::string& text, const std::vector<std::string>& words) {
  std::vector<std::string> found;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    std::vector<absl::string_view> tokens = absl::StrSplit(line, ' ', absl::SkipWhitespace());
    bool all = true;
    for (const std::string& w : words) {
      all = all && std::find(tokens.begin(), tokens.end(), w) != tokens.end();
    }
    if (all) found.emplace_back(line);
  }
  return found;
}

absl::StatusOr<std::string> VtepMac(Cluster& c, int host) {
  absl::StatusOr<std::string> link = c.Sh(c.host(host).ns, "ip -o link show flannel.1");
  if (!link.ok()) return link.status();
  std::vector<absl::string_view> tokens = absl::StrSplit(*link, ' ', absl::SkipWhitespace());
  for (size_t i = 0; i + 1 < tokens.size(); ++i) {
    if (tokens[i] == "link/ether") return absl::AsciiStrToLower(tokens[i + 1]);
  }
  return absl::NotFoundError(absl::StrCat(c.host(host).name, ": no MAC on flannel.1: ", *link));
}

// Host `host` has flannel's three entries for `peer`: FDB (VtepMAC -> PublicIP),
// neighbour (subnet's network address -> VtepMAC) and route (subnet via network
// address, onlink).
absl::Status PeerProgrammed(Cluster& c, int host, int peer) {
  const Host& h = c.host(host);
  const Host& p = c.host(peer);
  absl::StatusOr<std::string> mac = VtepMac(c, peer);
  if (!mac.ok()) return mac.status();
  const std::string where = absl::StrCat(h.name, " about ", p.name, ": ");
  absl::StatusOr<std::string> fdb = c.Sh(h.ns, "bridge fdb show dev flannel.1");
  if (!fdb.ok()) return fdb.status();
  if (LinesWith(*fdb, {*mac, "dst", p.underlay_ip, "permanent"}).empty()) {
    return absl::NotFoundError(absl::StrCat(where, "no FDB entry ", *mac, " dst ", p.underlay_ip,
                                            " permanent in\n", *fdb));
  }
  absl::StatusOr<std::string> neigh = c.Sh(h.ns, "ip neigh show dev flannel.1");
  if (!neigh.ok()) return neigh.status();
  const std::string net = p.env.NetworkAddress();
  std::vector<std::string> n = LinesWith(*neigh, {net, "lladdr", *mac, "PERMANENT"});
  if (n.empty() || !absl::StartsWith(n[0], net + " ")) {
    return absl::NotFoundError(absl::StrCat(where, "no neighbour ", net, " lladdr ", *mac,
                                            " PERMANENT in\n", *neigh));
  }
  absl::StatusOr<std::string> routes = c.Sh(h.ns, "ip route show");
  if (!routes.ok()) return routes.status();
  // "10.1.7.0/24 via 10.1.7.0 dev flannel.1 [proto P] onlink": the protocol is
  // free (an agent may tag its routes), the rest is flannel's.
  bool found = false;
  for (absl::string_view line : absl::StrSplit(*routes, '\n', absl::SkipWhitespace())) {
    std::vector<absl::string_view> t = absl::StrSplit(line, ' ', absl::SkipWhitespace());
    auto after = [&](absl::string_view key) -> absl::string_view {
      auto it = std::find(t.begin(), t.end(), key);
      return it == t.end() || it + 1 == t.end() ? "" : *(it + 1);
    };
    found = found || (!t.empty() && t[0] == p.env.SubnetCidr() && after("via") == net &&
                      after("dev") == "flannel.1" && std::find(t.begin(), t.end(), "onlink") != t.end());
  }
  if (!found) {
    return absl::NotFoundError(absl::StrCat(where, "no route ", p.env.SubnetCidr(), " via ", net,
                                            " dev flannel.1 onlink in\n", *routes));
  }
  return absl::OkStatus();
}

// Every alive host has every other alive host's entries.
absl::Status AllProgrammed(Cluster& c, const std::vector<int>& alive) {
  for (int h : alive) {
    for (int p : alive) {
      if (h == p) continue;
      if (absl::Status s = PeerProgrammed(c, h, p); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

// Host `host` has nothing left that points at `gone` (its subnet, VtepMAC or IP).
absl::Status PeerGone(Cluster& c, int host, const Host& gone, const std::string& gone_mac) {
  const Host& h = c.host(host);
  const std::string where = absl::StrCat(h.name, " still knows ", gone.name, ": ");
  absl::StatusOr<std::string> fdb = c.Sh(h.ns, "bridge fdb show dev flannel.1");
  if (!fdb.ok()) return fdb.status();
  if (!LinesWith(*fdb, {gone_mac}).empty() || !LinesWith(*fdb, {gone.underlay_ip}).empty()) {
    return absl::FailedPreconditionError(absl::StrCat(where, "FDB\n", *fdb));
  }
  absl::StatusOr<std::string> neigh = c.Sh(h.ns, "ip neigh show dev flannel.1");
  if (!neigh.ok()) return neigh.status();
  if (!LinesWith(*neigh, {gone.env.NetworkAddress()}).empty()) {
    return absl::FailedPreconditionError(absl::StrCat(where, "neighbours\n", *neigh));
  }
  absl::StatusOr<std::string> routes = c.Sh(h.ns, "ip route show");
  if (!routes.ok()) return routes.status();
  if (!LinesWith(*routes, {gone.env.SubnetCidr()}).empty()) {
    return absl::FailedPreconditionError(absl::StrCat(where, "routes\n", *routes));
  }
  return absl::OkStatus();
}

// Host i's successful lease renewals so far (0 before the first, or when its
// metrics cannot be read).
double Renewals(Cluster& c, int host) {
  absl::StatusOr<std::string> page = AgentMetrics(c, host);
  if (!page.ok()) return 0;
  return std::max(0.0, Sample(*page, R"(weft_agent_lease_operations_total{operation="renew",result="ok"})"));
}

absl::StatusOr<bool> LeaseListed(Cluster& c, const std::string& subnet) {
  absl::StatusOr<ExecResult> r = c.Weftctl({"leases", "list", "-o", "json"});
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) return absl::InternalError(r->ToString());
  return absl::StrContains(r->out, absl::StrCat("\"subnet\":\"", subnet, "\""));
}

// Every container pings every container on another host.
void ExpectAllCrossHostPings(Cluster& c) {
  for (const Container* from : c.containers()) {
    for (const Container* to : c.containers()) {
      if (from->host == to->host) continue;
      EXPECT_TRUE(c.Ping(*from, to->ip).ok())
          << c.Ping(*from, to->ip, 1, absl::Seconds(2));  // the second try tells why
    }
  }
}

TEST(VxlanE2ETest, CrossHostPingsAndFlannelKernelState) {
  std::unique_ptr<Cluster> c = StartClusterForTest({});
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(c->num_hosts(), 3);

  // subnet.env: flannel's four variables, a distinct /24 of the network per host.
  std::vector<std::string> subnets;
  for (int i = 0; i < 3; ++i) {
    const SubnetEnv& env = c->host(i).env;
    EXPECT_EQ(env.network, "10.1.0.0/16");
    EXPECT_EQ(env.PrefixLength(), 24) << env.subnet;
    EXPECT_TRUE(absl::StartsWith(env.subnet, "10.1.")) << env.subnet;
    EXPECT_TRUE(absl::EndsWith(env.Gateway(), ".1")) << "FLANNEL_SUBNET is the first address: " << env.subnet;
    EXPECT_EQ(env.mtu, 1450);
    EXPECT_EQ(env.vars.at("FLANNEL_IPMASQ"), "false");
    subnets.push_back(env.SubnetCidr());
  }
  std::sort(subnets.begin(), subnets.end());
  EXPECT_EQ(std::unique(subnets.begin(), subnets.end()), subnets.end()) << "two hosts share a subnet";

  // (b) the kernel state flannel's vxlan backend programs.
  for (int i = 0; i < 3; ++i) {
    const Host& h = c->host(i);
    absl::StatusOr<std::string> link = c->Sh(h.ns, "ip -d link show flannel.1");
    ASSERT_TRUE(link.ok()) << link.status();
    EXPECT_TRUE(absl::StrContains(*link, "vxlan id 1 ")) << *link;
    EXPECT_TRUE(absl::StrContains(*link, " dstport 8472 ")) << *link;
    EXPECT_TRUE(absl::StrContains(*link, " nolearning ")) << *link;
    EXPECT_TRUE(absl::StrContains(*link, " mtu 1450 ")) << *link;
    EXPECT_TRUE(absl::StrContains(*link, ",UP")) << *link;
    // The device holds its own subnet's network address as /32.
    absl::StatusOr<std::string> addr = c->Sh(h.ns, "ip -4 -o addr show dev flannel.1");
    ASSERT_TRUE(addr.ok()) << addr.status();
    EXPECT_TRUE(absl::StrContains(*addr, absl::StrCat("inet ", h.env.NetworkAddress(), "/32")))
        << *addr;
  }
  EXPECT_TRUE(Cluster::WaitForOk([&] { return AllProgrammed(*c, {0, 1, 2}); }, kConverge).ok())
      << AllProgrammed(*c, {0, 1, 2});

  // (a) container to container across hosts, over VXLAN.
  ExpectAllCrossHostPings(*c);
}

// --nexthop-objects=false: exactly flannel's route layout, no nexthop objects,
// and traffic flows the same.
TEST(VxlanE2ETest, ClassicRouteLayoutOnRequest) {
  ClusterOptions o;
  o.hosts = 2;
  o.agent_args = {"--nexthop-objects=false"};
  std::unique_ptr<Cluster> c = StartClusterForTest(o);
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(Cluster::WaitForOk([&] { return AllProgrammed(*c, {0, 1}); }, kConverge).ok())
      << AllProgrammed(*c, {0, 1});
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<std::string> routes = c->Sh(c->host(i).ns, "ip route show dev flannel.1");
    ASSERT_TRUE(routes.ok()) << routes.status();
    EXPECT_FALSE(absl::StrContains(*routes, "nhid")) << *routes;
    absl::StatusOr<std::string> nh = c->Sh(c->host(i).ns, "ip nexthop show 2>/dev/null || true");
    ASSERT_TRUE(nh.ok()) << nh.status();
    EXPECT_EQ(*nh, "") << "no nexthop objects were to be made";
  }
  ExpectAllCrossHostPings(*c);
}

TEST(VxlanE2ETest, ReleasedLeaseVanishesFromPeers) {
  std::unique_ptr<Cluster> c = StartClusterForTest({});
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(Cluster::WaitForOk([&] { return AllProgrammed(*c, {0, 1, 2}); }, kConverge).ok())
      << AllProgrammed(*c, {0, 1, 2});
  // A 4th host whose agent releases its lease when it stops.
  absl::StatusOr<int> h4 = c->AddHost(1, {"--release-on-exit"});
  ASSERT_TRUE(h4.ok()) << h4.status();
  const Host gone = c->host(*h4);
  absl::StatusOr<std::string> mac = VtepMac(*c, *h4);
  ASSERT_TRUE(mac.ok()) << mac.status();
  ASSERT_TRUE(Cluster::WaitForOk([&] { return AllProgrammed(*c, {0, 1, 2, 3}); }, kConverge).ok())
      << AllProgrammed(*c, {0, 1, 2, 3});

  ASSERT_TRUE(c->StopAgent(*h4).ok());
  for (int i : {0, 1, 2}) {
    absl::Status s = Cluster::WaitForOk([&] { return PeerGone(*c, i, gone, *mac); }, absl::Seconds(5));
    EXPECT_TRUE(s.ok()) << s;
  }
  absl::StatusOr<bool> listed = LeaseListed(*c, gone.env.SubnetCidr());
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_FALSE(*listed) << "released lease " << gone.env.SubnetCidr() << " still listed";
  // The others keep their leases and still reach each other; a plain SIGTERM
  // (no --release-on-exit) keeps the lease.
  EXPECT_TRUE(AllProgrammed(*c, {0, 1, 2}).ok()) << AllProgrammed(*c, {0, 1, 2});
  EXPECT_TRUE(c->Ping(c->host(0).containers[0], c->host(1).containers[0].ip).ok());
  // StopAgent returns once the agent has exited, and an agent releases its lease
  // (when told to) before it exits and only after the controller answered: no
  // wait is needed for a wrong release to show.
  ASSERT_TRUE(c->StopAgent(2).ok());
  absl::StatusOr<bool> kept = LeaseListed(*c, c->host(2).env.SubnetCidr());
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_TRUE(*kept) << "SIGTERM without --release-on-exit released the lease";
  EXPECT_TRUE(PeerProgrammed(*c, 0, 2).ok()) << PeerProgrammed(*c, 0, 2);
}

TEST(VxlanE2ETest, ExpiredLeaseVanishesFromPeers) {
  ClusterOptions o;
  o.network_config = R"({"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"},"LeaseTTL":"15s"})";
  std::unique_ptr<Cluster> c = StartClusterForTest(o);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(Cluster::WaitForOk([&] { return AllProgrammed(*c, {0, 1, 2}); }, kConverge).ok())
      << AllProgrammed(*c, {0, 1, 2});
  const Host gone = c->host(2);
  absl::StatusOr<std::string> mac = VtepMac(*c, 2);
  ASSERT_TRUE(mac.ok()) << mac.status();

  const double renewals[] = {Renewals(*c, 0), Renewals(*c, 1)};
  const absl::Time killed = absl::Now();
  ASSERT_TRUE(c->KillAgent(2).ok());
  // A dead agent releases nothing: its lease (and the peers' entries) stay until the TTL.
  EXPECT_TRUE(PeerProgrammed(*c, 0, 2).ok()) << PeerProgrammed(*c, 0, 2);
  for (int i : {0, 1}) {
    absl::Status s = Cluster::WaitForOk([&] { return PeerGone(*c, i, gone, *mac); },
                                        absl::Seconds(15) + absl::Seconds(15));
    EXPECT_TRUE(s.ok()) << s;
  }
  std::fprintf(stderr, "expired lease gone from peers %s after SIGKILL\n",
               absl::FormatDuration(absl::Now() - killed).c_str());
  absl::StatusOr<bool> listed = LeaseListed(*c, gone.env.SubnetCidr());
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_FALSE(*listed) << "expired lease " << gone.env.SubnetCidr() << " still listed";
  // The survivors renew (TTL 15 s): still there, still connected, after another
  // renewal each, by when their leases would have expired as well otherwise.
  for (int i : {0, 1}) {
    absl::Status s = Cluster::WaitForOk(
        [&]() -> absl::Status {
          const double now = Renewals(*c, i);
          if (now > renewals[i]) return absl::OkStatus();
          return absl::UnavailableError(absl::StrCat(c->host(i).name, ": ", now, " renewals"));
        },
        absl::Seconds(15) + absl::Seconds(15));
    EXPECT_TRUE(s.ok()) << s;
  }
  EXPECT_TRUE(AllProgrammed(*c, {0, 1}).ok()) << AllProgrammed(*c, {0, 1});
  EXPECT_TRUE(c->Ping(c->host(0).containers[0], c->host(1).containers[0].ip).ok());
}

TEST(VxlanE2ETest, AgentRestartKeepsSubnetAndVtepMac) {
  std::unique_ptr<Cluster> c = StartClusterForTest({});
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(Cluster::WaitForOk([&] { return AllProgrammed(*c, {0, 1, 2}); }, kConverge).ok())
      << AllProgrammed(*c, {0, 1, 2});
  const std::string subnet = c->host(1).env.subnet;
  absl::StatusOr<std::string> mac = VtepMac(*c, 1);
  ASSERT_TRUE(mac.ok()) << mac.status();

  struct Restart {
    const char* how;
    bool kill;
  };
  for (const Restart& r : {Restart{"SIGTERM", false}, Restart{"SIGKILL", true}}) {
    SCOPED_TRACE(r.how);
    ASSERT_TRUE((r.kill ? c->KillAgent(1) : c->StopAgent(1)).ok());
    ASSERT_TRUE(c->StartAgent(1).ok());
    EXPECT_EQ(c->host(1).env.subnet, subnet) << "the restarted agent got another subnet";
    absl::StatusOr<std::string> mac_after = VtepMac(*c, 1);
    ASSERT_TRUE(mac_after.ok()) << mac_after.status();
    EXPECT_EQ(*mac_after, *mac) << "the restarted agent changed its VTEP MAC";
    EXPECT_TRUE(Cluster::WaitForOk([&] { return AllProgrammed(*c, {0, 1, 2}); }, kConverge).ok())
        << AllProgrammed(*c, {0, 1, 2});
    ExpectAllCrossHostPings(*c);
  }
}

TEST(VxlanE2ETest, ControllerOutageKeepsTrafficAndNewHostJoinsAfterRestart) {
  std::unique_ptr<Cluster> c = StartClusterForTest({});
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(Cluster::WaitForOk([&] { return AllProgrammed(*c, {0, 1, 2}); }, kConverge).ok())
      << AllProgrammed(*c, {0, 1, 2});
  std::vector<std::string> subnets;
  for (int i = 0; i < 3; ++i) subnets.push_back(c->host(i).env.SubnetCidr());

  ASSERT_TRUE(c->StopController().ok());
  for (int i = 0; i < 3; ++i) {  // the agents notice the lost stream
    absl::Status s = Cluster::WaitForOk(
        [&]() -> absl::Status {
          absl::StatusOr<std::string> page = AgentMetrics(*c, i);
          if (!page.ok()) return page.status();
          const double v = Sample(*page, "weft_agent_controller_connected");
          if (v == 0) return absl::OkStatus();
          return absl::UnavailableError(absl::StrCat(c->host(i).name, ": weft_agent_controller_connected ", v));
        },
        kConverge);
    EXPECT_TRUE(s.ok()) << s;
  }
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(c->AgentRunning(i)) << c->host(i).name << " died";
  ExpectAllCrossHostPings(*c);
  EXPECT_TRUE(AllProgrammed(*c, {0, 1, 2}).ok()) << AllProgrammed(*c, {0, 1, 2});

  // Same data dir: the leases survived the restart, and a new host joins.
  ASSERT_TRUE(c->StartController().ok());
  for (const std::string& s : subnets) {
    absl::StatusOr<bool> listed = LeaseListed(*c, s);
    ASSERT_TRUE(listed.ok()) << listed.status();
    EXPECT_TRUE(*listed) << s << " lost across the controller restart";
  }
  absl::StatusOr<int> h4 = c->AddHost(1);
  ASSERT_TRUE(h4.ok()) << h4.status();
  EXPECT_EQ(std::find(subnets.begin(), subnets.end(), c->host(*h4).env.SubnetCidr()), subnets.end())
      << "the new host got a subnet already in use";
  EXPECT_TRUE(Cluster::WaitForOk([&] { return AllProgrammed(*c, {0, 1, 2, 3}); }, kReconnect).ok())
      << AllProgrammed(*c, {0, 1, 2, 3});
  const Container& c4 = c->host(*h4).containers[0];
  for (int i = 0; i < 3; ++i) {
    const Container& other = c->host(i).containers[0];
    EXPECT_TRUE(c->Ping(c4, other.ip).ok()) << c->Ping(c4, other.ip, 1, absl::Seconds(2));
    EXPECT_TRUE(c->Ping(other, c4.ip).ok()) << c->Ping(other, c4.ip, 1, absl::Seconds(2));
  }
}

}  // namespace
}  // namespace weft::testing
