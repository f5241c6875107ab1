#pragma once
// A closed-loop load generator for the benchmarks: `clients` threads each call
// `op` back to back until the deadline, and the figures of the calls that
// succeeded come back (rate over the wall time, latency percentiles).

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"

namespace weft::bench {

struct LoadResult {
  double rate = 0;  // successful calls per second
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  int64_t ok = 0, failed = 0;
};

// `op(client, i)`: i counts calls across all clients from `first`. `limit` > 0
// stops after that many calls instead of at the deadline (pre-population).
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
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  std::vector<double> all;
  for (auto& l : lats) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  LoadResult r;
  r.ok = static_cast<int64_t>(all.size());
  r.failed = failed.load();
  r.rate = secs > 0 ? all.size() / secs : 0;
  if (!all.empty()) {
    r.p50_ms = all[all.size() / 2];
    r.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
    r.max_ms = all.back();
  }
  return r;
}

}  // namespace weft::bench
