// Durable acquisitions through gRPC: 64 concurrent clients against the real
// weft-controller, starting from 10,000 existing leases (network 10.0.0.0/8,
// SubnetLen 24). Same run, same workload with fsync off, as the upper bound.
//
//   bazel run -c opt //tests/bench:acquire_bench -- [--clients 64] [--existing 10000] [--seconds 10]

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "proto/weft/v1/weft.grpc.pb.h"
#include "tests/integration/process.h"

namespace {

using weft::testing::FreePort;
using weft::testing::Process;

struct Result {
  double rate = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  int64_t ok = 0, failed = 0;
};

weft::v1::AcquireLeaseRequest Node(int64_t i) {
  weft::v1::AcquireLeaseRequest r;
  r.set_node_name(absl::StrCat("n", i));
  r.set_public_ip(absl::StrFormat("100.%d.%d.%d", 64 + (i >> 16) % 64, (i >> 8) & 0xff, i & 0xff));
  r.set_backend_type("vxlan");
  r.set_backend_data(absl::StrFormat(R"({"VNI":1,"VtepMAC":"02:00:00:%02x:%02x:%02x"})", (i >> 16) & 0xff,
                                     (i >> 8) & 0xff, i & 0xff));
  return r;
}

Result Run(const std::string& controller, bool sync, int clients, int existing, absl::Duration duration) {
  char tmpl[] = "/tmp/weft-bench-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  int port = FreePort();
  Process p;
  std::vector<std::string> argv = {controller, "--data-dir", dir, "--listen", absl::StrCat("127.0.0.1:", port),
                                   "--metrics-listen", "", "--log-level", "warn"};
  if (!sync) argv.push_back("--unsafe-no-fsync");
  p.Start(argv, dir + ".log");
  auto ch = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
  if (!ch->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(20))) {
    std::fprintf(stderr, "controller did not start (log %s.log)\n", dir.c_str());
    std::exit(1);
  }
  auto net = weft::v1::NetworkService::NewStub(ch);
  {
    grpc::ClientContext ctx;
    weft::v1::SetNetworkConfigRequest req;
    req.set_config(R"({"Network":"10.0.0.0/8","SubnetLen":24,"Backend":{"Type":"vxlan"}})");
    weft::v1::SetNetworkConfigResponse resp;
    grpc::Status s = net->SetNetworkConfig(&ctx, req, &resp);
    if (!s.ok()) {
      std::fprintf(stderr, "config: %s\n", s.error_message().c_str());
      std::exit(1);
    }
  }
  // Several channels: one HTTP/2 connection would serialize the clients.
  std::vector<std::unique_ptr<weft::v1::LeaseService::Stub>> stubs;
  for (int i = 0; i < 8; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("weft.bench.channel", i);  // distinct args => distinct connections
    stubs.push_back(weft::v1::LeaseService::NewStub(
        grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials(), args)));
  }
  std::atomic<int64_t> next{0};
  auto worker = [&](int t, int64_t limit, absl::Time deadline, std::vector<double>* lat, std::atomic<int64_t>* failed) {
    auto* stub = stubs[t % stubs.size()].get();
    while (true) {
      int64_t i = next.fetch_add(1);
      if ((limit > 0 && i >= limit) || (limit == 0 && absl::Now() >= deadline)) break;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      weft::v1::AcquireLeaseResponse resp;
      absl::Time start = absl::Now();
      grpc::Status s = stub->AcquireLease(&ctx, Node(i), &resp);
      if (!s.ok()) {
        if (failed->fetch_add(1) == 0) {
          std::fprintf(stderr, "first error: %d %s\n", s.error_code(), s.error_message().c_str());
        }
        continue;
      }
      if (lat) lat->push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
    }
  };
  // Pre-populate.
  {
    std::atomic<int64_t> failed{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < clients; ++t) ts.emplace_back(worker, t, existing, absl::InfiniteFuture(), nullptr, &failed);
    for (auto& t : ts) t.join();
  }
  // Measure.
  std::vector<std::vector<double>> lats(clients);
  std::atomic<int64_t> failed{0};
  next.store(existing);
  absl::Time start = absl::Now();
  absl::Time deadline = start + duration;
  std::vector<std::thread> ts;
  for (int t = 0; t < clients; ++t) ts.emplace_back(worker, t, 0, deadline, &lats[t], &failed);
  for (auto& t : ts) t.join();
  double secs = absl::ToDoubleSeconds(absl::Now() - start);
  std::vector<double> all;
  for (auto& l : lats) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  Result r;
  r.ok = all.size();
  r.failed = failed.load();
  r.rate = all.size() / secs;
  if (!all.empty()) {
    r.p50_ms = all[all.size() / 2];
    r.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
    r.max_ms = all.back();
  }
  if (r.failed > 0) {
    std::string tail = "tail -20 " + dir + ".log >&2";
    if (std::system(tail.c_str()) != 0) std::fprintf(stderr, "no log\n");
  }
  p.Kill(SIGTERM);
  p.Wait();
  std::string rm = "rm -rf " + dir + " " + dir + ".log";
  if (std::system(rm.c_str()) != 0) std::fprintf(stderr, "cleanup failed\n");
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  int clients = 64, existing = 10000, seconds = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string f = argv[i];
    int v = 0;
    if (!absl::SimpleAtoi(argv[i + 1], &v)) continue;
    if (f == "--clients") clients = v;
    if (f == "--existing") existing = v;
    if (f == "--seconds") seconds = v;
  }
  std::string controller = weft::testing::Runfile("controller/weft-controller");
  if (const char* c = std::getenv("WEFT_CONTROLLER_BIN")) controller = c;
  std::printf("acquire_bench: %d clients, %d existing leases, %ds per run, network 10.0.0.0/8 /24\n", clients,
              existing, seconds);
  std::printf("%-22s %12s %9s %9s %9s %8s\n", "mode", "acq/s", "p50 ms", "p99 ms", "max ms", "errors");
  for (bool sync : {true, false}) {
    Result r = Run(controller, sync, clients, existing, absl::Seconds(seconds));
    std::printf("%-22s %12.0f %9.2f %9.2f %9.2f %8lld\n", sync ? "durable (fsync)" : "no fsync (upper bound)",
                r.rate, r.p50_ms, r.p99_ms, r.max_ms, static_cast<long long>(r.failed));
    std::fflush(stdout);
  }
  return 0;
}
