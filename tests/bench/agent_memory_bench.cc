// Agent resident memory with N peers: runs inside a network namespace made by
// agent_memory_bench.sh (a veth as the external interface, loopback up). Starts the real
// controller and one real agent, measures the agent's RSS with no peers (the
// baseline), then with N peers acquired through gRPC, once the agent reports
// every peer programmed.
//
//   sudo tests/bench/agent_memory_bench.sh [--tls] [N]
//
// --tls (WEFT_BENCH_TLS=1): mutual TLS between the agent and the controller, with
// certificates made by tools/certs.sh in the run's directory.

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/mutex_mode.h"
#include "common/testing.h"
#include "grpcpp/grpcpp.h"
#include "common/tls_client.h"
#include "proto/weft/v1/weft.grpc.pb.h"
#include "tests/bench/network_config.h"
#include "tests/integration/process.h"
#include "tests/integration/test_certs.h"

namespace {

// A "Name:   123 kB" field of /proc/<pid>/status, in kB.
long StatusKb(pid_t pid, const std::string& field) { return weft::testing::ProcStatusKiB(pid, field); }
long RssKb(pid_t pid) { return StatusKb(pid, "VmRSS"); }
std::string Breakdown(pid_t pid) {
  return absl::StrFormat("anon %.1f MB, file-backed (shared libraries) %.1f MB", StatusKb(pid, "RssAnon") / 1024.0,
                         StatusKb(pid, "RssFile") / 1024.0);
}

// One mapping of /proc/<pid>/smaps.
struct Mapping {
  unsigned long start = 0, end = 0;
  std::string perms, path;
  long rss_kb = 0, anon_kb = 0;
};

std::vector<Mapping> ReadSmaps(pid_t pid) {
  std::vector<Mapping> maps;
  std::ifstream f(absl::StrCat("/proc/", pid, "/smaps"));
  std::string line;
  while (std::getline(f, line)) {
    // Header lines start with "<start>-<end> "; field lines with "Name:".
    size_t dash = line.find('-');
    size_t colon = line.find(':');
    if (dash != std::string::npos && (colon == std::string::npos || dash < colon) && line.find(' ') > dash) {
      Mapping m;
      char perms[8] = {0};
      int path_at = 0;
      if (std::sscanf(line.c_str(), "%lx-%lx %7s %*s %*s %*s %n", &m.start, &m.end, perms, &path_at) < 3) continue;
      m.perms = perms;
      if (path_at > 0 && static_cast<size_t>(path_at) <= line.size()) m.path = line.substr(path_at);
      maps.push_back(m);
    } else if (!maps.empty() && line.rfind("Rss:", 0) == 0) {
      maps.back().rss_kb = std::stol(line.substr(4));
    } else if (!maps.empty() && line.rfind("Anonymous:", 0) == 0) {
      maps.back().anon_kb = std::stol(line.substr(10));
    }
  }
  return maps;
}

// Where the agent's resident pages are: per shared object (its file pages, and
// the anonymous copies made by relocations and .data writes, plus its .bss), and
// anonymous memory told apart as heap, malloc arenas (64 MiB reservations),
// thread stacks (a mapping right above a PROT_NONE guard page) and the rest.
std::string SmapsBreakdown(pid_t pid, int top) {
  std::vector<Mapping> maps = ReadSmaps(pid);
  struct Lib {
    long file_kb = 0, anon_kb = 0;
  };
  std::map<std::string, Lib> libs;
  long heap = 0, arenas = 0, stacks = 0, other_anon = 0, main_stack = 0;
  int n_arenas = 0, n_stacks = 0;
  std::string last_path;
  for (size_t i = 0; i < maps.size(); ++i) {
    const Mapping& m = maps[i];
    if (!m.path.empty() && m.path[0] == '/') {
      std::string name = m.path.substr(m.path.rfind('/') + 1);
      libs[name].file_kb += m.rss_kb - m.anon_kb;
      libs[name].anon_kb += m.anon_kb;
      last_path = name;
      continue;
    }
    bool contiguous_after_lib = i > 0 && maps[i - 1].end == m.start && !maps[i - 1].path.empty() &&
                                maps[i - 1].path[0] == '/';
    if (m.path == "[heap]") {
      heap += m.rss_kb;
    } else if (m.path == "[stack]") {
      main_stack += m.rss_kb;
    } else if (!m.path.empty()) {
      other_anon += m.rss_kb;  // [vdso], [vvar]...
    } else if (contiguous_after_lib) {
      libs[last_path].anon_kb += m.rss_kb;  // the library's .bss
    } else if (m.perms == "rw-p" && i + 1 < maps.size() && maps[i + 1].perms == "---p" &&
               maps[i + 1].start == m.end && (maps[i + 1].end - m.start) % (64ul << 20) == 0) {
      arenas += m.rss_kb;
      ++n_arenas;
    } else if (m.perms == "rw-p" && i > 0 && maps[i - 1].perms == "---p" && maps[i - 1].end == m.start &&
               maps[i - 1].end - maps[i - 1].start <= (64ul << 10)) {
      stacks += m.rss_kb;
      ++n_stacks;
    } else {
      other_anon += m.rss_kb;
    }
  }
  std::vector<std::pair<std::string, Lib>> sorted(libs.begin(), libs.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.second.file_kb + a.second.anon_kb > b.second.file_kb + b.second.anon_kb;
  });
  long lib_file = 0, lib_anon = 0;
  for (const auto& [name, l] : sorted) {
    lib_file += l.file_kb;
    lib_anon += l.anon_kb;
  }
  std::string out = absl::StrFormat(
      "    %zu mapped files: %.1f MB file pages + %.1f MB anonymous (relocations, .data, .bss)\n"
      "    heap %.1f MB, %d malloc arenas %.1f MB, %d thread stacks %.1f MB, main stack %.1f MB, other anon "
      "%.1f MB\n",
      sorted.size(), lib_file / 1024.0, lib_anon / 1024.0, heap / 1024.0, n_arenas, arenas / 1024.0, n_stacks,
      stacks / 1024.0, main_stack / 1024.0, other_anon / 1024.0);
  long rest_file = 0, rest_anon = 0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    const Lib& l = sorted[i].second;
    if (static_cast<int>(i) < top) {
      absl::StrAppendFormat(&out, "    %-32s %6ld kB file %5ld kB anon\n", sorted[i].first, l.file_kb, l.anon_kb);
    } else {
      rest_file += l.file_kb;
      rest_anon += l.anon_kb;
    }
  }
  if (static_cast<int>(sorted.size()) > top) {
    absl::StrAppendFormat(&out, "    %-32s %6ld kB file %5ld kB anon\n",
                          absl::StrCat("(", sorted.size() - top, " others)"), rest_file, rest_anon);
  }
  return out;
}

// Reads one gauge from the agent's /metrics with a raw HTTP/1.0 GET over loopback.
double Gauge(int port, const std::string& name) {
  std::string out;
  weft::testing::RunCommand({"/usr/bin/curl", "-s", absl::StrCat("http://127.0.0.1:", port, "/metrics")}, &out);
  size_t at = 0;
  while ((at = out.find(name + " ", at)) != std::string::npos) {
    if (at == 0 || out[at - 1] == '\n') {
      double v = 0;
      size_t end = out.find('\n', at);
      if (absl::SimpleAtod(out.substr(at + name.size() + 1, end - at - name.size() - 1), &v)) return v;
    }
    at += name.size();
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  weft::TurnOffMutexDeadlockDetection();
  int peers = 5000;
  if (argc > 1) (void)absl::SimpleAtoi(argv[1], &peers);
  // Mapped files listed one by one in the breakdown; the rest summed.
  int top = 12;
  if (const char* t = std::getenv("WEFT_BENCH_TOP_MAPPINGS")) (void)absl::SimpleAtoi(t, &top);
  const std::string controller = argc > 2 ? argv[2] : weft::testing::Runfile("controller/weft-controller");
  const std::string agent_bin = argc > 3 ? argv[3] : weft::testing::Runfile("agent/weft-agent");
  weft::TempDir tmp("weft-agentmem-", weft::TempDir::Root::kTmp);
  tmp.Keep();  // with the logs, unless the run gets to the end
  const std::string dir = tmp.path();
  weft::testing::Process ctl, agent;
  const bool tls = std::getenv("WEFT_BENCH_TLS") != nullptr && std::string(std::getenv("WEFT_BENCH_TLS")) == "1";
  std::vector<std::string> ctl_args = {controller,         "--data-dir",    dir + "/ctl", "--listen",
                                       "127.0.0.1:7800",   "--metrics-listen", "",        "--log-level",
                                       "warn"};
  std::vector<std::string> agent_tls;
  weft::TlsClientFiles bench_files;
  if (tls) {
    absl::StatusOr<weft::testing::TestCerts> certs = weft::testing::TestCerts::Make(dir + "/certs", "IP:127.0.0.1");
    if (!certs.ok()) {
      std::fprintf(stderr, "certs: %s\n", std::string(certs.status().message()).c_str());
      return 1;
    }
    for (const std::string& f : certs->ControllerFlags()) ctl_args.push_back(f);
    agent_tls = certs->AgentFlags("bench-host");
    bench_files = certs->Admin();
  }
  ctl.Start(ctl_args, dir + "/controller.log");
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> creds = weft::MakeChannelCredentials(bench_files);
  if (!creds.ok()) return 1;
  auto ch = grpc::CreateChannel("127.0.0.1:7800", *creds);
  if (!weft::bench::ConnectAndConfigure(ch)) return 1;
  auto leases = weft::v1::LeaseService::NewStub(ch);
  std::vector<std::string> agent_args = {
      agent_bin,   "--controller", "127.0.0.1:7800",   "--iface",           "weftbench0",    "--node-name",
      "bench-host", "--subnet-file", dir + "/subnet.env", "--docker-opts-file", dir + "/docker.env", "--state-dir",
      dir + "/agent", "--metrics-listen", "127.0.0.1:7802", "--log-level",      "warn"};
  agent_args.insert(agent_args.end(), agent_tls.begin(), agent_tls.end());
  agent.Start(agent_args, dir + "/agent.log");
  auto wait_for = [&](const std::string& gauge, double want) {
    absl::Time deadline = absl::Now() + absl::Seconds(120);
    while (absl::Now() < deadline) {
      if (Gauge(7802, gauge) >= want) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  };
  if (!wait_for("weft_agent_ready", 1)) {
    std::fprintf(stderr, "agent not ready; see %s/agent.log\n", dir.c_str());
    return 1;
  }
  absl::SleepFor(absl::Seconds(1));
  long base = RssKb(agent.pid());
  std::string base_breakdown = Breakdown(agent.pid()) + "\n" + SmapsBreakdown(agent.pid(), top);
  absl::Time start = absl::Now();
  for (int i = 0; i < peers; ++i) {
    weft::v1::AcquireLeaseRequest req;
    req.set_node_name(absl::StrCat("peer-", i));
    req.set_public_ip(absl::StrFormat("198.18.%d.%d", i / 250, i % 250 + 1));
    req.set_backend_type("vxlan");
    req.set_backend_data(absl::StrFormat(R"({"VNI":1,"VtepMAC":"02:01:00:00:%02x:%02x"})", i >> 8, i & 0xff));
    grpc::ClientContext ctx;
    weft::v1::AcquireLeaseResponse resp;
    grpc::Status s = leases->AcquireLease(&ctx, req, &resp);
    if (!s.ok()) {
      std::fprintf(stderr, "acquire: %s\n", s.error_message().c_str());
      return 1;
    }
  }
  if (!wait_for("weft_agent_kernel_objects", 3.0 * peers)) {
    std::fprintf(stderr, "agent did not program all peers; see %s/agent.log\n", dir.c_str());
    return 1;
  }
  double converge = absl::ToDoubleSeconds(absl::Now() - start);
  absl::SleepFor(absl::Seconds(2));
  long full = RssKb(agent.pid());
  // Steady state: the agent re-reads the kernel and rebuilds its peer list every
  // --resync-interval (10 s), so one sample can fall between two of those bursts.
  // Sampled over 12 s, the highest figure is the one a node has to budget for.
  auto lowest_highest_over_12s = [&agent](long first) {
    std::pair<long, long> low_high(first, first);
    for (absl::Time end = absl::Now() + absl::Seconds(12); absl::Now() < end;) {
      absl::SleepFor(absl::Milliseconds(100));
      const long now = RssKb(agent.pid());
      low_high.first = std::min(low_high.first, now);
      low_high.second = std::max(low_high.second, now);
    }
    return low_high;
  };
  const auto [low, high] = lowest_highest_over_12s(full);
  std::printf("agent_memory_bench: %d peers (%d kernel objects), VXLAN, %s to the controller\n", peers, 3 * peers,
              tls ? "mutual TLS" : "plaintext");
  std::printf("agent RSS: %.1f MB with 0 peers (baseline), %.1f MB with %d peers\n", base / 1024.0, full / 1024.0,
              peers);
  std::printf("  over the next 12 s (one resync): %.1f MB lowest, %.1f MB highest; VmHWM (peak since start) %.1f MB\n",
              low / 1024.0, high / 1024.0, StatusKb(agent.pid(), "VmHWM") / 1024.0);
  std::printf("  baseline: %s\n  %d peers: %s\n%s", base_breakdown.c_str(), peers, Breakdown(agent.pid()).c_str(),
              SmapsBreakdown(agent.pid(), top).c_str());
  std::printf("acquire %d leases + agent converged in %.1f s\n", peers, converge);
  // For a closer look: a copy of the agent's smaps with N peers.
  if (const char* copy = std::getenv("WEFT_BENCH_SMAPS_COPY")) {
    std::ifstream in(absl::StrCat("/proc/", agent.pid(), "/smaps"));
    std::ofstream(copy) << in.rdbuf();
  }
  // Keeps the agent running this long for inspection (gdb, /proc) before stopping it.
  int hold = 0;
  if (const char* h = std::getenv("WEFT_BENCH_HOLD_SECONDS")) (void)absl::SimpleAtoi(h, &hold);
  if (hold > 0) {
    std::printf("agent pid %d kept for %d s\n", agent.pid(), hold);
    std::fflush(stdout);
    absl::SleepFor(absl::Seconds(hold));
  }
  // A restart with nothing in the kernel: every peer arrives in the first
  // snapshot (a node rebooted, or joining a running cluster).
  agent.Kill(SIGTERM);
  agent.Wait();
  if (std::system("ip link del flannel.1 2>/dev/null") != 0) std::fprintf(stderr, "flannel.1 was not there\n");
  const absl::Time restart = absl::Now();
  agent.Start(agent_args, dir + "/agent.log");
  if (!wait_for("weft_agent_kernel_objects", 3.0 * peers)) {
    std::fprintf(stderr, "restarted agent did not program all peers; see %s/agent.log\n", dir.c_str());
    return 1;
  }
  const double from_scratch = absl::ToDoubleSeconds(absl::Now() - restart);
  std::printf("agent started with %d peers in the store and none in the kernel: %d kernel objects in place %.2f s "
              "after its start (20 ms polls of its metric); RSS %.1f MB, VmHWM %.1f MB\n",
              peers, 3 * peers, from_scratch, RssKb(agent.pid()) / 1024.0, StatusKb(agent.pid(), "VmHWM") / 1024.0);
  // What such an agent then holds: its resident set once the start's transient
  // memory is gone, over one resync.
  absl::SleepFor(absl::Seconds(2));
  const long after_start = RssKb(agent.pid());
  const auto [start_low, start_high] = lowest_highest_over_12s(after_start);
  std::printf("  2 s later: RSS %.1f MB; over the next 12 s (one resync): %.1f MB lowest, %.1f MB highest; %s\n",
              after_start / 1024.0, start_low / 1024.0, start_high / 1024.0, Breakdown(agent.pid()).c_str());
  agent.Kill(SIGTERM);
  agent.Wait();
  ctl.Kill(SIGTERM);
  ctl.Wait();
  tmp.Keep(false);
  return 0;
}
