#pragma once
// Request builders and a watch recorder for tests of Store implementations
// (storage/store_conformance.h and each implementation's own tests).

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "storage/store.h"

namespace weft::storage {

// The range end (and key) that covers every key: "\0".
inline const std::string kAllKeys(1, '\0');

inline PutRequest PutReq(const std::string& key, const std::string& value, int64_t lease = 0) {
  PutRequest r;
  r.key = key;
  r.value = value;
  r.lease = lease;
  return r;
}

inline RangeRequest RangeReq(const std::string& key, const std::string& end = "", int64_t revision = 0) {
  RangeRequest r;
  r.key = key;
  r.range_end = end;
  r.revision = revision;
  return r;
}

inline DeleteRangeRequest DeleteReq(const std::string& key, const std::string& end = "") {
  DeleteRangeRequest r;
  r.key = key;
  r.range_end = end;
  return r;
}

inline RequestOp PutOp(const std::string& key, const std::string& value, int64_t lease = 0) {
  RequestOp op;
  op.type = RequestOp::Type::kPut;
  op.put = PutReq(key, value, lease);
  return op;
}

inline RequestOp RangeOp(const std::string& key, const std::string& end = "", int64_t revision = 0) {
  RequestOp op;
  op.type = RequestOp::Type::kRange;
  op.range = RangeReq(key, end, revision);
  return op;
}

inline RequestOp DeleteOp(const std::string& key, const std::string& end = "") {
  RequestOp op;
  op.type = RequestOp::Type::kDeleteRange;
  op.delete_range = DeleteReq(key, end);
  return op;
}

inline Compare Cmp(const std::string& key, Compare::Target target, Compare::Result result, int64_t operand,
                   const std::string& value = "") {
  Compare c;
  c.key = key;
  c.target = target;
  c.result = result;
  c.operand = operand;
  c.value = value;
  return c;
}

inline WatchRequest WatchReq(const std::string& key, const std::string& end = "", int64_t start_revision = 0,
                             bool prev_kv = false) {
  WatchRequest r;
  r.key = key;
  r.range_end = end;
  r.start_revision = start_revision;
  r.prev_kv = prev_kv;
  return r;
}

inline std::vector<std::string> Keys(const RangeResponse& r) {
  std::vector<std::string> keys;
  for (const KeyValue& kv : r.kvs) keys.push_back(kv.key);
  return keys;
}

// Calls that must succeed. The writes return their revision, or -1 after a
// failed expectation.
inline int64_t MustPut(Store& store, const std::string& key, const std::string& value, int64_t lease = 0) {
  absl::StatusOr<PutResponse> r = store.Put(PutReq(key, value, lease));
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? r->revision : -1;
}

inline int64_t MustDelete(Store& store, const std::string& key) {
  absl::StatusOr<DeleteRangeResponse> r = store.DeleteRange(DeleteReq(key));
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? r->revision : -1;
}

inline RangeResponse MustRange(Store& store, const RangeRequest& req) {
  absl::StatusOr<RangeResponse> r = store.Range(req);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : RangeResponse{};
}

// The key as of `revision` (0: now); nullopt if it does not exist then.
inline std::optional<KeyValue> Get(Store& store, const std::string& key, int64_t revision = 0) {
  RangeResponse r = MustRange(store, RangeReq(key, "", revision));
  if (r.kvs.empty()) return std::nullopt;
  return r.kvs[0];
}

inline void ExpectKv(const std::optional<KeyValue>& kv, const std::string& value, int64_t create_revision,
                     int64_t mod_revision, int64_t version) {
  ASSERT_TRUE(kv.has_value());
  EXPECT_EQ(kv->value, value);
  EXPECT_EQ(kv->create_revision, create_revision);
  EXPECT_EQ(kv->mod_revision, mod_revision);
  EXPECT_EQ(kv->version, version);
}

// Collects watch deliveries (checking that batch revisions never go back);
// waits in real time, bounded, for them to arrive.
class WatchRecorder {
 public:
  std::function<void(const WatchBatch&)> Callback() {
    return [this](const WatchBatch& b) {
      absl::MutexLock l(&mu_);
      for (const Event& ev : b.events) events_.push_back(ev);
      EXPECT_GE(b.revision, last_revision_) << "batch revisions go backwards";
      last_revision_ = b.revision;
      threads_.push_back(std::this_thread::get_id());
    };
  }
  // Waits until at least `n` events arrived (or `timeout`); returns them all.
  std::vector<Event> WaitFor(size_t n, absl::Duration timeout = absl::Seconds(30)) {
    absl::MutexLock l(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return events_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
    return events_;
  }
  // Waits until a batch brought the watch up to `revision` (or `timeout`).
  bool WaitForRevision(int64_t revision, absl::Duration timeout = absl::Seconds(30)) {
    absl::MutexLock l(&mu_);
    auto reached = [this, revision]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return last_revision_ >= revision; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
  }
  size_t size() {
    absl::MutexLock l(&mu_);
    return events_.size();
  }
  int64_t last_revision() {
    absl::MutexLock l(&mu_);
    return last_revision_;
  }
  // The thread of each delivery.
  std::vector<std::thread::id> threads() {
    absl::MutexLock l(&mu_);
    return threads_;
  }

 private:
  absl::Mutex mu_;
  std::vector<Event> events_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread::id> threads_ ABSL_GUARDED_BY(mu_);
  int64_t last_revision_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace weft::storage
