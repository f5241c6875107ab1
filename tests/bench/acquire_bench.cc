// Durable acquisitions through gRPC: 64 concurrent clients against the real
// weft-controller, starting from 10,000 existing leases (network 10.0.0.0/8,
// SubnetLen 24). Same run, same workload without transaction batching (one
// store transaction per lease) and with fsync off, as the upper bound.
//
//   bazel run -c opt //tests/bench:acquire_bench -- [--clients 64] [--existing 10000] [--seconds 3]
//       [--generator async|threads] [--tls off|on|compare] [--stack compare] [--rounds 2]
//
// --stack compare: only the durable mode, IPv4-only and dual-stack (IPv6Network
// 2001:db8::/32 with /64 subnets: 2^32 IPv6 subnets, a pool that keeps only the
// taken ones) alternated for --rounds rounds.
//
// --tls on: mutual TLS between the clients (an operator's certificate) and the
// controller, certificates made by tools/certs.sh for the run. --tls compare:
// only the durable mode, plaintext and TLS alternated for --rounds rounds (the
// machine's speed drifts between minutes: alternating keeps the ratio honest).
//
// "ctl cpu us" is the controller's CPU time (user + system, from its
// process_cpu_seconds_total) per acquisition over the measured run; "ctl RSS"
// its resident memory at the end, with the leases it then holds.
//
// The generator keeps `clients` calls in flight from gRPC's callback threads
// (async, the default) or gives each client a blocking thread (threads).
//
// The pool holds 65,534 subnets, so 10,000 existing leases leave room for
// ~55,000 acquisitions: above 13k/s a run of more than 4 s empties it (the
// bench then reports RESOURCE_EXHAUSTED errors and the rate is capped).

#include <algorithm>
#include <atomic>
#include <optional>
#include <cstdio>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/mutex_mode.h"
#include "common/testing.h"
#include "common/tls_client.h"
#include "grpcpp/grpcpp.h"
#include "proto/weft/v1/weft.grpc.pb.h"
#include "tests/bench/closed_loop.h"
#include "tests/bench/lease_stubs.h"
#include "tests/bench/scrape.h"
#include "tests/integration/process.h"
#include "tests/integration/test_certs.h"

namespace {

using weft::testing::FreePort;
using weft::testing::Process;

constexpr char kIPv4Config[] = R"({"Network":"10.0.0.0/8","SubnetLen":24,"Backend":{"Type":"vxlan"}})";
constexpr char kDualStackConfig[] =
    R"({"Network":"10.0.0.0/8","SubnetLen":24,"EnableIPv6":true,"IPv6Network":"2001:db8::/32",)"
    R"("Backend":{"Type":"vxlan"}})";

weft::bench::LoadResult Run(const std::string& controller, std::vector<std::string> extra,
                            const weft::testing::TestCerts* certs, bool dual_stack, int clients,
                            int existing, absl::Duration duration, bool async_generator, double* server_p50_ms,
                            double* server_p99_ms, double* cpu_us_per_acq, double* rss_mb) {
  // A failure exits at once, leaving the directory with the controller's log.
  const weft::TempDir tmp("weft-bench-", weft::TempDir::Root::kTmp);
  const std::string dir = tmp.Join("controller");
  int port = FreePort();
  const int metrics_port = FreePort();
  Process p;
  std::vector<std::string> argv = {controller, "--data-dir", dir, "--listen", absl::StrCat("127.0.0.1:", port),
                                   "--metrics-listen", absl::StrCat("127.0.0.1:", metrics_port),
                                   "--log-level", "warn"};
  if (certs) {
    for (const std::string& f : certs->ControllerFlags()) extra.push_back(f);
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  p.Start(argv, dir + ".log");
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> creds =
      weft::MakeChannelCredentials(certs ? certs->Admin() : weft::TlsClientFiles{});
  if (!creds.ok()) {
    std::fprintf(stderr, "credentials: %s\n", std::string(creds.status().message()).c_str());
    std::exit(1);
  }
  auto ch = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), *creds);
  if (!ch->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(20))) {
    std::fprintf(stderr, "controller did not start (log %s.log)\n", dir.c_str());
    std::exit(1);
  }
  auto net = weft::v1::NetworkService::NewStub(ch);
  {
    grpc::ClientContext ctx;
    weft::v1::SetNetworkConfigRequest req;
    req.set_config(dual_stack ? kDualStackConfig : kIPv4Config);
    weft::v1::SetNetworkConfigResponse resp;
    grpc::Status s = net->SetNetworkConfig(&ctx, req, &resp);
    if (!s.ok()) {
      std::fprintf(stderr, "config: %s\n", s.error_message().c_str());
      std::exit(1);
    }
  }
  auto stubs = weft::bench::LeaseStubs(absl::StrCat("127.0.0.1:", port), 8, *creds);
  const auto acquire = weft::bench::AcquireOp(stubs, std::chrono::seconds(30), dual_stack);
  const auto acquire_async = weft::bench::AcquireAsyncOp(stubs, std::chrono::seconds(30), dual_stack);
  auto load = [&](absl::Duration d, int64_t first, int64_t limit) {
    return async_generator ? weft::bench::RunClosedLoopAsync(clients, d, acquire_async, first, limit)
                           : weft::bench::RunClosedLoop(clients, d, acquire, first, limit);
  };
  // Pre-populate, then measure.
  load(absl::ZeroDuration(), 0, existing);
  const std::string before = weft::bench::ScrapeMetrics(metrics_port);
  weft::bench::LoadResult r = load(duration, existing, 0);
  // The server's own latency over the measured calls (rpc_duration is taken from
  // a request's arrival to its answer, so it leaves out the time the clients'
  // threads wait for a CPU on this shared machine).
  const std::string after = weft::bench::ScrapeMetrics(metrics_port);
  const auto server = weft::bench::BucketDelta(
      weft::bench::HistogramBuckets(before, "weft_controller_rpc_duration_seconds", "AcquireLease"),
      weft::bench::HistogramBuckets(after, "weft_controller_rpc_duration_seconds", "AcquireLease"));
  // The controller's CPU (user + system) per successful acquisition.
  const double cpu = weft::bench::Sample(after, "process_cpu_seconds_total") -
                     weft::bench::Sample(before, "process_cpu_seconds_total");
  *cpu_us_per_acq = r.ok > 0 ? 1e6 * cpu / r.ok : 0;
  *rss_mb = weft::bench::Sample(after, "process_resident_memory_bytes") / 1e6;
  *server_p50_ms = 1000 * weft::bench::Quantile(server, 0.5);
  *server_p99_ms = 1000 * weft::bench::Quantile(server, 0.99);
  if (r.failed > 0) {
    std::string tail = "tail -20 " + dir + ".log >&2";
    if (std::system(tail.c_str()) != 0) std::fprintf(stderr, "no log\n");
  }
  p.Kill(SIGTERM);
  p.Wait();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  weft::TurnOffMutexDeadlockDetection();
  int clients = 64, existing = 10000, seconds = 3;
  bool async_generator = true;
  std::string tls = "off";
  std::string stack;
  int rounds = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string f = argv[i];
    if (f == "--generator") async_generator = std::string(argv[i + 1]) != "threads";
    if (f == "--tls") tls = argv[i + 1];
    if (f == "--stack") stack = argv[i + 1];
    int v = 0;
    if (!absl::SimpleAtoi(argv[i + 1], &v)) continue;
    if (f == "--clients") clients = v;
    if (f == "--existing") existing = v;
    if (f == "--seconds") seconds = v;
    if (f == "--rounds") rounds = v;
  }
  if (tls != "off" && tls != "on" && tls != "compare") {
    std::fprintf(stderr, "--tls is off, on or compare\n");
    return 2;
  }
  if (!stack.empty() && (stack != "compare" || tls == "compare")) {
    std::fprintf(stderr, "--stack is compare (and not with --tls compare)\n");
    return 2;
  }
  std::string controller = weft::testing::Runfile("controller/weft-controller");
  if (const char* c = std::getenv("WEFT_CONTROLLER_BIN")) controller = c;
  std::printf("acquire_bench: %d clients (%s), %d existing leases, %ds per run, network 10.0.0.0/8 /24, TLS %s\n",
              clients, async_generator ? "async calls in flight" : "a thread each", existing, seconds, tls.c_str());
  const weft::TempDir certs_dir("weft-bench-certs-", weft::TempDir::Root::kTmp);
  std::optional<weft::testing::TestCerts> certs;
  if (tls != "off") {
    absl::StatusOr<weft::testing::TestCerts> made = weft::testing::TestCerts::Make(certs_dir.path(), "IP:127.0.0.1");
    if (!made.ok()) {
      std::fprintf(stderr, "certs: %s\n", std::string(made.status().message()).c_str());
      return 1;
    }
    certs = *std::move(made);
  }
  std::printf("%-26s %8s %9s %9s %9s %8s %12s %12s %12s %s\n", "mode", "acq/s", "p50 ms", "p99 ms", "max ms",
              "errors", "server p50", "server p99", "ctl cpu us", "  ctl RSS at the end");
  struct Mode {
    std::string name;
    std::vector<std::string> extra;
    bool tls;
    bool dual_stack = false;
  };
  std::vector<Mode> modes;
  if (tls == "compare") {
    for (int i = 0; i < rounds; ++i) {
      modes.push_back({"durable, plaintext", {}, false});
      modes.push_back({"durable, mutual TLS", {}, true});
    }
  } else if (stack == "compare") {
    for (int i = 0; i < rounds; ++i) {
      modes.push_back({"durable, IPv4", {}, tls == "on"});
      modes.push_back({"durable, dual-stack /32", {}, tls == "on", true});
    }
  } else {
    const bool on = tls == "on";
    modes = {{"durable (fsync)", {}, on},
             {"durable, no txn batching", {"--batch-lease-writes=false"}, on},
             {"no fsync (upper bound)", {"--unsafe-no-fsync"}, on}};
  }
  for (const auto& [name, extra, with_tls, dual_stack] : modes) {
    double sp50 = 0, sp99 = 0, cpu = 0, rss = 0;
    weft::bench::LoadResult r = Run(controller, extra, with_tls ? &*certs : nullptr, dual_stack, clients, existing,
                                    absl::Seconds(seconds), async_generator, &sp50, &sp99, &cpu, &rss);
    std::printf("%-26s %8.0f %9.2f %9.2f %9.2f %8lld %12.2f %12.2f %12.0f %8.0f MB / %lld leases\n", name.c_str(),
                r.rate, r.p50_ms, r.p99_ms, r.max_ms, static_cast<long long>(r.failed), sp50, sp99, cpu, rss,
                static_cast<long long>(existing + r.ok));
    std::fflush(stdout);
  }
  return 0;
}
