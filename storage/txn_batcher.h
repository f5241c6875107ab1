#pragma once
// TxnBatcher: merges concurrent small transactions into one store transaction.
//
// On etcd every transaction is one Raft round and one fsync on a quorum, so an
// allocator that writes one transaction per lease is bound by round trips, not by
// work. The controller is the only allocator of its network and never lets two of
// its own requests touch the same key at once, so concurrent requests can share
// one transaction: their compares are ANDed, their writes applied together at one
// revision (as etcd applies a multi-key transaction).
//
// Group commit without a timer: a caller commits at once when fewer than
// `max_in_flight` merged transactions are in flight; callers that arrive while
// the pipeline is full queue, and the next commit takes them all (up to
// `max_ops` requests, as etcd refuses transactions of more than 128 operations
// by default). No request waits for company.
//
// When a merged transaction fails (a compare of one request was false, or the
// store refused it, e.g. one request's lease is gone), every request of that
// batch is re-run alone, so each caller gets exactly the answer its own
// transaction would have had. Requests that cannot be merged (with a failure
// branch, a read, or a key another queued request also touches) run alone or in
// a later batch.
//
// Asynchronous callers (TxnAsync) do not wait: their requests are committed
// by the batcher's own committer threads (max_in_flight of them, started on
// first use), which call each `done` once its transaction is durable, so a
// server's callback threads never block on a commit. Synchronous and
// asynchronous requests share the same queue and batches.
//
// Thread-safe. The store must outlive the batcher.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "storage/store.h"

namespace weft::storage {

class TxnBatcher {
 public:
  struct Options {
    size_t max_ops = 128;  // requests per merged transaction (each compare/put counts once)
    bool enabled = true;   // false: every request is its own transaction (benchmarks' baseline)
    // Merged transactions in flight at once. One would leave etcd idle while a
    // commit's answer travels back; a few keep its pipeline full.
    int max_in_flight = 2;
    // Observes every store transaction of writes the batcher issued: how many
    // write requests it carried (revision reads riding along are not counted).
    std::function<void(int requests)> on_commit;
  };

  TxnBatcher(Store* store, Options options);
  TxnBatcher(Store* store) : TxnBatcher(store, Options()) {}
  // Commits what is queued, then stops the committer threads; a TxnAsync after
  // that runs at once on its caller's thread. The destructor calls it.
  void Stop();
  ~TxnBatcher();

  // Same contract as Store::Txn.
  absl::StatusOr<TxnResponse> Txn(const TxnRequest& req);

  // Same answer as Txn, given to `done` (on a committer thread) instead of
  // returned. Requests that cannot be merged run at once on the caller's
  // thread. With batching off, each request is its own transaction, still on
  // the committer threads (max_in_flight at once).
  using Done = std::function<void(absl::StatusOr<TxnResponse>)>;
  void TxnAsync(TxnRequest req, Done done);

  // The store's revision as of a moment after this call (a linearizable read
  // of it), given to `done` on a committer thread: the revision of the next
  // transaction the batcher sends, which is sent after this call; when no write
  // is queued, that is an empty transaction (a read-only one: etcd serves it
  // through ReadIndex and does not bump the revision). So revision probes ride
  // on lease writes instead of costing a round trip each.
  void RevisionAsync(std::function<void(absl::StatusOr<int64_t>)> done);

  // Requests waiting for a transaction now (not yet in one in flight).
  size_t QueueLength();

  // True when `req` may share a transaction: no failure branch, only puts and
  // deletes of single keys, every compare on a single key.
  static bool Mergeable(const TxnRequest& req);

 private:
  struct Pending;
  // Takes the next batch from the queue (distinct keys, at most max_ops).
  std::vector<Pending*> TakeBatchLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Commit(const std::vector<Pending*>& batch);
  // Takes and commits the next batch as its leader; returns with mu_ held.
  void LeadBatchLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues an asynchronous request for the committers (false once stopped;
  // `p` is then left to the caller).
  bool Enqueue(std::unique_ptr<Pending>& p);
  void CommitterLoop();

  Store* const store_;
  const Options opts_;
  absl::Mutex mu_;
  std::deque<Pending*> queue_ ABSL_GUARDED_BY(mu_);
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> committers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace weft::storage
