// Data-path throughput and latency between two containers on two hosts, for each
// backend, against containers on one plain bridge (no overlay: the limit of this
// machine), all in one run so that the ratios hold on a noisy machine. Run it
// through tests/bench/datapath_bench.sh (root; builds the binaries).
//
// For each setup: iperf3 TCP, 1 stream and 4 streams (--seconds each), and
// --pings pings at 10 ms intervals (avg, p50, p99 of the RTT). Setups are
// measured in --rounds interleaved rounds; the table shows each figure's median.
// A backend the agent rejects ("not supported by this agent") is skipped, saying so.
// A backend named with "-v6" (vxlan-v6, host-gw-v6) is measured over IPv6: a
// dual-stack cluster, the containers' IPv6 addresses.
//
// The binaries come from $WEFT_CONTROLLER_BIN, $WEFT_AGENT_BIN, $WEFTCTL_BIN.
// Flags also from the environment as WEFT_BENCH_<FLAG>.
// Exit codes: 0 measured, 1 a setup failed, 2 bad usage.

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "agent/subprocess.h"
#include "common/flags.h"
#include "common/mutex_mode.h"
#include "tests/cluster/harness.h"
#include "tests/netns/netns.h"

ABSL_FLAG(int, seconds, 5, "Length of each iperf3 run.");
ABSL_FLAG(std::vector<std::string>, agent_args, {},
          "Extra flags for every agent of the Weft clusters, comma-separated (e.g. --resync-interval=1h).");
ABSL_FLAG(int, pings, 200, "Pings per latency run (10 ms apart).");
ABSL_FLAG(int, rounds, 1, "Interleaved rounds over all setups; the table shows medians.");
ABSL_FLAG(std::string, backends, "vxlan,udp,host-gw,wireguard",
          "Backends to measure, comma-separated, besides no-overlay (wireguard brings a hand-made wireguard-go "
          "tunnel between the same hosts along; NAME-v6, e.g. vxlan-v6, measures NAME over IPv6 in a dual-stack "
          "cluster).");
ABSL_FLAG(std::vector<std::string>, handmade, {"host/setsid"},
          "The hand-made wireguard-go tunnels to build next to Weft's, each ALLOWED/START[/addr], comma-separated. "
          "ALLOWED: host (the peer container's /32) or lease (the peer host's whole lease, as Weft configures "
          "its peers; the route stays a /32). START: shell (`wireguard-go DEV` from a shell, in the bench's "
          "session) or setsid (`setsid --wait wireguard-go DEV`, in a session of its own, as the agent starts "
          "its own); a third part /addr gives the device the host's lease address as a /32, as Weft gives "
          "flannel-wg. The first is the yardstick of the "
          "95% target (\"wireguard-go by hand\"); each other gets its own container pair, device and port.");
ABSL_FLAG(bool, wireguard_second_pair, false,
          "Also measure Weft's tunnel between a second container pair, made after the cluster started as the "
          "hand-made tunnels' pairs are (\"wireguard, second pair\").");

namespace {

using weft::testing::Cluster;
using weft::testing::ClusterOptions;
using weft::testing::ExecResult;
using weft::testing::NetNs;

// One container pair to measure: `server_ip` inside `server_ns`, reached from `client_ns`.
struct Endpoints {
  std::string client_ns;
  std::string server_ns;
  std::string server_ip;
  int mtu = 0;  // the containers' interface MTU
};

struct Sample {
  double tcp1_gbps = 0;
  double tcp4_gbps = 0;
  int retransmits = 0;  // over both runs
  double ping_avg_ms = 0, ping_p50_ms = 0, ping_p99_ms = 0;
};

// A setup under test: the no-overlay bridge, or a cluster of one backend.
struct Setup {
  std::string name;
  std::string skipped;  // why, when the setup could not be measured
  Endpoints ends;
  std::unique_ptr<Cluster> cluster;
  std::vector<std::unique_ptr<NetNs>> namespaces;  // the no-overlay setup's
  std::vector<Sample> samples;
};

// Runs argv in namespace `ns` (Cluster::Exec without a cluster).
absl::StatusOr<ExecResult> RunIn(const std::string& ns, const std::vector<std::string>& argv,
                                 absl::Duration timeout) {
  std::vector<std::string> full = {"ip", "netns", "exec", ns};
  full.insert(full.end(), argv.begin(), argv.end());
  absl::StatusOr<weft::CommandResult> r = weft::RunCommand(full, "", timeout);
  if (!r.ok()) return r.status();
  return ExecResult{r->exit_code, r->output, ""};
}

// Two containers on one Linux bridge in a third namespace: no routing, no overlay.
absl::Status BuildNoOverlay(Setup& s) {
  for (const char* tag : {"bbr", "bc1", "bc2"}) {
    absl::StatusOr<std::unique_ptr<NetNs>> ns = NetNs::Create(tag);
    if (!ns.ok()) return ns.status();
    s.namespaces.push_back(std::move(*ns));
  }
  NetNs& br = *s.namespaces[0];
  std::string script = "ip link add br0 type bridge && ip link set br0 up";
  for (int i = 1; i <= 2; ++i) {
    const std::string& c = s.namespaces[i]->name();
    absl::StrAppend(&script, " && ip link add c", i, " type veth peer name eth0 netns ", c,
                    " && ip link set c", i, " master br0 up", " && ip -n ", c, " link set eth0 up",
                    " && ip -n ", c, " addr add 10.99.0.", i + 1, "/24 dev eth0");
  }
  if (absl::StatusOr<std::string> r = br.Sh(script); !r.ok()) return r.status();
  s.ends = {s.namespaces[1]->name(), s.namespaces[2]->name(), "10.99.0.3", 1500};
  return absl::OkStatus();
}

absl::Status BuildCluster(Setup& s, std::string backend) {
  ClusterOptions o;
  o.name = absl::StrCat("bench-", backend);
  o.hosts = 2;
  o.verbose = false;
  const bool over_ipv6 = absl::EndsWith(backend, "-v6");
  if (over_ipv6) backend.resize(backend.size() - 3);
  o.network_config = absl::StrCat(R"({"Network":"10.1.0.0/16",)",
                                  over_ipv6 ? R"("EnableIPv6":true,"IPv6Network":"fd00:12::/48",)" : "",
                                  R"("Backend":{"Type":")", backend, R"("}})");
  o.underlay_ipv6 = over_ipv6;
  o.agent_args = absl::GetFlag(FLAGS_agent_args);
  absl::StatusOr<std::unique_ptr<Cluster>> c = Cluster::Start(o);
  if (!c.ok()) {
    // The agent exits at once on a backend it does not know; its log says so.
    if (absl::StrContains(c.status().message(), "not supported by this agent")) {
      s.skipped = "the agent rejects it (\"not supported by this agent\")";
      return absl::OkStatus();
    }
    return c.status();
  }
  s.cluster = std::move(*c);
  const weft::testing::Container& a = s.cluster->host(0).containers.at(0);
  const weft::testing::Container& b = s.cluster->host(1).containers.at(0);
  s.ends = {a.ns, b.ns, over_ipv6 ? b.ipv6 : b.ip, s.cluster->host(0).env.mtu};
  return absl::OkStatus();
}

// The yardstick of the wireguard backend: a wireguard-go tunnel made by hand
// (wg genkey, wg set) between the two hosts of the wireguard cluster `c`, with
// the same MTU and port layout, carrying one more container pair (a /32 route
// for each through it, which the /16 into flannel-wg does not override): the
// same hosts, bridges and container hops as Weft's path, only the agent is
// missing. Started by default in a session of its own (setsid), as the agent
// starts wireguard-go and as a tunnel made by hand runs outside the workload's
// session: with the scheduler's autogroups (kernel.sched_autogroup_enabled) a
// session is one scheduling group, and a wireguard-go left in the bench's
// session would share one with the iperf3 ends it carries, which gave it
// 10-25% more than the same tunnel in its own session (docs/benchmarks.md,
// "WireGuard backend"). `n` numbers the hand-made tunnels (device wgbench,
// wgbench1, ...; port 51900 + n); `variant` is ALLOWED/START[/addr] as
// --handmade describes.
absl::Status BuildHandmadeWireguard(Setup& s, Cluster& c, int n, const std::string& variant) {
  const std::vector<std::string> parts = absl::StrSplit(variant, '/');
  if (parts.size() < 2 || parts.size() > 3 || (parts[0] != "host" && parts[0] != "lease") ||
      (parts[1] != "shell" && parts[1] != "setsid") || (parts.size() == 3 && parts[2] != "addr")) {
    return absl::InvalidArgumentError(absl::StrCat("--handmade: \"", variant, "\" is not ALLOWED/START[/addr]"));
  }
  const bool addr = parts.size() == 3;
  const std::string dev = n == 0 ? "wgbench" : absl::StrCat("wgbench", n);
  const int port = 51900 + n;
  absl::StatusOr<weft::testing::Container> a = c.AddContainer(0);
  if (!a.ok()) return a.status();
  absl::StatusOr<weft::testing::Container> b = c.AddContainer(1);
  if (!b.ok()) return b.status();
  const weft::testing::Container* peer_of[2] = {&*b, &*a};
  std::string pub[2];
  for (int i = 0; i < 2; ++i) {
    const std::string key = absl::StrCat(c.host(i).dir, "/handmade-", dev, ".key");
    absl::StatusOr<std::string> out =
        c.HostSh(i, absl::StrCat("umask 077 && wg genkey > ", key, " && wg pubkey < ", key));
    if (!out.ok()) return out.status();
    pub[i] = std::string(absl::StripAsciiWhitespace(*out));
  }
  for (int i = 0; i < 2; ++i) {
    const std::string peer_ip = peer_of[i]->ip;
    const std::string allowed_ips =
        parts[0] == "lease" ? c.host(1 - i).env.SubnetCidr() : absl::StrCat(peer_ip, "/32");
    absl::StatusOr<std::string> out = c.HostSh(
        i, absl::StrCat(parts[1] == "setsid" ? "setsid --wait " : "", "wireguard-go ", dev, " >/dev/null 2>&1",
                        " && ip link set ", dev, " mtu ", c.host(i).env.mtu, " && wg set ", dev, " private-key ",
                        c.host(i).dir, "/handmade-", dev, ".key listen-port ", port, " peer ", pub[1 - i],
                        " endpoint ", c.host(1 - i).underlay_ip, ":", port, " allowed-ips ", allowed_ips,
                        addr ? absl::StrCat(" && ip addr add ", c.host(i).env.NetworkAddress(), "/32 dev ", dev) : "",
                        " && ip link set ", dev, " up && ip route add ", peer_ip, "/32 dev ", dev));
    if (!out.ok()) return out.status();
  }
  s.ends = {a->ns, b->ns, b->ip, c.host(0).env.mtu};
  return absl::OkStatus();
}

// One iperf3 TCP run with `streams` parallel streams; Gbit/s as received.
absl::StatusOr<double> Iperf(const Endpoints& e, int streams, int seconds, int* retransmits) {
  const absl::Duration timeout = absl::Seconds(seconds + 30);
  absl::StatusOr<ExecResult> server = absl::InternalError("not run");
  std::thread t([&] { server = RunIn(e.server_ns, {"iperf3", "-s", "-1", "-p", "5201"}, timeout); });
  absl::StatusOr<ExecResult> client = absl::InternalError("not run");
  // The server needs a moment to listen; iperf3 itself does not retry.
  for (int attempt = 0; attempt < 50; ++attempt) {
    client = RunIn(e.client_ns,
                   {"iperf3", "-c", e.server_ip, "-p", "5201", "-t", absl::StrCat(seconds), "-P",
                    absl::StrCat(streams), "-J"},
                   timeout);
    // (iperf3 3.12 with -J may exit 0 even then: go by what it says.)
    if (!client.ok() || !absl::StrContains(client->out, "unable to connect")) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  t.join();
  if (!client.ok()) return client.status();
  if (client->exit_code != 0) return absl::InternalError(absl::StrCat("iperf3 client: ", client->ToString()));
  const nlohmann::json j = nlohmann::json::parse(client->out, nullptr, false);
  const nlohmann::json* end = j.is_object() && j.contains("end") ? &j["end"] : nullptr;
  if (end == nullptr || !end->contains("sum_received") || !end->contains("sum_sent")) {
    return absl::InternalError(absl::StrCat("iperf3: no result in its output:\n", client->out));
  }
  *retransmits += (*end)["sum_sent"].value("retransmits", 0);
  return (*end)["sum_received"].value("bits_per_second", 0.0) / 1e9;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
  return v[i];
}

double Median(std::vector<double> v) { return Percentile(std::move(v), 0.5); }

absl::Status Ping(const Endpoints& e, int count, Sample& s) {
  absl::StatusOr<ExecResult> r =
      RunIn(e.client_ns, {"ping", "-n", "-i", "0.01", "-c", absl::StrCat(count), e.server_ip},
            absl::Seconds(count / 50 + 30));
  if (!r.ok()) return r.status();
  std::vector<double> rtts;
  for (absl::string_view line : absl::StrSplit(r->out, '\n')) {
    const size_t at = line.find("time=");
    double ms;
    if (at == absl::string_view::npos) continue;
    absl::string_view v = line.substr(at + 5);
    v = v.substr(0, v.find(' '));
    if (absl::SimpleAtod(v, &ms)) rtts.push_back(ms);
  }
  if (rtts.size() < static_cast<size_t>(count) * 9 / 10) {
    return absl::InternalError(absl::StrCat("ping: ", rtts.size(), " of ", count, " replies: ", r->ToString()));
  }
  double sum = 0;
  for (double x : rtts) sum += x;
  s.ping_avg_ms = sum / rtts.size();
  s.ping_p50_ms = Percentile(rtts, 0.5);
  s.ping_p99_ms = Percentile(rtts, 0.99);
  return absl::OkStatus();
}

absl::StatusOr<Sample> Measure(const Endpoints& e) {
  Sample s;
  const int seconds = absl::GetFlag(FLAGS_seconds);
  absl::StatusOr<double> one = Iperf(e, 1, seconds, &s.retransmits);
  if (!one.ok()) return one.status();
  absl::StatusOr<double> four = Iperf(e, 4, seconds, &s.retransmits);
  if (!four.ok()) return four.status();
  s.tcp1_gbps = *one;
  s.tcp4_gbps = *four;
  if (absl::Status p = Ping(e, absl::GetFlag(FLAGS_pings), s); !p.ok()) return p;
  return s;
}

Sample Medians(const std::vector<Sample>& v) {
  auto med = [&](double Sample::*field) {
    std::vector<double> x;
    for (const Sample& s : v) x.push_back(s.*field);
    return Median(x);
  };
  Sample m;
  m.tcp1_gbps = med(&Sample::tcp1_gbps);
  m.tcp4_gbps = med(&Sample::tcp4_gbps);
  m.ping_avg_ms = med(&Sample::ping_avg_ms);
  m.ping_p50_ms = med(&Sample::ping_p50_ms);
  m.ping_p99_ms = med(&Sample::ping_p99_ms);
  for (const Sample& s : v) m.retransmits += s.retransmits;
  return m;
}

std::string ReadFirstLine(const char* path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  return line;
}

std::string Ratio(double a, double b) { return b > 0 ? absl::StrFormat("%.0f%%", 100 * a / b) : "-"; }

int Run() {
  std::vector<std::unique_ptr<Setup>> setups;
  auto& base = *setups.emplace_back(std::make_unique<Setup>());
  base.name = "no overlay (one bridge)";
  if (absl::Status s = BuildNoOverlay(base); !s.ok()) {
    absl::FPrintF(stderr, "no-overlay setup failed: %s\n", s.ToString());
    return 1;
  }
  for (absl::string_view b : absl::StrSplit(absl::GetFlag(FLAGS_backends), ',', absl::SkipWhitespace())) {
    auto& s = *setups.emplace_back(std::make_unique<Setup>());
    s.name = std::string(b);
    absl::FPrintF(stderr, "starting a 2-host %s cluster...\n", s.name);
    if (absl::Status st = BuildCluster(s, s.name); !st.ok()) {
      absl::FPrintF(stderr, "%s: cluster did not start: %s\n", s.name, st.ToString());
      return 1;
    }
    if (!s.skipped.empty()) absl::FPrintF(stderr, "%s: skipped: %s\n", s.name, s.skipped);
    if (s.name == "wireguard" && s.cluster != nullptr) {
      Cluster& wg_cluster = *s.cluster;
      if (absl::GetFlag(FLAGS_wireguard_second_pair)) {
        auto& w = *setups.emplace_back(std::make_unique<Setup>());
        w.name = "wireguard, second pair";
        absl::StatusOr<weft::testing::Container> a = wg_cluster.AddContainer(0);
        absl::StatusOr<weft::testing::Container> b = a.ok() ? wg_cluster.AddContainer(1) : a;
        if (!b.ok()) {
          absl::FPrintF(stderr, "%s: %s\n", w.name, b.status().ToString());
          return 1;
        }
        w.ends = {a->ns, b->ns, b->ip, wg_cluster.host(0).env.mtu};
      }
      const std::vector<std::string> handmade = absl::GetFlag(FLAGS_handmade);
      for (size_t n = 0; n < handmade.size(); ++n) {
        auto& h = *setups.emplace_back(std::make_unique<Setup>());
        h.name = n == 0 ? "wireguard-go by hand" : absl::StrCat("wireguard-go by hand (", handmade[n], ")");
        if (absl::Status st = BuildHandmadeWireguard(h, wg_cluster, static_cast<int>(n), handmade[n]); !st.ok()) {
          absl::FPrintF(stderr, "%s: %s\n", h.name, st.ToString());
          return 1;
        }
      }
    }
  }

  const int rounds = std::max(1, absl::GetFlag(FLAGS_rounds));
  for (int r = 0; r < rounds; ++r) {
    // Every other round backwards, so that no setup always runs right after the same one.
    std::vector<Setup*> order;
    for (auto& s : setups) order.push_back(s.get());
    if (r % 2 == 1) std::reverse(order.begin(), order.end());
    for (Setup* s : order) {
      if (!s->skipped.empty()) continue;
      if (Cluster::Interrupted()) return 130;
      absl::FPrintF(stderr, "round %d/%d: %s...\n", r + 1, rounds, s->name);
      absl::StatusOr<Sample> m = Measure(s->ends);
      if (!m.ok()) {
        absl::FPrintF(stderr, "%s: %s\n", s->name, m.status().ToString());
        return 1;
      }
      s->samples.push_back(*m);
    }
  }

  utsname u{};
  uname(&u);
  absl::PrintF("Data path: iperf3 TCP %d s per run, %d pings at 10 ms; %d round(s), medians\n",
               absl::GetFlag(FLAGS_seconds), absl::GetFlag(FLAGS_pings), rounds);
  absl::PrintF("kernel %s, %ld cores, load %s, %s\n\n", u.release, sysconf(_SC_NPROCESSORS_ONLN),
               ReadFirstLine("/proc/loadavg"),
               absl::FormatTime("%Y-%m-%d %H:%M UTC", absl::Now(), absl::UTCTimeZone()));
  std::map<std::string, Sample> med;
  for (auto& s : setups) {
    if (s->skipped.empty()) med[s->name] = Medians(s->samples);
  }
  const Sample* vx = med.count("vxlan") ? &med["vxlan"] : nullptr;
  const Sample& no = med[base.name];
  absl::PrintF(
      "| setup | MTU | TCP 1 stream Gbit/s | TCP 4 streams Gbit/s | retrans | ping avg / p50 / p99 ms "
      "| 1 stream vs VXLAN | 1 stream vs no overlay | 4 streams vs no overlay |\n");
  absl::PrintF("| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |\n");
  for (auto& s : setups) {
    if (!s->skipped.empty()) {
      absl::PrintF("| %s | | skipped: %s | | | | | | |\n", s->name, s->skipped);
      continue;
    }
    const Sample& m = med[s->name];
    absl::PrintF("| %s | %d | %.2f | %.2f | %d | %.3f / %.3f / %.3f | %s | %s | %s |\n", s->name, s->ends.mtu,
                 m.tcp1_gbps, m.tcp4_gbps, m.retransmits, m.ping_avg_ms, m.ping_p50_ms, m.ping_p99_ms,
                 vx ? Ratio(m.tcp1_gbps, vx->tcp1_gbps) : "-", Ratio(m.tcp1_gbps, no.tcp1_gbps),
                 Ratio(m.tcp4_gbps, no.tcp4_gbps));
  }
  absl::PrintF("\nEach round's TCP Gbit/s (1 stream / 4 streams), in the order measured:\n");
  for (auto& s : setups) {
    if (!s->skipped.empty()) continue;
    std::vector<std::string> each;
    for (const Sample& x : s->samples) each.push_back(absl::StrFormat("%.2f/%.2f", x.tcp1_gbps, x.tcp4_gbps));
    absl::PrintF("  %s: %s\n", s->name, absl::StrJoin(each, " "));
  }
  absl::PrintF("\n");
  if (med.count("udp") && vx) {
    const double r = med["udp"].tcp1_gbps / vx->tcp1_gbps;
    absl::PrintF("target UDP >= 50%% of VXLAN (1 stream): %.0f%% %s\n", 100 * r, r >= 0.5 ? "MET" : "NOT MET");
  }
  if (med.count("wireguard") && med.count("wireguard-go by hand")) {
    const double r = med["wireguard"].tcp1_gbps / med["wireguard-go by hand"].tcp1_gbps;
    absl::PrintF("target wireguard >= 95%% of wireguard-go by hand (1 stream): %.0f%% %s\n", 100 * r,
                 r >= 0.95 ? "MET" : "NOT MET");
  }
  if (med.count("host-gw")) {
    const double r = med["host-gw"].tcp1_gbps / no.tcp1_gbps;
    absl::PrintF("target host-gw >= 90%% of no overlay (1 stream): %.0f%% %s\n", 100 * r,
                 r >= 0.9 ? "MET" : "NOT MET");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  weft::TurnOffMutexDeadlockDetection();
  absl::StatusOr<std::vector<char*>> args = weft::ParseFlagsWithEnv(argc, argv, "WEFT_BENCH_");
  if (!args.ok()) {
    absl::FPrintF(stderr, "datapath_bench: %s\n", args.status().ToString());
    return 2;
  }
  if (geteuid() != 0) {
    absl::FPrintF(stderr, "datapath_bench: needs root (network namespaces)\n");
    return 2;
  }
  Cluster::InstallSignalHandlers();
  return Run();
}
