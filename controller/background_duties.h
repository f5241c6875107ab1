#pragma once
// BackgroundDuties: what must run once per cluster, on the elected replica only
// (controller/leader_election.h).
//
// - Compaction of the shared etcd's history, as kube-apiserver does for its
//   etcd: every `compaction_interval`, compact to the revision seen one interval
//   earlier, so watchers that lag less than an interval never see "compacted",
//   and etcd's history does not grow without bound (etcd 3.4 keeps all history
//   unless told otherwise). The embedded RocksDB store compacts itself.
// - Lease expiry itself is the store's: etcd's lessor (or RocksDbStore's expiry
//   loop) deletes the keys of a lease that was not renewed, and every replica's
//   watch sees the delete. Counting and logging an expiry is a duty, so that
//   weft_controller_lease_expirations_total summed over replicas counts each
//   lost node once (see Expired()).
//
// Thread-safe.

#include <cstdint>
#include <atomic>
#include <functional>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "controller/leader_election.h"
#include "storage/store.h"

namespace weft::controller {

class BackgroundDuties {
 public:
  struct Options {
    absl::Duration compaction_interval = absl::ZeroDuration();  // zero: no compaction
    std::function<void(const absl::Status&, int64_t revision)> on_compaction;
    Clock* clock = &RealClock::Get();  // not owned
  };

  BackgroundDuties(storage::Store* store, const LeaderElection* election, Options options);
  ~BackgroundDuties();  // Stop()

  void Start();
  void Stop();

  // One compaction round (a timer calls it every compaction_interval).
  void Tick();

  // True when this replica should count and log a lease expiry it observed.
  bool Expired() const { return election_->leader(); }

 private:
  storage::Store* const store_;
  const LeaderElection* const election_;
  const Options opts_;
  absl::Mutex mu_;
  int64_t previous_ ABSL_GUARDED_BY(mu_) = 0;  // revision seen at the last round as leader
  Timers timers_{*opts_.clock};
  std::atomic<Timers::Id> compaction_timer_{0};
};

}  // namespace weft::controller
