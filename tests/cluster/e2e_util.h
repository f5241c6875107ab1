#pragma once
// What the backends' end-to-end tests share on top of the cluster harness.

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "tests/cluster/harness.h"

namespace weft::testing {

// Starts a cluster named after the running gtest test, with Bazel's SIGTERM
// (timeout) handled so the cluster is still torn down. nullptr, after
// ADD_FAILURE, when it does not start.
std::unique_ptr<Cluster> StartClusterForTest(ClusterOptions options);

// Sends `bytes` random bytes over one TCP connection from `from` to `to`
// (python3 at both ends, port 5201 inside `to`'s namespace). What each end saw.
struct Transfer {
  uint64_t sent_bytes = 0, received_bytes = 0;
  std::string sent_sha256, received_sha256;
  bool intact() const { return sent_bytes == received_bytes && sent_sha256 == received_sha256; }
  std::string ToString() const;
};
absl::StatusOr<Transfer> TcpTransfer(Cluster& c, const Container& from, const Container& to, uint64_t bytes);

// Host i's agent's /metrics page, fetched inside its namespace.
absl::StatusOr<std::string> AgentMetrics(Cluster& c, int host);

// A sample's value ("name{labels}") on a /metrics page, or -1 when absent.
double Sample(const std::string& page, absl::string_view series);

// OK when every container reaches every container on another host (2 pings),
// over IPv6 as well when both have an IPv6 address (dual-stack).
absl::Status AllCrossHostPings(Cluster& c);

// StartClusterForTest, then waits until AllCrossHostPings passes; nullptr
// (after ADD_FAILURE) when the cluster does not start or converge in `converge`.
std::unique_ptr<Cluster> StartConverged(ClusterOptions options, absl::Duration converge = absl::Seconds(20));

// Checks the families of `page` whose names start with `prefix` against
// docs/metrics.md both ways (each exported family has a row "| `name` | type |",
// each documented row is exported), failing the test for each mismatch.
struct DocumentedFamilies {
  int exported = 0;    // families of the prefix on the page
  int documented = 0;  // rows of the prefix in the docs
};
DocumentedFamilies ExpectMetricsMatchDocs(const std::string& page, const std::string& prefix);

// docs/metrics.md of the source tree (docs/ has no BUILD file: the README.md
// runfile, a data dependency, links into the tree next to it).
std::string MetricsDoc();

}  // namespace weft::testing
