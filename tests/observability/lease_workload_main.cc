// lease_workload: keeps a controller busy (see lease_workload.h) for a bounded
// time, then exits; 0 when every call went as expected.

#include <algorithm>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "tests/observability/lease_workload.h"

ABSL_FLAG(std::string, controller, "127.0.0.1:7800", "Controller gRPC address.");
ABSL_FLAG(std::string, config, "", "Network config to set first (flannel's JSON); empty: keep the current one.");
ABSL_FLAG(int, nodes, 6, "Nodes kept alive.");
ABSL_FLAG(int, watch_streams, 2, "Watch streams held open.");
ABSL_FLAG(absl::Duration, duration, absl::Minutes(2), "How long to run (at most 10m).");
ABSL_FLAG(absl::Duration, period, absl::Milliseconds(250), "Pause between rounds.");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  weft::testing::WorkloadOptions o;
  o.controller = absl::GetFlag(FLAGS_controller);
  o.network_config = absl::GetFlag(FLAGS_config);
  o.nodes = absl::GetFlag(FLAGS_nodes);
  o.watch_streams = absl::GetFlag(FLAGS_watch_streams);
  o.duration = std::min(absl::GetFlag(FLAGS_duration), absl::Minutes(10));
  o.period = absl::GetFlag(FLAGS_period);
  absl::Status s = weft::testing::RunWorkload(o);
  if (!s.ok()) {
    std::cerr << "lease_workload: " << s << "\n";
    return 1;
  }
  std::cerr << "lease_workload: done\n";
  return 0;
}
