#pragma once
// A grace period before a cloud route backend removes a route that no lease
// asks for.
//
// The cloud route backends (gce, aws-vpc) share one route set per project or
// table, and every agent converges it towards the leases IT knows. Watches lag:
// when a node joins, its own agent and the quicker peers add its route while a
// slower peer, not knowing the lease yet, sees a route of no lease and would
// delete it, only for the next pass to put it back (a flapping route, and for a
// moment unreachable containers). So such a route becomes removable only after
// this agent has seen it unwanted, continuously, for the grace period.
//
// Keys name the routes (GCE: the route name; aws-vpc: "<table id> <subnet>").
// Not thread-safe: one instance per backend, used from its Reconcile.

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"

namespace weft::agent {

class RemovalGrace {
 public:
  // A key first seen unwanted by a Due call, and when it becomes due.
  struct Held {
    std::string key;
    absl::Time until;
  };

  // `grace` <= 0: every unwanted key is due at once.
  explicit RemovalGrace(absl::Duration grace) : grace_(grace) {}

  // `unwanted_keys`: the routes a pass found unwanted. Returns those unwanted
  // since at least `now - grace` (in the order given), remembers when the others
  // were first seen, and forgets every key not in `unwanted_keys` (a route wanted
  // again, or gone, starts a fresh grace next time). A key that was returned
  // stays remembered while it is unwanted, so a removal that failed is retried
  // at once, not after another grace. `newly_held` (may be null) receives the
  // keys this call started to hold, to be logged once.
  std::vector<std::string> Due(const std::vector<std::string>& unwanted_keys, absl::Time now,
                               std::vector<Held>* newly_held = nullptr);

  // When the earliest held key becomes due; InfiniteFuture if none is held.
  absl::Time NextDue() const;

 private:
  struct Entry {
    absl::Time due;
    bool released = false;  // returned by Due: no longer held
  };
  const absl::Duration grace_;
  absl::flat_hash_map<std::string, Entry> unwanted_;
};

}  // namespace weft::agent
