#pragma once
// LeaderElection: picks one controller replica, among those sharing a store, to
// run the background duties that must happen once per cluster rather than once
// per replica (see BackgroundDuties in controller/background_duties.h).
//
// The same scheme as etcd's concurrency.Election, on the Store interface: each
// replica keeps a store lease alive (TTL `ttl`) and tries to create the election
// key attached to it. The replica whose lease holds the key leads. When it dies
// or is cut off, its lease expires within `ttl`, the key vanishes with it, and
// the next campaign of another replica wins. A leader that cannot renew its lease
// for half the TTL steps down by itself, before the store could elect another,
// so two replicas never both believe they lead while the store answers.
//
// Allocation does not depend on it: every replica serves and allocates (CAS
// transactions keep that safe); only the duties move.
//
// Thread-safe. Start() runs a campaign at once and then every ttl/3, on a timer
// of the clock (its own thread on the RealClock); tests call Step() or advance
// a simulated clock.

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "storage/store.h"

namespace weft::controller {

class LeaderElection {
 public:
  struct Options {
    // Outside flannel's keyspace, so flannel and the etcd API's validator never see it.
    std::string key = "/weft.io/controller/leader";
    std::string identity;  // this replica, e.g. its gRPC address; stored as the key's value
    absl::Duration ttl = absl::Seconds(10);
    Clock* clock = &RealClock::Get();
    // Called on every change of this replica's role, from the campaign thread (or
    // from Step()), never with a lock held.
    std::function<void(bool leader)> on_change;
  };

  LeaderElection(storage::Store* store, Options options);
  ~LeaderElection();  // Stop()

  void Start();
  // Stops campaigning; a leader resigns (revokes its lease, so another replica
  // takes over at once instead of after the TTL).
  void Stop();

  // One campaign round: renew or take the lease, then try to hold the key.
  void Step();

  bool leader() const { return leader_.load(); }
  // The identity stored in the key now ("" when nobody leads), as last read.
  std::string current_leader() const;

 private:
  void SetLeader(bool leader);

  storage::Store* const store_;
  const Options opts_;
  std::atomic<bool> leader_{false};
  mutable absl::Mutex mu_;
  int64_t lease_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_renewed_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::string current_ ABSL_GUARDED_BY(mu_);
  Timers timers_{*opts_.clock};
  std::atomic<Timers::Id> campaign_timer_{0};
};

}  // namespace weft::controller
