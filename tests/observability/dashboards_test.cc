// Static checks of the Grafana dashboards (no Prometheus needed): structure,
// the datasource variable, and honest PromQL against docs/metrics.md. The
// queries are run against a real Prometheus by prometheus_test.

#include "tests/observability/dashboards.h"

#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

namespace weft::testing {
namespace {

using json = nlohmann::json;

std::vector<CatalogueEntry> Catalogue() {
  auto c = ReadCatalogue(WorkspaceFile("docs/metrics.md"));
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : std::vector<CatalogueEntry>{};
}

TEST(DashboardsTest, EveryDashboardIsCleanAndHasQueries) {
  const std::vector<std::string> files = DashboardFiles();
  ASSERT_GE(files.size(), 3u) << "dashboards/*.json not in the runfiles";
  const auto catalogue = Catalogue();
  std::set<std::string> uids;
  for (const std::string& f : files) {
    absl::StatusOr<json> d = LoadDashboard(f);
    ASSERT_TRUE(d.ok()) << d.status();
    const std::string name = f.substr(f.rfind('/') + 1);
    EXPECT_TRUE(uids.insert((*d)["uid"].get<std::string>()).second) << name << ": uid used twice";
    const auto problems = LintDashboard(*d, name, catalogue);
    EXPECT_TRUE(problems.empty()) << absl::StrJoin(problems, "\n");
    EXPECT_GE(ExtractQueries(*d, name).size(), 10u) << name;
  }
}

TEST(DashboardsTest, SubstitutesGrafanaVariables) {
  EXPECT_EQ(SubstituteVariables(R"(rate(x_total{instance=~"$instance"}[$__rate_interval]))"),
            R"(rate(x_total{instance=~".+"}[1m]))");
  EXPECT_EQ(SubstituteVariables(R"(increase(x_total{a=~"${a:regex}",b=~"[[b]]"}[${__range}]) / $__range_s)"),
            R"(increase(x_total{a=~".+",b=~".+"}[1m]) / 60)");
  EXPECT_EQ(SubstituteVariables("rate(x_total[$__interval])", "5m"), "rate(x_total[5m])");
}

TEST(DashboardsTest, FindsMetricNames) {
  EXPECT_EQ(MetricNames(R"(histogram_quantile(0.99, sum by (method, le) (rate(a_bucket{method="Get"}[1m]))))"),
            std::vector<std::string>{"a_bucket"});
  EXPECT_EQ(MetricNames(R"(scalar(max(b)) - c{x="d e"} * on(instance) group_left(version) weft_build_info)"),
            (std::vector<std::string>{"b", "c", "weft_build_info"}));
  EXPECT_EQ(MetricNames("time() - process_start_time_seconds offset 5m > bool 1e3"),
            std::vector<std::string>{"process_start_time_seconds"});
}

json Panel(const std::string& expr) {
  const json ds = {{"type", "prometheus"}, {"uid", "${datasource}"}};
  return {{"id", 1},
          {"type", "timeseries"},
          {"title", "t"},
          {"datasource", ds},
          {"gridPos", {{"h", 1}, {"w", 1}, {"x", 0}, {"y", 0}}},
          {"targets", json::array({{{"refId", "A"}, {"datasource", ds}, {"expr", expr}}})}};
}

json Dashboard(const std::string& expr) {
  return {{"uid", "u"},
          {"title", "T"},
          {"schemaVersion", 39},
          {"templating",
           {{"list", json::array({{{"name", "datasource"}, {"type", "datasource"}, {"query", "prometheus"}}})}}},
          {"panels", json::array({Panel(expr)})}};
}

TEST(DashboardsTest, LintCatchesDishonestQueries) {
  const auto c = Catalogue();
  EXPECT_TRUE(LintDashboard(Dashboard("sum(rate(weft_controller_rpcs_total[5m]))"), "d", c).empty());
  EXPECT_TRUE(LintDashboard(Dashboard("histogram_quantile(0.9, sum by (le) "
                                      "(rate(weft_store_commit_duration_seconds_bucket[5m])))"),
                            "d", c)
                  .empty());
  // A counter without rate(), a gauge in rate(), buckets without le, an
  // undocumented metric, a bare histogram name.
  for (const char* bad : {"sum(weft_controller_rpcs_total)", "rate(weft_controller_leases[5m])",
                          "histogram_quantile(0.9, sum(rate(weft_store_commit_duration_seconds_bucket[5m])))",
                          "weft_controller_nonexistent", "weft_store_commit_duration_seconds"}) {
    EXPECT_FALSE(LintDashboard(Dashboard(bad), "d", c).empty()) << bad;
  }
  json no_var = Dashboard("weft_controller_leases");
  no_var["templating"]["list"] = json::array();
  EXPECT_FALSE(LintDashboard(no_var, "d", c).empty());
  json fixed_ds = Dashboard("weft_controller_leases");
  fixed_ds["panels"][0]["datasource"] = {{"type", "prometheus"}, {"uid", "P1809F7CD0C75ACF3"}};
  EXPECT_FALSE(LintDashboard(fixed_ds, "d", c).empty());
}

}  // namespace
}  // namespace weft::testing
