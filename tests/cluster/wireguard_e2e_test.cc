// End to end with the WireGuard backend: the real controller, agents, weftctl
// and wireguard-go (this machine's kernel has no WireGuard, so the agents pick
// the userspace implementation) in network namespaces, each host with its own
// /run/wireguard (tests/cluster/harness.h). `wg` reads each device as an
// operator would. Checks flannel's device and lease data, pings between the
// containers of three hosts, that the underlay carries only UDP to the listen
// port and never the containers' plaintext, that an agent restart keeps the
// node's key and traffic, that a released lease takes its peer away, that a
// reinstalled node's new key is picked up, the preshared key set and unset,
// and the metrics against docs/metrics.md. Over IPv6 (flanneld's Modes), with
// an IPv6 underlay: a dual-stack network in Mode separate (flannel-wg and
// flannel-wg-v6), an IPv6-only one (flannel-wg-v6 alone), and a dual-stack one
// in Mode auto (one device for both families).

#include <sys/stat.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/cluster/e2e_util.h"
#include "tests/cluster/harness.h"

namespace weft::testing {
namespace {

constexpr char kPsk[] = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
constexpr absl::Duration kConverge = absl::Seconds(30);

ClusterOptions WireguardOptions(absl::string_view backend_extra = "", int hosts = 3) {
  ClusterOptions o;
  o.network_config =
      absl::StrCat(R"({"Network":"10.1.0.0/16","Backend":{"Type":"wireguard")", backend_extra, "}}");
  o.hosts = hosts;
  return o;
}

// `wg show <dev> <what>` on host i, trimmed.
std::string Wg(Cluster& c, int host, absl::string_view what, absl::string_view dev = "flannel-wg") {
  absl::StatusOr<std::string> out = c.HostSh(host, absl::StrCat("wg show ", dev, " ", what));
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? std::string(absl::StripAsciiWhitespace(*out)) : "";
}

// The peers host i's device has: public key -> "endpoint allowed-ips".
std::map<std::string, std::string> Peers(Cluster& c, int host, absl::string_view dev = "flannel-wg") {
  std::map<std::string, std::string> out;
  // dump: the interface line, then per peer: key psk endpoint allowed-ips handshake rx tx keepalive
  const std::string dump = Wg(c, host, "dump", dev);
  std::vector<std::string> lines = absl::StrSplit(dump, '\n', absl::SkipEmpty());
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> f = absl::StrSplit(lines[i], '\t');
    if (f.size() >= 4) out[f[0]] = absl::StrCat(f[2], " ", f[3]);
  }
  return out;
}

TEST(WireguardE2ETest, ThreeHostsMeshAndTheUnderlayCarriesOnlyCiphertext) {
  std::unique_ptr<Cluster> c = StartConverged(WireguardOptions(), kConverge);
  ASSERT_NE(c, nullptr);
  std::map<std::string, int> host_of_key;
  for (int i = 0; i < c->num_hosts(); ++i) {
    const Host& h = c->host(i);
    SCOPED_TRACE(h.name);
    EXPECT_EQ(h.env.mtu, 1420);  // the underlay's 1500 - 80
    absl::StatusOr<std::string> link = c->Sh(h.ns, "ip -d link show flannel-wg");
    ASSERT_TRUE(link.ok()) << link.status();
    EXPECT_TRUE(absl::StrContains(*link, "mtu 1420")) << *link;
    EXPECT_TRUE(absl::StrContains(*link, "tun")) << "wireguard-go's device: " << *link;
    absl::StatusOr<std::string> addr = c->Sh(h.ns, "ip -4 -o addr show dev flannel-wg");
    ASSERT_TRUE(addr.ok());
    EXPECT_TRUE(absl::StrContains(*addr, absl::StrCat("inet ", h.env.NetworkAddress(), "/32"))) << *addr;
    EXPECT_EQ(Wg(*c, i, "listen-port"), "51820");
    host_of_key[Wg(*c, i, "public-key")] = i;
    // The key file: made once, 0600.
    struct stat st;
    ASSERT_EQ(stat((h.state_dir + "/wireguard-key").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
  }
  ASSERT_EQ(host_of_key.size(), 3u) << "three distinct keys";
  // Each device has the two others, at their underlay address and port, with their subnet.
  for (int i = 0; i < c->num_hosts(); ++i) {
    std::map<std::string, std::string> peers = Peers(*c, i);
    EXPECT_EQ(peers.size(), 2u);
    for (const auto& [key, idx] : host_of_key) {
      if (idx == i) continue;
      EXPECT_EQ(peers[key], absl::StrCat(c->host(idx).underlay_ip, ":51820 ", c->host(idx).env.SubnetCidr()))
          << c->host(i).name << " -> " << c->host(idx).name;
    }
  }
  // The leases carry flannel's BackendData.
  absl::StatusOr<ExecResult> leases = c->Weftctl({"leases", "list", "-o", "json"});
  ASSERT_TRUE(leases.ok()) << leases.status();
  for (const auto& [key, idx] : host_of_key) {
    EXPECT_TRUE(absl::StrContains(leases->out, key)) << leases->out;
  }
  EXPECT_TRUE(absl::StrContains(leases->out, "51820")) << leases->out;

  // Capture the underlay (every port of the switch: a capture on the bridge
  // device itself sees only what is flooded) while containers ping with a
  // recognisable payload; the controller's gRPC is left out of the capture, and
  // so is the hosts' own IPv6 link-local chatter.
  const std::string pcap = absl::StrCat(c->work_dir(), "/underlay.pcap");
  const std::string pidfile = absl::StrCat(c->work_dir(), "/tcpdump.pid");
  ASSERT_TRUE(c->Sh(c->switch_ns(), absl::StrCat("tcpdump -i any -nn -U -w ", pcap,
                                                 " 'ip and not host 192.0.2.2' >/dev/null 2>&1 & echo $! >",
                                                 pidfile))
                  .ok());
  // Listening once it has written the pcap header (24 bytes).
  ASSERT_TRUE(Cluster::WaitFor(
                  [&] {
                    struct stat st;
                    return stat(pcap.c_str(), &st) == 0 && st.st_size >= 24;
                  },
                  absl::Seconds(10), "tcpdump to start")
                  .ok());
  for (const Container* from : c->containers()) {
    for (const Container* to : c->containers()) {
      if (from->host == to->host) continue;
      absl::StatusOr<ExecResult> r =
          c->Exec(from->ns, {"ping", "-c", "2", "-i", "0.2", "-W", "2", "-p", "deadbeefcafef00d", to->ip});
      ASSERT_TRUE(r.ok());
      EXPECT_EQ(r->exit_code, 0) << r->ToString();
    }
  }
  ASSERT_TRUE(c->Sh(c->switch_ns(), absl::StrCat("sleep 0.3; kill -INT $(cat ", pidfile, ")")).ok());
  ASSERT_TRUE(Cluster::WaitFor(
                  [&] { return !c->Sh(c->switch_ns(), absl::StrCat("kill -0 $(cat ", pidfile, ")")).ok(); },
                  absl::Seconds(10), "tcpdump to stop")
                  .ok());
  absl::StatusOr<std::string> packets = c->Sh(c->switch_ns(), absl::StrCat("tcpdump -r ", pcap, " -nn 2>/dev/null"));
  ASSERT_TRUE(packets.ok()) << packets.status();
  int udp = 0;
  for (absl::string_view line : absl::StrSplit(*packets, '\n', absl::SkipEmpty())) {
    // "IP 192.0.2.11.51820 > 192.0.2.12.51820: UDP, length 128"
    EXPECT_TRUE(absl::StrContains(line, ".51820 > ") && absl::StrContains(line, ".51820: UDP")) << line;
    EXPECT_FALSE(absl::StrContains(line, "ICMP")) << line;
    ++udp;
  }
  // 12 echoes and 12 replies (each seen once, entering the switch), and handshakes.
  EXPECT_GE(udp, 24) << "every echo and reply crossed as a WireGuard datagram";
  // The payload never appears in clear on the wire.
  absl::StatusOr<std::string> clear =
      c->Sh(c->switch_ns(), absl::StrCat("python3 -c \"import sys; d = open('", pcap,
                                         "', 'rb').read(); print(d.count(bytes.fromhex('deadbeefcafef00d')))\""));
  ASSERT_TRUE(clear.ok()) << clear.status();
  EXPECT_EQ(absl::StripAsciiWhitespace(*clear), "0");
}

TEST(WireguardE2ETest, RestartKeepsTheKeyAndTrafficAndANewKeyIsPickedUp) {
  std::unique_ptr<Cluster> c = StartConverged(WireguardOptions("", 2), kConverge);
  ASSERT_NE(c, nullptr);
  const std::string key0 = Wg(*c, 0, "public-key");
  const Container& c0 = c->host(0).containers[0];
  const Container& c1 = c->host(1).containers[0];

  ASSERT_TRUE(c->StopAgent(0).ok());
  // No agent: wireguard-go and its peers stay, so do the containers' paths.
  EXPECT_TRUE(c->Ping(c0, c1.ip, 2).ok());
  ASSERT_TRUE(c->StartAgent(0).ok());
  EXPECT_EQ(Wg(*c, 0, "public-key"), key0) << "the key file kept the node's identity";
  EXPECT_EQ(Peers(*c, 1).count(key0), 1u);
  EXPECT_TRUE(Cluster::WaitForOk([&] { return AllCrossHostPings(*c); }, kConverge).ok());

  // Reinstalled: the key file is gone and wireguard-go too (a reboot).
  ASSERT_TRUE(c->StopAgent(0).ok());
  ASSERT_TRUE(c->Sh(c->host(0).ns, "ip link del flannel-wg").ok());
  ASSERT_EQ(unlink((c->host(0).state_dir + "/wireguard-key").c_str()), 0);
  ASSERT_TRUE(c->StartAgent(0).ok());
  const std::string key0b = Wg(*c, 0, "public-key");
  EXPECT_NE(key0b, key0);
  absl::Status picked = Cluster::WaitFor(
      [&] {
        std::map<std::string, std::string> p = Peers(*c, 1);
        return p.count(key0b) == 1 && p.count(key0) == 0;
      },
      kConverge, "host 2 to replace the old key with the new one");
  EXPECT_TRUE(picked.ok()) << picked;
  EXPECT_TRUE(Cluster::WaitForOk([&] { return AllCrossHostPings(*c); }, kConverge).ok());
}

TEST(WireguardE2ETest, ReleasedLeaseTakesItsPeerAway) {
  std::unique_ptr<Cluster> c = StartClusterForTest(WireguardOptions("", 2));
  ASSERT_NE(c, nullptr);
  absl::StatusOr<int> h3 = c->AddHost(1, {"--release-on-exit"});
  ASSERT_TRUE(h3.ok()) << h3.status();
  ASSERT_TRUE(Cluster::WaitForOk([&] { return AllCrossHostPings(*c); }, kConverge).ok());
  const std::string gone_key = Wg(*c, *h3, "public-key");
  const std::string want = Peers(*c, 0)[gone_key];
  ASSERT_FALSE(want.empty());
  // Drift: a peer removed by hand, another's endpoint changed; the next resync
  // (--resync-interval, 10 s) puts both back.
  ASSERT_TRUE(c->HostSh(0, absl::StrCat("wg set flannel-wg peer ", gone_key, " remove")).ok());
  const std::string key1 = Wg(*c, 1, "public-key");
  ASSERT_TRUE(c->HostSh(0, absl::StrCat("wg set flannel-wg peer ", key1, " endpoint 192.0.2.99:51820")).ok());
  absl::Status repaired = Cluster::WaitFor(
      [&] {
        std::map<std::string, std::string> p = Peers(*c, 0);
        return p[gone_key] == want && absl::StartsWith(p[key1], c->host(1).underlay_ip + ":51820");
      },
      kConverge, "the agent to repair its peers");
  ASSERT_TRUE(repaired.ok()) << repaired;
  ASSERT_TRUE(c->StopAgent(*h3).ok());
  for (int i = 0; i < 2; ++i) {
    absl::Status s = Cluster::WaitFor([&] { return Peers(*c, i).count(gone_key) == 0; }, kConverge,
                                      "the released host's peer to go");
    EXPECT_TRUE(s.ok()) << c->host(i).name << ": " << s;
    EXPECT_EQ(Peers(*c, i).size(), 1u);
  }
  EXPECT_TRUE(c->Ping(c->host(0).containers[0], c->host(1).containers[0].ip).ok());
}

TEST(WireguardE2ETest, PresharedKeySetAndUnset) {
  std::unique_ptr<Cluster> c =
      StartConverged(WireguardOptions(absl::StrCat(R"(,"PSK":")", kPsk, R"(","PersistentKeepaliveInterval":25)"), 2),
                     kConverge);
  ASSERT_NE(c, nullptr);
  for (int i = 0; i < 2; ++i) {
    const std::string psks = Wg(*c, i, "preshared-keys");
    EXPECT_TRUE(absl::StrContains(psks, kPsk)) << psks;
    EXPECT_TRUE(absl::StrContains(Wg(*c, i, "persistent-keepalive"), "\t25")) << Wg(*c, i, "persistent-keepalive");
  }
  // Unset: the config changes, the agents restart (they read it at start).
  ASSERT_TRUE(c->SetNetworkConfig(R"({"Network":"10.1.0.0/16","Backend":{"Type":"wireguard"}})").ok());
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(c->StopAgent(i).ok());
    ASSERT_TRUE(c->StartAgent(i).ok());
  }
  for (int i = 0; i < 2; ++i) {
    const std::string psks = Wg(*c, i, "preshared-keys");
    EXPECT_TRUE(absl::StrContains(psks, "(none)")) << psks;
    EXPECT_FALSE(absl::StrContains(psks, kPsk)) << psks;
  }
  EXPECT_TRUE(Cluster::WaitForOk([&] { return AllCrossHostPings(*c); }, kConverge).ok());
}

TEST(WireguardE2ETest, MetricsMatchTheirRowsInDocs) {
  ClusterOptions o = WireguardOptions("", 2);
  o.agent_args = {"--wireguard-peer-metrics"};
  std::unique_ptr<Cluster> c = StartConverged(o, kConverge);
  ASSERT_NE(c, nullptr);
  const std::string prefix = "weft_agent_wireguard_";
  std::string page;
  // Counters are read at each resync (10 s): wait for one after the pings.
  absl::Status fresh = Cluster::WaitFor(
      [&] {
        absl::StatusOr<std::string> p = AgentMetrics(*c, 0);
        if (!p.ok()) return false;
        page = *p;
        const std::string series = absl::StrCat(prefix, "peer_bytes_total{peer_subnet=\"",
                                                c->host(1).env.SubnetCidr(), "\",direction=\"rx\"}");
        return Sample(page, series) > 0;
      },
      absl::Seconds(30), "byte counters after a resync");
  EXPECT_TRUE(fresh.ok()) << fresh << "\n" << page;
  EXPECT_EQ(Sample(page, prefix + "peers"), 1);
  EXPECT_EQ(Sample(page, prefix + "implementation{implementation=\"userspace\"}"), 1);
  EXPECT_EQ(Sample(page, prefix + "implementation{implementation=\"kernel\"}"), 0);
  const double age = Sample(page, absl::StrCat(prefix, "peer_handshake_age_seconds{peer_subnet=\"",
                                               c->host(1).env.SubnetCidr(), "\"}"));
  EXPECT_GE(age, 0);
  EXPECT_LT(age, 180);
  EXPECT_EQ(Sample(page, prefix + "peers_without_handshake"), 0);
  EXPECT_GT(Sample(page, prefix + "bytes_total{direction=\"tx\"}"), 0);
  const DocumentedFamilies f = ExpectMetricsMatchDocs(page, prefix);
  EXPECT_EQ(f.exported, 7);
  EXPECT_EQ(f.documented, f.exported);
}

// --- IPv6 (flanneld's Modes) --------------------------------------------------

constexpr char kIPv6Network[] = "fd00:12::/48";

ClusterOptions WireguardV6Options(bool ipv4, absl::string_view mode_extra) {
  ClusterOptions o;
  o.network_config = absl::StrCat(ipv4 ? R"({"Network":"10.1.0.0/16",)" : R"({"EnableIPv4":false,)",
                                  R"("EnableIPv6":true,"IPv6Network":")", kIPv6Network,
                                  R"(","Backend":{"Type":"wireguard")", mode_extra, "}}");
  o.underlay_ipv6 = true;
  o.hosts = 3;
  return o;
}

// "fd00:12:0:13::1/64" (subnet.env) -> "fd00:12:0:13::/64" (the lease's subnet).
std::string V6Cidr(const Host& h) {
  const std::string& sn = h.env.ipv6_subnet;
  return absl::StrCat(sn.substr(0, sn.size() - 4), "/64");
}

bool LinkExists(Cluster& c, int host, absl::string_view dev) {
  absl::StatusOr<ExecResult> r = c.Exec(c.host(host).ns, {"ip", "link", "show", std::string(dev)});
  return r.ok() && r->exit_code == 0;
}

// Every device of every host lists each other host once, as `want(peer)` says
// ("endpoint allowed-ips", in wg's form); the public keys are the same on all
// devices of a host (one key file).
void ExpectMesh(Cluster& c, absl::string_view dev, const std::function<std::string(const Host&)>& want) {
  std::map<std::string, int> host_of_key;
  for (int i = 0; i < c.num_hosts(); ++i) host_of_key[Wg(c, i, "public-key", dev)] = i;
  ASSERT_EQ(host_of_key.size(), static_cast<size_t>(c.num_hosts())) << dev << ": distinct keys";
  for (int i = 0; i < c.num_hosts(); ++i) {
    std::map<std::string, std::string> peers = Peers(c, i, dev);
    EXPECT_EQ(peers.size(), static_cast<size_t>(c.num_hosts() - 1)) << c.host(i).name << " " << dev;
    for (const auto& [key, idx] : host_of_key) {
      if (idx == i) continue;
      EXPECT_EQ(peers[key], want(c.host(idx))) << c.host(i).name << " -> " << c.host(idx).name << " on " << dev;
    }
  }
}

TEST(WireguardIPv6E2ETest, DualStackSeparateModeHasADevicePerFamily) {
  ClusterOptions o = WireguardV6Options(true, "");
  o.controller_args = {"--etcd-listen", absl::StrCat(Cluster::kControllerIp, ":2379")};
  std::unique_ptr<Cluster> c = StartConverged(o, kConverge);
  ASSERT_NE(c, nullptr);  // converged: IPv4 and IPv6 pings between every pair of containers
  for (int i = 0; i < c->num_hosts(); ++i) {
    const Host& h = c->host(i);
    SCOPED_TRACE(h.name);
    EXPECT_EQ(h.env.mtu, 1420);
    EXPECT_EQ(Wg(*c, i, "listen-port", "flannel-wg"), "51820");
    EXPECT_EQ(Wg(*c, i, "listen-port", "flannel-wg-v6"), "51821");
    EXPECT_EQ(Wg(*c, i, "public-key", "flannel-wg-v6"), Wg(*c, i, "public-key", "flannel-wg")) << "one key file";
    absl::StatusOr<std::string> addr = c->Sh(h.ns, "ip -6 -o addr show dev flannel-wg-v6 scope global");
    ASSERT_TRUE(addr.ok()) << addr.status();
    const std::string cidr = V6Cidr(h);
    EXPECT_TRUE(absl::StrContains(*addr, absl::StrCat("inet6 ", cidr.substr(0, cidr.size() - 3), "/128"))) << *addr;
    absl::StatusOr<std::string> route = c->Sh(h.ns, absl::StrCat("ip -6 route show ", kIPv6Network));
    ASSERT_TRUE(route.ok()) << route.status();
    EXPECT_TRUE(absl::StrContains(*route, "dev flannel-wg-v6")) << *route;
    absl::StatusOr<std::string> v4addr = c->Sh(h.ns, "ip -6 -o addr show dev flannel-wg scope global");
    ASSERT_TRUE(v4addr.ok());
    EXPECT_EQ(*v4addr, "") << "flannel-wg carries IPv4 only in Mode separate";
  }
  ExpectMesh(*c, "flannel-wg", [](const Host& h) { return absl::StrCat(h.underlay_ip, ":51820 ", h.env.SubnetCidr()); });
  ExpectMesh(*c, "flannel-wg-v6",
             [](const Host& h) { return absl::StrCat("[", h.underlay_ipv6, "]:51821 ", V6Cidr(h)); });
  // The leases, as flanneld reads them through the etcd API, publish
  // BackendV6Data with the IPv6 device's port.
  ASSERT_NE(c->certs(), nullptr);
  const TlsClientFiles admin = c->certs()->Admin();
  absl::StatusOr<std::string> stored = c->Sh(
      c->controller_ns(), absl::StrCat("ETCDCTL_API=3 etcdctl --endpoints https://", Cluster::kControllerIp,
                                       ":2379 --cacert ", admin.ca_file, " --cert ", admin.cert_file, " --key ",
                                       admin.key_file, " get --print-value-only --prefix /coreos.com/network/subnets/"));
  ASSERT_TRUE(stored.ok()) << stored.status();
  std::vector<std::string> values = absl::StrSplit(*stored, '\n', absl::SkipWhitespace());
  ASSERT_EQ(values.size(), 3u) << *stored;
  for (const std::string& v : values) {
    const size_t v6 = v.find("\"BackendV6Data\":{");
    ASSERT_NE(v6, std::string::npos) << v;
    const std::string v6_data = v.substr(v6, v.find('}', v6) - v6);
    EXPECT_TRUE(absl::StrContains(v6_data, "\"Port\":51821")) << v;
    EXPECT_TRUE(absl::StrContains(v6_data, "\"PublicKey\":\"")) << v;
  }
  // Both devices' counters are exported, and the pings crossed both.
  absl::StatusOr<std::string> page = AgentMetrics(*c, 0);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_GT(Sample(*page, "weft_agent_tunnel_packets_total{device=\"flannel-wg-v6\",direction=\"tx\"}"), 0) << *page;
  EXPECT_GT(Sample(*page, "weft_agent_tunnel_packets_total{device=\"flannel-wg\",direction=\"tx\"}"), 0) << *page;
  absl::Status counted = Cluster::WaitFor(
      [&] {
        absl::StatusOr<std::string> p = AgentMetrics(*c, 0);
        return p.ok() && Sample(*p, "weft_agent_wireguard_peers") == 4;
      },
      absl::Seconds(15), "weft_agent_wireguard_peers to count both devices' peers");
  EXPECT_TRUE(counted.ok()) << counted;
}

TEST(WireguardIPv6E2ETest, IPv6OnlySeparateModeHasOnlyTheIPv6Device) {
  std::unique_ptr<Cluster> c = StartConverged(WireguardV6Options(false, ""), kConverge);
  ASSERT_NE(c, nullptr);  // converged: IPv6 pings between every pair of containers
  for (int i = 0; i < c->num_hosts(); ++i) {
    SCOPED_TRACE(c->host(i).name);
    EXPECT_FALSE(c->host(i).containers[0].ipv6.empty());
    EXPECT_TRUE(c->host(i).containers[0].ip.empty());
    EXPECT_TRUE(LinkExists(*c, i, "flannel-wg-v6"));
    EXPECT_FALSE(LinkExists(*c, i, "flannel-wg")) << "no IPv4 in the network: no IPv4 device";
    EXPECT_EQ(Wg(*c, i, "listen-port", "flannel-wg-v6"), "51821");
  }
  ExpectMesh(*c, "flannel-wg-v6",
             [](const Host& h) { return absl::StrCat("[", h.underlay_ipv6, "]:51821 ", V6Cidr(h)); });
}

// A single-device Mode on a dual-stack network: flannel-wg alone carries both
// families, each peer once with both subnets, at the endpoint `endpoint(peer)`.
void ExpectOneDeviceForBoth(absl::string_view mode, const std::function<std::string(const Host&)>& endpoint) {
  std::unique_ptr<Cluster> c =
      StartConverged(WireguardV6Options(true, absl::StrCat(R"(,"Mode":")", mode, R"(")")), kConverge);
  ASSERT_NE(c, nullptr);  // converged: IPv4 and IPv6 pings, both through flannel-wg
  for (int i = 0; i < c->num_hosts(); ++i) {
    const Host& h = c->host(i);
    SCOPED_TRACE(h.name);
    EXPECT_FALSE(LinkExists(*c, i, "flannel-wg-v6")) << "one device in Mode " << mode;
    absl::StatusOr<std::string> addrs = c->Sh(h.ns, "ip -o addr show dev flannel-wg scope global");
    ASSERT_TRUE(addrs.ok()) << addrs.status();
    EXPECT_TRUE(absl::StrContains(*addrs, absl::StrCat("inet ", h.env.NetworkAddress(), "/32"))) << *addrs;
    const std::string cidr = V6Cidr(h);
    EXPECT_TRUE(absl::StrContains(*addrs, absl::StrCat("inet6 ", cidr.substr(0, cidr.size() - 3), "/128"))) << *addrs;
    absl::StatusOr<std::string> routes = c->Sh(h.ns, "ip route show dev flannel-wg; ip -6 route show dev flannel-wg");
    ASSERT_TRUE(routes.ok());
    EXPECT_TRUE(absl::StrContains(*routes, "10.1.0.0/16")) << *routes;
    EXPECT_TRUE(absl::StrContains(*routes, kIPv6Network)) << *routes;
  }
  ExpectMesh(*c, "flannel-wg",
             [&](const Host& h) { return absl::StrCat(endpoint(h), " ", h.env.SubnetCidr(), ",", V6Cidr(h)); });
}

TEST(WireguardIPv6E2ETest, DualStackModeAutoCarriesBothFamiliesOnOneDevice) {
  // flanneld's choice of endpoint: the PublicIP, 192.0.2.x, is not RFC 1918
  // private and this host has IPv4.
  ExpectOneDeviceForBoth("auto", [](const Host& h) { return absl::StrCat(h.underlay_ip, ":51820"); });
}

TEST(WireguardIPv6E2ETest, DualStackModeIPv6ReachesPeersOverTheIPv6Underlay) {
  ExpectOneDeviceForBoth("ipv6", [](const Host& h) { return absl::StrCat("[", h.underlay_ipv6, "]:51820"); });
}

// flannel's alloc backend: leases and subnet.env, no data path at all.
TEST(AllocE2ETest, AgentsTakeLeasesAndProgramNothing) {
  ClusterOptions o;
  o.network_config = R"({"Network":"10.1.0.0/16","Backend":{"Type":"alloc"}})";
  o.hosts = 2;
  o.containers_per_host = 0;
  std::unique_ptr<Cluster> c = StartClusterForTest(o);
  ASSERT_NE(c, nullptr);
  for (int i = 0; i < c->num_hosts(); ++i) {
    const Host& h = c->host(i);
    EXPECT_EQ(h.env.network, "10.1.0.0/16");
    EXPECT_EQ(h.env.mtu, 1500) << "the underlay's: nothing is encapsulated";
    absl::StatusOr<std::string> links = c->Sh(h.ns, "ip -o link show | grep -v -e ' lo:' -e ' eth0@' || true");
    ASSERT_TRUE(links.ok());
    EXPECT_EQ(*links, "") << "no device made";
    absl::StatusOr<std::string> routes = c->Sh(h.ns, "ip route show proto 87");
    ASSERT_TRUE(routes.ok());
    EXPECT_EQ(*routes, "") << "no route made";
  }
  absl::StatusOr<ExecResult> leases = c->Weftctl({"leases", "list"});
  ASSERT_TRUE(leases.ok());
  EXPECT_TRUE(absl::StrContains(leases->out, c->host(0).env.SubnetCidr())) << leases->out;
  EXPECT_TRUE(absl::StrContains(leases->out, c->host(1).env.SubnetCidr())) << leases->out;
}

}  // namespace
}  // namespace weft::testing
