// etcdserverpb.Watch: one bidi stream per client connection, carrying many
// watches, as etcd 3.4's serverWatchStream.

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "controller/etcd_api/internal.h"
#include "storage/etcdwire/etcd_wire.h"

namespace weft::controller::etcd_api {
namespace {

namespace wire = storage::etcdwire;
using etcdserverpb::WatchRequest;
using etcdserverpb::WatchResponse;

// clientv3.InvalidWatchID: answers not tied to one watch.
constexpr int64_t kNoWatchId = -1;

// Owned by gRPC; deletes itself in OnDone.
//
// Ordering: requests are handled one at a time on the worker pool (the next
// read starts when the previous request is done), so creates and cancels apply
// in the client's order. Responses go through one queue and one write at a
// time; a watch's "created" answer is queued before the store can call back,
// and its "canceled" answer after its handle is gone, so its events come in
// between.
//
// Ending: Stop() marks the stream done and hands the watch handles to the pool
// to be destroyed (their destructors wait for running callbacks). Finish is
// called once, by whoever sees the last of: handles released, no write in
// flight, no pool task pending.
class WatchStream final : public grpc::ServerBidiReactor<WatchRequest, WatchResponse>, public ServerStream {
 public:
  WatchStream(EtcdApiServer::Core* core, EtcdAccessCheck access)
      : core_(core), store_(core->store()), access_(std::move(access)) {
    if (!core_->AddStream(this)) {
      Stop(grpc::Status(grpc::StatusCode::UNAVAILABLE, "etcdserver: server stopped"));
      return;
    }
    StartRead(&req_);
  }

  void OnReadDone(bool ok) override {
    // !ok: the client closed its side or went away. etcd keeps sending until the
    // call ends (OnCancel), and so does this.
    if (!ok) return;
    {
      absl::MutexLock l(&mu_);
      if (done_) return;
      ++tasks_;
    }
    core_->workers().Schedule([this] {
      HandleRequest();
      bool read = false;
      {
        absl::MutexLock l(&mu_);
        read = !done_;
      }
      // Still counted as a task: the stream cannot finish (and be deleted)
      // before the read is started, and then not before it completes.
      if (read) StartRead(&req_);
      bool finish = false;
      {
        absl::MutexLock l(&mu_);
        --tasks_;
        finish = MaybeFinishLocked();
      }
      if (finish) FinishNow();
    });
  }

  void OnWriteDone(bool ok) override {
    in_flight_.reset();
    if (!ok) Stop(grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed"));
    WriteNext();
  }

  void OnCancel() override { Stop(grpc::Status::CANCELLED); }

  void OnDone() override {
    core_->RemoveStream(this);
    delete this;
  }

  void Stop(const grpc::Status& status) override {
    std::vector<std::unique_ptr<storage::WatchHandle>> handles;
    {
      absl::MutexLock l(&mu_);
      if (done_) return;
      done_ = true;
      final_ = status;
      for (auto& [id, w] : watches_) {
        w->canceled = true;
        if (w->handle) handles.push_back(std::move(w->handle));
      }
      watches_.clear();
      queue_.clear();
      ++tasks_;
    }
    core_->workers().Schedule([this, handles = std::move(handles)]() mutable {
      handles.clear();  // waits for running callbacks; none start afterwards
      bool finish = false;
      {
        absl::MutexLock l(&mu_);
        --tasks_;
        handles_released_ = true;
        finish = MaybeFinishLocked();
      }
      if (finish) FinishNow();
    });
  }

  void ProgressTick() override {
    bool start = false;
    {
      absl::MutexLock l(&mu_);
      if (done_) return;
      for (auto& [id, w] : watches_) {
        if (!w->progress_notify) continue;
        if (w->events_since_tick) {
          w->events_since_tick = false;  // etcd skips a tick after events
          continue;
        }
        auto resp = std::make_unique<WatchResponse>();
        core_->FillHeader(resp->mutable_header(), w->revision);
        resp->set_watch_id(w->id);
        start |= EnqueueLocked(std::move(resp));
      }
    }
    AfterEnqueue(start);
  }

 private:
  struct Watch {
    int64_t id = 0;
    bool prev_kv = false;
    bool progress_notify = false;
    bool no_put = false;
    bool no_delete = false;
    // Guarded by the stream's mu_:
    std::unique_ptr<storage::WatchHandle> handle;
    int64_t revision = 0;  // every event up to it has been queued
    bool events_since_tick = false;
    bool canceled = false;
  };

  void HandleRequest() {
    switch (req_.request_union_case()) {
      case WatchRequest::kCreateRequest: Create(req_.create_request()); break;
      case WatchRequest::kCancelRequest: Cancel(req_.cancel_request().watch_id()); break;
      case WatchRequest::kProgressRequest: Progress(); break;
      default: break;  // etcd ignores what it does not know
    }
  }

  void Create(const etcdserverpb::WatchCreateRequest& c) {
    auto w = std::make_shared<Watch>();
    w->prev_kv = c.prev_kv();
    w->progress_notify = c.progress_notify();
    for (int f : c.filters()) {
      if (f == etcdserverpb::WatchCreateRequest::NOPUT) w->no_put = true;
      if (f == etcdserverpb::WatchCreateRequest::NODELETE) w->no_delete = true;
    }
    storage::WatchRequest wr;
    wr.key = c.key().empty() ? std::string(1, '\0') : c.key();  // "\0" is the smallest key
    wr.range_end = c.range_end();
    wr.prev_kv = c.prev_kv();
    // Start 0 means "after what the created answer says": pin it to that revision.
    const int64_t revision = store_->CurrentRevision();
    wr.start_revision = c.start_revision() > 0 ? c.start_revision() : revision + 1;
    bool start = false;
    bool duplicate = false;
    // Refused as etcd refuses a watch it may not open: created, then canceled.
    const grpc::Status allowed = access_(EtcdOp::kWatch, wr.key, wr.range_end);
    {
      absl::MutexLock l(&mu_);
      if (done_) return;
      auto resp = std::make_unique<WatchResponse>();
      core_->FillHeader(resp->mutable_header(), revision);
      resp->set_created(true);
      duplicate = c.watch_id() != 0 && watches_.count(c.watch_id()) > 0;
      const int max_watches = core_->options().max_watches_per_stream;
      const bool too_many = !duplicate && watches_.size() >= static_cast<size_t>(max_watches);
      if (!allowed.ok()) {
        resp->set_watch_id(kNoWatchId);
        resp->set_canceled(true);
        resp->set_cancel_reason(allowed.error_message());
      } else if (duplicate || too_many) {
        resp->set_watch_id(kNoWatchId);
        resp->set_canceled(true);
        resp->set_cancel_reason(duplicate ? std::string("mvcc: duplicate watch ID provided on the WatchStream")
                                          : absl::StrCat("too many watches on this stream (", max_watches,
                                                         ", --max-watches-per-stream): cancel some or open "
                                                         "another stream"));
        duplicate = true;  // nothing to start
      } else {
        if (c.watch_id() != 0) {
          w->id = c.watch_id();
        } else {
          while (watches_.count(next_id_) > 0) ++next_id_;
          w->id = next_id_++;
        }
        w->revision = wr.start_revision - 1;
        watches_[w->id] = w;
        resp->set_watch_id(w->id);
      }
      start = EnqueueLocked(std::move(resp));
    }
    AfterEnqueue(start);
    if (duplicate || !allowed.ok()) return;

    absl::StatusOr<std::unique_ptr<storage::WatchHandle>> handle =
        store_->Watch(wr, [this, w](const storage::WatchBatch& b) { OnBatch(*w, b); });
    std::unique_ptr<storage::WatchHandle> drop;
    start = false;
    {
      absl::MutexLock l(&mu_);
      if (!handle.ok()) {
        auto it = watches_.find(w->id);
        if (it != watches_.end() && it->second == w) watches_.erase(it);
        if (done_ || w->canceled) return;
        w->canceled = true;
        auto resp = std::make_unique<WatchResponse>();
        resp->set_watch_id(w->id);
        resp->set_canceled(true);
        if (storage::IsCompacted(handle.status())) {
          // As etcd: the header carries revision 0, compact_revision says where
          // history starts now.
          core_->FillHeader(resp->mutable_header(), 0);
          resp->set_compact_revision(store_->CompactRevision());
        } else {
          core_->FillHeader(resp->mutable_header(), revision);
          resp->set_cancel_reason(ToEtcdStatus(handle.status()).error_message());
        }
        start = EnqueueLocked(std::move(resp));
      } else if (done_ || w->canceled) {
        drop = std::move(*handle);  // destroyed below, outside the lock
      } else {
        w->handle = std::move(*handle);
      }
    }
    drop.reset();
    AfterEnqueue(start);
  }

  void Cancel(int64_t id) {
    std::unique_ptr<storage::WatchHandle> handle;
    {
      absl::MutexLock l(&mu_);
      auto it = watches_.find(id);
      if (it == watches_.end()) return;  // etcd answers nothing
      it->second->canceled = true;
      handle = std::move(it->second->handle);
      watches_.erase(it);
    }
    handle.reset();  // no callback of this watch runs after this
    auto resp = std::make_unique<WatchResponse>();
    core_->FillHeader(resp->mutable_header());
    resp->set_watch_id(id);
    resp->set_canceled(true);
    bool start = false;
    {
      absl::MutexLock l(&mu_);
      if (done_) return;
      start = EnqueueLocked(std::move(resp));
    }
    AfterEnqueue(start);
  }

  void Progress() {
    // Only a revision every watch has caught up with is a true progress mark.
    int64_t revision = store_->CurrentRevision();
    bool start = false;
    {
      absl::MutexLock l(&mu_);
      if (done_) return;
      for (const auto& [id, w] : watches_) revision = std::min(revision, w->revision);
      auto resp = std::make_unique<WatchResponse>();
      core_->FillHeader(resp->mutable_header(), revision);
      resp->set_watch_id(kNoWatchId);
      start = EnqueueLocked(std::move(resp));
    }
    AfterEnqueue(start);
  }

  // On a store thread, serially for one watch.
  void OnBatch(Watch& w, const storage::WatchBatch& batch) {
    auto resp = std::make_unique<WatchResponse>();
    for (const storage::Event& ev : batch.events) {
      const bool put = ev.type == storage::Event::Type::kPut;
      if ((put && w.no_put) || (!put && w.no_delete)) continue;
      mvccpb::Event* out = resp->add_events();
      wire::ToProto(ev, out);
      if (!w.prev_kv) out->clear_prev_kv();
    }
    core_->FillHeader(resp->mutable_header(), batch.revision);
    resp->set_watch_id(w.id);
    bool start = false;
    {
      absl::MutexLock l(&mu_);
      if (done_ || w.canceled) return;
      w.revision = std::max(w.revision, batch.revision);
      // Nothing to say when every event was filtered out (or there were none).
      if (resp->events_size() == 0) return;
      w.events_since_tick = true;
      start = EnqueueLocked(std::move(resp));
    }
    AfterEnqueue(start);
  }

  // Queues `resp`; true when the caller must start the writer (WriteNext).
  bool EnqueueLocked(std::unique_ptr<WatchResponse> resp) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (queue_.size() >= core_->options().max_queued_watch_responses) {
      overflow_ = true;
      return false;
    }
    queue_.push_back(std::move(resp));
    if (writing_) return false;
    writing_ = true;
    return true;
  }

  void AfterEnqueue(bool start) {
    bool overflow = false;
    {
      absl::MutexLock l(&mu_);
      overflow = overflow_ && !done_;
    }
    // The client reads too slowly: let it reconnect and resume from its last
    // revision rather than hold an unbounded backlog.
    if (overflow) Stop(grpc::Status(grpc::StatusCode::UNAVAILABLE, "etcdserver: watch stream too slow"));
    if (start) WriteNext();
  }

  // Called by the one writer (writing_ == true).
  void WriteNext() {
    bool finish = false;
    {
      absl::MutexLock l(&mu_);
      if (done_ || queue_.empty()) {
        writing_ = false;
        finish = MaybeFinishLocked();
      } else {
        in_flight_ = std::move(queue_.front());
        queue_.pop_front();
      }
    }
    if (finish) {
      FinishNow();
    } else if (in_flight_) {
      StartWrite(in_flight_.get());
    }
  }

  bool MaybeFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!done_ || !handles_released_ || writing_ || tasks_ > 0 || finished_) return false;
    finished_ = true;
    return true;
  }

  void FinishNow() {
    grpc::Status status;
    {
      absl::MutexLock l(&mu_);
      status = final_;
    }
    Finish(status);
  }

  EtcdApiServer::Core* const core_;
  storage::Store* const store_;
  const EtcdAccessCheck access_;  // of the caller who opened the stream
  WatchRequest req_;                         // the read in progress / the request being handled
  std::unique_ptr<WatchResponse> in_flight_;  // only the writer touches it

  absl::Mutex mu_;
  std::map<int64_t, std::shared_ptr<Watch>> watches_ ABSL_GUARDED_BY(mu_);
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<std::unique_ptr<WatchResponse>> queue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool overflow_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool handles_released_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  int tasks_ ABSL_GUARDED_BY(mu_) = 0;
  grpc::Status final_ ABSL_GUARDED_BY(mu_);
};

class WatchService final : public etcdserverpb::Watch::CallbackService {
 public:
  explicit WatchService(EtcdApiServer::Core* core) : core_(core) {}
  grpc::ServerBidiReactor<WatchRequest, WatchResponse>* Watch(grpc::CallbackServerContext* ctx) override {
    return new WatchStream(core_, core_->Access(*ctx));
  }

 private:
  EtcdApiServer::Core* const core_;
};

}  // namespace

std::unique_ptr<grpc::Service> NewWatchService(EtcdApiServer::Core* core) {
  return std::make_unique<WatchService>(core);
}

}  // namespace weft::controller::etcd_api
