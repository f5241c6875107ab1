// How fast the VXLAN data path for a big cluster reaches the kernel: a snapshot of
// N remote leases (default 10,000: 30,000 objects, a neighbour, an FDB entry and a
// route each, plus 10,000 nexthop objects in Weft's default layout) programmed
// into a fresh network namespace by VxlanBackend over NetlinkProgrammer, against
// iproute2 applying the same objects with `ip -batch` + `bridge -batch` in another
// fresh namespace, in the same run. Both layouts are timed: flannel's classic
// routes, and routes through nexthop objects. Also times a no-op resync (dump +
// diff of everything, nothing to send). Each pair of namespaces is checked to hold
// the same objects afterwards.
//
//   sudo bazel run -c opt //tests/bench:netlink_bench -- [--peers 10000] [--rounds 3] [--dual-stack 1]
//
// --dual-stack 1: every lease also has an IPv6 subnet (fd42:0:<i>::/64) behind
// its PublicIPv6 (fd18::<i+1>): the same three objects again on flannel-v6.1, the
// IPv6 device over the IPv6 underlay (IPv6 routes carry their own next hop:
// nexthop objects stay IPv4-only), against iproute2 doing the same.
//
// Exits 1 when the median Weft time (nexthop layout) is 1 s or more, or Weft is
// slower than iproute2 in either layout.

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/atomic_file.h"
#include "agent/backend/vxlan/vxlan_backend.h"
#include "agent/netlink/netlink_programmer.h"
#include "common/mutex_mode.h"
#include "tests/netns/netns.h"

namespace {

using weft::IPv4Addr;
using weft::IPv4Net;
using weft::IPv6Addr;
using weft::IPv6Net;
using weft::MacAddr;
using weft::agent::Peer;
using weft::netlink::NetlinkProgrammer;
using weft::testing::NetNs;

struct Flags {
  int peers = 10000;
  int rounds = 3;
  int dual_stack = 0;
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "netlink_bench: %s\n", what.c_str());
  std::exit(2);
}

template <typename T>
T OrDie(absl::StatusOr<T> v, const char* what) {
  if (!v.ok()) Die(absl::StrCat(what, ": ", v.status().ToString()));
  return *std::move(v);
}
void OrDie(const absl::Status& s, const char* what) {
  if (!s.ok()) Die(absl::StrCat(what, ": ", s.ToString()));
}

const IPv4Net kNetwork = *IPv4Net::Parse("100.64.0.0/10");     // 16,384 /24s
const IPv4Net kOwnSubnet = *IPv4Net::Parse("100.127.255.0/24");  // the last one
const MacAddr kOwnMac = *MacAddr::Parse("0a:58:ff:ff:ff:01");

// Remote lease i: subnet 100.64.0.0/24 + i, PublicIP 198.18.0.1 + i, its own MAC.
IPv4Net PeerSubnet(int i) { return *IPv4Net::Make(IPv4Addr::FromUint32(kNetwork.network().value() + (i << 8)), 24); }
IPv4Addr PeerIp(int i) { return IPv4Addr::FromUint32(IPv4Addr::Parse("198.18.0.1")->value() + i); }
MacAddr PeerMac(int i) {
  return MacAddr({0x0a, 0x58, 0x00, static_cast<uint8_t>(i >> 16), static_cast<uint8_t>(i >> 8),
                  static_cast<uint8_t>(i)});
}

// Dual-stack: lease i's IPv6 subnet fd42:0:<i>::/64 and PublicIPv6 fd18::<i+1>;
// this host's fd42:0:ffff::/64 behind fd77:1::1.
const IPv6Net kNetwork6 = *IPv6Net::Parse("fd42::/48");
const IPv6Net kOwnSubnet6 = *IPv6Net::Parse("fd42:0:ffff::/64");
IPv6Net PeerSubnet6(int i) {
  return *IPv6Net::Make(IPv6Addr::FromUint128(kNetwork6.network().value() + (absl::uint128(i) << 64)), 64);
}
IPv6Addr PeerIp6(int i) { return IPv6Addr::FromUint128(IPv6Addr::Parse("fd18::1")->value() + i); }

std::vector<Peer> Snapshot(int n, bool dual_stack) {
  std::vector<Peer> peers;
  peers.reserve(n + 1);
  for (int i = 0; i < n; ++i) {
    peers.push_back({PeerSubnet(i), PeerIp(i), "vxlan", weft::agent::VxlanLeaseDataJson(1, PeerMac(i))});
    if (dual_stack) {
      peers.back().ipv6_subnet = PeerSubnet6(i);
      peers.back().public_ipv6 = PeerIp6(i);
      peers.back().backend_v6_data_json = weft::agent::VxlanLeaseDataJson(1, weft::agent::V6VtepMac(PeerMac(i)));
    }
  }
  peers.push_back({kOwnSubnet, *IPv4Addr::Parse("192.0.2.1"), "vxlan",
                   weft::agent::VxlanLeaseDataJson(1, kOwnMac)});
  return peers;
}

std::unique_ptr<NetNs> FreshHost(const char* tag) {
  std::unique_ptr<NetNs> ns = OrDie(NetNs::Create(tag), "create namespace");
  OrDie(ns->Sh("ip link add eth0 type veth peer name eth0p && ip link set eth0p up && "
               "ip addr add 192.0.2.1/24 dev eth0 && ip addr add fd77:1::1/64 dev eth0 nodad && "
               "ip link set eth0 up")
            .status(),
        "underlay");
  return ns;
}

// Objects in the namespace, without link indexes, for comparing two namespaces.
using Objects = std::tuple<std::vector<std::string>, std::vector<std::string>, std::vector<std::string>>;
Objects Dump(NetlinkProgrammer& kernel) {
  std::vector<std::string> n, f, r;
  for (const char* dev : {"flannel.1", "flannel-v6.1"}) {
    absl::StatusOr<weft::netlink::Link> link = kernel.GetLink(dev);
    if (!link.ok()) continue;  // no IPv6 device in an IPv4-only run
    for (const auto& x : OrDie(kernel.ListNeighbours(link->index), "neighbours")) {
      if (x.state == NUD_PERMANENT) n.push_back(absl::StrCat(x.ip.ToString(), " ", x.mac.ToString()));
    }
    for (const auto& x : OrDie(kernel.ListFdb(link->index), "fdb")) {
      f.push_back(absl::StrCat(x.mac.ToString(), " ", x.dst.ToString()));
    }
  }
  for (const auto& x : OrDie(kernel.ListRoutes(0, weft::netlink::kWeftRouteProtocol), "routes")) {
    r.push_back(absl::StrCat(x.dst.ToString(), " nhid ", x.nexthop_id, " ", x.gateway.ToString(),
                             x.onlink ? " onlink" : ""));
  }
  for (auto* v : {&n, &f, &r}) std::sort(v->begin(), v->end());
  return {n, f, r};
}

struct Timing {
  double apply_ms = 0;
  double resync_ms = 0;  // weft only
  Objects objects;
  // Kept until the round ends: the kernel tears a namespace down in the
  // background, which would slow down the next measurement.
  std::unique_ptr<NetlinkProgrammer> kernel;
  std::unique_ptr<NetNs> ns;
};

// VxlanBackend: Init (device, not timed), one Reconcile from the snapshot (timed),
// one more (timed: the no-op resync).
Timing RunWeft(const Flags& flags, const std::vector<Peer>& peers, bool nexthops) {
  Timing t;
  std::unique_ptr<NetNs> ns = FreshHost(nexthops ? "bwn" : "bwc");
  auto socket = OrDie(ns->Run([] { return weft::netlink::NetlinkSocket::Open(); }), "netlink");
  std::unique_ptr<NetlinkProgrammer> kernel =
      std::make_unique<NetlinkProgrammer>(std::move(socket), nexthops);
  weft::agent::VxlanBackend backend(kernel.get(), kOwnMac);
  const weft::netlink::Link eth0 = OrDie(kernel->GetLink("eth0"), "eth0");
  weft::agent::LocalConfig local{"eth0", eth0.index, eth0.mtu, *IPv4Addr::Parse("192.0.2.1"),
                                 *IPv4Net::Parse("192.0.2.0/24"), *IPv4Addr::Parse("192.0.2.1")};
  weft::agent::OwnLease lease{kOwnSubnet, kNetwork};
  if (flags.dual_stack) {
    local.iface_ipv6 = *IPv6Addr::Parse("fd77:1::1");
    local.iface_ipv6_network = *IPv6Net::Parse("fd77:1::/64");
    lease.ipv6_subnet = kOwnSubnet6;
    lease.ipv6_network = kNetwork6;
  }
  OrDie(backend.Init(local, lease, R"({"Type":"vxlan"})").status(), "init");
  const int objects = (nexthops ? 4 : 3) * flags.peers + (flags.dual_stack ? 3 * flags.peers : 0);
  absl::Time start = absl::Now();
  weft::agent::ReconcileStats stats = OrDie(backend.Reconcile(peers), "reconcile");
  t.apply_ms = absl::ToDoubleMilliseconds(absl::Now() - start);
  if (stats.added != objects || stats.errors != 0) {
    Die(absl::StrCat("reconcile added ", stats.added, " of ", objects, " with ", stats.errors, " errors"));
  }
  start = absl::Now();
  stats = OrDie(backend.Reconcile(peers), "resync");
  t.resync_ms = absl::ToDoubleMilliseconds(absl::Now() - start);
  if (stats.changes() != 0 || stats.unchanged != objects) Die("resync was not a no-op");
  t.objects = Dump(*kernel);
  t.kernel = std::move(kernel);
  t.ns = std::move(ns);
  return t;
}

// iproute2: the same device made by hand (not timed), then `ip -batch` (neighbours,
// nexthops, routes) and `bridge -batch` (FDB), timed together.
Timing RunIp(const std::string& ip_batch, const std::string& bridge_batch, bool nexthops, bool dual_stack) {
  Timing t;
  std::unique_ptr<NetNs> ns = FreshHost(nexthops ? "bin" : "bic");
  OrDie(ns->Sh(absl::StrCat("ip link add flannel.1 address ", kOwnMac.ToString(),
                            " mtu 1450 type vxlan id 1 local 192.0.2.1 dev eth0 dstport 8472 nolearning && "
                            "ip addr add ", kOwnSubnet.network().ToString(), "/32 dev flannel.1 && "
                            "ip link set flannel.1 up"))
            .status(),
        "ip device");
  if (dual_stack) {
    OrDie(ns->Sh(absl::StrCat("ip link add flannel-v6.1 address ", weft::agent::V6VtepMac(kOwnMac).ToString(),
                              " mtu 1430 type vxlan id 1 local fd77:1::1 dev eth0 dstport 8472 nolearning && "
                              "ip addr add ", kOwnSubnet6.network().ToString(), "/128 dev flannel-v6.1 nodad && "
                              "ip link set flannel-v6.1 up"))
              .status(),
          "ip device v6");
  }
  const absl::Time start = absl::Now();
  OrDie(ns->Sh(absl::StrCat("ip -batch ", ip_batch, " && bridge -batch ", bridge_batch)).status(), "ip -batch");
  t.apply_ms = absl::ToDoubleMilliseconds(absl::Now() - start);
  t.kernel = OrDie(ns->Run([] { return NetlinkProgrammer::Create(); }), "netlink");
  t.objects = Dump(*t.kernel);
  t.ns = std::move(ns);
  return t;
}

// `neighbours`: how many each namespace must hold (one per lease and family).
void CheckSame(const Objects& a, const Objects& b, int neighbours, const char* what) {
  if (std::get<0>(a).size() != static_cast<size_t>(neighbours) || a != b) {
    Die(absl::StrCat(what, ": namespaces differ: ", std::get<0>(a).size(), "/", std::get<1>(a).size(), "/",
                     std::get<2>(a).size(), " vs ", std::get<0>(b).size(), "/", std::get<1>(b).size(), "/",
                     std::get<2>(b).size(), " (neighbours/fdb/routes)"));
  }
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  weft::TurnOffMutexDeadlockDetection();
  Flags flags;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string name = argv[i];
    int* target = name == "--peers"        ? &flags.peers
                  : name == "--rounds"     ? &flags.rounds
                  : name == "--dual-stack" ? &flags.dual_stack
                                           : nullptr;
    if (target == nullptr || !absl::SimpleAtoi(argv[i + 1], target) || *target < 0 ||
        (*target == 0 && target != &flags.dual_stack)) {
      Die(absl::StrCat("usage: netlink_bench [--peers N (<= 16383)] [--rounds R] [--dual-stack 0|1]; bad ", name));
    }
  }
  if (flags.peers > 16383) Die("--peers must be at most 16383 (the /24s of 100.64.0.0/10)");
  if (geteuid() != 0) Die("needs root (network namespaces)");

  // The same objects for iproute2, in both layouts: flannel's (routes carry their
  // hop) and Weft's on this kernel (routes through nexthop objects).
  const std::vector<Peer> peers = Snapshot(flags.peers, flags.dual_stack != 0);
  std::string neigh, classic_routes, nexthop_routes, fdb;
  for (int i = 0; i < flags.peers; ++i) {
    const std::string net = PeerSubnet(i).network().ToString();
    const uint32_t id = PeerSubnet(i).network().value();
    absl::StrAppend(&neigh, "neigh replace ", net, " lladdr ", PeerMac(i).ToString(),
                    " dev flannel.1 nud permanent\n");
    absl::StrAppend(&classic_routes, "route replace ", PeerSubnet(i).ToString(), " via ", net,
                    " dev flannel.1 onlink proto 87\n");
    absl::StrAppend(&nexthop_routes, "nexthop replace id ", id, " via ", net,
                    " dev flannel.1 onlink proto 87\n", "route replace ", PeerSubnet(i).ToString(),
                    " nhid ", id, " proto 87\n");
    absl::StrAppend(&fdb, "fdb replace ", PeerMac(i).ToString(), " dev flannel.1 dst ", PeerIp(i).ToString(),
                    " self permanent\n");
    if (flags.dual_stack) {
      // IPv6: neighbour, onlink route with its own next hop (both layouts), FDB entry.
      const std::string net6 = PeerSubnet6(i).network().ToString();
      const std::string mac6 = weft::agent::V6VtepMac(PeerMac(i)).ToString();
      absl::StrAppend(&neigh, "neigh replace ", net6, " lladdr ", mac6, " dev flannel-v6.1 nud permanent\n");
      const std::string route6 = absl::StrCat("route replace ", PeerSubnet6(i).ToString(), " via ", net6,
                                              " dev flannel-v6.1 onlink proto 87\n");
      absl::StrAppend(&classic_routes, route6);
      absl::StrAppend(&nexthop_routes, route6);
      absl::StrAppend(&fdb, "fdb replace ", mac6, " dev flannel-v6.1 dst ", PeerIp6(i).ToString(),
                      " self permanent\n");
    }
  }
  const std::string dir = absl::StrCat("/tmp/netlink_bench.", getpid());
  const std::string ip_classic = dir + "/ip-classic.batch", ip_nexthops = dir + "/ip-nexthops.batch",
                    bridge = dir + "/bridge.batch";
  OrDie(weft::WriteFileAtomically(ip_classic, neigh + classic_routes), "write batch");
  OrDie(weft::WriteFileAtomically(ip_nexthops, neigh + nexthop_routes), "write batch");
  OrDie(weft::WriteFileAtomically(bridge, fdb), "write batch");

  const int v6_objects = flags.dual_stack ? 3 * flags.peers : 0;
  std::printf("netlink_bench: %d remote leases%s, each a neighbour + FDB entry + route (+ a nexthop\n"
              "object in the nexthop layout)%s; every method into a fresh network namespace.\n"
              "classic = flannel's layout (%d objects), nexthop = Weft's default on kernels >= 5.3 (%d)\n\n",
              flags.peers, flags.dual_stack ? " (dual-stack)" : "",
              flags.dual_stack ? ", and the same three again on flannel-v6.1" : "", 3 * flags.peers + v6_objects,
              4 * flags.peers + v6_objects);
  std::printf("%-6s %12s %12s %12s %12s %16s\n", "round", "weft nh ms", "ip nh ms", "weft cl ms", "ip cl ms",
              "weft resync ms");
  std::vector<double> weft_nh, ip_nh, weft_cl, ip_cl, resync;
  for (int r = 1; r <= flags.rounds; ++r) {
    {
      const Timing wn = RunWeft(flags, peers, true);
      const Timing in = RunIp(ip_nexthops, bridge, true, flags.dual_stack != 0);
      CheckSame(wn.objects, in.objects, flags.peers * (flags.dual_stack ? 2 : 1), "nexthop layout");
      const Timing wc = RunWeft(flags, peers, false);
      const Timing ic = RunIp(ip_classic, bridge, false, flags.dual_stack != 0);
      CheckSame(wc.objects, ic.objects, flags.peers * (flags.dual_stack ? 2 : 1), "classic layout");
      std::printf("%-6d %12.1f %12.1f %12.1f %12.1f %16.1f\n", r, wn.apply_ms, in.apply_ms, wc.apply_ms,
                  ic.apply_ms, wn.resync_ms);
      std::fflush(stdout);
      weft_nh.push_back(wn.apply_ms);
      ip_nh.push_back(in.apply_ms);
      weft_cl.push_back(wc.apply_ms);
      ip_cl.push_back(ic.apply_ms);
      resync.push_back(wn.resync_ms);
    }
    // The round's namespaces go now; the kernel frees them in the background.
    sleep(3);
  }
  unlink(ip_classic.c_str());
  unlink(ip_nexthops.c_str());
  unlink(bridge.c_str());
  rmdir(dir.c_str());

  const double w = Median(weft_nh), i = Median(ip_nh), wc = Median(weft_cl), ic = Median(ip_cl);
  std::printf("\nmedians: nexthop layout: weft %.1f ms, ip -batch + bridge -batch %.1f ms (weft/ip %.2f)\n"
              "         classic layout: weft %.1f ms, ip -batch + bridge -batch %.1f ms (weft/ip %.2f)\n"
              "         weft no-op resync (dump + diff): %.1f ms\n",
              w, i, w / i, wc, ic, wc / ic, Median(resync));
  const bool ok = w < 1000 && w <= i && wc <= ic;
  std::printf("target (weft < 1000 ms, and no slower than ip -batch in either layout): %s\n",
              ok ? "met" : "NOT met");
  return ok ? 0 : 1;
}
