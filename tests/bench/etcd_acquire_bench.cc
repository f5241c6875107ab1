// Durable acquisitions on a real etcd 3.4 (Debian's, one member on loopback,
// fsync on), in one run for each count of existing leases:
//   bare     the floor of any etcd-backed allocator: one lease grant + one CAS
//            transaction per acquisition, no listing (each client knows a free
//            subnet by magic);
//   flannel  flannel's own algorithm (pkg/subnet/etcd): list the subnets, one
//            TimeToLive per leased key to learn its expiry, pick at random among
//            the first 100 free subnets, grant a 24 h lease, create the key with a
//            CAS transaction (retry on a lost race);
//   weft     AcquireLease through the real weft-controller on --store=etcd
//            (concurrent acquisitions share transactions and bucket leases);
//   weft-unbatched  the same with --batch-lease-writes=false (one transaction
//            per lease), to show what batching brings.
// Each mode gets a fresh etcd with the same existing leases, in flannel's
// keyspace and JSON, attached to 24 h leases (100 keys per lease).
//
// flannel's algorithm is slow enough (one RPC per existing lease per attempt)
// that it gets a longer run, --flannel-seconds; an acquisition still running at
// the end is not counted.
//
// The generator of bare and weft keeps `clients` calls in flight with gRPC's
// callback API (async, the default; bare's are etcd's own Lease and KV calls
// on 8 connections, weft's AcquireLease on 8 connections to the controller), or
// gives each client a blocking thread (threads; bare's 64 EtcdStore clients
// then share one connection, as gRPC pools channels with the same arguments):
// on 2 cores 64 runnable threads take the CPU from the servers they measure.
// Both use the same generator, so that the comparison stays fair. flannel, a
// long chain of calls per acquisition, always runs a thread per client.
//
//   bazel run -c opt //tests/bench:etcd_acquire_bench -- [--clients 64] [--seconds 10]
//       [--flannel-seconds 60] [--existing 1000,10000] [--modes bare,flannel,weft]
//       [--generator async|threads]

#include <signal.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/mutex_mode.h"
#include "common/testing.h"
#include "grpcpp/grpcpp.h"
#include "proto/etcd/rpc.grpc.pb.h"
#include "proto/weft/v1/weft.grpc.pb.h"
#include "storage/etcd/etcd_store.h"
#include "storage/etcdwire/etcd_wire.h"
#include "tests/bench/closed_loop.h"
#include "tests/bench/lease_stubs.h"
#include "tests/bench/scrape.h"
#include "tests/etcd/etcd_cluster.h"
#include "tests/integration/process.h"

namespace {

using weft::bench::LoadResult;
using weft::bench::RunClosedLoop;
using weft::bench::RunClosedLoopAsync;
using weft::bench::CallAsync;
namespace storage = weft::storage;

constexpr char kPrefix[] = "/coreos.com/network";
constexpr char kConfig[] = R"({"Network":"10.0.0.0/8","SubnetLen":24,"Backend":{"Type":"vxlan"}})";
constexpr int kPool = 65534;  // 10.0.1.0 .. 10.255.254.0 (SubnetMin/Max defaults)

std::string SubnetOf(int64_t i) {  // pool index -> "10.a.b.0"; index 0 is 10.0.1.0
  const int64_t n = i + 1;
  return absl::StrFormat("10.%d.%d.0", static_cast<int>(n >> 8), static_cast<int>(n & 0xff));
}
std::string KeyOf(int64_t i) { return absl::StrCat(kPrefix, "/subnets/", SubnetOf(i), "-24"); }
std::string LeaseJson(int64_t node) {
  return absl::StrFormat(R"({"PublicIP":"100.%d.%d.%d","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:%02x:%02x:%02x"}})",
                         64 + static_cast<int>((node >> 16) % 64), static_cast<int>((node >> 8) & 0xff),
                         static_cast<int>(node & 0xff), static_cast<int>((node >> 16) & 0xff),
                         static_cast<int>((node >> 8) & 0xff), static_cast<int>(node & 0xff));
}

storage::TxnRequest CreateIfAbsent(const std::string& key, const std::string& value, int64_t lease) {
  return storage::PutIf(key, storage::Compare::Target::kCreateRevision, 0, value, lease);
}

// The etcd of the mode being measured: stopped by Die() too, so a failed run
// leaves no server behind.
std::unique_ptr<weft::testing::EtcdCluster> g_etcd;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "etcd_acquire_bench: %s\n", what.c_str());
  g_etcd.reset();
  std::exit(1);
}

// Deadlines of one call: to etcd (as Client's), to the controller.
constexpr std::chrono::seconds kEtcdTimeout(60);
constexpr std::chrono::seconds kWeftTimeout(30);

std::unique_ptr<storage::EtcdStore> Client(const std::string& endpoint) {
  storage::EtcdStore::Options o;
  o.endpoints = {endpoint};
  o.rpc_timeout = absl::Seconds(kEtcdTimeout.count());
  auto c = storage::EtcdStore::Open(o);
  if (!c.ok()) Die(absl::StrCat("etcd client: ", c.status().ToString()));
  return *std::move(c);
}

// The network config and `existing` leases at pool indices [0, existing).
void Populate(storage::EtcdStore& etcd, int existing) {
  storage::PutRequest cfg;
  cfg.key = absl::StrCat(kPrefix, "/config");
  cfg.value = kConfig;
  if (absl::Status st = etcd.Put(cfg).status(); !st.ok()) Die(st.ToString());
  for (int base = 0; base < existing; base += 100) {
    auto g = etcd.LeaseGrant(24 * 3600);
    if (!g.ok()) Die(g.status().ToString());
    storage::TxnRequest t;
    for (int i = base; i < std::min(existing, base + 100); ++i) {
      storage::RequestOp op;
      op.type = storage::RequestOp::Type::kPut;
      op.put.key = KeyOf(i);
      op.put.value = LeaseJson(i);
      op.put.lease = g->id;
      t.success.push_back(op);
    }
    if (absl::Status st = etcd.Txn(t).status(); !st.ok()) Die(st.ToString());
  }
}

// etcd's Lease and KV services on one connection.
struct EtcdConnection {
  std::unique_ptr<etcdserverpb::Lease::Stub> lease;
  std::unique_ptr<etcdserverpb::KV::Stub> kv;
};

// `n` distinct connections to one etcd member (as weft::bench::LeaseStubs).
std::vector<EtcdConnection> EtcdConnections(const std::string& endpoint, int n = 8) {
  std::vector<EtcdConnection> out(n);
  for (int i = 0; i < n; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("weft.bench.etcd_channel", i);  // distinct args => distinct connections
    auto ch = grpc::CreateCustomChannel(endpoint, grpc::InsecureChannelCredentials(), args);
    out[i].lease = etcdserverpb::Lease::NewStub(ch);
    out[i].kv = etcdserverpb::KV::NewStub(ch);
  }
  return out;
}

// The bare acquisition as asynchronous calls: the lease grant, then from its
// answer the transaction CreateIfAbsent describes, in the same wire form as
// EtcdStore::Txn sends it.
LoadResult BareAsync(const std::string& endpoint, int clients, int existing, absl::Duration d) {
  const std::vector<EtcdConnection> conns = EtcdConnections(endpoint);
  const weft::bench::AsyncOp op = [&conns](int c, int64_t i, std::function<void(absl::Status)> done) {
    const EtcdConnection& conn = conns[c % conns.size()];
    etcdserverpb::LeaseGrantRequest grant;
    grant.set_ttl(24 * 3600);
    auto on_granted = [&conn, i, done](const grpc::Status& s, const etcdserverpb::LeaseGrantResponse& g) {
      if (!s.ok()) return done(weft::FromGrpcStatus(s));
      if (!g.error().empty()) return done(absl::InternalError(absl::StrCat("etcd: ", g.error())));
      CallAsync<etcdserverpb::TxnResponse>(
          [&conn](auto&&... a) { conn.kv->async()->Txn(std::forward<decltype(a)>(a)...); },
          storage::etcdwire::ToProto(CreateIfAbsent(KeyOf(i), LeaseJson(i), g.id())), kEtcdTimeout,
          [done](const grpc::Status& s, const etcdserverpb::TxnResponse& r) {
            if (!s.ok()) return done(weft::FromGrpcStatus(s));
            done(r.succeeded() ? absl::OkStatus() : absl::AbortedError("subnet taken"));
          });
    };
    CallAsync<etcdserverpb::LeaseGrantResponse>(
        [&conn](auto&&... a) { conn.lease->async()->LeaseGrant(std::forward<decltype(a)>(a)...); }, grant,
        kEtcdTimeout, on_granted);
  };
  return RunClosedLoopAsync(clients, d, op, existing);
}

LoadResult Bare(const std::string& endpoint, int clients, int existing, absl::Duration d, bool async_generator) {
  if (async_generator) return BareAsync(endpoint, clients, existing, d);
  std::vector<std::unique_ptr<storage::EtcdStore>> cs;
  for (int c = 0; c < clients; ++c) cs.push_back(Client(endpoint));
  return RunClosedLoop(clients, d, [&](int c, int64_t i) -> absl::Status {
    auto g = cs[c]->LeaseGrant(24 * 3600);
    if (!g.ok()) return g.status();
    auto r = cs[c]->Txn(CreateIfAbsent(KeyOf(i), LeaseJson(i), g->id));
    if (!r.ok()) return r.status();
    return r->succeeded ? absl::OkStatus() : absl::AbortedError("subnet taken");
  }, existing);
}

LoadResult Flannel(const std::string& endpoint, int clients, absl::Duration d) {
  const absl::Time stop = absl::Now() + d;
  std::vector<std::unique_ptr<storage::EtcdStore>> cs;
  for (int c = 0; c < clients; ++c) cs.push_back(Client(endpoint));
  absl::Mutex mu;
  absl::BitGen gen;
  return RunClosedLoop(clients, d, [&](int c, int64_t node) -> absl::Status {
    storage::EtcdStore& etcd = *cs[c];
    for (int attempt = 0; attempt < 10; ++attempt) {
      storage::RangeRequest list;
      list.key = absl::StrCat(kPrefix, "/subnets/");
      list.range_end = storage::PrefixEnd(list.key);
      auto leases = etcd.Range(list);
      if (!leases.ok()) return leases.status();
      std::vector<bool> taken(kPool, false);
      for (const storage::KeyValue& kv : leases->kvs) {
        // flannel reads each lease's expiry: one TimeToLive per key.
        if (kv.lease != 0) {
          if (absl::Now() > stop) return absl::DeadlineExceededError("run over");
          auto ttl = etcd.LeaseTimeToLive(kv.lease, false);
          if (!ttl.ok()) return ttl.status();
        }
        std::vector<std::string> parts = absl::StrSplit(kv.key.substr(list.key.size()), absl::ByAnyChar(".-"));
        int a = 0, b = 0;
        if (parts.size() >= 3 && absl::SimpleAtoi(parts[1], &a) && absl::SimpleAtoi(parts[2], &b)) {
          const int idx = (a << 8 | b) - 1;
          if (idx >= 0 && idx < kPool) taken[idx] = true;
        }
      }
      std::vector<int> free;
      for (int i = 0; i < kPool && free.size() < 100; ++i) {
        if (!taken[i]) free.push_back(i);
      }
      if (free.empty()) return absl::ResourceExhaustedError("pool full");
      int pick;
      {
        absl::MutexLock l(&mu);
        pick = free[absl::Uniform<size_t>(gen, 0, free.size())];
      }
      auto g = etcd.LeaseGrant(24 * 3600);
      if (!g.ok()) return g.status();
      auto r = etcd.Txn(CreateIfAbsent(KeyOf(pick), LeaseJson(node), g->id));
      if (!r.ok()) return r.status();
      if (r->succeeded) return absl::OkStatus();
      etcd.LeaseRevoke(g->id).IgnoreError();  // lost the race: flannel retries
    }
    return absl::AbortedError("lost 10 races");
  });
}

LoadResult Weft(const std::string& controller_bin, const std::string& endpoint, int clients, int existing,
                absl::Duration d, const std::string& dir, bool batching, bool async_generator) {
  const int port = weft::testing::FreePort();
  const int metrics_port = weft::testing::FreePort();
  weft::testing::Process p;
  p.Start({controller_bin, "--store", "etcd", "--etcd-endpoints", endpoint, "--listen",
           absl::StrCat("127.0.0.1:", port), "--metrics-listen", absl::StrCat("127.0.0.1:", metrics_port),
           "--log-level", "warn", absl::StrCat("--batch-lease-writes=", batching ? "true" : "false")},
          dir + "/controller.log");
  auto ch = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
  if (!ch->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(30))) {
    std::fprintf(stderr, "controller did not start (log %s/controller.log)\n", dir.c_str());
    p.Kill(SIGKILL);
    p.Wait();
    LoadResult none;
    none.failed = 1;
    return none;  // the caller still stops etcd
  }
  auto stubs = weft::bench::LeaseStubs(absl::StrCat("127.0.0.1:", port));
  const auto acquire = weft::bench::AcquireOp(stubs, kWeftTimeout);
  const auto acquire_async = weft::bench::AcquireAsyncOp(stubs, kWeftTimeout);
  LoadResult r = async_generator ? RunClosedLoopAsync(clients, d, acquire_async, existing)
                                 : RunClosedLoop(clients, d, acquire, existing);
  // How many acquisitions shared a store transaction, from the controller's metrics.
  const std::string page = weft::bench::ScrapeMetrics(metrics_port);
  const double txns = weft::bench::Sample(page, "weft_controller_lease_txn_requests_count");
  if (txns > 0) {
    std::fprintf(stderr, "weft: %.0f store transactions, %.1f lease writes each on average\n", txns,
                 weft::bench::Sample(page, "weft_controller_lease_txn_requests_sum") / txns);
  }
  if (r.failed > 0) {
    const std::string tail = absl::StrCat("tail -20 ", dir, "/controller.log >&2");
    if (std::system(tail.c_str()) != 0) std::fprintf(stderr, "no controller log\n");
  }
  p.Kill(SIGTERM);
  p.Wait();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  weft::TurnOffMutexDeadlockDetection();
  int clients = 64, seconds = 10, flannel_seconds = 60;
  bool async_generator = true;
  std::vector<int> existing_counts = {1000, 10000};
  std::vector<std::string> modes = {"bare", "flannel", "weft-unbatched", "weft"};
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string f = argv[i];
    if (f == "--modes") {
      modes = absl::StrSplit(argv[i + 1], ',');
      continue;
    }
    if (f == "--generator") {
      const std::string g = argv[i + 1];
      if (g != "async" && g != "threads") {
        std::fprintf(stderr, "--generator: async or threads, not %s\n", g.c_str());
        return 2;
      }
      async_generator = g == "async";
      continue;
    }
    if (f == "--existing") {
      existing_counts.clear();
      for (absl::string_view v : absl::StrSplit(argv[i + 1], ',')) {
        int n = 0;
        if (absl::SimpleAtoi(v, &n)) existing_counts.push_back(n);
      }
      continue;
    }
    int v = 0;
    if (!absl::SimpleAtoi(argv[i + 1], &v)) continue;
    if (f == "--clients") clients = v;
    if (f == "--seconds") seconds = v;
    if (f == "--flannel-seconds") flannel_seconds = v;
  }
  std::string controller = weft::testing::Runfile("controller/weft-controller");
  if (const char* c = std::getenv("WEFT_CONTROLLER_BIN")) controller = c;
  std::printf("etcd_acquire_bench: etcd 3.4, 1 member, loopback, fsync on; %d clients (%s), %ds per run (flannel %ds)\n",
              clients, async_generator ? "bare, weft: async calls in flight; flannel: a thread each" : "a thread each",
              seconds, flannel_seconds);
  std::printf("%-9s %-14s %10s %9s %9s %9s %8s %8s\n", "existing", "mode", "acq/s", "p50 ms", "p99 ms", "max ms",
              "errors", "x bare");
  for (int existing : existing_counts) {
    double bare_rate = 0;
    for (const std::string& mode : modes) {
      weft::TempDir tmp("weft-etcd-bench-", weft::TempDir::Root::kTmp);
      const std::string dir = tmp.path();
      std::string error;
      weft::testing::EtcdCluster::Options eo;
      eo.dir = dir + "/etcd";
      eo.log_dir = dir;
      g_etcd = weft::testing::EtcdCluster::Start(eo, &error);
      weft::testing::EtcdCluster* etcd = g_etcd.get();
      if (!etcd) {
        std::fprintf(stderr, "etcd: %s\n", error.c_str());
        tmp.Keep();  // with etcd's logs
        return 1;
      }
      const std::string endpoint = etcd->endpoint(0);
      Populate(*Client(endpoint), existing);
      const absl::Duration d = absl::Seconds(seconds);
      LoadResult r;
      const std::string& m = mode;
      if (m == "bare") {
        r = Bare(endpoint, clients, existing, d, async_generator);
        bare_rate = r.rate;
      } else if (m == "flannel") {
        const absl::Duration fd = absl::Seconds(flannel_seconds);
        r = Flannel(endpoint, clients, fd);
        r.failed = 0;  // calls cut off by the end of the run are not errors
      } else if (m == "weft" || m == "weft-unbatched") {
        r = Weft(controller, endpoint, clients, existing, d, dir, m == "weft", async_generator);
      } else {
        std::fprintf(stderr, "unknown mode %s\n", m.c_str());
        return 2;
      }
      std::printf("%-9d %-14s %10.1f %9.1f %9.1f %9.1f %8lld %8.2f\n", existing, mode.c_str(), r.rate, r.p50_ms, r.p99_ms,
                  r.max_ms, static_cast<long long>(r.failed), bare_rate > 0 ? r.rate / bare_rate : 0.0);
      std::fflush(stdout);
      g_etcd.reset();
    }
  }
  return 0;
}
