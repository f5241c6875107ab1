#include "tests/observability/dashboards.h"

#include <dirent.h>

#include <algorithm>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace weft::testing {
namespace {

using json = nlohmann::json;

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string PanelName(const std::string& file, const json& panel) {
  return absl::StrCat(file, ": panel ", panel.value("id", -1), " \"", Str(panel, "title"), "\"");
}

// Calls fn(panel) for every panel, rows' nested panels included.
template <typename Fn>
void ForEachPanel(const json& panels, Fn fn) {
  if (!panels.is_array()) return;
  for (const json& p : panels) {
    fn(p);
    if (p.contains("panels")) ForEachPanel(p["panels"], fn);
  }
}

// The PromQL of a query variable, or "" for one that has none (label_values(label)).
std::string VariablePromql(const json& var) {
  std::string q = var.contains("query") && var["query"].is_object() ? Str(var["query"], "query") : Str(var, "query");
  q = std::string(absl::StripAsciiWhitespace(q));
  absl::string_view v = q;
  if (absl::ConsumePrefix(&v, "query_result(") && absl::ConsumeSuffix(&v, ")")) return std::string(v);
  if (absl::ConsumePrefix(&v, "label_values(") && absl::ConsumeSuffix(&v, ")")) {
    // label_values(selector, label): the selector is everything before the last comma.
    const size_t comma = v.rfind(',');
    if (comma == absl::string_view::npos) return "";
    return std::string(absl::StripAsciiWhitespace(v.substr(0, comma)));
  }
  return "";
}

bool IsIdentStart(char c) { return absl::ascii_isalpha(c) || c == '_' || c == ':'; }
bool IsIdent(char c) { return absl::ascii_isalnum(c) || c == '_' || c == ':'; }

const std::set<std::string>& Keywords() {
  static const auto* k = new std::set<std::string>{"by",   "without", "on",     "ignoring", "group_left",
                                                   "group_right", "bool", "and", "or", "unless",
                                                   "offset", "inf",  "nan", "atan2",
                                                   // aggregations, which may be followed by "by (...)" before "("
                                                   "sum", "min", "max", "avg", "count", "stddev", "stdvar",
                                                   "topk", "bottomk", "quantile", "count_values", "group"};
  return *k;
}

std::string RegexEscape(const std::string& s) {
  static const std::regex special(R"([.^$|()\[\]{}*+?\\])");
  return std::regex_replace(s, special, R"(\$&)");
}

std::ptrdiff_t Count(const std::string& text, const std::string& pattern) {
  const std::regex re(pattern);
  return std::distance(std::sregex_iterator(text.begin(), text.end(), re), std::sregex_iterator());
}

}  // namespace

absl::StatusOr<json> LoadDashboard(const std::string& path) {
  std::ifstream f(path);
  if (!f) return absl::NotFoundError("cannot read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  json j = json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return absl::InvalidArgumentError(path + ": not a JSON object");
  return j;
}

std::vector<std::string> DashboardFiles() {
  const std::string dir = WorkspaceFile("dashboards");
  std::vector<std::string> out;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (absl::EndsWith(e->d_name, ".json")) out.push_back(dir + "/" + e->d_name);
    }
    closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<DashboardQuery> ExtractQueries(const json& dashboard, const std::string& file) {
  std::vector<DashboardQuery> out;
  ForEachPanel(dashboard.value("panels", json::array()), [&](const json& p) {
    if (!p.contains("targets") || !p["targets"].is_array()) return;
    for (const json& t : p["targets"]) {
      const std::string expr = Str(t, "expr");
      if (!expr.empty()) out.push_back({absl::StrCat(PanelName(file, p), " target ", Str(t, "refId")), expr});
    }
  });
  if (dashboard.contains("templating") && dashboard["templating"].contains("list")) {
    for (const json& v : dashboard["templating"]["list"]) {
      if (Str(v, "type") != "query") continue;
      const std::string expr = VariablePromql(v);
      if (!expr.empty()) out.push_back({absl::StrCat(file, ": variable $", Str(v, "name")), expr});
    }
  }
  return out;
}

std::string SubstituteVariables(const std::string& expr, const std::string& range) {
  std::string s = expr;
  const std::string seconds = [&] {
    // "1m" -> "60"; only m, s and h are used in these tests.
    const int n = std::stoi(range);
    const char unit = range.back();
    return std::to_string(unit == 'h' ? n * 3600 : unit == 'm' ? n * 60 : n);
  }();
  const std::vector<std::pair<std::string, std::string>> builtins = {
      {R"(\$\{__range_s\}|\$__range_s\b)", seconds},
      {R"(\$\{__range_ms\}|\$__range_ms\b)", seconds + "000"},
      {R"(\$\{__(rate_interval|interval|range)\}|\$__(rate_interval|interval|range)\b)", range},
      {R"(\$\{[A-Za-z0-9_]+(:[^}]*)?\})", ".+"},
      {R"(\[\[[A-Za-z0-9_]+(:[^\]]*)?\]\])", ".+"},
      {R"(\$[A-Za-z_][A-Za-z0-9_]*)", ".+"},
  };
  for (const auto& [pattern, value] : builtins) s = std::regex_replace(s, std::regex(pattern), value);
  return s;
}

std::vector<std::string> MetricNames(const std::string& expr) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  size_t i = 0;
  const size_t n = expr.size();
  auto skip_to = [&](char close) {
    while (i < n && expr[i] != close) {
      if (expr[i] == '"' || expr[i] == '\'') {
        const char q = expr[i++];
        while (i < n && expr[i] != q) i += expr[i] == '\\' ? 2 : 1;
      }
      ++i;
    }
    ++i;
  };
  bool label_list_next = false;  // after by/without/on/ignoring/group_*: a (label, ...) list follows
  while (i < n) {
    const char c = expr[i];
    if (c == '"' || c == '\'' || c == '`') {
      const char q = c;
      ++i;
      while (i < n && expr[i] != q) i += expr[i] == '\\' ? 2 : 1;
      ++i;
    } else if (c == '{') {
      skip_to('}');
    } else if (c == '[') {
      skip_to(']');
    } else if (c == '(' && label_list_next) {
      label_list_next = false;
      skip_to(')');
    } else if (absl::ascii_isdigit(c) || (c == '.' && i + 1 < n && absl::ascii_isdigit(expr[i + 1]))) {
      while (i < n && (IsIdent(expr[i]) || expr[i] == '.')) ++i;  // 0.99, 1e3, 5m
    } else if (IsIdentStart(c)) {
      const size_t start = i;
      while (i < n && IsIdent(expr[i])) ++i;
      const std::string word = expr.substr(start, i - start);
      size_t j = i;
      while (j < n && absl::ascii_isspace(expr[j])) ++j;
      const bool call = j < n && expr[j] == '(';
      if (word == "by" || word == "without" || word == "on" || word == "ignoring" || word == "group_left" ||
          word == "group_right") {
        label_list_next = true;
      } else if (!call && !Keywords().count(absl::AsciiStrToLower(word)) && seen.insert(word).second) {
        out.push_back(word);
      }
    } else {
      if (!absl::ascii_isspace(c)) label_list_next = false;
      ++i;
    }
  }
  return out;
}

const CatalogueEntry* FindEntry(const std::vector<CatalogueEntry>& catalogue, const std::string& series) {
  for (const CatalogueEntry& e : catalogue) {
    if (e.name == series) return &e;
    if (e.type == "histogram") {
      for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        if (series == e.name + suffix) return &e;
      }
    }
  }
  return nullptr;
}

std::vector<std::string> LintDashboard(const json& d, const std::string& file,
                                       const std::vector<CatalogueEntry>& catalogue) {
  std::vector<std::string> problems;
  auto problem = [&](const std::string& where, const std::string& what) {
    problems.push_back(absl::StrCat(where, ": ", what));
  };
  const int schema = d.value("schemaVersion", 0);
  if (schema < 36 || schema > 41) problem(file, absl::StrCat("schemaVersion ", schema, ", want 36..41"));
  if (Str(d, "uid").empty()) problem(file, "no uid");
  if (Str(d, "title").empty()) problem(file, "no title");

  const json ds = {{"type", "prometheus"}, {"uid", "${datasource}"}};
  bool has_ds_var = false;
  if (d.contains("templating") && d["templating"].contains("list")) {
    for (const json& v : d["templating"]["list"]) {
      if (Str(v, "name") == "datasource" && Str(v, "type") == "datasource" && Str(v, "query") == "prometheus") {
        has_ds_var = true;
      }
      if (Str(v, "type") == "query" && v.value("datasource", json()) != ds) {
        problem(absl::StrCat(file, ": variable $", Str(v, "name")), "datasource must be " + ds.dump());
      }
    }
  }
  if (!has_ds_var) problem(file, "no `datasource` variable of type datasource for prometheus");

  std::set<int> ids;
  ForEachPanel(d.value("panels", json::array()), [&](const json& p) {
    const std::string where = PanelName(file, p);
    if (!p.contains("id") || !ids.insert(p.value("id", -1)).second) problem(where, "missing or duplicate id");
    const json& g = p.value("gridPos", json());
    for (const char* k : {"h", "w", "x", "y"}) {
      if (!g.contains(k)) problem(where, std::string("gridPos without ") + k);
    }
    if (Str(p, "type") == "row") return;
    if (Str(p, "title").empty()) problem(where, "no title");
    if (p.value("datasource", json()) != ds) problem(where, "datasource must be " + ds.dump());
    if (!p.contains("targets") || p["targets"].empty()) problem(where, "no targets");
    std::set<std::string> refs;
    for (const json& t : p.value("targets", json::array())) {
      if (t.contains("datasource") && t["datasource"] != ds) problem(where, "target datasource must be " + ds.dump());
      if (!refs.insert(Str(t, "refId")).second) problem(where, "duplicate refId " + Str(t, "refId"));
      if (Str(t, "expr").empty()) problem(where, "target " + Str(t, "refId") + " has no expr");
    }
  });

  for (const DashboardQuery& q : ExtractQueries(d, file)) {
    const std::string expr = SubstituteVariables(q.expr);
    for (const std::string& name : MetricNames(expr)) {
      const CatalogueEntry* e = FindEntry(catalogue, name);
      if (e == nullptr) {
        problem(q.where, name + " is not in docs/metrics.md");
        continue;
      }
      const std::string n = RegexEscape(name);
      const bool is_counter_series = e->type == "counter" || (e->type == "histogram" && name != e->name);
      if (e->type == "histogram" && name == e->name) {
        problem(q.where, name + " is a histogram: use its _bucket, _sum or _count series");
        continue;
      }
      const std::ptrdiff_t uses = Count(expr, "\\b" + n + "\\b");
      const std::ptrdiff_t in_range_fn =
          Count(expr, "\\b(rate|irate|increase)\\s*\\(\\s*" + n + "\\s*(\\{[^}]*\\})?\\s*\\[");
      if (is_counter_series && in_range_fn != uses) {
        problem(q.where, name + " only goes up: use it inside rate(), irate() or increase() with a range");
      }
      if (!is_counter_series && std::regex_search(expr, std::regex("\\b(rate|irate|increase)\\s*\\(\\s*" + n + "\\b"))) {
        problem(q.where, name + " is a gauge: rate()/increase() are for counters (use deriv() or delta())");
      }
      if (absl::EndsWith(name, "_bucket") && e->type == "histogram" &&
          (!absl::StrContains(expr, "histogram_quantile(") ||
           !std::regex_search(expr, std::regex(R"(\bby\s*\([^)]*\ble\b[^)]*\))")))) {
        problem(q.where, name + ": buckets belong in histogram_quantile(q, sum by (le) (rate(...)))");
      }
    }
  }
  return problems;
}

}  // namespace weft::testing
