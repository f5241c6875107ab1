// Dual-stack end to end, on the real kernel (issue 15): the real controller,
// agents and weftctl in network namespaces with an IPv4 and an IPv6 underlay
// (tests/cluster/harness.h, ClusterOptions::underlay_ipv6), the agents reaching
// the controller over IPv6, a network config with EnableIPv6. Every container
// has an IPv4 and an IPv6 address from its host's lease and reaches every
// container on another host over both, with vxlan (flannel.1 and
// flannel-v6.1) and with host-gw (IPv6 routes via each peer's PublicIPv6); an
// agent restart keeps both subnets. And IPv6-only networks (EnableIPv4 false)
// the same way, with no IPv4 subnet anywhere.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/cluster/e2e_util.h"
#include "tests/cluster/harness.h"

namespace weft::testing {
namespace {

constexpr absl::Duration kConverge = absl::Seconds(30);

std::string DualStackConfig(const std::string& backend) {
  return absl::StrCat(R"({"Network":"10.1.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:12::/48",)",
                      R"("Backend":{"Type":")", backend, R"("}})");
}

ClusterOptions DualStack(const std::string& backend) {
  ClusterOptions o;
  o.network_config = DualStackConfig(backend);
  o.underlay_ipv6 = true;
  o.hosts = 3;
  return o;
}

// subnet.env carries flannel's IPv6 lines, inside the network, and the
// containers got addresses from them.
void ExpectIPv6Leases(Cluster& c) {
  for (int i = 0; i < c.num_hosts(); ++i) {
    const Host& h = c.host(i);
    EXPECT_EQ(h.env.vars.at("FLANNEL_IPV6_NETWORK"), "fd00:12::/48") << h.name;
    EXPECT_TRUE(absl::StartsWith(h.env.ipv6_subnet, "fd00:12:")) << h.name << ": " << h.env.ipv6_subnet;
    EXPECT_TRUE(absl::EndsWith(h.env.ipv6_subnet, "::1/64")) << h.name << ": " << h.env.ipv6_subnet;
    for (const Container& ct : h.containers) EXPECT_FALSE(ct.ipv6.empty()) << ct.name;
  }
  absl::StatusOr<ExecResult> leases = c.Weftctl({"leases", "list", "-o", "json"});
  ASSERT_TRUE(leases.ok()) << leases.status();
  for (int i = 0; i < c.num_hosts(); ++i) {
    const std::string sn6 = c.host(i).env.ipv6_subnet;
    const std::string cidr = absl::StrCat(sn6.substr(0, sn6.size() - 4), "/64");  // "...::1/64" -> "...::/64"
    EXPECT_TRUE(absl::StrContains(leases->out, absl::StrCat("\"ipv6_subnet\":\"", cidr, "\""))) << leases->out;
    EXPECT_TRUE(absl::StrContains(leases->out, absl::StrCat("\"public_ipv6\":\"", c.host(i).underlay_ipv6, "\"")))
        << leases->out;
  }
}

// Writes a flannel host's host-gw lease through the etcd API as flanneld does
// (`key` under /coreos.com/network/subnets/, its IPv6 subnet fd00:12:0:250::/64,
// PublicIPv6 fd77:2::250) and waits until every agent routes that subnet via
// its PublicIPv6.
void PutFlannelHostGwLease(Cluster& c, const std::string& key, const std::string& json) {
  ASSERT_NE(c.certs(), nullptr);
  const TlsClientFiles admin = c.certs()->Admin();
  const std::string put = absl::StrCat("ETCDCTL_API=3 etcdctl --endpoints https://", Cluster::kControllerIp,
                                       ":2379 --cacert ", admin.ca_file, " --cert ", admin.cert_file, " --key ",
                                       admin.key_file, " put '/coreos.com/network/subnets/", key, "' ", json);
  absl::StatusOr<std::string> written = c.Sh(c.controller_ns(), put);
  ASSERT_TRUE(written.ok()) << written.status();
  for (int i = 0; i < c.num_hosts(); ++i) {
    EXPECT_TRUE(Cluster::WaitForOk(
                    [&]() -> absl::Status {
                      absl::StatusOr<std::string> r = c.Sh(c.host(i).ns, "ip -6 route show fd00:12:0:250::/64");
                      if (!r.ok()) return r.status();
                      if (absl::StrContains(*r, "via fd77:2::250 dev eth0")) return absl::OkStatus();
                      return absl::NotFoundError(absl::StrCat("no route yet: ", *r));
                    },
                    kConverge)
                    .ok())
        << c.host(i).name;
  }
}

TEST(DualStackE2eTest, VxlanCarriesBothFamilies) {
  std::unique_ptr<Cluster> c = StartConverged(DualStack("vxlan"), kConverge);
  ASSERT_NE(c, nullptr);
  ExpectIPv6Leases(*c);
  for (int i = 0; i < c->num_hosts(); ++i) {
    // flannel's second device, over the IPv6 underlay.
    absl::StatusOr<std::string> dev = c->Sh(c->host(i).ns, "ip -d link show flannel-v6.1");
    ASSERT_TRUE(dev.ok()) << dev.status();
    EXPECT_TRUE(absl::StrContains(*dev, absl::StrCat("local ", c->host(i).underlay_ipv6))) << *dev;
  }
  // The IPv6 device's kernel counters are exported beside the IPv4 one's: the
  // pings went through both.
  absl::StatusOr<std::string> page = AgentMetrics(*c, 0);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_GT(Sample(*page, "weft_agent_tunnel_packets_total{device=\"flannel-v6.1\",direction=\"tx\"}"), 0) << *page;
  EXPECT_GT(Sample(*page, "weft_agent_tunnel_packets_total{device=\"flannel.1\",direction=\"tx\"}"), 0) << *page;
  // A restarted agent keeps both of its subnets, and the data path still works.
  const std::string v4 = c->host(1).env.subnet, v6 = c->host(1).env.ipv6_subnet;
  ASSERT_TRUE(c->StopAgent(1).ok());
  ASSERT_TRUE(c->StartAgent(1).ok());
  EXPECT_EQ(c->host(1).env.subnet, v4);
  EXPECT_EQ(c->host(1).env.ipv6_subnet, v6);
  EXPECT_TRUE(Cluster::WaitForOk([&] { return AllCrossHostPings(*c); }, kConverge).ok());
}

TEST(DualStackE2eTest, HostGwRoutesIPv6ViaThePeersPublicIPv6) {
  ClusterOptions o = DualStack("host-gw");
  o.controller_args = {"--etcd-listen", absl::StrCat(Cluster::kControllerIp, ":2379")};
  std::unique_ptr<Cluster> c = StartConverged(o, kConverge);
  ASSERT_NE(c, nullptr);
  ExpectIPv6Leases(*c);
  const Host& h1 = c->host(0);
  absl::StatusOr<std::string> routes = c->Sh(h1.ns, "ip -6 route show proto 87");
  ASSERT_TRUE(routes.ok()) << routes.status();
  for (int p = 1; p < c->num_hosts(); ++p) {
    const std::string sn6 = c->host(p).env.ipv6_subnet;
    const std::string cidr = absl::StrCat(sn6.substr(0, sn6.size() - 4), "/64");
    EXPECT_TRUE(absl::StrContains(*routes, absl::StrCat(cidr, " via ", c->host(p).underlay_ipv6, " dev eth0")))
        << *routes;
  }
  // A flannel host's dual-stack lease, written through the etcd API as flanneld
  // writes it: every agent routes its IPv6 subnet via its PublicIPv6.
  // Its IPv4 subnet is one no agent drew (the controller would refuse an overlap).
  const auto drawn = [&](int third) {
    for (int i = 0; i < c->num_hosts(); ++i) {
      if (absl::StartsWith(c->host(i).env.subnet, absl::StrCat("10.1.", third, "."))) return true;
    }
    return false;
  };
  int third = 250;
  while (drawn(third)) ++third;
  PutFlannelHostGwLease(
      *c, absl::StrCat("10.1.", third, ".0-24&fd00:12:0:250::-64"),
      R"('{"PublicIP":"192.0.2.250","PublicIPv6":"fd77:2::250","BackendType":"host-gw","BackendData":null}')");
}

ClusterOptions IPv6Only(const std::string& backend) {
  ClusterOptions o;
  o.network_config = absl::StrCat(R"({"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:12::/48",)",
                                  R"("Backend":{"Type":")", backend, R"("}})");
  o.underlay_ipv6 = true;
  o.hosts = 3;
  return o;
}

// An IPv6-only network: no IPv4 subnet anywhere (subnet.env, leases, devices,
// containers), IPv6 pings between every pair of containers across hosts.
void ExpectNoIPv4(Cluster& c) {
  for (int i = 0; i < c.num_hosts(); ++i) {
    const Host& h = c.host(i);
    EXPECT_EQ(h.env.vars.count("FLANNEL_SUBNET"), 0u) << h.name;
    EXPECT_EQ(h.env.vars.count("FLANNEL_NETWORK"), 0u) << h.name;
    EXPECT_EQ(h.env.vars.at("FLANNEL_IPV6_NETWORK"), "fd00:12::/48") << h.name;
    for (const Container& ct : h.containers) {
      EXPECT_TRUE(ct.ip.empty()) << ct.name;
      EXPECT_FALSE(ct.ipv6.empty()) << ct.name;
    }
    absl::StatusOr<std::string> v4routes = c.Sh(h.ns, "ip -4 route show proto 87");
    ASSERT_TRUE(v4routes.ok()) << v4routes.status();
    EXPECT_EQ(*v4routes, "") << h.name;
  }
  absl::StatusOr<ExecResult> leases = c.Weftctl({"leases", "list", "-o", "json"});
  ASSERT_TRUE(leases.ok()) << leases.status();
  EXPECT_FALSE(absl::StrContains(leases->out, "\"subnet\":\"1")) << leases->out;
  for (int i = 0; i < c.num_hosts(); ++i) {
    EXPECT_TRUE(absl::StrContains(leases->out, absl::StrCat("\"public_ipv6\":\"", c.host(i).underlay_ipv6, "\"")))
        << leases->out;
  }
}

TEST(IPv6OnlyE2eTest, VxlanHasOnlyTheIPv6DeviceAndARestartKeepsTheSubnet) {
  std::unique_ptr<Cluster> c = StartConverged(IPv6Only("vxlan"), kConverge);
  ASSERT_NE(c, nullptr);
  ExpectNoIPv4(*c);
  for (int i = 0; i < c->num_hosts(); ++i) {
    absl::StatusOr<std::string> dev = c->Sh(c->host(i).ns, "ip -d link show flannel-v6.1");
    ASSERT_TRUE(dev.ok()) << dev.status();
    EXPECT_TRUE(absl::StrContains(*dev, absl::StrCat("local ", c->host(i).underlay_ipv6))) << *dev;
    absl::StatusOr<ExecResult> v4dev = c->Exec(c->host(i).ns, {"ip", "link", "show", "flannel.1"});
    ASSERT_TRUE(v4dev.ok()) << v4dev.status();
    EXPECT_NE(v4dev->exit_code, 0) << "no IPv4 device in an IPv6-only network: " << v4dev->out;
  }
  const std::string v6 = c->host(1).env.ipv6_subnet;
  ASSERT_TRUE(c->StopAgent(1).ok());
  ASSERT_TRUE(c->StartAgent(1).ok());
  EXPECT_EQ(c->host(1).env.ipv6_subnet, v6);
  EXPECT_TRUE(Cluster::WaitForOk([&] { return AllCrossHostPings(*c); }, kConverge).ok());
}

TEST(IPv6OnlyE2eTest, HostGwRoutesAFlannelWrittenIPv6OnlyLease) {
  ClusterOptions o = IPv6Only("host-gw");
  o.controller_args = {"--etcd-listen", absl::StrCat(Cluster::kControllerIp, ":2379")};
  std::unique_ptr<Cluster> c = StartConverged(o, kConverge);
  ASSERT_NE(c, nullptr);
  ExpectNoIPv4(*c);
  // flanneld's key and JSON for an IPv6-only lease (its empty IPv4 subnet is
  // 0.0.0.0-0, its empty PublicIP 0.0.0.0), written through the etcd API.
  PutFlannelHostGwLease(
      *c, "0.0.0.0-0&fd00:12:0:250::-64",
      R"('{"PublicIP":"0.0.0.0","PublicIPv6":"fd77:2::250","BackendType":"host-gw","BackendData":null}')");
}

}  // namespace
}  // namespace weft::testing
