#include "tests/observability/catalogue.h"

#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace weft::testing {
namespace {

bool IsMetricName(absl::string_view s) {
  if (s.empty() || absl::ascii_isdigit(s[0])) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != ':') return false;
  }
  return true;
}

// "`a`, `b`" -> {a, b}; "—", "-" or "" -> {}.
std::set<std::string> LabelCell(absl::string_view cell) {
  std::set<std::string> out;
  for (absl::string_view part : absl::StrSplit(cell, ',', absl::SkipWhitespace())) {
    part = absl::StripAsciiWhitespace(part);
    if (absl::ConsumePrefix(&part, "`") && absl::ConsumeSuffix(&part, "`") && !part.empty()) {
      out.insert(std::string(part));
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<CatalogueEntry>> ParseCatalogue(absl::string_view markdown) {
  std::vector<CatalogueEntry> out;
  std::set<std::string> seen;
  bool in_catalogue = false;
  std::string component;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(markdown, '\n')) {
    ++line_no;
    line = absl::StripTrailingAsciiWhitespace(line);
    if (absl::StartsWith(line, "## ")) {
      in_catalogue = absl::StripAsciiWhitespace(line.substr(3)) == "Catalogue";
      component.clear();
      continue;
    }
    if (!in_catalogue) continue;
    if (absl::StartsWith(line, "### ")) {
      const std::string title = absl::AsciiStrToLower(line.substr(4));
      component = absl::StartsWith(title, "controller")    ? "controller"
                  : absl::StartsWith(title, "agent")       ? "agent"
                  : absl::StartsWith(title, "every binary") ? std::string(kEveryBinary)
                  : absl::StartsWith(title, "backend-specific") ? std::string(kAgentBackend)
                                                                : "";
      continue;
    }
    if (component.empty() || !absl::StartsWith(line, "|")) continue;
    std::vector<std::string> cells = absl::StrSplit(line, '|');
    // "| a | b |" splits into "", " a ", " b ", "".
    if (cells.size() < 4) continue;
    for (std::string& c : cells) c = std::string(absl::StripAsciiWhitespace(c));
    absl::string_view name = cells[1];
    if (!absl::ConsumePrefix(&name, "`") || !absl::ConsumeSuffix(&name, "`")) continue;  // header, separator
    CatalogueEntry e;
    e.component = component;
    e.name = std::string(name);
    e.type = cells[2];
    e.labels = LabelCell(cells[3]);
    e.line = line_no;
    const std::string where = absl::StrCat("docs/metrics.md:", line_no, ": ");
    if (!IsMetricName(e.name)) return absl::InvalidArgumentError(where + "not a metric name: " + e.name);
    if (e.type != "counter" && e.type != "gauge" && e.type != "histogram") {
      return absl::InvalidArgumentError(where + e.name + ": type must be counter, gauge or histogram, not \"" +
                                        e.type + "\"");
    }
    if (e.type == "counter" && !absl::EndsWith(e.name, "_total")) {
      return absl::InvalidArgumentError(where + e.name + ": a counter's name ends in _total");
    }
    if (!seen.insert(e.name).second) return absl::InvalidArgumentError(where + e.name + " is listed twice");
    out.push_back(std::move(e));
  }
  if (out.empty()) return absl::InvalidArgumentError("docs/metrics.md: no catalogue entries found");
  return out;
}

absl::StatusOr<std::vector<CatalogueEntry>> ReadCatalogue(const std::string& path) {
  std::ifstream f(path);
  if (!f) return absl::NotFoundError("cannot read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ParseCatalogue(ss.str());
}

absl::StatusOr<std::map<std::string, ExposedFamily>> ParseExposition(absl::string_view text) {
  std::map<std::string, ExposedFamily> out;
  std::map<std::string, std::string> series_to_family;  // x_bucket -> x for histograms
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&line, "# TYPE ")) {
      std::vector<std::string> w = absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (w.size() != 2) return absl::InvalidArgumentError(absl::StrCat("bad TYPE line: ", line));
      out[w[0]].type = w[1];
      series_to_family[w[0]] = w[0];
      if (w[1] == "histogram" || w[1] == "summary") {
        for (const char* suffix : {"_bucket", "_sum", "_count"}) series_to_family[w[0] + suffix] = w[0];
      }
      continue;
    }
    if (absl::StartsWith(line, "#")) continue;
    const size_t end = line.find_first_of("{ ");
    if (end == absl::string_view::npos) return absl::InvalidArgumentError(absl::StrCat("bad sample: ", line));
    const std::string series(line.substr(0, end));
    auto it = series_to_family.find(series);
    if (it == series_to_family.end()) {
      return absl::InvalidArgumentError(absl::StrCat("sample without a TYPE line: ", line));
    }
    ExposedFamily& f = out[it->second];
    ++f.samples;
    if (line[end] == '{') {
      const size_t close = line.find('}', end);
      if (close == absl::string_view::npos) return absl::InvalidArgumentError(absl::StrCat("bad labels: ", line));
      // name="value" pairs; values are escaped, so split on '="' then skip to the unescaped quote.
      absl::string_view rest = line.substr(end + 1, close - end - 1);
      while (!rest.empty()) {
        const size_t eq = rest.find("=\"");
        if (eq == absl::string_view::npos) break;
        const std::string label(absl::StripAsciiWhitespace(rest.substr(0, eq)));
        if (label != "le") f.labels.insert(label);
        size_t i = eq + 2;
        while (i < rest.size() && rest[i] != '"') i += rest[i] == '\\' ? 2 : 1;
        rest = rest.substr(std::min(rest.size(), i + 1));
        absl::ConsumePrefix(&rest, ",");
      }
    }
  }
  return out;
}

std::vector<std::string> CompareWithExposition(const std::vector<CatalogueEntry>& entries,
                                               absl::string_view component,
                                               const std::map<std::string, ExposedFamily>& exposed) {
  std::vector<std::string> problems;
  std::set<std::string> documented;
  for (const CatalogueEntry& e : entries) {
    if (!e.AppliesTo(component)) continue;
    documented.insert(e.name);
    auto it = exposed.find(e.name);
    if (it == exposed.end()) {
      problems.push_back(absl::StrCat(e.name, " (docs/metrics.md:", e.line, ") is not exposed"));
      continue;
    }
    const ExposedFamily& f = it->second;
    if (f.type != e.type) {
      problems.push_back(absl::StrCat(e.name, ": documented as ", e.type, ", exposed as ", f.type));
    }
    if (f.samples == 0) problems.push_back(absl::StrCat(e.name, ": exposed with no sample"));
    if (f.samples > 0 && f.labels != e.labels) {
      problems.push_back(absl::StrCat(e.name, ": documented labels {", absl::StrJoin(e.labels, ","),
                                      "}, exposed labels {", absl::StrJoin(f.labels, ","), "}"));
    }
  }
  for (const auto& [name, f] : exposed) {
    if (!documented.count(name)) {
      problems.push_back(absl::StrCat(name, " (", f.type, ") is exposed but not in docs/metrics.md"));
    }
  }
  return problems;
}

std::string WorkspaceFile(const std::string& path) {
  std::string runfiles;
  for (const char* var : {"TEST_SRCDIR", "RUNFILES_DIR"}) {
    if (const char* d = std::getenv(var); d && *d) {
      const char* ws = std::getenv("TEST_WORKSPACE");
      runfiles = absl::StrCat(d, "/", ws && *ws ? ws : "weft", "/");
      break;
    }
  }
  if (runfiles.empty()) return path;  // run from the workspace root
  if (access((runfiles + path).c_str(), R_OK) == 0) return runfiles + path;
  // docs/ has no BUILD file, so docs/metrics.md cannot be a data dependency yet;
  // the root's README.md can, and its runfile links to the source tree, whose
  // root holds docs/. (Such tests are tagged "external": never cached.)
  char resolved[PATH_MAX];
  if (realpath((runfiles + "README.md").c_str(), resolved) != nullptr) {
    std::string root(resolved);
    root.resize(root.size() - std::string("README.md").size());
    return root + path;
  }
  return runfiles + path;
}

}  // namespace weft::testing
