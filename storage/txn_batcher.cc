#include "storage/txn_batcher.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"

namespace weft::storage {

struct TxnBatcher::Pending {
  const TxnRequest* req = nullptr;
  absl::StatusOr<TxnResponse> result;
  bool done = false;
  bool alone = false;  // the merged transaction failed: run it by itself
  bool taken = false;  // in a batch being committed
  // Asynchronous requests: the batcher owns the request and answers `callback`.
  TxnRequest owned;
  Done callback;
  bool revision_only = false;  // RevisionAsync: an empty request, answered with the batch's revision
};

TxnBatcher::TxnBatcher(Store* store, Options options) : store_(store), opts_(std::move(options)) {}

TxnBatcher::~TxnBatcher() { Stop(); }

void TxnBatcher::Stop() {
  std::vector<std::thread> committers;
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
    committers.swap(committers_);
  }
  for (std::thread& t : committers) t.join();
}

bool TxnBatcher::Mergeable(const TxnRequest& req) {
  if (!req.failure.empty() || req.success.empty()) return false;
  for (const Compare& c : req.compares) {
    if (!c.range_end.empty()) return false;
  }
  for (const RequestOp& op : req.success) {
    switch (op.type) {
      case RequestOp::Type::kPut:
        break;
      case RequestOp::Type::kDeleteRange:
        if (!op.delete_range.range_end.empty() || op.delete_range.prev_kv) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

namespace {

void KeysOf(const TxnRequest& req, std::vector<const std::string*>* keys) {
  keys->clear();
  for (const Compare& c : req.compares) keys->push_back(&c.key);
  for (const RequestOp& op : req.success) {
    keys->push_back(op.type == RequestOp::Type::kPut ? &op.put.key : &op.delete_range.key);
  }
}

}  // namespace

std::vector<TxnBatcher::Pending*> TxnBatcher::TakeBatchLocked() {
  std::vector<Pending*> batch;
  absl::flat_hash_set<std::string> batch_keys;
  std::vector<const std::string*> keys;
  size_t compares = 0, ops = 0;
  int writes = 0;
  for (auto it = queue_.begin(); it != queue_.end();) {
    Pending* p = *it;
    // Batching off: one write per transaction (revision reads still ride along).
    if (!opts_.enabled && writes > 0 && !p->revision_only) {
      ++it;
      continue;
    }
    KeysOf(*p->req, &keys);
    bool clash = false;
    for (const std::string* k : keys) {
      // A key touched twice by one request is fine; by two requests it is not
      // (etcd refuses duplicate keys in one transaction's writes, and the
      // second request's compare must see the first one's write).
      if (batch_keys.contains(*k)) {
        clash = true;
        break;
      }
    }
    const bool fits = compares + p->req->compares.size() <= opts_.max_ops &&
                      ops + p->req->success.size() <= opts_.max_ops;
    if (clash || (!batch.empty() && !fits)) {
      ++it;
      continue;
    }
    for (const std::string* k : keys) batch_keys.insert(*k);
    p->taken = true;
    if (!p->revision_only) ++writes;
    compares += p->req->compares.size();
    ops += p->req->success.size();
    batch.push_back(p);
    it = queue_.erase(it);
  }
  return batch;
}

void TxnBatcher::Commit(const std::vector<Pending*>& batch) {
  int writes = 0;
  for (const Pending* p : batch) writes += p->revision_only ? 0 : 1;
  if (opts_.on_commit && writes > 0) opts_.on_commit(writes);
  if (batch.size() == 1) {
    batch[0]->result = store_->Txn(*batch[0]->req);
    return;
  }
  TxnRequest merged;
  for (const Pending* p : batch) {
    merged.compares.insert(merged.compares.end(), p->req->compares.begin(), p->req->compares.end());
    merged.success.insert(merged.success.end(), p->req->success.begin(), p->req->success.end());
  }
  absl::StatusOr<TxnResponse> r = store_->Txn(merged);
  // Each request's own answer starts as a success at the merged revision (a
  // revision read needs nothing more, and gets it from any answer).
  auto answer_at_revision = [&r]() {
    TxnResponse own;
    own.succeeded = true;
    own.revision = r->revision;
    return own;
  };
  if (!r.ok() || !r->succeeded) {
    for (Pending* p : batch) {
      if (p->revision_only && r.ok()) {
        p->result = answer_at_revision();
      } else {
        p->alone = true;
      }
    }
    return;
  }
  size_t next = 0;
  for (Pending* p : batch) {
    TxnResponse own = answer_at_revision();
    const size_t n = p->req->success.size();
    for (size_t i = 0; i < n && next + i < r->responses.size(); ++i) {
      own.responses.push_back(std::move(r->responses[next + i]));
    }
    next += n;
    p->result = std::move(own);
  }
}

void TxnBatcher::LeadBatchLocked() {
  std::vector<Pending*> batch = TakeBatchLocked();  // never empty: the queue is not
  ++in_flight_;
  mu_.Unlock();
  Commit(batch);
  // Answer the asynchronous requests of the batch here; a failed merge re-runs
  // each of them alone (the synchronous ones re-run their own).
  for (Pending* p : batch) {
    if (!p->callback) continue;
    if (p->alone) p->result = store_->Txn(p->owned);
    p->callback(std::move(p->result));
  }
  mu_.Lock();
  --in_flight_;
  for (Pending* p : batch) {
    if (p->callback) {
      delete p;
    } else if (!p->alone) {
      p->done = true;
    }
  }
}

absl::StatusOr<TxnResponse> TxnBatcher::Txn(const TxnRequest& req) {
  if (!opts_.enabled || !Mergeable(req)) {
    if (opts_.on_commit) opts_.on_commit(1);
    return store_->Txn(req);
  }
  Pending me;
  me.req = &req;
  absl::MutexLock l(&mu_);
  queue_.push_back(&me);
  while (true) {
    auto ready = [this, &me]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return me.done || me.alone || (!me.taken && in_flight_ < opts_.max_in_flight);
    };
    mu_.Await(absl::Condition(&ready));
    if (me.done) return std::move(me.result);
    if (me.alone) break;
    // The pipeline has room: lead the next batch (which may not include us when
    // our keys clash with earlier requests; we then go round again).
    LeadBatchLocked();
  }
  // Our merged transaction failed: run our own, in parallel with the others of
  // that batch (they are independent by construction).
  mu_.Unlock();
  absl::StatusOr<TxnResponse> r = store_->Txn(req);
  mu_.Lock();
  return r;
}

void TxnBatcher::TxnAsync(TxnRequest req, Done done) {
  // With batching off, asynchronous requests still go through the committer
  // threads (max_in_flight of them), one request per transaction.
  if (Mergeable(req)) {
    auto p = std::make_unique<Pending>();
    p->owned = std::move(req);
    p->callback = std::move(done);
    if (Enqueue(p)) return;
    req = std::move(p->owned);
    done = std::move(p->callback);
  }
  if (opts_.on_commit) opts_.on_commit(1);
  done(store_->Txn(req));
}

void TxnBatcher::RevisionAsync(std::function<void(absl::StatusOr<int64_t>)> done) {
  auto p = std::make_unique<Pending>();
  p->revision_only = true;
  p->callback = [done](absl::StatusOr<TxnResponse> r) {
    if (!r.ok()) return done(r.status());
    done(r->revision);
  };
  if (Enqueue(p)) return;
  p->callback(store_->Txn(TxnRequest()));  // stopped: read it here
}

bool TxnBatcher::Enqueue(std::unique_ptr<Pending>& p) {
  absl::MutexLock l(&mu_);
  if (stopping_) return false;
  p->req = &p->owned;
  queue_.push_back(p.release());
  while (static_cast<int>(committers_.size()) < opts_.max_in_flight) {
    committers_.emplace_back([this] { CommitterLoop(); });
  }
  return true;
}

void TxnBatcher::CommitterLoop() {
  absl::MutexLock l(&mu_);
  while (true) {
    auto work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return (!queue_.empty() && in_flight_ < opts_.max_in_flight) || (stopping_ && queue_.empty());
    };
    mu_.Await(absl::Condition(&work));
    if (queue_.empty()) return;  // stopping, and everything queued is answered
    LeadBatchLocked();
  }
}

size_t TxnBatcher::QueueLength() {
  absl::MutexLock l(&mu_);
  return queue_.size();
}

}  // namespace weft::storage
