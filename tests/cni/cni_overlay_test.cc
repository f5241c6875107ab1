// weft-cni across hosts: a 2-host cluster of the real binaries (tests/cluster
// harness: weft-controller, one weft-agent per host namespace, VXLAN flannel.1),
// and on each host the real weft-cni run as a container runtime runs it (CNI_*
// in the environment, the config on stdin, `ip netns exec <host>`), delegating to
// the real bridge and host-local plugins from /usr/lib/cni. The addresses come
// from each host's lease (the subnet.env its agent wrote), and the containers
// reach each other over the overlay, with their own addresses.
//
// Everything goes away pass or fail: the Cluster (processes, host namespaces,
// hence cni0 and the veths) and each container's NetNs are RAII objects; the
// namespaces of a crashed run are removed by the next one (tests/netns).

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/net.h"
#include "gtest/gtest.h"
#include "tests/cluster/harness.h"
#include "tests/cni/cni_runtime.h"
#include "tests/netns/netns.h"

namespace weft::testing {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr char kNetName[] = "cbr0";
constexpr absl::Duration kConverge = absl::Seconds(20);  // a new lease reaches every host

// What a command printed, or why it failed (for EXPECTs on the output).
std::string Out(const absl::StatusOr<std::string>& r) {
  return r.ok() ? *r : std::string(r.status().message());
}

// One host's CNI side: its runtime (plugins run in the host's namespace) and
// the directories weft-cni and host-local keep their state in.
struct CniHost {
  int index = 0;
  std::string data_dir;  // weft-cni's saved delegate configs
  std::string ipam_dir;  // host-local's reservations
  json config;           // weft-cni's network config
  std::unique_ptr<CniRuntime> runtime;
};

// A container: its own namespace (deleted with the object) and its CNI call.
struct CniContainer {
  std::unique_ptr<NetNs> ns;
  CniCall call;
  std::string ip;        // from the ADD result
  json result;           // the ADD result
  Container as_harness;  // the same container as the harness sees one, for Cluster::Ping
};

class CniOverlayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);
    // Bazel's timeout sends SIGTERM first: waits give up and the RAII cleanup runs.
    Cluster::InstallSignalHandlers();
    ClusterOptions o;
    o.name = "cni_overlay";
    o.hosts = 2;
    o.containers_per_host = 0;  // no docker0: the containers are weft-cni's, on cni0
    // As kube-flannel runs flanneld: the agent masquerades (FLANNEL_IPMASQ=true),
    // so weft-cni gives bridge ipMasq=false and pod-to-pod traffic keeps its source.
    o.agent_args = {"--ip-masq"};
    absl::StatusOr<std::unique_ptr<Cluster>> c = Cluster::Start(std::move(o));
    ASSERT_TRUE(c.ok()) << "cluster did not start: " << c.status();
    cluster_ = *std::move(c);

    const std::string plugin = Runfile("cni/weft-cni");
    ASSERT_EQ(access(plugin.c_str(), X_OK), 0) << plugin;
    const std::vector<std::string> cni_path = {plugin.substr(0, plugin.rfind('/')), "/usr/lib/cni"};
    for (int i = 0; i < cluster_->num_hosts(); ++i) {
      const Host& h = cluster_->host(i);
      auto ch = std::make_unique<CniHost>();
      ch->index = i;
      const std::string dir = absl::StrCat(cluster_->work_dir(), "/", h.name, "-cni");
      ch->data_dir = dir + "/weft-cni";
      ch->ipam_dir = dir + "/host-local";
      fs::create_directories(dir);
      ch->config = {{"cniVersion", "1.0.0"},
                    {"name", kNetName},
                    {"type", "weft-cni"},
                    {"subnetFile", h.subnet_file},
                    {"dataDir", ch->data_dir},
                    {"delegate",
                     {{"hairpinMode", true},
                      {"isDefaultGateway", true},
                      {"ipam", {{"dataDir", ch->ipam_dir}}}}}};
      ch->runtime = std::make_unique<CniRuntime>(h.ns, cni_path);
      hosts_.push_back(std::move(ch));
    }
  }

  void TearDown() override {
    containers_.clear();  // before the hosts: their veth peers go with them anyway
    cluster_.reset();     // agents, controller, host namespaces (cni0, iptables rules)
  }

  // A container namespace on host `host`, lo up through the loopback plugin as a
  // runtime does. CNI_NETNS is the /var/run/netns path, as containerd passes it.
  CniContainer* NewContainer(int host) {
    const std::string tag = absl::StrCat(cluster_->host(host).name, "ctr");
    absl::StatusOr<std::unique_ptr<NetNs>> ns = NetNs::Create(tag);
    if (!ns.ok()) {
      ADD_FAILURE() << ns.status();
      return nullptr;
    }
    auto c = std::make_unique<CniContainer>();
    c->ns = *std::move(ns);
    c->call.container_id = absl::StrCat("weft-overlay-", getpid(), "-", tag);
    c->call.netns = absl::StrCat("/var/run/netns/", c->ns->name());
    c->call.ifname = "eth0";
    const PluginOutput lo = hosts_[host]->runtime->Exec(
        "loopback", "ADD", CniCall{c->call.container_id, c->call.netns, "lo"},
        R"({"cniVersion":"1.0.0","name":"lo","type":"loopback"})");
    EXPECT_EQ(lo.exit_code, 0) << lo.out << lo.err;
    c->as_harness = Container{tag, c->ns->name(), "", host};
    containers_.push_back(std::move(c));
    return containers_.back().get();
  }

  PluginOutput RunWeft(int host, const char* command, const CniContainer& c) {
    return hosts_[host]->runtime->Exec("weft-cni", command, c.call, hosts_[host]->config.dump());
  }

  bool Saved(int host, const CniContainer& c) const {
    return access(absl::StrCat(hosts_[host]->data_dir, "/", c.call.container_id).c_str(), F_OK) == 0;
  }

  // Host `host` routes `ip` (a container of another host) through flannel.1.
  absl::Status RoutedOverFlannel(int host, const std::string& ip) {
    absl::StatusOr<std::string> route = cluster_->Sh(cluster_->host(host).ns, "ip route get " + ip);
    if (!route.ok()) return route.status();
    if (!absl::StrContains(*route, "dev flannel.1")) {
      return absl::NotFoundError(absl::StrCat(cluster_->host(host).name, " routes ", ip,
                                              " elsewhere: ", *route));
    }
    return absl::OkStatus();
  }

  // Packets sent through host `host`'s VTEP so far.
  uint64_t FlannelTxPackets(int host) {
    uint64_t n = 0;
    const std::string s =
        Out(cluster_->Sh(cluster_->host(host).ns, "cat /sys/class/net/flannel.1/statistics/tx_packets"));
    EXPECT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(s), &n)) << s;
    return n;
  }

  // Counts, in container `c`, the echo requests that arrive from `src`: the
  // counter shows the receiver sees the sender's own address (no NAT on the way).
  void CountEchoRequestsFrom(const CniContainer& c, const std::string& src) {
    const absl::StatusOr<std::string> r = c.ns->Sh(
        "iptables -w -I INPUT -p icmp --icmp-type echo-request -s " + src + "/32 -j ACCEPT");
    ASSERT_TRUE(r.ok()) << r.status();
  }
  uint64_t EchoRequestsFrom(const CniContainer& c, const std::string& src) {
    const std::string rules = Out(c.ns->Sh("iptables -w -nvxL INPUT"));
    for (absl::string_view line : absl::StrSplit(rules, '\n')) {
      if (!absl::StrContains(line, src) || !absl::StrContains(line, "icmp")) continue;
      std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipWhitespace());
      uint64_t n = 0;
      if (!f.empty() && absl::SimpleAtoi(f[0], &n)) return n;
    }
    ADD_FAILURE() << "no counting rule for " << src << " in\n" << rules;
    return 0;
  }

  std::unique_ptr<Cluster> cluster_;
  std::vector<std::unique_ptr<CniHost>> hosts_;
  std::vector<std::unique_ptr<CniContainer>> containers_;
};

TEST_F(CniOverlayTest, ContainersOnTwoHostsGetLeaseAddressesPingOverVxlanAndDelFreesThem) {
  ASSERT_EQ(hosts_.size(), 2u);

  // ADD on each host: an address inside that host's FLANNEL_SUBNET.
  CniContainer* c[2] = {nullptr, nullptr};
  for (int i = 0; i < 2; ++i) {
    SCOPED_TRACE(cluster_->host(i).name);
    c[i] = NewContainer(i);
    ASSERT_NE(c[i], nullptr);
    const absl::StatusOr<SubnetEnv> env = cluster_->ReadSubnetEnv(i);
    ASSERT_TRUE(env.ok()) << env.status();
    ASSERT_TRUE(env->ipmasq) << "the agent runs with --ip-masq";

    const PluginOutput add = RunWeft(i, "ADD", *c[i]);
    ASSERT_EQ(add.exit_code, 0) << add.out << add.err;
    c[i]->result = add.Json();
    ASSERT_TRUE(c[i]->result.is_object()) << add.out;
    ASSERT_TRUE(c[i]->result["ips"].is_array() && !c[i]->result["ips"].empty()) << add.out;
    const std::string cidr = c[i]->result["ips"][0]["address"].get<std::string>();
    c[i]->ip = cidr.substr(0, cidr.find('/'));
    c[i]->as_harness.ip = c[i]->ip;

    const absl::StatusOr<IPv4Addr> addr = IPv4Addr::Parse(c[i]->ip);
    ASSERT_TRUE(addr.ok()) << cidr;
    const absl::StatusOr<IPv4Net> lease = IPv4Net::Parse(env->SubnetCidr());
    ASSERT_TRUE(lease.ok()) << env->subnet;
    EXPECT_TRUE(lease->Contains(*addr)) << cidr << " is outside FLANNEL_SUBNET=" << env->subnet;
    EXPECT_EQ(cidr, absl::StrCat(c[i]->ip, "/", env->PrefixLength()));
    EXPECT_NE(c[i]->ip, env->Gateway());
    EXPECT_EQ(c[i]->result["ips"][0]["gateway"], env->Gateway()) << add.out;

    // The kernel agrees: eth0 in the container with that address and the lease's
    // MTU, the gateway on cni0 in the host; host-local holds the address.
    EXPECT_TRUE(absl::StrContains(Out(c[i]->ns->Sh("ip -4 -o addr show dev eth0")), cidr));
    EXPECT_TRUE(absl::StrContains(Out(c[i]->ns->Sh("ip link show eth0")),
                                  absl::StrCat("mtu ", env->mtu)));
    EXPECT_TRUE(absl::StrContains(
        Out(cluster_->Sh(cluster_->host(i).ns, "ip -4 -o addr show dev cni0")), env->subnet));
    EXPECT_EQ(Reservations(hosts_[i]->ipam_dir, kNetName), std::vector<std::string>{c[i]->ip});
    EXPECT_TRUE(Saved(i, *c[i]));
  }
  ASSERT_FALSE(::testing::Test::HasFatalFailure());

  // Each host routes the other's container through its VTEP once it has the
  // other's lease.
  for (int i = 0; i < 2; ++i) {
    const absl::Status routed =
        Cluster::WaitForOk([&] { return RoutedOverFlannel(i, c[1 - i]->ip); }, kConverge);
    ASSERT_TRUE(routed.ok()) << routed;
  }

  // Ping both ways, over flannel.1, with the containers' own addresses.
  CountEchoRequestsFrom(*c[1], c[0]->ip);
  CountEchoRequestsFrom(*c[0], c[1]->ip);
  const uint64_t tx0 = FlannelTxPackets(0), tx1 = FlannelTxPackets(1);
  constexpr int kCount = 3;
  const absl::Status there = cluster_->Ping(c[0]->as_harness, c[1]->ip, kCount);
  EXPECT_TRUE(there.ok()) << there;
  const absl::Status back = cluster_->Ping(c[1]->as_harness, c[0]->ip, kCount);
  EXPECT_TRUE(back.ok()) << back;
  EXPECT_GE(FlannelTxPackets(0) - tx0, uint64_t{2 * kCount}) << "h1's traffic did not go out on flannel.1";
  EXPECT_GE(FlannelTxPackets(1) - tx1, uint64_t{2 * kCount}) << "h2's traffic did not go out on flannel.1";
  EXPECT_GE(EchoRequestsFrom(*c[1], c[0]->ip), uint64_t{kCount});
  EXPECT_GE(EchoRequestsFrom(*c[0], c[1]->ip), uint64_t{kCount});

  // DEL on both: the addresses are free (host-local's files gone), eth0 and the
  // saved config too; a second DEL succeeds as well.
  for (int i = 0; i < 2; ++i) {
    SCOPED_TRACE(cluster_->host(i).name);
    const PluginOutput del = RunWeft(i, "DEL", *c[i]);
    EXPECT_EQ(del.exit_code, 0) << del.out << del.err;
    EXPECT_EQ(del.out, "");
    EXPECT_TRUE(Reservations(hosts_[i]->ipam_dir, kNetName).empty());
    EXPECT_FALSE(fs::exists(absl::StrCat(hosts_[i]->ipam_dir, "/", kNetName, "/", c[i]->ip)));
    EXPECT_FALSE(Saved(i, *c[i]));
    EXPECT_FALSE(c[i]->ns->Sh("ip link show eth0").ok()) << "eth0 outlived DEL";

    const PluginOutput again = RunWeft(i, "DEL", *c[i]);
    EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
    EXPECT_EQ(again.out, "");
    EXPECT_TRUE(Reservations(hosts_[i]->ipam_dir, kNetName).empty());
  }
}

}  // namespace
}  // namespace weft::testing
