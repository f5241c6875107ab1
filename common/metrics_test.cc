#include "common/metrics.h"

#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace weft::metrics {
namespace {

using ::testing::HasSubstr;

TEST(FormatValueTest, WritesWhatPrometheusParses) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(-0.0), "0");
  EXPECT_EQ(FormatValue(3), "3");
  EXPECT_EQ(FormatValue(-42), "-42");
  EXPECT_EQ(FormatValue(1700000000), "1700000000");
  EXPECT_EQ(FormatValue(123456789012345), "123456789012345");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(0.005), "0.005");
  EXPECT_EQ(FormatValue(2.5), "2.5");
  EXPECT_EQ(FormatValue(1.0 / 3), "0.3333333333333333");
  EXPECT_EQ(FormatValue(1e-9), "1e-09");
  EXPECT_EQ(FormatValue(1e20), "1e+20");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
  for (double v : {0.1, 1.0 / 3, 1e-9, 1e20, 123.456, 6.02214076e23}) {
    double back;
    ASSERT_TRUE(absl::SimpleAtod(FormatValue(v), &back));
    EXPECT_EQ(back, v);
  }
}

TEST(NamesTest, ValidatesMetricAndLabelNames) {
  for (const char* n : {"weft_leases_total", "a", "_x", "x:y", "X9_"}) EXPECT_TRUE(IsValidMetricName(n)) << n;
  for (const char* n : {"", "9x", "a-b", "a b", "a.b", "é"}) EXPECT_FALSE(IsValidMetricName(n)) << n;
  for (const char* n : {"method", "_x", "code2"}) EXPECT_TRUE(IsValidLabelName(n)) << n;
  for (const char* n : {"", "__name__", "__x", "a:b", "9x", "a-b"}) EXPECT_FALSE(IsValidLabelName(n)) << n;
}

TEST(RegistryTest, ExposesCountersAndGauges) {
  Registry r;
  Counter& acquired = r.AddCounter("weft_leases_acquired_total", "Leases granted.").Get();
  Family<Counter>& rpcs = r.AddCounter("weft_rpcs_total", "RPCs by method\\code,\nanswered.", {"method", "code"});
  Counter& ok = rpcs.WithLabels({"Acquire", "OK"});
  Counter& bad = rpcs.WithLabels({"Acquire", "INVALID_ARGUMENT"});
  Gauge& leases = r.AddGauge("weft_leases", "Leases held.").Get();
  r.AddGauge("weft_empty", "A labelled family with no children yet.", {"pool"});

  acquired.Inc();
  acquired.Inc(2);
  ok.Inc();
  EXPECT_EQ(&rpcs.WithLabels({"Acquire", "OK"}), &ok);  // created once
  rpcs.WithLabels({"Acquire", "OK"}).Inc(0.5);
  bad.Inc();
  leases.Set(10);
  leases.Dec();
  leases.Add(0.25);
  leases.Sub(2);

  EXPECT_EQ(r.Serialize(),
            "# HELP weft_leases_acquired_total Leases granted.\n"
            "# TYPE weft_leases_acquired_total counter\n"
            "weft_leases_acquired_total 3\n"
            "# HELP weft_rpcs_total RPCs by method\\\\code,\\nanswered.\n"
            "# TYPE weft_rpcs_total counter\n"
            "weft_rpcs_total{method=\"Acquire\",code=\"INVALID_ARGUMENT\"} 1\n"
            "weft_rpcs_total{method=\"Acquire\",code=\"OK\"} 1.5\n"
            "# HELP weft_leases Leases held.\n"
            "# TYPE weft_leases gauge\n"
            "weft_leases 7.25\n"
            "# HELP weft_empty A labelled family with no children yet.\n"
            "# TYPE weft_empty gauge\n");
}

TEST(RegistryTest, EscapesLabelValues) {
  Registry r;
  r.AddGauge("g", "h", {"v"}).WithLabels({"back\\slash \"quoted\"\nnext"}).Set(1);
  EXPECT_THAT(r.Serialize(), HasSubstr("g{v=\"back\\\\slash \\\"quoted\\\"\\nnext\"} 1\n"));
}

TEST(RegistryTest, ExposesHistograms) {
  Registry r;
  Histogram& h = r.AddHistogram("weft_rpc_duration_seconds", "RPC latency.", {0.005, 0.1, 1}).Get();
  Histogram& by_method =
      r.AddHistogram("weft_store_txn_seconds", "Txn latency.", {0.5}, {"op"}).WithLabels({"put"});
  for (double v : {0.00390625, 0.00390625, 0.0625, 1.0, 2.0}) h.Observe(v);  // 1 is in le="1"
  by_method.Observe(0.25);
  EXPECT_EQ(r.Serialize(),
            "# HELP weft_rpc_duration_seconds RPC latency.\n"
            "# TYPE weft_rpc_duration_seconds histogram\n"
            "weft_rpc_duration_seconds_bucket{le=\"0.005\"} 2\n"
            "weft_rpc_duration_seconds_bucket{le=\"0.1\"} 3\n"
            "weft_rpc_duration_seconds_bucket{le=\"1\"} 4\n"
            "weft_rpc_duration_seconds_bucket{le=\"+Inf\"} 5\n"
            "weft_rpc_duration_seconds_sum 3.0703125\n"
            "weft_rpc_duration_seconds_count 5\n"
            "# HELP weft_store_txn_seconds Txn latency.\n"
            "# TYPE weft_store_txn_seconds histogram\n"
            "weft_store_txn_seconds_bucket{op=\"put\",le=\"0.5\"} 1\n"
            "weft_store_txn_seconds_bucket{op=\"put\",le=\"+Inf\"} 1\n"
            "weft_store_txn_seconds_sum{op=\"put\"} 0.25\n"
            "weft_store_txn_seconds_count{op=\"put\"} 1\n");
}

TEST(HistogramTest, BucketsAndSnapshot) {
  Histogram h({1, 2});
  h.Observe(std::nan(""));
  h.Observe(-5);
  h.Observe(1);
  h.Observe(std::numeric_limits<double>::infinity());
  Histogram::Snapshot s = h.Read();
  EXPECT_EQ(s.cumulative_counts, (std::vector<uint64_t>{2, 2, 4}));
  EXPECT_EQ(s.count, 4u);
  EXPECT_TRUE(std::isnan(s.sum));
}

TEST(BucketsTest, Helpers) {
  EXPECT_EQ(DefaultBuckets().size(), 11u);
  EXPECT_THAT(ExponentialBuckets(0.001, 10, 4),
              ::testing::ElementsAre(::testing::DoubleEq(0.001), ::testing::DoubleEq(0.01),
                                     ::testing::DoubleEq(0.1), ::testing::DoubleEq(1)));
  EXPECT_EQ(ExponentialBuckets(1, 2, 4), (std::vector<double>{1, 2, 4, 8}));
  EXPECT_EQ(LinearBuckets(0, 5, 3), (std::vector<double>{0, 5, 10}));
}

TEST(RegistryTest, CallbacksRunAtScrapeTime) {
  Registry r;
  int free_subnets = 250;
  r.AddCallbackGauge("weft_pool_free_subnets", "Free subnets.", [&] { return free_subnets; });
  r.AddCallbackCounter("weft_watch_events_total", "Events.", [] { return 12; });
  r.AddCallbackFamily(MetricType::kGauge, "weft_pool_subnets", "Subnets by state.", {"state"}, [&] {
    return std::vector<Sample>{{{"free"}, double(free_subnets)}, {{"leased"}, 6}};
  });
  free_subnets = 249;
  EXPECT_EQ(r.Serialize(),
            "# HELP weft_pool_free_subnets Free subnets.\n"
            "# TYPE weft_pool_free_subnets gauge\n"
            "weft_pool_free_subnets 249\n"
            "# HELP weft_watch_events_total Events.\n"
            "# TYPE weft_watch_events_total counter\n"
            "weft_watch_events_total 12\n"
            "# HELP weft_pool_subnets Subnets by state.\n"
            "# TYPE weft_pool_subnets gauge\n"
            "weft_pool_subnets{state=\"free\"} 249\n"
            "weft_pool_subnets{state=\"leased\"} 6\n");
}

TEST(RegistryTest, BuildInfo) {
  Registry r;
  AddBuildInfo(r, "0.1.0", "abc123");
  EXPECT_THAT(r.Serialize(), HasSubstr("\nweft_build_info{version=\"0.1.0\",revision=\"abc123\"} 1\n"));
}

double SampleValue(const std::string& text, absl::string_view name) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
    double v;
    if (parts.size() == 2 && parts[0] == name && absl::SimpleAtod(parts[1], &v)) return v;
  }
  ADD_FAILURE() << "no sample " << name << " in\n" << text;
  return std::nan("");
}

TEST(ProcessMetricsTest, ReadsProc) {
  Registry r;
  AddProcessMetrics(r);
  // Burn a little CPU so the counter is not zero.
  volatile double x = 0;
  for (int i = 0; i < 20000000; ++i) x = x + std::sqrt(i);
  const std::string text = r.Serialize();
  EXPECT_THAT(text, HasSubstr("# TYPE process_cpu_seconds_total counter\n"));
  EXPECT_GT(SampleValue(text, "process_cpu_seconds_total"), 0);
  EXPECT_GT(SampleValue(text, "process_resident_memory_bytes"), 1 << 20);
  EXPECT_GT(SampleValue(text, "process_virtual_memory_bytes"), SampleValue(text, "process_resident_memory_bytes"));
  EXPECT_GE(SampleValue(text, "process_open_fds"), 3);
  EXPECT_GE(SampleValue(text, "process_max_fds"), SampleValue(text, "process_open_fds"));
  const double start = SampleValue(text, "process_start_time_seconds");
  const double now = absl::ToUnixSeconds(absl::Now());
  EXPECT_LE(start, now + 1);
  EXPECT_GT(start, now - 600);
}

TEST(RegistryTest, ConcurrentUpdatesAreNotLost) {
  Registry r;
  Counter& c = r.AddCounter("c_total", "c").Get();
  Gauge& g = r.AddGauge("g", "g").Get();
  Histogram& h = r.AddHistogram("h", "h", {1}).Get();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100000; ++i) {
        c.Inc();
        g.Inc();
        h.Observe(i % 2);
      }
    });
  }
  std::thread scraper([&] {
    for (int i = 0; i < 50; ++i) r.Serialize();
  });
  for (auto& t : threads) t.join();
  scraper.join();
  EXPECT_EQ(c.Value(), 400000);
  EXPECT_EQ(g.Value(), 400000);
  EXPECT_EQ(h.Read().count, 400000u);
  EXPECT_EQ(h.Read().sum, 200000);
}

using RegistryDeathTest = ::testing::Test;

TEST_F(RegistryDeathTest, ProgrammerErrorsAbortLoudly) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Registry r;
  r.AddCounter("weft_x_total", "x");
  r.AddGauge("weft_h_count", "taken");
  EXPECT_DEATH(r.AddGauge("weft-bad", "x"), "invalid metric name \"weft-bad\"");
  EXPECT_DEATH(r.AddGauge("9lives", "x"), "invalid metric name");
  EXPECT_DEATH(r.AddCounter("weft_x_total", "again"), "series name weft_x_total is already used");
  EXPECT_DEATH(r.AddGauge("weft_x_total", "as gauge"), "already used");
  EXPECT_DEATH(r.AddHistogram("weft_h", "collides", {1}), "weft_h_count is already used by metric weft_h_count");
  EXPECT_DEATH(r.AddCounter("weft_requests", "x"), "counter weft_requests must be named \\*_total");
  EXPECT_DEATH(r.AddGauge("g", "x", {"a-b"}), "metric g: invalid label name \"a-b\"");
  EXPECT_DEATH(r.AddGauge("g", "x", {"__name__"}), "invalid label name");
  EXPECT_DEATH(r.AddGauge("g", "x", {"a", "a"}), "label a given twice");
  EXPECT_DEATH(r.AddHistogram("hh", "x", {1}, {"le"}), "label name \"le\" is reserved");
  EXPECT_DEATH(r.AddHistogram("hh", "x", {1, 1}), "strictly increasing");
  EXPECT_DEATH(r.AddHistogram("hh", "x", {2, 1}), "strictly increasing");
  EXPECT_DEATH(r.AddHistogram("hh", "x", {1, std::numeric_limits<double>::infinity()}), "finite");
  Family<Gauge>& f = r.AddGauge("weft_labelled", "x", {"a", "b"});
  EXPECT_DEATH(f.WithLabels({"only-one"}), "has labels \\{a,b\\} but got 1 label values");
  EXPECT_DEATH(f.Get(), "but got 0 label values");
  EXPECT_DEATH(r.AddCounter("weft_y_total", "y").Get().Inc(-1), "counters only go up");
  EXPECT_DEATH(ExponentialBuckets(0, 2, 3), "want start > 0");
  r.AddCallbackFamily(MetricType::kGauge, "weft_cb", "x", {"a"}, [] { return std::vector<Sample>{{{}, 1}}; });
  EXPECT_DEATH(r.Serialize(), "weft_cb has labels \\{a\\} but got 0");
}

// The exposition must satisfy Prometheus' own checker (and its lint rules).
TEST(PromtoolTest, CheckMetricsAcceptsTheOutput) {
  const char* promtool = "/usr/bin/promtool";
  ASSERT_EQ(access(promtool, X_OK), 0) << promtool << " missing: install Debian's prometheus (tools/setup.sh)";
  Registry r;
  AddProcessMetrics(r);
  AddBuildInfo(r, "0.1.0", "abc123");
  r.AddCounter("weft_rpcs_total", "RPCs by method and code.", {"method", "code"})
      .WithLabels({"Acquire", "OK"})
      .Inc(3);
  r.AddGauge("weft_label_escapes", "Label value escaping.", {"v"}).WithLabels({"a\\b \"c\"\nd"}).Set(-1.5);
  r.AddGauge("weft_nan_value", "NaN and infinities.", {"kind"}).WithLabels({"nan"}).Set(std::nan(""));
  Histogram& h = r.AddHistogram("weft_rpc_duration_seconds", "RPC latency.", DefaultBuckets(), {"method"})
                     .WithLabels({"Acquire"});
  h.Observe(0.003);
  h.Observe(42);
  r.AddCallbackGauge("weft_pool_free_subnets", "Free subnets\nin the pool \\ escaped.", [] { return 254; });

  const std::string path = std::string(getenv("TEST_TMPDIR")) + "/metrics.txt";
  {
    std::ofstream f(path);
    f << r.Serialize();
  }
  const std::string cmd = std::string(promtool) + " check metrics < " + path + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "promtool said:\n" << out;
  EXPECT_EQ(out, "") << "promtool said:\n" << out;
}

}  // namespace
}  // namespace weft::metrics
