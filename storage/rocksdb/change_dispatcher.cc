#include "storage/rocksdb/change_dispatcher.h"

#include <algorithm>
#include <deque>
#include <iterator>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace weft::storage {

struct ChangeDispatcher::Watcher {
  std::string key;
  std::string range_end;
  bool prev_kv = false;
  std::function<void(const WatchBatch&)> callback;
  // The rest is guarded by State::mu.
  int64_t next_revision = 0;       // events below it are not this watcher's
  std::vector<Event> buffer;       // routed, not yet delivered, in order
  int64_t buffered_revision = 0;   // store revision the buffer brings it up to
  bool started = false;
  bool cancelled = false;
  // A watch from the past is owed word that it has caught up with this revision
  // (the store's when it was made, which the published one may trail): its batch
  // of events that reaches it, or else one empty batch. 0: nothing owed.
  int64_t caught_up_owed = 0;

  // The empty batch is due: nothing left to deliver will say as much.
  bool CaughtUpDue() const { return caught_up_owed > 0 && buffer.empty() && buffered_revision >= caught_up_owed; }
};

struct ChangeDispatcher::State {
  struct Published {
    std::shared_ptr<const std::vector<Event>> events;
    int64_t revision;
  };
  absl::Mutex mu;
  std::deque<Published> queue ABSL_GUARDED_BY(mu);
  int64_t published_revision ABSL_GUARDED_BY(mu) = 0;
  std::vector<std::shared_ptr<Watcher>> watchers ABSL_GUARDED_BY(mu);
  const Watcher* running ABSL_GUARDED_BY(mu) = nullptr;  // its callback is running
  std::thread::id dispatch_thread ABSL_GUARDED_BY(mu);
  bool work ABSL_GUARDED_BY(mu) = false;
  bool stop ABSL_GUARDED_BY(mu) = false;
};

ChangeDispatcher::ChangeDispatcher() : state_(std::make_shared<State>()) {
  thread_ = std::thread(&ChangeDispatcher::DispatchLoop, state_.get());
}

ChangeDispatcher::~ChangeDispatcher() { Shutdown(); }

void ChangeDispatcher::Shutdown() {
  {
    absl::MutexLock l(&state_->mu);
    state_->stop = true;
  }
  if (thread_.joinable()) thread_.join();
}

void ChangeDispatcher::Publish(std::shared_ptr<const std::vector<Event>> events, int64_t revision) {
  absl::MutexLock l(&state_->mu);
  if (state_->stop) return;
  state_->queue.push_back({std::move(events), revision});
  state_->published_revision = revision;
  state_->work = true;
}

std::unique_ptr<ChangeDispatcher::Watch> ChangeDispatcher::Register(
    const WatchRequest& req, std::function<void(const WatchBatch&)> callback,
    absl::FunctionRef<void(int64_t published_revision)> at_registration) {
  auto w = std::make_shared<Watcher>();
  w->key = req.key;
  w->range_end = req.range_end;
  w->prev_kv = req.prev_kv;
  w->callback = std::move(callback);
  absl::MutexLock l(&state_->mu);
  const int64_t published = state_->published_revision;
  at_registration(published);
  const int64_t start = req.start_revision > 0 ? req.start_revision : published + 1;
  // Events up to `published` come from the caller's history; queued but not yet
  // routed ones among them must not be routed here a second time.
  w->next_revision = std::max(start, published + 1);
  w->buffered_revision = published;
  state_->watchers.push_back(w);
  return std::unique_ptr<Watch>(new Watch(state_, std::move(w), start, published));
}

ChangeDispatcher::Watch::Watch(std::shared_ptr<State> state, std::shared_ptr<Watcher> watcher,
                       int64_t start_revision, int64_t history_revision)
    : state_(std::move(state)),
      watcher_(std::move(watcher)),
      start_revision_(start_revision),
      history_revision_(history_revision) {}

ChangeDispatcher::Watch::~Watch() {
  State* s = state_.get();
  const Watcher* w = watcher_.get();
  absl::MutexLock l(&s->mu);
  watcher_->cancelled = true;
  watcher_->buffer.clear();
  auto& ws = s->watchers;
  ws.erase(std::remove(ws.begin(), ws.end(), watcher_), ws.end());
  // From inside its own callback the watch is cancelled already: the dispatcher
  // checks `cancelled` before every call. Waiting there would deadlock.
  if (std::this_thread::get_id() != s->dispatch_thread) {
    auto not_running = [s, w]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return s->running != w; };
    s->mu.Await(absl::Condition(&not_running));
  }
}

void ChangeDispatcher::Watch::Start(std::vector<Event> history, int64_t current_revision) {
  absl::MutexLock l(&state_->mu);
  Watcher& w = *watcher_;
  const int64_t caught_up = std::max(history_revision_, current_revision);
  w.caught_up_owed = start_revision_ <= caught_up ? caught_up : 0;
  w.buffer.insert(w.buffer.begin(), std::make_move_iterator(history.begin()),
                  std::make_move_iterator(history.end()));
  w.started = true;
  state_->work = true;
}

void ChangeDispatcher::DispatchLoop(State* s) {
  absl::MutexLock l(&s->mu);
  s->dispatch_thread = std::this_thread::get_id();
  while (true) {
    auto has_work = [s]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return s->stop || s->work; };
    s->mu.Await(absl::Condition(&has_work));
    if (s->stop) return;
    s->work = false;
    while (!s->queue.empty()) {
      State::Published p = std::move(s->queue.front());
      s->queue.pop_front();
      for (const auto& w : s->watchers) {
        for (const Event& ev : *p.events) {
          if (ev.kv.mod_revision < w->next_revision) continue;
          if (!KeyInRange(ev.kv.key, w->key, w->range_end)) continue;
          w->buffer.push_back(ev);
          if (!w->prev_kv) w->buffer.back().prev_kv.reset();
        }
        w->next_revision = std::max(w->next_revision, p.revision + 1);
        w->buffered_revision = std::max(w->buffered_revision, p.revision);
      }
    }
    std::vector<std::shared_ptr<Watcher>> ready;
    for (const auto& w : s->watchers) {
      if (w->started && (!w->buffer.empty() || w->CaughtUpDue())) ready.push_back(w);
    }
    for (const auto& w : ready) {
      DeliverLocked(s, w);
      if (s->stop) return;
    }
  }
}

void ChangeDispatcher::CallLocked(State* s, Watcher& w, const WatchBatch& batch) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  s->running = &w;
  s->mu.Unlock();
  w.callback(batch);
  s->mu.Lock();
  s->running = nullptr;
}

void ChangeDispatcher::DeliverLocked(State* s, const std::shared_ptr<Watcher>& w)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (w->CaughtUpDue() && !w->cancelled) {
    w->caught_up_owed = 0;
    WatchBatch progress;  // no events: the revision it is up to
    progress.revision = w->buffered_revision;
    CallLocked(s, *w, progress);
    return;
  }
  while (!w->cancelled && !w->buffer.empty()) {
    std::vector<Event> events;
    events.swap(w->buffer);
    const int64_t upto = w->buffered_revision;
    size_t i = 0;
    while (i < events.size()) {
      size_t j = std::min(i + kMaxBatchEvents, events.size());
      while (j < events.size() && events[j].kv.mod_revision == events[j - 1].kv.mod_revision) ++j;
      WatchBatch batch;
      batch.events.assign(std::make_move_iterator(events.begin() + i),
                          std::make_move_iterator(events.begin() + j));
      batch.revision = batch.events.back().kv.mod_revision;
      if (j == events.size()) batch.revision = std::max(batch.revision, upto);
      if (w->cancelled || s->stop) return;
      if (batch.revision >= w->caught_up_owed) w->caught_up_owed = 0;  // this batch says as much
      CallLocked(s, *w, batch);
      i = j;
    }
  }
}

}  // namespace weft::storage
