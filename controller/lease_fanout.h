#pragma once
// LeaseFanout: fans lease changes out to every WatchLeases stream.
//
// - A new stream gets a snapshot of all leases, then every change in revision
//   order. A stream resuming at revision R gets only the changes after R while
//   the hub's history still holds them, else a fresh snapshot (reason COMPACTED).
// - Each change is serialized once (a grpc::ByteBuffer, whose slices are
//   reference-counted) and the same bytes are queued on every stream.
// - Per-stream queues are bounded: a stream that falls `max_queue` messages
//   behind has its queue dropped and gets a fresh snapshot (reason RESYNC) when
//   it catches up, so a slow agent never blocks the others nor silently misses
//   a change.
// - Idle streams get a bookmark every `bookmark_interval` so their resume point
//   stays fresh (and dead connections are noticed).
//
// Publish() is called by the lease manager, serially, after it has applied a
// batch to its index. Thread-safe.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/thread_pool.h"
#include "controller/lease_manager.h"
#include "grpcpp/grpcpp.h"
#include "proto/weft/v1/weft.pb.h"

namespace weft::controller {

struct LeaseFanoutHooks {
  std::function<void(int delta)> on_streams;                 // +1 / -1
  std::function<void(int64_t messages)> on_events_sent;      // per completed write: events in it
  std::function<void()> on_resync;
  std::function<void(absl::Duration)> on_fanout_latency;     // publish -> write completed
  std::function<void(int64_t depth)> on_queue_depth;         // sampled at enqueue
  std::function<void(bool shared)> on_snapshot;              // a snapshot sent: encoded for it, or shared
};

class LeaseFanout {
 public:
  struct Options {
    Clock* clock = &RealClock::Get();
    size_t history = 10000;            // events kept for resumes
    size_t max_queue = 1024;           // messages queued per stream before a resync
    absl::Duration bookmark_interval = absl::Seconds(30);
    // A stream resuming at a revision this replica has not reached yet (a client
    // failing over from a replica that was ahead) waits this long for it, as an
    // etcd watch from a future revision waits, before it gets a snapshot.
    absl::Duration ahead_wait = absl::Seconds(5);
    // Threads that start the writes of one published change (the publishing
    // thread is one of them): with thousands of streams, one change costs a
    // few tens of microseconds per stream in gRPC and the kernel.
    int senders = 1;
    // gzip the snapshots (only: events and bookmarks are a few hundred bytes)
    // for clients that accept it, as every gRPC client does by default. Costs
    // CPU per stream (gRPC compresses each write, shared bytes or not) for
    // about a sixth of the bytes: for networks where a reconnect storm's
    // snapshots would fill the links.
    bool compress_snapshots = false;
    LeaseFanoutHooks hooks;
  };

  LeaseFanout(LeaseManager* manager, Options options);
  ~LeaseFanout();

  // Called with each batch of lease changes the manager applied, in order.
  void Publish(const std::vector<weft::v1::LeaseEvent>& events, int64_t revision);

  // The reactor for one WatchLeases call (raw: the request and the responses are bytes).
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Open(grpc::CallbackServerContext* ctx,
                                                   const grpc::ByteBuffer* request);

  // Ends the streams open now gradually, in batches spread over `window`
  // (UNAVAILABLE: their agents resume on another replica), so that they do not
  // all reconnect at the same instant; returns when the last batch is ended.
  // New streams should be refused meanwhile (the drain gate does it).
  void Drain(absl::Duration window);
  // Ends every stream (server shutdown) and stops the bookmark timer.
  void Shutdown();

  size_t StreamCount();

  class Stream;

 private:
  struct Shared {
    grpc::ByteBuffer bytes;
    int64_t revision = 0;
    int64_t events = 0;  // lease events in it; 0 for bookmarks
    bool is_events = false;
    bool is_snapshot = false;
    absl::Time published;
  };
  using SharedPtr = std::shared_ptr<const Shared>;

  // Below this many streams per sender a change's writes are not shared out.
  static constexpr size_t kMinStreamsPerSender = 64;

  void PublishLocked(const std::vector<weft::v1::LeaseEvent>& events, int64_t revision,
                     std::vector<Stream*>* writers) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartWriting(std::vector<Stream*> writers);
  static SharedPtr Serialize(const weft::v1::WatchLeasesResponse& msg, int64_t events, absl::Time now);
  void Enqueue(Stream* s, SharedPtr m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The lease set as one message. Streams that start or resync while the index
  // stays at one revision share one encoding (N agents joining at once cost one
  // List and one serialization, not N; the bytes are reference-counted).
  SharedPtr Snapshot(weft::v1::WatchLeasesResponse::Snapshot::Reason reason);
  void Remove(Stream* s);
  // Sends a bookmark to idle streams and a snapshot to those that waited ahead
  // too long; a timer runs it every min(bookmark_interval / 4, 1 s).
  void Bookmarks();

  LeaseManager* const manager_;
  const Options opts_;
  Timers timers_{*opts_.clock};
  Timers::Id bookmark_timer_ = 0;

  absl::Mutex mu_;
  absl::flat_hash_set<Stream*> streams_ ABSL_GUARDED_BY(mu_);
  // The last snapshot of each reason (the reason is in its bytes); dropped when
  // events are published.
  absl::Mutex snapshot_mu_ ABSL_ACQUIRED_AFTER(mu_);
  absl::flat_hash_map<int, SharedPtr> snapshots_ ABSL_GUARDED_BY(snapshot_mu_);
  struct HistoryEntry {
    int64_t revision;        // the batch's: its last event's or later
    int64_t first_revision;  // its first event's (a batch can span revisions)
    SharedPtr message;
  };
  // The events of `h` after revision `r`, for a stream resuming inside it.
  static SharedPtr EventsAfter(const HistoryEntry& h, int64_t r);
  std::deque<HistoryEntry> history_ ABSL_GUARDED_BY(mu_);
  size_t history_events_ ABSL_GUARDED_BY(mu_) = 0;  // lease events in history_
  int64_t history_floor_ ABSL_GUARDED_BY(mu_) = 0;  // resumes from R >= floor are served from history
  int64_t revision_ ABSL_GUARDED_BY(mu_) = 0;
  // Streams that resumed ahead of revision_: the revision they wait for, and until when.
  absl::flat_hash_map<Stream*, std::pair<int64_t, absl::Time>> ahead_ ABSL_GUARDED_BY(mu_);
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  std::unique_ptr<ThreadPool> senders_;  // opts_.senders - 1 threads; null for one sender

  friend class Stream;
};

}  // namespace weft::controller
