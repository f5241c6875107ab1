// Fan-out: one lease change delivered to N WatchLeases streams (simulated agents
// in this separate process, over several HTTP/2 connections). Prints the
// delivery latency (change acknowledged -> message received, per stream) p50/p99
// and the controller's CPU time per delivered event.
//
//   bazel run -c opt //tests/bench:fanout_bench -- [--streams 5000] [--channels N] [--changes 20] [--tls 1]
//   (--channels: default one per 200 streams, at least 16; the controller allows 256 per connection;
//   --leases N: leases acquired before the streams start, in every snapshot, default 300;
//   --senders N: the controller's --watch-senders, default its own;
//   --compress 1: the controller's --watch-compress-snapshots;
//   --replicas N: N controllers on one etcd 3.4, streams spread over them, CPU and RSS summed;
//   --churn-rate R [--churn-seconds S]: after the one-at-a-time changes, R new
//   leases per second for S seconds (default 60), deliveries overlapping, each
//   event's latency taken from its own lease's issue time)
//
// --tls 1: mutual TLS (certificates from tools/certs.sh for the run; the streams
// use a node's certificate, the writer an operator's).

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/mutex_mode.h"
#include "common/testing.h"
#include "grpcpp/grpcpp.h"
#include "proto/weft/v1/weft.grpc.pb.h"
#include "common/tls_client.h"
#include "tests/bench/scrape.h"
#include "tests/bench/network_config.h"
#include "tests/etcd/etcd_cluster.h"
#include "tests/integration/process.h"
#include "tests/integration/test_certs.h"

namespace {

using weft::v1::WatchLeasesResponse;

struct Stream {
  grpc::ClientContext ctx;
  WatchLeasesResponse msg;
  std::unique_ptr<grpc::ClientAsyncReader<WatchLeasesResponse>> reader;
};

}  // namespace

int main(int argc, char** argv) {
  weft::TurnOffMutexDeadlockDetection();
  int streams = 5000, channels = 0, changes = 20, tls = 0, leases_before = 300, senders = 0;
  int churn_rate = 0, churn_seconds = 60, compress = 0, replicas = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    int v = 0;
    if (!absl::SimpleAtoi(argv[i + 1], &v)) continue;
    std::string f = argv[i];
    if (f == "--streams") streams = v;
    if (f == "--channels") channels = v;
    if (f == "--changes") changes = v;
    if (f == "--tls") tls = v;
    if (f == "--leases") leases_before = v;
    if (f == "--senders") senders = v;
    if (f == "--churn-rate") churn_rate = v;
    if (f == "--churn-seconds") churn_seconds = v;
    if (f == "--compress") compress = v;
    if (f == "--replicas") replicas = std::max(1, v);
  }
  // The controller allows 256 streams per connection (--max-concurrent-streams);
  // by default 200 per connection, and at least 16 connections.
  if (channels <= 0) channels = std::max(16, (streams + 199) / 200);
  std::string controller = weft::testing::Runfile("controller/weft-controller");
  weft::TempDir tmp("weft-fanout-", weft::TempDir::Root::kTmp);
  tmp.Keep();  // with the logs, unless the run gets to the end
  const std::string dir = tmp.path();
  // One controller on its embedded store, or --replicas N on one etcd 3.4
  // (Debian's), the streams spread over them and the changes made on the first.
  std::unique_ptr<weft::testing::EtcdCluster> etcd;
  if (replicas > 1) {
    weft::testing::EtcdCluster::Options eo;
    eo.dir = dir + "/etcd";
    eo.log_dir = dir;
    std::string error;
    etcd = weft::testing::EtcdCluster::Start(eo, &error);
    if (!etcd) {
      std::fprintf(stderr, "etcd: %s\n", error.c_str());
      return 1;
    }
  }
  std::vector<std::unique_ptr<weft::testing::Process>> ps;
  std::vector<std::string> addrs;
  std::vector<int> metrics_ports;
  weft::TlsClientFiles writer_files, watcher_files;
  std::vector<std::string> tls_flags;
  if (tls) {
    absl::StatusOr<weft::testing::TestCerts> certs = weft::testing::TestCerts::Make(dir + "/certs", "IP:127.0.0.1");
    if (!certs.ok() || !certs->AddNode("watcher").ok()) {
      std::fprintf(stderr, "certs: %s\n", certs.status().ToString().c_str());
      return 1;
    }
    tls_flags = certs->ControllerFlags();
    writer_files = certs->Admin();
    watcher_files = certs->Node("watcher");
  }
  for (int r = 0; r < replicas; ++r) {
    const int port = weft::testing::FreePort();
    metrics_ports.push_back(weft::testing::FreePort());
    addrs.push_back(absl::StrCat("127.0.0.1:", port));
    std::vector<std::string> ctl_argv = {controller,
                                         "--data-dir",
                                         absl::StrCat(dir, "/c", r),
                                         "--listen",
                                         addrs.back(),
                                         "--metrics-listen",
                                         absl::StrCat("127.0.0.1:", metrics_ports.back()),
                                         "--log-level",
                                         "warn",
                                         "--watch-bookmark-interval",
                                         "1h"};
    if (etcd) {
      for (const char* f : {"--store", "etcd", "--replica-name"}) ctl_argv.push_back(f);
      ctl_argv.push_back(absl::StrCat("c", r));
      ctl_argv.push_back("--etcd-endpoints");
      ctl_argv.push_back(etcd->endpoint(0));
    }
    if (compress) ctl_argv.push_back("--watch-compress-snapshots");
    if (senders > 0) {
      ctl_argv.push_back("--watch-senders");
      ctl_argv.push_back(absl::StrCat(senders));
    }
    ctl_argv.insert(ctl_argv.end(), tls_flags.begin(), tls_flags.end());
    ps.push_back(std::make_unique<weft::testing::Process>());
    ps.back()->Start(ctl_argv, absl::StrCat(dir, "/c", r, ".log"));
  }
  // Summed over the replicas.
  auto controller_cpu = [&] {
    double sum = 0;
    for (auto& c : ps) sum += weft::testing::ProcCpuSeconds(c->pid());
    return sum;
  };
  auto controller_rss = [&] {
    int64_t sum = 0;
    for (auto& c : ps) sum += weft::testing::ProcStatusKiB(c->pid(), "VmRSS");
    return sum;
  };
  const std::string addr = addrs[0];
  auto writer_creds = weft::MakeChannelCredentials(writer_files);
  auto watcher_creds = weft::MakeChannelCredentials(watcher_files);
  if (!writer_creds.ok() || !watcher_creds.ok()) return 1;
  auto main_ch = grpc::CreateChannel(addr, *writer_creds);
  if (!weft::bench::ConnectAndConfigure(main_ch)) return 1;
  auto leases = weft::v1::LeaseService::NewStub(main_ch);
  // The lease set every stream's snapshot carries.
  for (int i = 0; i < leases_before; ++i) {
    weft::v1::AcquireLeaseRequest req;
    req.set_node_name(absl::StrCat("host", i));
    req.set_public_ip(absl::StrCat("203.0.", i / 250, ".", i % 250 + 1));
    req.set_backend_type("vxlan");
    req.set_backend_data(absl::StrFormat(R"({"VNI":1,"VtepMAC":"02:00:00:01:%02x:%02x"})", i >> 8, i & 0xff));
    grpc::ClientContext ctx;
    weft::v1::AcquireLeaseResponse resp;
    if (grpc::Status s = leases->AcquireLease(&ctx, req, &resp); !s.ok()) {
      std::fprintf(stderr, "acquire: %s\n", s.error_message().c_str());
      return 1;
    }
  }
  std::vector<std::unique_ptr<weft::v1::LeaseService::Stub>> stubs;
  for (int i = 0; i < channels; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("weft.bench.channel", i);
    stubs.push_back(weft::v1::LeaseService::NewStub(
        grpc::CreateCustomChannel(addrs[i % replicas], *watcher_creds, args)));
  }
  grpc::CompletionQueue cq;
  std::vector<std::unique_ptr<Stream>> ss(streams);
  absl::Mutex mu;
  int snapshots = 0;
  std::vector<double> latencies;
  // Changes are issued one at a time, each after the last was delivered to
  // every stream, and nothing else writes: an events message with a revision
  // above the previous change's is a delivery of the current one (counted even
  // when it arrives before the writer's acknowledgement).
  absl::Time change_issued = absl::InfiniteFuture();
  int64_t counting_after = INT64_MAX;
  int64_t snapshot_revision = 0;
  std::atomic<int64_t> delivered{0};
  // Churn: each lease's issue time by node name; every event of such a lease counts.
  absl::flat_hash_map<std::string, absl::Time> churn_issued;
  std::vector<double> churn_latencies;
  int64_t churn_events = 0;
  // Tags: stream index * 2 (+1 for the start completion).
  auto pump = [&] {
    void* tag;
    bool ok;
    while (cq.Next(&tag, &ok)) {
      intptr_t t = reinterpret_cast<intptr_t>(tag);
      Stream* s = ss[t / 2].get();
      if (!ok) continue;
      if (t % 2 == 1) {
        s->reader->Read(&s->msg, reinterpret_cast<void*>(t - 1));
        continue;
      }
      absl::Time now = absl::Now();
      {
        absl::MutexLock l(&mu);
        if (s->msg.has_snapshot()) {
          ++snapshots;
          snapshot_revision = std::max(snapshot_revision, s->msg.revision());
          // Freed now: Read() into the same message would otherwise destroy
          // the snapshot's leases when the first change arrives, 5,000 times
          // over in this one process, inside the measured window.
          WatchLeasesResponse().Swap(&s->msg);
        } else if (s->msg.has_events() && !churn_issued.empty()) {
          for (const auto& e : s->msg.events().events()) {
            auto it = churn_issued.find(e.lease().node_name());
            if (it == churn_issued.end()) continue;
            churn_latencies.push_back(absl::ToDoubleMilliseconds(now - it->second));
            ++churn_events;
          }
        } else if (s->msg.has_events() && s->msg.revision() > counting_after) {
          latencies.push_back(absl::ToDoubleMilliseconds(now - change_issued));
          delivered++;
        }
      }
      s->reader->Read(&s->msg, reinterpret_cast<void*>(t));
    }
  };
  std::vector<std::thread> pumps;
  for (int i = 0; i < 2; ++i) pumps.emplace_back(pump);
  // Bytes the streams' start put on the wire: loopback's counter (nothing else
  // of note uses it meanwhile).
  auto lo_bytes = [] {
    std::ifstream f("/sys/class/net/lo/statistics/tx_bytes");
    int64_t n = 0;
    f >> n;
    return n;
  };
  const int64_t lo0 = lo_bytes();
  const double cpu_joins = controller_cpu();
  const int64_t rss_before = controller_rss();
  for (int i = 0; i < streams; ++i) {
    ss[i] = std::make_unique<Stream>();
    weft::v1::WatchLeasesRequest req;
    ss[i]->reader = stubs[i % channels]->PrepareAsyncWatchLeases(&ss[i]->ctx, req, &cq);
    ss[i]->reader->StartCall(reinterpret_cast<void*>(static_cast<intptr_t>(i * 2 + 1)));
  }
  absl::Time t0 = absl::Now();
  while (true) {
    {
      absl::MutexLock l(&mu);
      if (snapshots >= streams) break;
    }
    if (absl::Now() - t0 > absl::Seconds(120)) {
      std::fprintf(stderr, "only %d of %d streams got their snapshot\n", snapshots, streams);
      for (auto& st : ss) st->ctx.TryCancel();
      cq.Shutdown();
      for (auto& t : pumps) t.join();
      return 1;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  std::printf("fanout_bench (%s, senders %s): %d streams over %d connections, %d leases in each snapshot, %d changes; %d snapshots in %.1fs\n",
              tls ? "mutual TLS" : "plaintext", senders > 0 ? absl::StrCat(senders).c_str() : "default", streams, channels, leases_before, changes, snapshots,
              absl::ToDoubleSeconds(absl::Now() - t0));
  // Idle streams: every snapshot written, nothing queued.
  absl::SleepFor(absl::Seconds(1));
  const int64_t rss_idle = controller_rss();
  std::printf("controller RSS: %.1f MB before the streams, %.1f MB with %d idle streams: %.1f KiB per stream\n",
              rss_before / 1024.0, rss_idle / 1024.0, streams, static_cast<double>(rss_idle - rss_before) / streams);
  // The controller's own view (change applied -> write to the stream
  // completed), free of this process' share of the 2 cores.
  constexpr char kFanout[] = "weft_controller_watch_fanout_duration_seconds";
  auto fanout_buckets = [&] {
    std::map<double, double> sum;
    for (int port : metrics_ports) {
      for (const auto& [le, n] : weft::bench::HistogramBuckets(weft::bench::ScrapeMetrics(port), kFanout, "")) {
        sum[le] += n;
      }
    }
    return sum;
  };
  const auto fanout_before = fanout_buckets();
  double cpu0 = controller_cpu();
  const double client_cpu0 = weft::testing::ProcCpuSeconds(getpid());
  std::printf("controller CPU for the %d streams' start (snapshots included): %.3f s; %.1f MB on loopback%s\n",
              streams, cpu0 - cpu_joins, (lo_bytes() - lo0) / 1e6, compress ? " (snapshots gzipped)" : "");
  int64_t last_revision = 0;
  {
    absl::MutexLock l(&mu);
    last_revision = snapshot_revision;
  }
  int64_t missing = 0;
  std::vector<std::string> per_change;  // "ack/p50/max" ms of each change
  std::vector<double> acks;             // issue -> the writer's acknowledgement (the durable commit)
  for (int c = 0; c < changes; ++c) {
    weft::v1::AcquireLeaseRequest req;
    req.set_node_name(absl::StrCat("fan", c));
    req.set_public_ip(absl::StrCat("198.51.100.", c + 1));
    req.set_backend_type("vxlan");
    req.set_backend_data(absl::StrFormat(R"({"VNI":1,"VtepMAC":"02:00:00:00:00:%02x"})", c + 1));
    int64_t before = delivered.load();
    grpc::ClientContext ctx;
    weft::v1::AcquireLeaseResponse resp;
    {
      absl::MutexLock l(&mu);
      change_issued = absl::Now();  // latency measured from the moment the change is issued
      counting_after = last_revision;
    }
    grpc::Status s = leases->AcquireLease(&ctx, req, &resp);
    if (!s.ok()) {
      std::fprintf(stderr, "acquire: %s\n", s.error_message().c_str());
      return 1;
    }
    last_revision = resp.revision();
    const double ack_ms = absl::ToDoubleMilliseconds(absl::Now() - change_issued);
    acks.push_back(ack_ms);
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (delivered.load() - before < streams && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
    missing += streams - (delivered.load() - before);
    {
      absl::MutexLock l(&mu);
      std::vector<double> these(latencies.end() - (delivered.load() - before), latencies.end());
      std::sort(these.begin(), these.end());
      if (!these.empty()) per_change.push_back(absl::StrFormat("%.0f/%.0f/%.0f", ack_ms, these[these.size() / 2], these.back()));
    }
    {
      absl::MutexLock l(&mu);
      counting_after = INT64_MAX;  // between changes nothing counts
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  double cpu = controller_cpu() - cpu0;
  const double client_cpu = weft::testing::ProcCpuSeconds(getpid()) - client_cpu0;
  std::vector<double> all;
  {
    absl::MutexLock l(&mu);
    all = latencies;
  }
  std::sort(all.begin(), all.end());
  int64_t expected = static_cast<int64_t>(streams) * changes;
  if (all.empty()) {
    std::printf("no deliveries measured\n");
    return 1;
  }
  std::printf("deliveries measured %zu of %lld (%lld not delivered within 30 s)\n", all.size(),
              static_cast<long long>(expected), static_cast<long long>(missing));
  std::printf("delivery latency ms: p50 %.2f  p99 %.2f  max %.2f\n", all[all.size() / 2],
              all[std::min(all.size() - 1, all.size() * 99 / 100)], all.back());
  std::printf("per change, ack/p50/max ms: %s\n", absl::StrJoin(per_change, " ").c_str());
  std::sort(acks.begin(), acks.end());
  std::printf("change acknowledged (durable commit) ms: p50 %.2f  max %.2f\n", acks[acks.size() / 2], acks.back());
  const auto fanout = weft::bench::BucketDelta(fanout_before, fanout_buckets());
  std::printf("controller's view (applied -> written, histogram buckets): p50 %.1f  p99 %.1f ms over %.0f writes\n",
              weft::bench::Quantile(fanout, 0.5) * 1000, weft::bench::Quantile(fanout, 0.99) * 1000,
              fanout.empty() ? 0.0 : fanout.rbegin()->second);
  std::printf("controller CPU: %.3f s for %zu deliveries = %.2f us per delivered event\n", cpu, all.size(),
              cpu * 1e6 / all.size());
  std::printf("client CPU (this process, receiving): %.3f s = %.2f us per delivered event\n", client_cpu,
              client_cpu * 1e6 / all.size());
  if (churn_rate > 0) {
    // Kubernetes' steady state is ~20 node changes per second: changes on a
    // fixed schedule whatever the deliveries are doing.
    const double churn_cpu0 = controller_cpu();
    const int total = churn_rate * churn_seconds;
    const absl::Time start = absl::Now();
    for (int c = 0; c < total; ++c) {
      const absl::Time due = start + absl::Seconds(1) * c / churn_rate;
      if (absl::Now() < due) absl::SleepFor(due - absl::Now());
      weft::v1::AcquireLeaseRequest req;
      req.set_node_name(absl::StrCat("churn", c));
      req.set_public_ip(absl::StrCat("198.18.", c / 250, ".", c % 250 + 1));
      req.set_backend_type("vxlan");
      req.set_backend_data(absl::StrFormat(R"({"VNI":1,"VtepMAC":"02:00:00:02:%02x:%02x"})", c >> 8, c & 0xff));
      {
        absl::MutexLock l(&mu);
        churn_issued[req.node_name()] = absl::Now();
      }
      grpc::ClientContext ctx;
      weft::v1::AcquireLeaseResponse resp;
      if (grpc::Status st = leases->AcquireLease(&ctx, req, &resp); !st.ok()) {
        std::fprintf(stderr, "acquire: %s\n", st.error_message().c_str());
        return 1;
      }
    }
    const absl::Duration issuing = absl::Now() - start;
    const int64_t want = static_cast<int64_t>(total) * streams;
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (absl::Now() < deadline) {
      {
        absl::MutexLock l(&mu);
        if (churn_events >= want) break;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    const double churn_cpu = controller_cpu() - churn_cpu0;
    std::vector<double> c;
    {
      absl::MutexLock l(&mu);
      c = churn_latencies;
    }
    std::sort(c.begin(), c.end());
    std::printf("churn: %d changes at %d/s (issued in %.1f s), %zu of %lld deliveries\n", total, churn_rate,
                absl::ToDoubleSeconds(issuing), c.size(), static_cast<long long>(want));
    if (!c.empty()) {
      std::printf("churn delivery latency ms: p50 %.2f  p99 %.2f  max %.2f\n", c[c.size() / 2],
                  c[std::min(c.size() - 1, c.size() * 99 / 100)], c.back());
      std::printf("churn controller CPU: %.3f s = %.2f us per delivered event (%.0f%% of one core)\n", churn_cpu,
                  churn_cpu * 1e6 / c.size(), 100 * churn_cpu / absl::ToDoubleSeconds(issuing));
    }
  }
  for (auto& s : ss) s->ctx.TryCancel();
  for (auto& c : ps) c->Kill(SIGTERM);
  for (auto& c : ps) c->Wait();
  cq.Shutdown();
  for (auto& t : pumps) t.join();
  tmp.Keep(false);
  return 0;
}
