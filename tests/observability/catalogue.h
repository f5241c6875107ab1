#pragma once
// docs/metrics.md read as data, so that the catalogue and the tests cannot
// drift: every row of a table under "### Controller ...", "### Agent ..." or
// "### Every binary ..." of the "## Catalogue" section whose first cell is a
// `metric_name` is one entry.

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace weft::testing {

// The component of the entries every binary exports (process_*, weft_build_info).
inline constexpr char kEveryBinary[] = "every";
// The component of the agent's backend-specific entries (weft_agent_udp_*,
// weft_agent_wireguard_*): exported only by agents running that backend.
inline constexpr char kAgentBackend[] = "agent backend";

struct CatalogueEntry {
  std::string component;  // "controller", "agent", kAgentBackend or kEveryBinary
  std::string name;       // "weft_controller_leases"
  std::string type;       // "counter", "gauge", "histogram"
  std::set<std::string> labels;  // documented label names, without le/job/instance
  int line = 0;           // in the file, for messages

  bool AppliesTo(absl::string_view c) const { return component == c || component == kEveryBinary; }
};

// Errors on a row that looks like an entry but is malformed (unknown type, a
// name that is not a metric name, a duplicate), or when no entry is found.
absl::StatusOr<std::vector<CatalogueEntry>> ParseCatalogue(absl::string_view markdown);
absl::StatusOr<std::vector<CatalogueEntry>> ReadCatalogue(const std::string& path);

// One metric family as a /metrics page exposes it.
struct ExposedFamily {
  std::string type;  // from "# TYPE"
  std::set<std::string> labels;  // union over its samples, le excluded
  int samples = 0;
};

// Parses Prometheus' text format (0.0.4) into families keyed by name; a
// histogram's _bucket/_sum/_count samples count for its family.
absl::StatusOr<std::map<std::string, ExposedFamily>> ParseExposition(absl::string_view text);

// Checks the exposition of one component against the catalogue: each entry is
// exposed, with at least one sample, its type and exactly its labels; and each
// exposed family is catalogued. Returns every problem; empty when consistent.
std::vector<std::string> CompareWithExposition(const std::vector<CatalogueEntry>& entries,
                                               absl::string_view component,
                                               const std::map<std::string, ExposedFamily>& exposed);

// The runfiles path of a workspace file ("docs/metrics.md").
std::string WorkspaceFile(const std::string& path);

}  // namespace weft::testing
