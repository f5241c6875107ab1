#include "controller/lease_fanout.h"

#include <algorithm>
#include <optional>

#include "common/log.h"
#include "common/retry_hint.h"
#include "controller/grpc_services.h"
#include "grpcpp/support/proto_buffer_writer.h"

namespace weft::controller {

using weft::v1::WatchLeasesResponse;

// One WatchLeases call. Owned by gRPC; deletes itself in OnDone.
class LeaseFanout::Stream : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  Stream(LeaseFanout* hub, grpc::CallbackServerContext* ctx) : hub_(hub), ctx_(ctx) {}

  // Queues `m` (called under the hub's lock; never blocks on the network) and
  // writes it unless a write is in flight.
  void Enqueue(SharedPtr m, size_t max_queue) {
    if (Push(std::move(m), max_queue)) WriteNext();
  }

  // Queues `m`; true when the caller has become this stream's writer and must
  // call StartWriting() (soon, on any thread: until then the stream cannot end).
  bool Push(SharedPtr m, size_t max_queue) {
    bool start = false;
    {
      absl::MutexLock l(&mu_);
      if (done_) return false;
      // Events already in its snapshot (or before its resume point) are skipped,
      // and so are bookmarks that would move its resume point backwards.
      if (m->is_events ? m->revision <= enqueued_revision_ : m->revision < enqueued_revision_) return false;
      if (queue_.size() >= max_queue) {
        queue_.clear();
        resync_ = true;
      } else {
        queue_.push_back(std::move(m));
      }
      if (hub_->opts_.hooks.on_queue_depth) hub_->opts_.hooks.on_queue_depth(queue_.size());
      start = !writing_;
      if (start) writing_ = true;
    }
    return start;
  }

  // For the writer that Push() named.
  void StartWriting() { WriteNext(); }

  // Starts the stream: first message(s) queued by the hub under its lock.
  void SetStart(int64_t revision) {
    absl::MutexLock l(&mu_);
    enqueued_revision_ = revision;
  }

  bool Idle(absl::Time now, absl::Duration interval) {
    absl::MutexLock l(&mu_);
    return !done_ && !writing_ && queue_.empty() && now - last_write_ >= interval;
  }

  // Ends the stream with `status`, telling the client when to call again if
  // `retry_after` is set (common/retry_hint.h). Finish is called exactly once:
  // here when no write is in flight, else by the writer when its write completes.
  void Cancel(grpc::Status status, std::optional<absl::Duration> retry_after = std::nullopt) {
    bool finish = false;
    {
      absl::MutexLock l(&mu_);
      if (done_) return;
      done_ = true;
      if (retry_after) SetRetryAfter(*ctx_, *retry_after);  // read at Finish, after this
      final_ = status;
      if (!writing_) {
        writing_ = true;  // no writer may start now
        finish = true;
      }
    }
    if (finish) Finish(status);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      absl::MutexLock l(&mu_);
      if (!done_) {
        done_ = true;
        final_ = grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed");
      }
    } else if (in_flight_) {
      if (hub_->opts_.hooks.on_events_sent && in_flight_->events > 0) {
        hub_->opts_.hooks.on_events_sent(in_flight_->events);
      }
      if (hub_->opts_.hooks.on_fanout_latency && in_flight_->is_events) {
        hub_->opts_.hooks.on_fanout_latency(hub_->opts_.clock->Now() - in_flight_->published);
      }
    }
    in_flight_.reset();
    WriteNext();
  }

  void OnCancel() override { Cancel(grpc::Status::CANCELLED); }

  void OnDone() override {
    hub_->Remove(this);
    delete this;
  }

 private:
  // Called with writing_ == true by the one thread allowed to write.
  void WriteNext() {
    SharedPtr next;
    bool resync = false;
    bool finish = false;
    grpc::Status final_status;
    {
      absl::MutexLock l(&mu_);
      if (done_) {
        writing_ = false;
        finish = true;
        final_status = final_;
      }
    }
    if (finish) {
      Finish(final_status);  // we are the writer: the one place that finishes after a write
      return;
    }
    {
      absl::MutexLock l(&mu_);
      resync = resync_;
      resync_ = false;
      while (!resync && !queue_.empty()) {
        next = std::move(queue_.front());
        queue_.pop_front();
        if (next->is_events && next->revision <= sent_revision_) {
          next.reset();  // covered by a snapshot sent before it
          continue;
        }
        break;
      }
      if (!resync && !next) {
        writing_ = false;
        return;
      }
    }
    if (resync) {
      if (hub_->opts_.hooks.on_resync) hub_->opts_.hooks.on_resync();
      next = hub_->Snapshot(WatchLeasesResponse::Snapshot::REASON_RESYNC);
      absl::MutexLock l(&mu_);
      queue_.clear();  // everything queued is older than or in the snapshot
      enqueued_revision_ = std::max(enqueued_revision_, next->revision);
    }
    {
      absl::MutexLock l(&mu_);
      sent_revision_ = std::max(sent_revision_, next->revision);
      last_write_ = hub_->opts_.clock->Now();
    }
    in_flight_ = next;
    grpc::WriteOptions options;
    if (!in_flight_->is_snapshot) options.set_no_compression();
    StartWrite(&in_flight_->bytes, options);
  }

  LeaseFanout* const hub_;
  grpc::CallbackServerContext* const ctx_;  // gRPC's, valid until OnDone
  SharedPtr in_flight_;  // only touched by the writing thread

  absl::Mutex mu_;
  std::deque<SharedPtr> queue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool resync_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_ ABSL_GUARDED_BY(mu_);
  int64_t enqueued_revision_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t sent_revision_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_write_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

LeaseFanout::LeaseFanout(LeaseManager* manager, Options options) : manager_(manager), opts_(std::move(options)) {
  if (opts_.senders > 1) senders_ = std::make_unique<ThreadPool>(opts_.senders - 1);
  {
    absl::MutexLock l(&mu_);
    revision_ = manager_->AppliedRevision();
    history_floor_ = revision_;
  }
  bookmark_timer_ = timers_.Every(std::min(opts_.bookmark_interval / 4, absl::Seconds(1)), [this] { Bookmarks(); });
}

LeaseFanout::~LeaseFanout() { Shutdown(); }

void LeaseFanout::Drain(absl::Duration window) {
  std::vector<Stream*> streams;
  {
    absl::MutexLock l(&mu_);
    streams.assign(streams_.begin(), streams_.end());
  }
  if (streams.empty() || window <= absl::ZeroDuration()) return;
  // One batch every 100 ms at most (fewer batches than streams when few).
  const size_t batches = std::clamp<size_t>(window / absl::Milliseconds(100), 1, streams.size());
  const absl::Duration pause = window / static_cast<double>(batches);
  WEFT_LOG(INFO, "draining watch streams")
      .With("streams", static_cast<int64_t>(streams.size()))
      .With("window", absl::FormatDuration(window));
  for (size_t b = 0; b < batches; ++b) {
    {
      absl::MutexLock l(&mu_);
      // A stream is deleted only after it left streams_ (Remove): the ones
      // still in it are alive.
      for (size_t i = b * streams.size() / batches; i < (b + 1) * streams.size() / batches; ++i) {
        // An agent with no other replica comes back one window later: after
        // this controller is gone, in the same ramp (common/retry_hint.h).
        if (streams_.contains(streams[i])) {
          streams[i]->Cancel(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                          "controller shutting down: resume the watch on another replica"),
                             window);
        }
      }
    }
    if (b + 1 < batches) opts_.clock->SleepFor(pause);
  }
}

void LeaseFanout::Shutdown() {
  std::vector<Stream*> streams;
  {
    absl::MutexLock l(&mu_);
    if (!shutdown_) {
      shutdown_ = true;
    }
    streams.assign(streams_.begin(), streams_.end());
    for (Stream* s : streams) {
      s->Cancel(grpc::Status(grpc::StatusCode::UNAVAILABLE, "controller shutting down"));
    }
  }
  timers_.Cancel(bookmark_timer_);
  // Writes handed to the senders run (each finds its stream cancelled and
  // finishes it); one published after this runs on the publisher's thread.
  if (senders_) senders_->Stop();
}

size_t LeaseFanout::StreamCount() {
  absl::MutexLock l(&mu_);
  return streams_.size();
}

LeaseFanout::SharedPtr LeaseFanout::Serialize(const WatchLeasesResponse& msg, int64_t events, absl::Time now) {
  auto out = std::make_shared<Shared>();
  bool own = false;
  grpc::Status s = grpc::GenericSerialize<grpc::ProtoBufferWriter, WatchLeasesResponse>(msg, &out->bytes, &own);
  if (!s.ok()) {
    WEFT_LOG(ERROR, "cannot serialize watch message").With("err", s.error_message());
  }
  out->revision = msg.revision();
  out->events = events;
  out->is_events = msg.has_events();
  out->is_snapshot = msg.has_snapshot();
  out->published = now;
  return out;
}

LeaseFanout::SharedPtr LeaseFanout::EventsAfter(const HistoryEntry& h, int64_t r) {
  grpc::ByteBuffer bytes(h.message->bytes);  // shares the slices
  WatchLeasesResponse batch;
  if (!grpc::GenericDeserialize<grpc::ProtoBufferReader, WatchLeasesResponse>(&bytes, &batch).ok()) {
    WEFT_LOG(ERROR, "cannot read back a watch message from history; sending it whole");
    return h.message;
  }
  WatchLeasesResponse after;
  after.set_revision(batch.revision());
  for (const auto& e : batch.events().events()) {
    if (e.revision() > r) *after.mutable_events()->add_events() = e;
  }
  return Serialize(after, after.events().events_size(), h.message->published);
}

LeaseFanout::SharedPtr LeaseFanout::Snapshot(WatchLeasesResponse::Snapshot::Reason reason) {
  // A snapshot taken at revision R is the lease set at R: while no lease has
  // changed after R it is the current one.
  const int64_t changed_at = manager_->LeaseSetRevision();
  {
    absl::MutexLock l(&snapshot_mu_);
    auto it = snapshots_.find(reason);
    if (it != snapshots_.end() && it->second->revision >= changed_at) {
      if (opts_.hooks.on_snapshot) opts_.hooks.on_snapshot(true);
      return it->second;
    }
  }
  WatchLeasesResponse msg;
  int64_t revision = 0;
  auto* snap = msg.mutable_snapshot();
  snap->set_reason(reason);
  for (const LeaseRecord& rec : manager_->List(&revision)) ToProto(rec, snap->add_leases());
  msg.set_revision(revision);
  SharedPtr out = Serialize(msg, 0, opts_.clock->Now());
  {
    absl::MutexLock l(&snapshot_mu_);
    SharedPtr& cached = snapshots_[reason];
    if (!cached || cached->revision <= out->revision) cached = out;
  }
  if (opts_.hooks.on_snapshot) opts_.hooks.on_snapshot(false);
  return out;
}

void LeaseFanout::Enqueue(Stream* s, SharedPtr m) { s->Enqueue(std::move(m), opts_.max_queue); }

void LeaseFanout::Publish(const std::vector<weft::v1::LeaseEvent>& events, int64_t revision) {
  std::vector<Stream*> writers;
  {
    absl::MutexLock l(&mu_);
    PublishLocked(events, revision, &writers);
  }
  StartWriting(std::move(writers));
}

void LeaseFanout::StartWriting(std::vector<Stream*> writers) {
  // Each write start costs a few tens of microseconds in gRPC and the kernel;
  // with thousands of streams they are shared out among the senders, the
  // publishing thread taking the first share. Streams named by Push() cannot
  // end before their write starts, so the pointers stay valid meanwhile.
  const size_t shares = senders_ && writers.size() >= kMinStreamsPerSender * 2
                            ? std::min<size_t>(opts_.senders, writers.size() / kMinStreamsPerSender)
                            : 1;
  auto share = std::make_shared<std::vector<Stream*>>(std::move(writers));
  for (size_t i = 1; i < shares; ++i) {
    senders_->Schedule([share, i, shares] {
      for (size_t k = i * share->size() / shares; k < (i + 1) * share->size() / shares; ++k) {
        (*share)[k]->StartWriting();
      }
    });
  }
  for (size_t k = 0; k < share->size() / shares; ++k) (*share)[k]->StartWriting();
}

void LeaseFanout::PublishLocked(const std::vector<weft::v1::LeaseEvent>& events, int64_t revision,
                             std::vector<Stream*>* writers) {
  revision_ = std::max(revision_, revision);
  for (auto it = ahead_.begin(); it != ahead_.end();) {
    auto cur = it++;
    if (revision_ >= cur->second.first) ahead_.erase(cur);  // caught up
  }
  if (events.empty()) return;
  {
    // Snapshots older than these events go now (their memory with them). One
    // listed after the index applied them (a stream that opened between the
    // apply and this call) already holds them and stays.
    absl::MutexLock l(&snapshot_mu_);
    absl::erase_if(snapshots_, [revision](const auto& kv) { return kv.second->revision < revision; });
  }
  WatchLeasesResponse msg;
  for (const auto& e : events) *msg.mutable_events()->add_events() = e;
  msg.set_revision(revision);
  SharedPtr shared = Serialize(msg, static_cast<int64_t>(events.size()), opts_.clock->Now());
  history_.push_back({revision, events.front().revision(), shared});
  history_events_ += shared->events;
  while (history_events_ > opts_.history && history_.size() > 1) {
    history_events_ -= history_.front().message->events;
    history_floor_ = history_.front().revision;
    history_.pop_front();
  }
  writers->reserve(streams_.size());
  for (Stream* s : streams_) {
    if (s->Push(shared, opts_.max_queue)) writers->push_back(s);
  }
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* LeaseFanout::Open(grpc::CallbackServerContext* ctx,
                                                           const grpc::ByteBuffer* request) {
  if (opts_.compress_snapshots) ctx->set_compression_algorithm(GRPC_COMPRESS_GZIP);
  auto* stream = new Stream(this, ctx);
  weft::v1::WatchLeasesRequest req;
  if (!grpc::GenericDeserialize<grpc::ProtoBufferReader, weft::v1::WatchLeasesRequest>(
           const_cast<grpc::ByteBuffer*>(request), &req)
           .ok()) {
    stream->Cancel(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "request: cannot parse WatchLeasesRequest"));
    return stream;
  }
  if (req.start_revision() < 0) {
    stream->Cancel(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "start_revision: must be >= 0"));
    return stream;
  }
  absl::MutexLock l(&mu_);
  if (shutdown_) {
    stream->Cancel(grpc::Status(grpc::StatusCode::UNAVAILABLE, "controller shutting down"));
    return stream;
  }
  streams_.insert(stream);
  if (opts_.hooks.on_streams) opts_.hooks.on_streams(+1);
  const int64_t r = req.start_revision();
  if (r > 0 && r >= history_floor_ && r <= revision_) {
    // Resume from history: only what happened after R.
    stream->SetStart(r);
    bool any = false;
    for (const auto& h : history_) {
      if (h.revision > r) {
        Enqueue(stream, h.first_revision > r ? h.message : EventsAfter(h, r));
        any = true;
      }
    }
    if (!any) {
      // Nothing new: a bookmark tells the client it is current.
      WatchLeasesResponse bm;
      bm.mutable_bookmark();
      bm.set_revision(revision_);
      Enqueue(stream, Serialize(bm, 0, opts_.clock->Now()));
    }
    return stream;
  }
  if (r > revision_) {
    // Ahead of this replica (the client saw that revision on another one): what
    // comes after R is delivered as this replica gets there.
    stream->SetStart(r);
    ahead_[stream] = {r, opts_.clock->Now() + opts_.ahead_wait};
    return stream;
  }
  SharedPtr snap = Snapshot(r == 0 ? WatchLeasesResponse::Snapshot::REASON_NEW_STREAM
                                   : WatchLeasesResponse::Snapshot::REASON_COMPACTED);
  stream->SetStart(snap->revision);
  Enqueue(stream, snap);
  return stream;
}

void LeaseFanout::Remove(Stream* s) {
  absl::MutexLock l(&mu_);
  ahead_.erase(s);
  if (streams_.erase(s) && opts_.hooks.on_streams) opts_.hooks.on_streams(-1);
}

void LeaseFanout::Bookmarks() {
  absl::MutexLock l(&mu_);
  const absl::Time now = opts_.clock->Now();
  for (auto it = ahead_.begin(); it != ahead_.end();) {
    auto cur = it++;
    if (now < cur->second.second) continue;
    // Never got there: the client's revision is not this store's future.
    WEFT_LOG(WARN, "watch resumed ahead of this replica and it did not get there; sending a snapshot")
        .With("start_revision", cur->second.first)
        .With("revision", revision_);
    SharedPtr snap = Snapshot(WatchLeasesResponse::Snapshot::REASON_AHEAD);
    cur->first->SetStart(snap->revision);
    Enqueue(cur->first, snap);
    ahead_.erase(cur);
  }
  SharedPtr bookmark;
  for (Stream* s : streams_) {
    if (!s->Idle(now, opts_.bookmark_interval)) continue;
    if (!bookmark) {
      WatchLeasesResponse bm;
      bm.mutable_bookmark();
      bm.set_revision(revision_);
      bookmark = Serialize(bm, 0, now);
    }
    Enqueue(s, bookmark);
  }
}

}  // namespace weft::controller
