#pragma once
// A closed-loop load generator for the benchmarks: `clients` callers each call
// `op` back to back until the deadline, and the figures of the calls that
// succeeded come back (rate over the wall time, latency percentiles).
//
// RunClosedLoop gives every caller a thread of its own (blocking calls);
// RunClosedLoopAsync keeps `clients` asynchronous calls in flight from
// gRPC's callback threads, so that on a 2-core machine the generator does not
// take the cores from the server it measures with 64 runnable threads.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace weft::bench {

struct LoadResult {
  double rate = 0;  // successful calls per second
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  int64_t ok = 0, failed = 0;
};

// `op(client, i)`: i counts calls across all clients from `first`. `limit` > 0
// stops after that many calls instead of at the deadline (pre-population).
// p50, p99 and max of latencies `ms` (sorted here), and how many (ok).
inline LoadResult Percentiles(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  LoadResult r;
  r.ok = static_cast<int64_t>(ms.size());
  if (!ms.empty()) {
    r.p50_ms = ms[ms.size() / 2];
    r.p99_ms = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
    r.max_ms = ms.back();
  }
  return r;
}

namespace internal {

inline LoadResult Summarize(std::vector<std::vector<double>>& lats, int64_t failed, absl::Time start) {
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  std::vector<double> all;
  for (auto& l : lats) all.insert(all.end(), l.begin(), l.end());
  LoadResult r = Percentiles(std::move(all));
  r.failed = failed;
  r.rate = secs > 0 ? r.ok / secs : 0;
  return r;
}

}  // namespace internal

inline LoadResult RunClosedLoop(int clients, absl::Duration duration,
                                const std::function<absl::Status(int client, int64_t i)>& op, int64_t first = 0,
                                int64_t limit = 0) {
  std::atomic<int64_t> next{first};
  std::atomic<int64_t> failed{0};
  std::vector<std::vector<double>> lats(clients);
  const absl::Time start = absl::Now();
  const absl::Time deadline = limit > 0 ? absl::InfiniteFuture() : start + duration;
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      while (absl::Now() < deadline) {
        const int64_t i = next.fetch_add(1);
        if (limit > 0 && i >= first + limit) break;
        const absl::Time t0 = absl::Now();
        absl::Status s = op(c, i);
        if (!s.ok()) {
          if (failed.fetch_add(1) == 0) std::fprintf(stderr, "first error: %s\n", s.ToString().c_str());
          continue;
        }
        lats[c].push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
      }
    });
  }
  for (auto& t : threads) t.join();
  return internal::Summarize(lats, failed.load(), start);
}

// `start(client, i, done)` begins call i of `client` and must call `done` with
// its result exactly once, on any thread, never inline. A client's calls are
// sequential: the next starts from the previous one's `done`.
using AsyncOp = std::function<void(int client, int64_t i, std::function<void(absl::Status)> done)>;

namespace internal {

struct AsyncLoop {
  const AsyncOp* op;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> failed{0};
  std::vector<std::vector<double>> lats;
  absl::Time deadline;
  int64_t end = INT64_MAX;
  absl::Mutex mu;
  int running ABSL_GUARDED_BY(mu) = 0;
};

// One client's chain: issue a call, and from its answer the next. Every answer
// holds the loop's state, so the last one may outlive the caller's wait.
inline void Issue(const std::shared_ptr<AsyncLoop>& st, int c) {
  const int64_t i = st->next.fetch_add(1);
  if (absl::Now() >= st->deadline || i >= st->end) {
    absl::MutexLock l(&st->mu);
    --st->running;
    return;
  }
  const absl::Time t0 = absl::Now();
  (*st->op)(c, i, [st, c, t0](absl::Status s) {
    if (s.ok()) {
      st->lats[c].push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
    } else if (st->failed.fetch_add(1) == 0) {
      std::fprintf(stderr, "first error: %s\n", s.ToString().c_str());
    }
    Issue(st, c);
  });
}

}  // namespace internal

inline LoadResult RunClosedLoopAsync(int clients, absl::Duration duration, const AsyncOp& op, int64_t first = 0,
                                     int64_t limit = 0) {
  auto st = std::make_shared<internal::AsyncLoop>();
  st->op = &op;
  st->next = first;
  st->lats.resize(clients);
  const absl::Time start = absl::Now();
  st->deadline = limit > 0 ? absl::InfiniteFuture() : start + duration;
  if (limit > 0) st->end = first + limit;
  {
    absl::MutexLock l(&st->mu);
    st->running = clients;
  }
  for (int c = 0; c < clients; ++c) internal::Issue(st, c);
  absl::MutexLock l(&st->mu);
  auto all_done = [&st]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(st->mu) { return st->running == 0; };
  st->mu.Await(absl::Condition(&all_done));
  return internal::Summarize(st->lats, st->failed.load(), start);
}

}  // namespace weft::bench
