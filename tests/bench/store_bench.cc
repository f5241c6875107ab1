// Durable subnet allocations straight on the RocksDB store: N threads each run
// Txn(If Version(key) == 0 Then Put(key, lease JSON, lease)) on fresh keys, as the
// controller does for an allocation, starting from 10,000 existing keys, with one
// watcher on the prefix (the controller's lease manager). One run measures
// sync=true (fsync per group commit) and then sync=false, the upper bound. Also
// prints how long a Range of the whole prefix takes.
//
//   bazel run -c opt //tests/bench:store_bench -- [--threads 64] [--existing 10000]
//       [--seconds 5] [--watchers 1] [--dir /tmp]

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/mutex_mode.h"
#include "storage/rocksdb/rocksdb_store.h"

namespace {

using weft::storage::Compare;
using weft::storage::RequestOp;
using weft::storage::RocksDbStore;
using weft::storage::TxnRequest;

struct Flags {
  int threads = 64;
  int existing = 10000;
  double seconds = 5;
  int watchers = 1;
  std::string dir = "/tmp";
};

struct Result {
  int64_t ok = 0;
  double rate = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  double mean_group = 0;
  double prefix_range_ms = 0;
  int64_t watched_events = 0;
  RocksDbStore::CommitStats stats;
};

// Flannel's key and value shapes: /coreos.com/network/subnets/10.x.y.0-24.
constexpr char kSubnets[] = "/coreos.com/network/subnets/";

std::string SubnetKey(int64_t i) {
  return absl::StrFormat("%s10.%d.%d.%d-24", kSubnets, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
}

std::string LeaseValue(int64_t i) {
  return absl::StrFormat(
      R"({"PublicIP":"100.64.%d.%d","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:%02x:%02x:%02x"}})",
      (i >> 8) & 0xff, i & 0xff, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
}

TxnRequest Allocation(int64_t i, int64_t lease) {
  TxnRequest txn;
  Compare c;
  c.key = SubnetKey(i);
  c.target = Compare::Target::kVersion;
  c.result = Compare::Result::kEqual;
  c.operand = 0;
  txn.compares.push_back(c);
  RequestOp op;
  op.type = RequestOp::Type::kPut;
  op.put.key = c.key;
  op.put.value = LeaseValue(i);
  op.put.lease = lease;
  txn.success.push_back(std::move(op));
  return txn;
}

void Die(const std::string& what, const absl::Status& s) {
  std::fprintf(stderr, "store_bench: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

Result Run(const Flags& flags, bool sync) {
  std::string tmpl = flags.dir + "/weft-store-bench-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) Die("mkdtemp", absl::InternalError(tmpl));
  RocksDbStore::Options options;
  options.path = tmpl;
  options.sync = sync;
  absl::StatusOr<std::unique_ptr<RocksDbStore>> opened = RocksDbStore::Open(options);
  if (!opened.ok()) Die("open", opened.status());
  RocksDbStore& store = **opened;

  // One 24 h lease per thread, as every agent holds one.
  std::vector<int64_t> leases(flags.threads);
  for (int64_t& id : leases) {
    absl::StatusOr<weft::storage::LeaseGrantResponse> g = store.LeaseGrant(24 * 3600);
    if (!g.ok()) Die("grant", g.status());
    id = g->id;
  }
  for (int base = 0; base < flags.existing; base += 500) {
    TxnRequest txn;
    for (int i = base; i < std::min(base + 500, flags.existing); ++i) {
      TxnRequest one = Allocation(i, leases[i % flags.threads]);
      txn.success.push_back(std::move(one.success[0]));
    }
    absl::StatusOr<weft::storage::TxnResponse> r = store.Txn(txn);
    if (!r.ok()) Die("preload", r.status());
  }
  Result res;
  {
    weft::storage::RangeRequest all;
    all.key = kSubnets;
    all.range_end = weft::storage::PrefixEnd(all.key);
    std::vector<double> ms;
    for (int i = 0; i < 9; ++i) {
      const absl::Time t0 = absl::Now();
      absl::StatusOr<weft::storage::RangeResponse> r = store.Range(all);
      if (!r.ok()) Die("range", r.status());
      ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
    }
    std::sort(ms.begin(), ms.end());
    res.prefix_range_ms = ms[ms.size() / 2];
  }
  std::atomic<int64_t> watched{0};
  std::vector<std::unique_ptr<weft::storage::WatchHandle>> watches;
  for (int i = 0; i < flags.watchers; ++i) {
    weft::storage::WatchRequest wr;
    wr.key = kSubnets;
    wr.range_end = weft::storage::PrefixEnd(wr.key);
    absl::StatusOr<std::unique_ptr<weft::storage::WatchHandle>> w =
        store.Watch(wr, [&watched](const weft::storage::WatchBatch& b) { watched += b.events.size(); });
    if (!w.ok()) Die("watch", w.status());
    watches.push_back(*std::move(w));
  }
  const RocksDbStore::CommitStats before = store.commit_stats();

  std::vector<std::vector<double>> latencies(flags.threads);
  std::atomic<int64_t> lost{0};
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + absl::Seconds(flags.seconds);
  std::vector<std::thread> threads;
  for (int t = 0; t < flags.threads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<double>& mine = latencies[t];
      mine.reserve(100000);
      for (int64_t n = 0;; ++n) {
        const absl::Time op_start = absl::Now();
        if (op_start >= deadline) break;
        const int64_t subnet = flags.existing + n * flags.threads + t;  // fresh, unique
        absl::StatusOr<weft::storage::TxnResponse> r = store.Txn(Allocation(subnet, leases[t]));
        if (!r.ok()) Die("txn", r.status());
        if (!r->succeeded) ++lost;
        mine.push_back(absl::ToDoubleMilliseconds(absl::Now() - op_start));
      }
    });
  }
  for (std::thread& th : threads) th.join();
  const double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
  if (lost > 0) Die("txn", absl::InternalError(absl::StrCat(lost.load(), " fresh keys existed")));

  std::vector<double> all;
  for (const auto& v : latencies) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  res.ok = static_cast<int64_t>(all.size());
  res.rate = res.ok / elapsed;
  auto pct = [&](double p) { return all.empty() ? 0 : all[static_cast<size_t>(p * (all.size() - 1))]; };
  res.p50_ms = pct(0.50);
  res.p99_ms = pct(0.99);
  res.max_ms = all.empty() ? 0 : all.back();
  res.stats = store.commit_stats();
  const uint64_t groups = res.stats.group_commits - before.group_commits;
  res.mean_group = groups == 0 ? 0 : static_cast<double>(res.stats.writes - before.writes) / groups;
  watches.clear();
  res.watched_events = watched.load();
  opened->reset();
  std::filesystem::remove_all(tmpl);
  return res;
}

void Print(const char* label, const Result& r) {
  std::printf("%-12s %10.0f %9.2f %9.2f %9.2f %10lld %8.1f %9llu %10lld %9.2f\n", label, r.rate, r.p50_ms,
              r.p99_ms, r.max_ms, static_cast<long long>(r.ok), r.mean_group,
              static_cast<unsigned long long>(r.stats.max_group_size),
              static_cast<long long>(r.watched_events), r.prefix_range_ms);
}

bool ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string name = argv[i];
    const char* value = argv[i + 1];
    bool ok = true;
    if (name == "--threads") {
      ok = absl::SimpleAtoi(value, &f->threads) && f->threads > 0;
    } else if (name == "--existing") {
      ok = absl::SimpleAtoi(value, &f->existing) && f->existing >= 0;
    } else if (name == "--seconds") {
      ok = absl::SimpleAtod(value, &f->seconds) && f->seconds > 0;
    } else if (name == "--watchers") {
      ok = absl::SimpleAtoi(value, &f->watchers) && f->watchers >= 0;
    } else if (name == "--dir") {
      f->dir = value;
    } else {
      ok = false;
    }
    if (!ok) return false;
  }
  return argc % 2 == 1;
}

}  // namespace

int main(int argc, char** argv) {
  weft::TurnOffMutexDeadlockDetection();
  Flags flags;
  if (!ParseFlags(argc, argv, &flags)) {
    std::fprintf(stderr,
                 "usage: store_bench [--threads N] [--existing N] [--seconds S] [--watchers N] [--dir DIR]\n");
    return 2;
  }
  std::printf(
      "RocksDbStore: Txn(If Version==0 Then Put) x %d threads, %d existing keys, %d watcher(s), %.0f s "
      "each, dir %s\n",
      flags.threads, flags.existing, flags.watchers, flags.seconds, flags.dir.c_str());
  std::printf("%-12s %10s %9s %9s %9s %10s %8s %9s %10s %9s\n", "mode", "txn/s", "p50 ms", "p99 ms", "max ms",
              "txns", "group", "max grp", "events", "range ms");
  Print("sync=true", Run(flags, true));
  Print("sync=false", Run(flags, false));
  return 0;
}
