// Agent resident memory with N peers: runs inside a network namespace made by
// agent_memory_bench.sh (dummy external interface, loopback up). Starts the real
// controller and one real agent, measures the agent's RSS with no peers (the
// baseline), then with N peers acquired through gRPC, once the agent reports
// every peer programmed.
//
//   sudo tests/bench/agent_memory_bench.sh [N]

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "proto/weft/v1/weft.grpc.pb.h"
#include "tests/integration/process.h"

namespace {

// A "Name:   123 kB" field of /proc/<pid>/status, in kB.
long StatusKb(pid_t pid, const std::string& field) {
  std::ifstream f(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}
long RssKb(pid_t pid) { return StatusKb(pid, "VmRSS"); }
std::string Breakdown(pid_t pid) {
  return absl::StrFormat("anon %.1f MB, file-backed (shared libraries) %.1f MB", StatusKb(pid, "RssAnon") / 1024.0,
                         StatusKb(pid, "RssFile") / 1024.0);
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
  int peers = 5000;
  if (argc > 1) (void)absl::SimpleAtoi(argv[1], &peers);
  const std::string controller = argc > 2 ? argv[2] : weft::testing::Runfile("controller/weft-controller");
  const std::string agent_bin = argc > 3 ? argv[3] : weft::testing::Runfile("agent/weft-agent");
  char tmpl[] = "/tmp/weft-agentmem-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  weft::testing::Process ctl, agent;
  ctl.Start({controller, "--data-dir", dir + "/ctl", "--listen", "127.0.0.1:7800", "--metrics-listen", "",
             "--log-level", "warn"},
            dir + "/controller.log");
  auto ch = grpc::CreateChannel("127.0.0.1:7800", grpc::InsecureChannelCredentials());
  if (!ch->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(20))) return 1;
  auto net = weft::v1::NetworkService::NewStub(ch);
  auto leases = weft::v1::LeaseService::NewStub(ch);
  {
    grpc::ClientContext ctx;
    weft::v1::SetNetworkConfigRequest req;
    req.set_config(R"({"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}})");
    weft::v1::SetNetworkConfigResponse resp;
    if (!net->SetNetworkConfig(&ctx, req, &resp).ok()) return 1;
  }
  agent.Start({agent_bin, "--controller", "127.0.0.1:7800", "--iface", "weftbench0", "--node-name", "bench-host",
               "--subnet-file", dir + "/subnet.env", "--docker-opts-file", dir + "/docker.env", "--state-dir",
               dir + "/agent", "--metrics-listen", "127.0.0.1:7802", "--log-level", "warn"},
              dir + "/agent.log");
  auto wait_for = [&](const std::string& gauge, double want) {
    absl::Time deadline = absl::Now() + absl::Seconds(120);
    while (absl::Now() < deadline) {
      if (Gauge(7802, gauge) >= want) return true;
      absl::SleepFor(absl::Milliseconds(200));
    }
    return false;
  };
  if (!wait_for("weft_agent_ready", 1)) {
    std::fprintf(stderr, "agent not ready; see %s/agent.log\n", dir.c_str());
    return 1;
  }
  absl::SleepFor(absl::Seconds(1));
  long base = RssKb(agent.pid());
  std::string base_breakdown = Breakdown(agent.pid());
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
  std::printf("agent_memory_bench: %d peers (%d kernel objects), VXLAN\n", peers, 3 * peers);
  std::printf("agent RSS: %.1f MB with 0 peers (baseline), %.1f MB with %d peers\n", base / 1024.0, full / 1024.0,
              peers);
  std::printf("  baseline: %s\n  %d peers: %s\n", base_breakdown.c_str(), peers, Breakdown(agent.pid()).c_str());
  std::printf("acquire %d leases + agent converged in %.1f s\n", peers, converge);
  agent.Kill(SIGTERM);
  agent.Wait();
  ctl.Kill(SIGTERM);
  ctl.Wait();
  std::string rm = "rm -rf " + dir;
  return std::system(rm.c_str()) == 0 ? 0 : 1;
}
