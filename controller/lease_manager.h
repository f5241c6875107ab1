#pragma once
// LeaseManager: the controller's allocation state and lease lifecycle.
//
// The store is the truth. The manager keeps an in-memory index of every lease
// under <prefix>/subnets/ and of the network config, fed only by a watch on the
// prefix (so writes from other replicas, from the etcd-compatible API or from
// flannel itself are seen like its own). Each request decides under a short
// lock, writes one compare-and-swap transaction (shared with concurrent
// requests, storage/txn_batcher.h), and answers once it is durable; the
// subnet stays taken until the index has caught up with the transaction's
// revision. Lost races are retried here. Acquisitions run as continuations
// (AcquireAsync, acquisition.cc), so no thread waits on a commit.
//
// The parts, each a unit of its own: the index and pools (lease_index.h), the
// waits for the index to reach a revision (revision_waiters.h) and the shared
// per-TTL-bucket store leases keys are attached to (bucket_leases.h).
//
// Thread-safe.

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/net.h"
#include "common/thread_pool.h"
#include "controller/bucket_leases.h"
#include "controller/lease_codec.h"
#include "controller/lease_index.h"
#include "controller/network_config.h"
#include "controller/revision_waiters.h"
#include "storage/store.h"
#include "storage/txn_batcher.h"

namespace weft::controller {

struct AcquireRequest {
  std::string node_name;
  std::string public_ip;
  std::string public_ipv6;
  std::string backend_type;
  std::string backend_data;
  std::string backend_v6_data;
  std::string previous_subnet;
  std::string previous_ipv6_subnet;
  // The caller is authenticated as node `node_name` (authz.h): a lease is its
  // own by name only; a lease found by public IP that names no node or another
  // one is never handed over (PERMISSION_DENIED / a new subnet).
  bool as_node = false;
};

struct OwnerRef {
  std::string subnet;
  std::string node_name;
  std::string public_ip;
  // As in AcquireRequest: the lease must name `node_name`; a public IP match
  // does not make the caller its owner.
  bool as_node = false;
};

struct ReserveRequest {
  std::string subnet;       // IPv4 (IPv6 in an IPv6-only network)
  std::string public_ip;
  std::string node_name;
  std::string backend_type;
  std::string backend_data;
  // Dual-stack networks: the IPv6 subnet reserved with `subnet` (when empty, the
  // one the node's current lease holds) and the node's IPv6 address.
  std::string ipv6_subnet;
  std::string public_ipv6;
  std::string backend_v6_data;
};

struct ConfigChange {
  std::string config;
  int64_t revision = 0;
  std::vector<std::string> stranded;
};

// Observers; every hook optional. Called without locks held.
struct LeaseManagerHooks {
  // Every batch the manager applied, in revision order, serially (the watch hub).
  std::function<void(const std::vector<LeaseChange>& changes, int64_t revision)> on_changes;
  std::function<void(const char* op, const char* result)> on_result;  // op: acquire, renew, release, reserve, unreserve
  std::function<void()> on_expired;
  std::function<void(int attempts)> on_retry;
  // Every store transaction of lease writes: how many requests it carried.
  std::function<void(int requests)> on_txn;
  // A value in the store this manager cannot read (kind: "lease" or "config"),
  // written around the API by another etcd client or an older version: it is
  // logged and skipped, never fatal. Called with the manager's lock held.
  std::function<void(const char* kind)> on_corrupt;
};

class LeaseManager {
 public:
  struct Options {
    std::string prefix = "/coreos.com/network";
    Clock* clock = &RealClock::Get();
    // Used when the network config has no LeaseTTL.
    absl::Duration default_ttl = absl::Hours(24);
    int max_attempts = 32;
    // Other controllers write to the same store (etcd, several replicas): before
    // allocating for a node this replica does not know, catch up with the
    // store, so a node retrying on another replica after a failover finds the
    // lease it may already have got instead of being given a second one.
    bool shared_store = false;
    // With several replicas, every acquisition also writes the node's guard key
    // `node_guard_prefix + <node identity>` in its transaction, on condition
    // that nobody wrote it after the revision this replica decided at. The write
    // of a replica that died with it in flight (or behind a lost etcd leader)
    // can land after another replica found the node lease-less and gave it a
    // subnet: the guard makes the later of the two fail and retry (finding the
    // other's lease) instead of leaving the node two subnets. Empty: no guard.
    // Keep it outside flannel's prefix (the etcd API then lets operators only
    // touch it).
    std::string node_guard_prefix;
    // Concurrent lease writes share store transactions (storage/txn_batcher.h).
    bool batch_writes = true;
    // Merged lease-write transactions in flight at once (TxnBatcher::Options).
    int txns_in_flight = 2;
    // How long a request waits for the store's watch to deliver a revision it
    // needs (its node's previous write, a fresh revision) before UNAVAILABLE,
    // on `clock`.
    absl::Duration apply_timeout = absl::Seconds(30);
    // At start, load the leases as they were this many store revisions ago (no
    // further back than the store's compaction) and replay the changes since
    // then through on_changes, as the watch delivers them. Whoever keeps the
    // recent changes (the fan-out's history) can then serve a client that
    // resumes from before the start, such as an agent that had not yet got the
    // last changes when the previous controller died, with those changes
    // instead of a snapshot. 0: load the current state only. Needs a store whose
    // watch says when a replay is over (store.h: the embedded store).
    int64_t replay_revisions = 0;
    LeaseManagerHooks hooks;
  };

  LeaseManager(storage::Store* store, Options options);
  ~LeaseManager();

  // Load() then Follow(). Call once.
  absl::Status Start();
  // Loads the config and leases as of Options::replay_revisions ago;
  // AppliedRevision() is then that revision. Call once, before Follow. An
  // error if the store cannot read that far back (compacted meanwhile): start
  // again without a replay.
  absl::Status Load();
  // Follows the store from the loaded revision on: the changes since then reach
  // on_changes first (returns once they have, or after apply_timeout with a
  // warning: the watch catches up meanwhile), then every later one. An error if
  // the store refuses the watch, e.g. the history to replay is compacted
  // meanwhile or over the store's bound: start again without a replay.
  absl::Status Follow();
  // Shutting down: requests waiting for the index (a node's previous write, a
  // fresh revision, a lost race) get UNAVAILABLE now, and later ones at once,
  // so the gRPC server's shutdown is not held by a lagging watch. Writes in
  // flight still complete and are answered. The destructor calls it.
  void StopWaiting();

  absl::StatusOr<LeaseRecord> Acquire(const AcquireRequest& req);
  // The same without blocking the caller: `done` gets the answer, on the
  // caller's thread when it is known at once (bad input, a reservation), else
  // on the thread that ended the last wait (a store committer, the watch, a
  // worker). For gRPC callback handlers.
  using AcquireDone = std::function<void(absl::StatusOr<LeaseRecord>)>;
  void AcquireAsync(const AcquireRequest& req, AcquireDone done);
  absl::StatusOr<LeaseRecord> Renew(const OwnerRef& req);
  absl::Status Release(const OwnerRef& req);
  absl::StatusOr<LeaseRecord> Get(const std::string& subnet);
  // All leases in subnet order, with the revision they reflect.
  std::vector<LeaseRecord> List(int64_t* revision = nullptr);
  // The revision of the last change to the lease set List() returns, after
  // catching up as List does: a listing taken at or after this revision is
  // still the current lease set (other writes, such as the replica election's,
  // move the store's revision without changing it).
  int64_t LeaseSetRevision();

  // One page of the leases as of one store revision, in key order.
  struct Page {
    std::vector<LeaseRecord> leases;
    int64_t revision = 0;
    std::string next_page_token;  // empty on the last page
  };
  // `page_token` empty: the first page, at this manager's current revision; else
  // a token from the previous page (the revision and the last key, opaque). A
  // page holds at most `page_size` leases (0 = kDefaultPageSize; at most
  // kMaxPageSize) and about kMaxPageBytes. INVALID_ARGUMENT for a bad token or
  // size; ABORTED when the token's revision has been compacted (list again).
  static constexpr int kDefaultPageSize = 1000;
  static constexpr int kMaxPageSize = 5000;
  static constexpr size_t kMaxPageBytes = 2 << 20;
  absl::StatusOr<Page> ListPage(int page_size, const std::string& page_token);
  absl::StatusOr<LeaseRecord> Reserve(const ReserveRequest& req);
  absl::Status Unreserve(const std::string& subnet);

  // The config JSON as stored (NOT_FOUND / FAILED_PRECONDITION when unset).
  absl::StatusOr<std::pair<std::string, int64_t>> GetConfig();
  // Validates and stores a config. FAILED_PRECONDITION listing the stranded
  // leases when some would fall outside it, unless `force`.
  absl::StatusOr<ConfigChange> SetConfig(const std::string& json, bool force);

  // Pool figures for metrics (0 when unconfigured).
  struct PoolStats {
    uint64_t size = 0;
    uint64_t free = 0;
    uint64_t leases = 0;
    uint64_t reservations = 0;
    absl::uint128 ipv6_size = 0;  // the IPv6 pool (dual-stack, IPv6-only)
    absl::uint128 ipv6_free = 0;
  };
  PoolStats Stats();
  std::optional<NetworkConfig> Config();
  int64_t AppliedRevision();
  // True once Start() has loaded the state.
  bool Ready();

 private:
  // The operation a result is reported for (the on_result hook's `op` label).
  enum class Op { kAcquire, kRenew, kRelease, kReserve, kUnreserve };
  // One acquisition's continuations (acquisition.cc).
  struct AcquireState;
  // What one attempt of an acquisition decided under the lock.
  enum class Decision { kWrite, kAnswer, kStop };
  // `st` now holds its node (node_turns_): returns the revision of the node's
  // last acknowledged write that the index has yet to apply (0: none).
  int64_t HoldIdentityLocked(AcquireState& st) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartAcquire(const std::shared_ptr<AcquireState>& st, int64_t wait_for);
  void Attempt(const std::shared_ptr<AcquireState>& st);
  Decision Decide(AcquireState& st, LeaseRecord* answer, absl::Status* stop);
  void Write(const std::shared_ptr<AcquireState>& st);
  // The lease write's answer from the store: answer, retry or fail.
  void OnWriteResult(const std::shared_ptr<AcquireState>& st, const absl::StatusOr<storage::TxnResponse>& txn);
  // The attempt's write failed or lost: its picked subnets go back to the
  // pools (unless the index now holds them) and the replaced key is no longer
  // ours to delete.
  void ReleasePendingPick(AcquireState& st);
  void Finish(const std::shared_ptr<AcquireState>& st, absl::StatusOr<LeaseRecord> result);

  void OnWatch(const storage::WatchBatch& batch);
  // Waits until the index has applied `revision` (our own write came back).
  absl::Status WaitApplied(int64_t revision) { return waiters_.Wait(revision); }
  // Calls `then` once the index has applied `revision`: at once when it has,
  // else from the watch; UNAVAILABLE after apply_timeout or at shutdown.
  void WhenApplied(int64_t revision, RevisionWaiters::Callback then) {
    waiters_.WhenReached(revision, std::move(then));
  }
  // Read-your-writes: waits until every write this manager acknowledged is in the index.
  absl::Status CatchUp() { return WaitApplied(written_revision_.load()); }
  void NoteWritten(int64_t revision);
  absl::StatusOr<const LeaseRecord*> FindOwnedLocked(const OwnerRef& req) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Report(Op op, const absl::Status& s);

  static storage::TxnBatcher::Options BatcherOptions(const Options& o);

  storage::Store* const store_;
  const Options opts_;
  const std::string config_key_;      // <prefix>/config
  const std::string subnets_prefix_;  // <prefix>/subnets/
  // Lease writes (acquire, renew, release, reserve) of concurrent requests share
  // store transactions: one etcd round trip for many leases.
  std::unique_ptr<storage::TxnBatcher> batcher_;
  // The blocking store calls of acquisitions (bucket lease grants).
  std::unique_ptr<ThreadPool> workers_;
  // Requests waiting for the index to reach a revision, reached under mu_ as
  // the index applies each batch. Their timeout (a lagging watch) is on
  // opts_.clock, like the TTLs.
  RevisionWaiters waiters_;
  // The store leases keys are attached to; a new one's expiration goes to the
  // index (under mu_) before anyone writes with it.
  BucketLeases buckets_;

  absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  int64_t loaded_store_revision_ = 0;  // the store's revision when Load read it
  // on_changes has had every change up to loaded_store_revision_ (set under mu_).
  std::atomic<bool> replayed_{false};
  LeaseIndex index_ ABSL_GUARDED_BY(mu_);
  // Node identities with an acquisition in flight (one at a time per node),
  // each with the acquisitions waiting for that one to end.
  absl::flat_hash_map<std::string, std::deque<std::shared_ptr<AcquireState>>> node_turns_ ABSL_GUARDED_BY(mu_);
  // Per node identity: the revision of its last acknowledged write, so its next
  // request waits until the index holds it (answers do not wait for the index).
  absl::flat_hash_map<std::string, int64_t> node_written_ ABSL_GUARDED_BY(mu_);
  std::atomic<int64_t> written_revision_{0};

  std::unique_ptr<storage::WatchHandle> watch_;
};

}  // namespace weft::controller
