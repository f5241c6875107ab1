#pragma once
// ChangeDispatcher: delivers a store's durable changes to its watchers. A building block
// for Store implementations that keep their own history (the RocksDB store); not
// part of the Store API.
//
// The store publishes every change once it is durable, in revision order. Each
// watcher gets the events of its key range in order, with no gaps, on the hub's
// one dispatch thread, serially per watcher.
//
// Buffers are unbounded: a slow callback delays the other watchers' callbacks
// (one dispatch thread) but never the publisher, i.e. never the store's writers;
// its events pile up in memory until it catches up. Callbacks must be quick.
//
// A new watcher starts paused: the store registers it, reads the history it asked
// for up to the revision the hub had published at registration, and Start()s it
// with that history; live events published meanwhile wait behind the history.
//
// Thread-safe.

#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/functional/function_ref.h"
#include "storage/store.h"

namespace weft::storage {

class ChangeDispatcher {
 public:
  class Watch;

  ChangeDispatcher();
  ~ChangeDispatcher();  // Shutdown()
  ChangeDispatcher(const ChangeDispatcher&) = delete;
  ChangeDispatcher& operator=(const ChangeDispatcher&) = delete;

  // Stops the dispatch thread; undelivered events are dropped and no callback runs
  // afterwards. Watch handles may outlive the hub. Idempotent.
  void Shutdown();

  // `events` are every change of the revisions (previous publication, revision],
  // in order, each with prev_kv set when the key existed before. Only one thread
  // may publish.
  void Publish(std::shared_ptr<const std::vector<Event>> events, int64_t revision);

  // Registers a paused watcher for `req`. `at_registration(published_revision)`
  // runs under the hub's lock, so the caller can take there a snapshot of its
  // history that holds every revision published so far.
  std::unique_ptr<Watch> Register(const WatchRequest& req,
                                  std::function<void(const WatchBatch&)> callback,
                                  absl::FunctionRef<void(int64_t published_revision)> at_registration);

  // Most events handed to one callback (a revision is never split).
  static constexpr size_t kMaxBatchEvents = 1000;

 private:
  struct Watcher;
  struct State;
  static void DispatchLoop(State* s);
  static void DeliverLocked(State* s, const std::shared_ptr<Watcher>& w);
  // Runs w's callback with s->mu released, marked running (~Watch waits for it).
  static void CallLocked(State* s, Watcher& w, const WatchBatch& batch);

  std::shared_ptr<State> state_;
  std::thread thread_;
};

// Cancels the watch when destroyed; waits for a running callback unless it is
// destroyed from that very callback.
class ChangeDispatcher::Watch : public WatchHandle {
 public:
  ~Watch() override;

  // First revision the watcher wants: the request's start, or published + 1 for 0.
  int64_t start_revision() const { return start_revision_; }
  // The revisions [start_revision(), history_revision()] come from the caller's
  // history (Start); later ones are delivered live.
  int64_t history_revision() const { return history_revision_; }

  // Queues `history` (the events of the watcher's range in [start_revision(),
  // history_revision()], in order, prev_kv as requested) and starts deliveries.
  // A watch from the past gets a batch whose revision is at least
  // `current_revision` (the store's, when the watch was made; the hub's
  // published revision may trail it by a group commit) once it has caught up
  // with it: its batch of events that gets there, or else one with no events.
  void Start(std::vector<Event> history, int64_t current_revision = 0);

 private:
  friend class ChangeDispatcher;
  Watch(std::shared_ptr<State> state, std::shared_ptr<Watcher> watcher, int64_t start_revision,
        int64_t history_revision);

  std::shared_ptr<State> state_;
  std::shared_ptr<Watcher> watcher_;
  const int64_t start_revision_;
  const int64_t history_revision_;
};

}  // namespace weft::storage
