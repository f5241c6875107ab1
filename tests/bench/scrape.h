#pragma once
// Reading a controller's /metrics from a benchmark: the server's own view of
// latency, which a load generator sharing the same 2 cores cannot give (its
// threads wait for a CPU before they see an answer).

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace weft::bench {

// The exposition text of http://127.0.0.1:<port>/metrics (curl), "" on failure.
inline std::string ScrapeMetrics(int port) {
  std::string page;
  if (FILE* f = popen(absl::StrCat("curl -s http://127.0.0.1:", port, "/metrics").c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) page.append(buf, n);
    pclose(f);
  }
  return page;
}

// The value of the first sample whose name-and-labels text starts with `prefix`.
inline double Sample(const std::string& page, const std::string& prefix) {
  for (absl::string_view line : absl::StrSplit(page, '\n')) {
    if (!absl::StartsWith(line, prefix)) continue;
    double v = 0;
    if (absl::SimpleAtod(absl::StripAsciiWhitespace(line.substr(line.rfind(' ') + 1)), &v)) return v;
  }
  return 0;
}

// Cumulative bucket counts (le -> count) of histogram `name`, restricted to
// samples containing `labels` (e.g. method="AcquireLease"); +Inf as 1e300.
inline std::map<double, double> HistogramBuckets(const std::string& page, const std::string& name,
                                                 const std::string& labels) {
  std::map<double, double> buckets;
  const std::string bucket = name + "_bucket{";
  for (absl::string_view line : absl::StrSplit(page, '\n')) {
    if (!absl::StartsWith(line, bucket) || !absl::StrContains(line, labels)) continue;
    const size_t le = line.find("le=\"");
    if (le == absl::string_view::npos) continue;
    absl::string_view bound = line.substr(le + 4, line.find('"', le + 4) - le - 4);
    double b = 0, count = 0;
    if (bound == "+Inf") {
      b = 1e300;
    } else if (!absl::SimpleAtod(bound, &b)) {
      continue;
    }
    if (!absl::SimpleAtod(absl::StripAsciiWhitespace(line.substr(line.rfind(' ') + 1)), &count)) continue;
    buckets[b] = count;
  }
  return buckets;
}

// What was observed between two scrapes.
inline std::map<double, double> BucketDelta(const std::map<double, double>& before,
                                            const std::map<double, double>& after) {
  std::map<double, double> d;
  for (const auto& [le, n] : after) {
    auto it = before.find(le);
    d[le] = n - (it == before.end() ? 0 : it->second);
  }
  return d;
}

// Quantile q, interpolated linearly inside its bucket as Prometheus'
// histogram_quantile does; 0 when empty.
inline double Quantile(const std::map<double, double>& buckets, double q) {
  if (buckets.empty() || buckets.rbegin()->second <= 0) return 0;
  const double rank = q * buckets.rbegin()->second;
  double lower = 0, below = 0;
  for (const auto& [upper, cum] : buckets) {
    if (cum >= rank) {
      if (upper >= 1e300) return lower;
      return lower + (upper - lower) * (cum > below ? (rank - below) / (cum - below) : 0);
    }
    lower = upper;
    below = cum;
  }
  return lower;
}

}  // namespace weft::bench
