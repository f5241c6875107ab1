#pragma once
// Drives a real controller over gRPC so that every controller metric of
// docs/metrics.md has data: acquisitions, renewals, releases, reservations,
// refused calls of each kind (an exhausted pool too), watch streams receiving
// events, and leases left to expire (with a short LeaseTTL in the config).
//
// Used in-process by the promtool test and as the `lease_workload` binary that
// the Prometheus test runs inside the controller's network namespace.

#include <atomic>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace weft::testing {

// A config whose leases expire quickly (so that the test sees expirations) and
// whose pool is small (63 subnets, 10.1.1.0..10.1.63.0), so that exhausting it
// takes few calls.
inline constexpr char kTestNetworkConfig[] =
    R"({"Network":"10.1.0.0/16","SubnetMax":"10.1.63.0","LeaseTTL":"10s","Backend":{"Type":"vxlan"}})";

struct WorkloadOptions {
  std::string controller;       // "127.0.0.1:7800"
  std::string network_config;   // stored first when not empty
  int nodes = 6;                // kept alive: renewed round-robin
  int watch_streams = 2;        // held open for the whole run
  // Then, until `duration` has passed (0: a single round), every `period`: renew
  // one node, read the config and the leases, and every `churn_every` rounds
  // release one node and acquire it again, and acquire one throwaway node that
  // is never renewed (it expires after the config's LeaseTTL).
  absl::Duration duration = absl::ZeroDuration();
  absl::Duration period = absl::Milliseconds(250);
  int churn_every = 8;
  // Once, after the first acquisitions: acquire until the controller answers
  // RESOURCE_EXHAUSTED, then release every subnet taken that way.
  bool exhaust_pool = true;
};

// Runs the workload; returns early (OK) when `stop` becomes true. An error when
// a call that must succeed fails, or a refused call is refused with another code.
absl::Status RunWorkload(const WorkloadOptions& options, const std::atomic<bool>* stop = nullptr);

}  // namespace weft::testing
