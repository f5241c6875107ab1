#pragma once
// A Store that passes every call to another one. Tests derive from it to
// intercept the calls they care about (hold a transaction, delay a watch) while
// the real store does the work.

#include <memory>
#include <utility>
#include <vector>

#include "storage/store.h"

namespace weft::storage {

class ForwardingStore : public Store {
 public:
  explicit ForwardingStore(Store* next) : next_(next) {}

  absl::StatusOr<RangeResponse> Range(const RangeRequest& r) override { return next_->Range(r); }
  absl::StatusOr<PutResponse> Put(const PutRequest& r) override { return next_->Put(r); }
  absl::StatusOr<DeleteRangeResponse> DeleteRange(const DeleteRangeRequest& r) override {
    return next_->DeleteRange(r);
  }
  absl::StatusOr<TxnResponse> Txn(const TxnRequest& r) override { return next_->Txn(r); }
  absl::Status Compact(int64_t rev) override { return next_->Compact(rev); }
  int64_t CurrentRevision() override { return next_->CurrentRevision(); }
  int64_t CompactRevision() override { return next_->CompactRevision(); }
  absl::StatusOr<LeaseGrantResponse> LeaseGrant(int64_t ttl, int64_t id) override {
    return next_->LeaseGrant(ttl, id);
  }
  absl::Status LeaseRevoke(int64_t id) override { return next_->LeaseRevoke(id); }
  absl::StatusOr<int64_t> LeaseKeepAlive(int64_t id) override { return next_->LeaseKeepAlive(id); }
  absl::StatusOr<LeaseTimeToLiveResponse> LeaseTimeToLive(int64_t id, bool keys) override {
    return next_->LeaseTimeToLive(id, keys);
  }
  absl::StatusOr<std::vector<int64_t>> Leases() override { return next_->Leases(); }
  absl::StatusOr<std::unique_ptr<WatchHandle>> Watch(const WatchRequest& r,
                                                     std::function<void(const WatchBatch&)> cb) override {
    return next_->Watch(r, std::move(cb));
  }

  StoreHealth Health() override { return next_->Health(); }
  absl::Status DisarmSpaceAlarm() override { return next_->DisarmSpaceAlarm(); }
  absl::Status RaiseSpaceAlarm() override { return next_->RaiseSpaceAlarm(); }
  absl::Status Defragment() override { return next_->Defragment(); }
  absl::Status WriteSnapshot(const std::function<absl::Status(absl::string_view)>& sink) override {
    return next_->WriteSnapshot(sink);
  }

 protected:
  Store* const next_;
};

}  // namespace weft::storage
