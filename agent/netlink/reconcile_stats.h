#pragma once
// What one pass of a backend over the kernel (or a cloud's route table) did:
// the Backend interface's answer to Reconcile, filled by agent/netlink/reconciler.h for
// the netlink backends and by the cloud backends themselves.

#include <vector>

#include "absl/status/status.h"

namespace weft::agent {

struct ReconcileStats {
  int added = 0;
  int updated = 0;
  int removed = 0;
  int unchanged = 0;
  int errors = 0;          // changes the kernel refused
  int skipped_peers = 0;   // filled by backends: peers left out (bad data, wrong type)
  std::vector<absl::Status> first_errors;  // the first few refusals, for logs
  int changes() const { return added + updated + removed; }
};

}  // namespace weft::agent
