#pragma once
// Grafana dashboards read as data: every PromQL expression in them (panel
// targets, also inside collapsed rows, and query variables), Grafana's variables
// replaced so that Prometheus can run them, and a lint of what makes a panel
// honest (rate() over counters only, histogram_quantile over _bucket by le, the
// datasource a variable, metrics that docs/metrics.md lists).

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "tests/observability/catalogue.h"

namespace weft::testing {

struct DashboardQuery {
  std::string where;  // "controller-overview.json: panel 7 \"Lease operations\" target A"
  std::string expr;   // as written in the dashboard
};

absl::StatusOr<nlohmann::json> LoadDashboard(const std::string& path);
// Paths of dashboards/*.json in the runfiles (data = ["//dashboards"]), sorted.
std::vector<std::string> DashboardFiles();

// Every expression; a query variable's label_values(selector, label) yields
// `selector`, query_result(expr) yields `expr`.
std::vector<DashboardQuery> ExtractQueries(const nlohmann::json& dashboard, const std::string& file);

// Replaces Grafana's variables: $__rate_interval, $__interval, $__range (and
// their ${...} forms) by `range`, $__range_s by its seconds, and any other
// $name, ${name}, ${name:format} or [[name]] by ".+" (every dashboard variable
// is used as a regex matcher, instance=~"$instance", with "All" = .+).
std::string SubstituteVariables(const std::string& expr, const std::string& range = "1m");

// Metric names an expression refers to (identifiers that are not functions,
// keywords, label names or values), e.g. {"weft_controller_leases"}.
std::vector<std::string> MetricNames(const std::string& expr);

// Problems of one dashboard (empty when none), each naming where it is.
std::vector<std::string> LintDashboard(const nlohmann::json& dashboard, const std::string& file,
                                       const std::vector<CatalogueEntry>& catalogue);

// The catalogue entry that `series` belongs to (x_bucket/_sum/_count -> the
// histogram x), or nullptr.
const CatalogueEntry* FindEntry(const std::vector<CatalogueEntry>& catalogue, const std::string& series);

}  // namespace weft::testing
