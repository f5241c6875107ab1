// The UDP backend against the real kernel: two "hosts" (network namespaces
// joined by a veth pair on 192.0.2.0/24), each with its own NetlinkProgrammer
// and UdpBackend, each with a "container" address of its subnet on lo. Checks flannel's device setup, traffic both ways with and without
// offloads, ICMP for unknown destinations, packets from unknown sources
// dropped, peers leaving, the MTU, repairs and teardown.

#include "agent/backend/udp/udp_backend.h"

#include <cstdio>
#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/netlink/netlink_programmer.h"
#include "common/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/netns/netns.h"

namespace weft::agent {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using weft::testing::NetNs;

IPv4Net Net(const char* s) { return *IPv4Net::Parse(s); }
IPv4Addr Ip(const char* s) { return *IPv4Addr::Parse(s); }

const IPv4Net kNetwork = Net("198.18.0.0/16");

struct Host {
  std::unique_ptr<NetNs> ns;
  std::unique_ptr<netlink::NetlinkProgrammer> kernel;
  metrics::Registry registry;
  std::unique_ptr<UdpBackend> backend;
  LocalConfig local;
  OwnLease lease;
  BackendInfo info;

  Peer AsPeer() const { return Peer{lease.subnet, local.public_ip, "udp", ""}; }
  std::string Sh(absl::string_view cmd) {
    absl::StatusOr<std::string> out = ns->Sh(cmd);
    EXPECT_TRUE(out.ok()) << cmd << ": " << out.status();
    return out.ok() ? *out : "";
  }
  // The TUN device and the sockets belong to the namespace of the thread that
  // makes them: every backend call that may create them runs inside.
  absl::StatusOr<BackendInfo> Init(absl::string_view config) {
    return ns->Run([&] { return backend->Init(local, lease, config); });
  }
  absl::StatusOr<ReconcileStats> Reconcile(std::vector<Peer> peers) {
    return ns->Run([&] { return backend->Reconcile(std::move(peers)); });
  }
  std::string Metrics() { return registry.Serialize(); }
};

// A sample's value from a /metrics page, or -1.
double Sample(const std::string& page, absl::string_view series) {
  const std::string key = absl::StrCat(series, " ");
  const size_t at = page.find(absl::StrCat("\n", key));
  if (at == std::string::npos) return -1;
  return std::stod(page.substr(at + 1 + key.size()));
}

// Param: offloads on (what a modern kernel gets) or off (the plain path).
class UdpNetnsTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    auto a = NetNs::Create("udpa");
    auto b = NetNs::Create("udpb");
    ASSERT_TRUE(a.ok() && b.ok());
    a_.ns = std::move(*a);
    b_.ns = std::move(*b);
    ASSERT_TRUE(weft::testing::ConnectVeth(*a_.ns, "eth0", "192.0.2.1/24", *b_.ns, "eth0", "192.0.2.2/24").ok());
    MakeHost(a_, "192.0.2.1", "198.18.1.0/24", "198.18.1.1/32");
    MakeHost(b_, "192.0.2.2", "198.18.2.0/24", "198.18.2.1/32");
  }

  void MakeHost(Host& h, const char* ip, const char* subnet, const char* container) {
    auto socket = h.ns->Run([] { return netlink::NetlinkSocket::Open(); });
    ASSERT_TRUE(socket.ok()) << socket.status();
    h.kernel = std::make_unique<netlink::NetlinkProgrammer>(std::move(*socket));
    absl::StatusOr<netlink::Link> eth0 = h.kernel->GetLink("eth0");
    ASSERT_TRUE(eth0.ok()) << eth0.status();
    h.local = LocalConfig{"eth0", eth0->index, eth0->mtu, Ip(ip), Net("192.0.2.0/24"), Ip(ip)};
    h.lease = OwnLease{Net(subnet), kNetwork};
    UdpOptions options;
    options.workers = 2;
    options.offloads = GetParam();
    h.backend = std::make_unique<UdpBackend>(h.kernel.get(), &h.registry, options);
    // A container's address, as docker0 would hold it.
    h.Sh(absl::StrCat("ip link set lo up && ip addr add ", container, " dev lo"));
  }

  void InitAndReconcileBoth() {
    for (Host* h : {&a_, &b_}) {
      absl::StatusOr<BackendInfo> info = h->Init(R"({"Type":"udp"})");
      ASSERT_TRUE(info.ok()) << info.status();
      h->info = *info;
    }
    for (Host* h : {&a_, &b_}) {
      absl::StatusOr<ReconcileStats> s = h->Reconcile({a_.AsPeer(), b_.AsPeer()});
      ASSERT_TRUE(s.ok()) << s.status();
      EXPECT_EQ(s->errors, 0);
    }
  }

  Host a_, b_;
};

TEST_P(UdpNetnsTest, SetsUpFlannelsDeviceAndCarriesPings) {
  InitAndReconcileBoth();
  EXPECT_EQ(a_.info.type, "udp");
  EXPECT_EQ(a_.info.data_json, "");
  EXPECT_EQ(a_.info.mtu, 1472u);
  const std::string link = a_.Sh("ip -d link show flannel0");
  EXPECT_THAT(link, HasSubstr("mtu 1472"));
  EXPECT_THAT(link, HasSubstr("tun"));
  EXPECT_THAT(link, HasSubstr("multi_queue"));
  EXPECT_THAT(link, HasSubstr(",UP"));
  // flannel: the lease's network address with the network's prefix length.
  EXPECT_THAT(a_.Sh("ip -4 -o addr show dev flannel0"), HasSubstr("inet 198.18.1.0/16"));
  EXPECT_THAT(a_.Sh("ip route show 198.18.0.0/16"), HasSubstr("198.18.0.0/16 dev flannel0"));
  EXPECT_THAT(a_.Sh("ss -u -l -n"), HasSubstr("192.0.2.1:8285"));

  EXPECT_TRUE(a_.ns->Sh("ping -c 3 -i 0.2 -W 2 198.18.2.1").ok());
  EXPECT_TRUE(b_.ns->Sh("ping -c 3 -i 0.2 -W 2 -I 198.18.2.1 198.18.1.1").ok());
  const std::string m = a_.Metrics();
  EXPECT_GE(Sample(m, "weft_agent_udp_packets_total{direction=\"tx\"}"), 3);
  EXPECT_GE(Sample(m, "weft_agent_udp_packets_total{direction=\"rx\"}"), 3);
  EXPECT_EQ(Sample(m, "weft_agent_udp_peers"), 1);
  EXPECT_EQ(Sample(m, "weft_agent_udp_workers"), 2);
  EXPECT_EQ(Sample(m, "weft_agent_udp_offload_enabled{offload=\"udp_gso\"}"), GetParam() ? 1 : 0);
  EXPECT_EQ(Sample(m, "weft_agent_udp_offload_enabled{offload=\"tun_tso\"}"), GetParam() ? 1 : 0);
  EXPECT_EQ(Sample(m, "weft_agent_udp_offload_enabled{offload=\"rx_steering\"}"), 1);
}

TEST_P(UdpNetnsTest, BulkTcpIsSegmentedAndCoalesced) {
  InitAndReconcileBoth();
  // 20 MiB over TCP, b -> a; iperf3 checks nothing but gets bytes through.
  // The server ends after one test, or after 30 s at the latest.
  ASSERT_TRUE(a_.ns->Sh("(timeout 30 iperf3 -s -1 -B 198.18.1.1 -p 5301 >/dev/null 2>&1 &); sleep 0.5").ok());
  absl::StatusOr<std::string> out = b_.ns->Sh("timeout 30 iperf3 -c 198.18.1.1 -p 5301 -n 20M -B 198.18.2.1 -J");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(*out, HasSubstr("20971520"));
  const std::string mb = b_.Metrics();
  const std::string ma = a_.Metrics();
  const double tx = Sample(mb, "weft_agent_udp_packets_total{direction=\"tx\"}");
  const double reads = Sample(mb, "weft_agent_udp_syscalls_total{call=\"tun_read\"}");
  const double sends = Sample(mb, "weft_agent_udp_syscalls_total{call=\"sendmmsg\"}");
  const double rx = Sample(ma, "weft_agent_udp_packets_total{direction=\"rx\"}");
  const double writes = Sample(ma, "weft_agent_udp_syscalls_total{call=\"tun_write\"}");
  // iperf3 stops counting (and the receiver reading) as soon as the sender has
  // written its bytes: most, not all, crossed while it ran.
  EXPECT_GT(tx, 10485760 / 1472);
  EXPECT_LE(Sample(ma, "weft_agent_udp_drops_total{reason=\"malformed\"}"), 0);
  if (GetParam()) {
    // TSO: one read brings many segments; GRO: one write takes many.
    EXPECT_GT(tx / reads, 4) << "tx " << tx << " reads " << reads;
    EXPECT_GT(rx / writes, 4) << "rx " << rx << " writes " << writes;
  } else {
    EXPECT_GT(tx / sends, 1) << "sendmmsg batches " << tx << " / " << sends;
  }
}

// Between two hosts every datagram has the same outer ports; the receive side
// still spreads inner flows over its workers: (source + destination port) mod 2.
TEST_P(UdpNetnsTest, InnerFlowsSpreadOverReceiveWorkers) {
  InitAndReconcileBoth();
  const udp::DatapathStats& st = a_.backend->stats();
  auto rx = [&](int w) { return st.rx(w).packets.load(); };
  for (int port : {40000, 40001}) {
    const uint64_t before0 = rx(0), before1 = rx(1);
    b_.Sh(absl::StrCat("python3 -c \"import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                       "s.bind(('198.18.2.1', ",
                       port, ")); [s.sendto(b'x' * 100, ('198.18.1.1', 9)) for _ in range(50)]\""));
    const int expect = (port + 9) % 2;
    Eventually([&] { return rx(expect) >= (expect == 0 ? before0 : before1) + 50; }, absl::Seconds(1));
    EXPECT_EQ(rx(expect), (expect == 0 ? before0 : before1) + 50) << "port " << port;
    EXPECT_EQ(rx(1 - expect), expect == 0 ? before1 : before0) << "port " << port;
  }
}

TEST_P(UdpNetnsTest, UnknownDestinationGetsNetUnreachable) {
  InitAndReconcileBoth();
  absl::StatusOr<CommandResult> r = a_.ns->Exec({"ping", "-c", "1", "-W", "2", "-I", "198.18.1.1", "198.18.3.1"});
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->exit_code, 0);
  EXPECT_THAT(r->output, HasSubstr("Unreachable")) << r->output;
  EXPECT_GE(Sample(a_.Metrics(), "weft_agent_udp_drops_total{reason=\"no_peer\"}"), 1);
}

// An encapsulated ping (flannel's wire format: the inner IPv4 packet is the
// UDP payload) sent to a's port 8285 from `source`, an address of b's eth0.
std::string SendEncapsulatedPing(Host& from, const char* source) {
  const std::string script = absl::StrCat(std::getenv("TEST_TMPDIR"), "/forge.py");
  FILE* f = fopen(script.c_str(), "w");
  EXPECT_NE(f, nullptr);
  if (f == nullptr) return "";
  fputs(R"PY(import socket, struct, sys
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
icmp = struct.pack("!BBHHH", 8, 0, 0, 0x4242, 1) + b"forged"
icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
src, dst = socket.inet_aton("198.18.2.1"), socket.inet_aton("198.18.1.1")
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 1, 0, 64, 1, 0, src, dst)
ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 0))
for _ in range(5): s.sendto(ip + icmp, ("192.0.2.1", 8285))
)PY",
        f);
  fclose(f);
  return from.Sh(absl::StrCat("python3 ", script, " ", source));
}

// Only the PublicIPs of known leases may put packets into flannel0: a host
// with no lease (here a second address on b's link) that can reach the port
// is dropped and counted; the same packets from b's PublicIP get through.
TEST_P(UdpNetnsTest, PacketsFromUnknownSourcesAreDroppedAndCounted) {
  InitAndReconcileBoth();
  b_.Sh("ip addr add 192.0.2.66/24 dev eth0");
  const std::string unknown = "weft_agent_udp_drops_total{reason=\"unknown_source\"}";
  const std::string rx = "weft_agent_udp_packets_total{direction=\"rx\"}";
  EXPECT_EQ(Sample(a_.Metrics(), unknown), 0) << "exported from the start";
  const double rx_before = Sample(a_.Metrics(), rx);
  SendEncapsulatedPing(b_, "192.0.2.66");
  Eventually([&] { return Sample(a_.Metrics(), unknown) >= 5; }, absl::Seconds(2));
  EXPECT_EQ(Sample(a_.Metrics(), unknown), 5);
  EXPECT_EQ(Sample(a_.Metrics(), rx), rx_before) << "a forged packet reached flannel0";

  // From b's PublicIP, the lease's: accepted (and a answers the echo).
  SendEncapsulatedPing(b_, "192.0.2.2");
  Eventually([&] { return Sample(a_.Metrics(), rx) >= rx_before + 5; }, absl::Seconds(2));
  EXPECT_EQ(Sample(a_.Metrics(), rx), rx_before + 5);
  EXPECT_EQ(Sample(a_.Metrics(), unknown), 5);

  // b's lease gone from a's view: b is a stranger too.
  ASSERT_TRUE(a_.Reconcile({a_.AsPeer()}).ok());
  SendEncapsulatedPing(b_, "192.0.2.2");
  Eventually([&] { return Sample(a_.Metrics(), unknown) >= 10; }, absl::Seconds(2));
  EXPECT_EQ(Sample(a_.Metrics(), unknown), 10);
  EXPECT_EQ(Sample(a_.Metrics(), rx), rx_before + 5);
}

TEST_P(UdpNetnsTest, MtuIsRespectedNotBlackHoled) {
  InitAndReconcileBoth();
  // 1444 + 8 + 20 = 1472 = flannel0's MTU: passes whole with DF.
  EXPECT_TRUE(a_.ns->Sh("ping -c 2 -i 0.2 -W 2 -M do -s 1444 198.18.2.1").ok());
  absl::StatusOr<CommandResult> r = a_.ns->Exec({"ping", "-c", "1", "-W", "2", "-M", "do", "-s", "1445", "198.18.2.1"});
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->exit_code, 0);
  EXPECT_THAT(r->output, HasSubstr("message too long")) << r->output;
}

TEST_P(UdpNetnsTest, PeerLeavingIsUnreachableAndComingBackWorks) {
  InitAndReconcileBoth();
  ASSERT_TRUE(a_.ns->Sh("ping -c 1 -W 2 198.18.2.1").ok());
  absl::StatusOr<ReconcileStats> s = a_.Reconcile({a_.AsPeer()});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->removed, 1);
  EXPECT_FALSE(a_.ns->Sh("ping -c 1 -W 1 198.18.2.1").ok());
  EXPECT_EQ(Sample(a_.Metrics(), "weft_agent_udp_peers"), 0);
  s = a_.Reconcile({a_.AsPeer(), b_.AsPeer()});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->added, 1);
  EXPECT_TRUE(a_.ns->Sh("ping -c 1 -W 2 198.18.2.1").ok());
}

TEST_P(UdpNetnsTest, RepairsADeletedDeviceAndTearsDown) {
  InitAndReconcileBoth();
  a_.Sh("ip link del flannel0");
  absl::StatusOr<ReconcileStats> s = a_.Reconcile({a_.AsPeer(), b_.AsPeer()});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(a_.Sh("ip -4 -o addr show dev flannel0"), HasSubstr("inet 198.18.1.0/16"));
  EXPECT_TRUE(a_.ns->Sh("ping -c 1 -W 2 198.18.2.1").ok());

  // So does an MTU changed by hand, and a route removed by hand.
  a_.Sh("ip link set flannel0 mtu 1400");
  a_.Sh("ip route del 198.18.0.0/16");
  s = a_.Reconcile({a_.AsPeer(), b_.AsPeer()});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->added, 1);
  EXPECT_THAT(a_.Sh("ip route show 198.18.0.0/16"), HasSubstr("dev flannel0"));
  EXPECT_THAT(a_.Sh("ip link show flannel0"), HasSubstr("mtu 1472"));

  ASSERT_TRUE(a_.ns->Run([&] { return a_.backend->Teardown(); }).ok());
  EXPECT_FALSE(a_.ns->Sh("ip link show flannel0").ok());
  EXPECT_THAT(a_.Sh("ip route show"), Not(HasSubstr("198.18.0.0/16")));
  EXPECT_THAT(a_.Sh("ss -u -l -n"), Not(HasSubstr(":8285")));
  // Init again brings it all back.
  ASSERT_TRUE(a_.Init(R"({"Type":"udp","Port":8285})").ok());
  ASSERT_TRUE(a_.Reconcile({a_.AsPeer(), b_.AsPeer()}).ok());
  EXPECT_TRUE(a_.ns->Sh("ping -c 1 -W 2 198.18.2.1").ok());
}

TEST_P(UdpNetnsTest, PortComesFromTheConfig) {
  for (Host* h : {&a_, &b_}) ASSERT_TRUE(h->Init(R"({"Type":"udp","Port":9285})").ok());
  for (Host* h : {&a_, &b_}) ASSERT_TRUE(h->Reconcile({a_.AsPeer(), b_.AsPeer()}).ok());
  EXPECT_THAT(a_.Sh("ss -u -l -n"), HasSubstr("192.0.2.1:9285"));
  EXPECT_TRUE(a_.ns->Sh("ping -c 1 -W 2 198.18.2.1").ok());
}

INSTANTIATE_TEST_SUITE_P(Offloads, UdpNetnsTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? "On" : "Off"; });

}  // namespace
}  // namespace weft::agent
