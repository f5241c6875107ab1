// etcdserverpb.Lease: unary methods on the sync API, KeepAlive as a callback
// bidi stream whose store calls run on the worker pool.

#include <algorithm>

#include "controller/etcd_api/internal.h"
#include "storage/etcdwire/etcd_wire.h"

namespace weft::controller::etcd_api {
namespace {

namespace wire = storage::etcdwire;
using etcdserverpb::LeaseKeepAliveRequest;
using etcdserverpb::LeaseKeepAliveResponse;

// Owned by gRPC; deletes itself in OnDone. One step at a time, as etcd's loop:
// read a request, renew on the pool, write the answer, read the next. Finish
// is called once: at the end of the client's requests (OK, as etcd), on a
// failed step, or by Stop while a read waits.
class KeepAliveStream final : public grpc::ServerBidiReactor<LeaseKeepAliveRequest, LeaseKeepAliveResponse>,
                              public ServerStream {
 public:
  explicit KeepAliveStream(EtcdApiServer::Core* core) : core_(core) {
    if (!core_->AddStream(this)) {
      finished_ = true;
      Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "etcdserver: server stopped"));
      return;
    }
    {
      absl::MutexLock l(&mu_);
      reading_ = true;
    }
    StartRead(&req_);
  }

  void OnReadDone(bool ok) override {
    {
      absl::ReleasableMutexLock l(&mu_);
      reading_ = false;
      if (finished_) return;
      if (!ok || stopped_) {
        finished_ = true;
        // !ok: the client ended its requests (etcd answers OK) or went away.
        const grpc::Status status = stopped_ ? final_ : grpc::Status::OK;
        l.Release();
        Finish(status);
        return;
      }
    }
    core_->workers().Schedule([this] { Renew(); });
  }

  void OnWriteDone(bool ok) override {
    {
      absl::ReleasableMutexLock l(&mu_);
      if (!ok || stopped_) {
        finished_ = true;
        const grpc::Status status = stopped_ ? final_ : grpc::Status::CANCELLED;
        l.Release();
        Finish(status);
        return;
      }
      reading_ = true;
    }
    StartRead(&req_);
  }

  void OnDone() override {
    core_->RemoveStream(this);
    delete this;
  }

  void Stop(const grpc::Status& status) override {
    {
      absl::MutexLock l(&mu_);
      if (stopped_ || finished_) return;
      stopped_ = true;
      final_ = status;
      // Mid-step, the step's end finishes; a waiting read is cut short here.
      if (!reading_) return;
      finished_ = true;
    }
    Finish(status);
  }

 private:
  void Renew() {
    resp_.Clear();
    resp_.set_id(req_.id());
    // As etcd, the header is taken before the renewal: its revision is no later
    // than the renewal, so a client never sees a renewal "after" a revoke.
    core_->FillHeader(resp_.mutable_header());
    absl::StatusOr<int64_t> ttl = core_->store()->LeaseKeepAlive(req_.id());
    if (!ttl.ok() && absl::IsNotFound(ttl.status())) ttl = 0;  // etcd: TTL 0, no error
    if (!ttl.ok()) {
      {
        absl::MutexLock l(&mu_);
        if (finished_) return;
        finished_ = true;
      }
      Finish(ToEtcdStatus(ttl.status()));
      return;
    }
    resp_.set_ttl(*ttl);
    StartWrite(&resp_);
  }

  EtcdApiServer::Core* const core_;
  LeaseKeepAliveRequest req_;
  LeaseKeepAliveResponse resp_;

  absl::Mutex mu_;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_ ABSL_GUARDED_BY(mu_);
};

class LeaseService final
    : public etcdserverpb::Lease::WithCallbackMethod_LeaseKeepAlive<etcdserverpb::Lease::Service> {
 public:
  explicit LeaseService(EtcdApiServer::Core* core) : core_(core), store_(core->store()) {}

  grpc::Status LeaseGrant(grpc::ServerContext* ctx, const etcdserverpb::LeaseGrantRequest* req,
                          etcdserverpb::LeaseGrantResponse* resp) override {
    if (grpc::Status s = core_->Access(*ctx)(EtcdOp::kLeaseGrant, "", ""); !s.ok()) return s;
    if (req->ttl() > wire::kMaxLeaseTtlSeconds) {
      return grpc::Status(grpc::StatusCode::OUT_OF_RANGE, wire::kErrLeaseTtlTooLarge);
    }
    if (req->id() < 0) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: negative lease ID");
    // etcd raises a short TTL to its minimum rather than refusing it.
    const int64_t ttl = std::max(req->ttl(), core_->options().min_lease_ttl_seconds);
    absl::StatusOr<storage::LeaseGrantResponse> r = store_->LeaseGrant(ttl, req->id());
    if (!r.ok()) return ToEtcdStatus(r.status());
    core_->FillHeader(resp->mutable_header());
    resp->set_id(r->id);
    resp->set_ttl(r->ttl_seconds);
    return grpc::Status::OK;
  }

  grpc::Status LeaseRevoke(grpc::ServerContext* ctx, const etcdserverpb::LeaseRevokeRequest* req,
                           etcdserverpb::LeaseRevokeResponse* resp) override {
    if (grpc::Status s = core_->Access(*ctx)(EtcdOp::kLeaseRevoke, "", ""); !s.ok()) return s;
    if (absl::Status s = store_->LeaseRevoke(req->id()); !s.ok()) return ToEtcdStatus(s);
    core_->FillHeader(resp->mutable_header());
    return grpc::Status::OK;
  }

  grpc::Status LeaseTimeToLive(grpc::ServerContext* ctx, const etcdserverpb::LeaseTimeToLiveRequest* req,
                               etcdserverpb::LeaseTimeToLiveResponse* resp) override {
    const EtcdOp op = req->keys() ? EtcdOp::kLeaseTimeToLiveKeys : EtcdOp::kLeaseTimeToLive;
    if (grpc::Status s = core_->Access(*ctx)(op, "", ""); !s.ok()) return s;
    absl::StatusOr<storage::LeaseTimeToLiveResponse> r = store_->LeaseTimeToLive(req->id(), req->keys());
    if (!r.ok() && !absl::IsNotFound(r.status())) return ToEtcdStatus(r.status());
    core_->FillHeader(resp->mutable_header());
    resp->set_id(req->id());
    if (!r.ok() || r->ttl_seconds < 0) {
      resp->set_ttl(-1);  // etcd: unknown or expired, TTL -1 and no error
      return grpc::Status::OK;
    }
    resp->set_ttl(r->ttl_seconds);
    resp->set_grantedttl(r->granted_ttl_seconds);
    for (const std::string& k : r->keys) resp->add_keys(k);
    return grpc::Status::OK;
  }

  grpc::Status LeaseLeases(grpc::ServerContext* ctx, const etcdserverpb::LeaseLeasesRequest*,
                           etcdserverpb::LeaseLeasesResponse* resp) override {
    if (grpc::Status s = core_->Access(*ctx)(EtcdOp::kLeaseLeases, "", ""); !s.ok()) return s;
    absl::StatusOr<std::vector<int64_t>> ids = store_->Leases();
    if (!ids.ok()) return ToEtcdStatus(ids.status());
    core_->FillHeader(resp->mutable_header());
    for (int64_t id : *ids) resp->add_leases()->set_id(id);
    return grpc::Status::OK;
  }

  grpc::ServerBidiReactor<LeaseKeepAliveRequest, LeaseKeepAliveResponse>* LeaseKeepAlive(
      grpc::CallbackServerContext* ctx) override {
    if (grpc::Status s = core_->Access(*ctx)(EtcdOp::kLeaseKeepAlive, "", ""); !s.ok()) {
      return new RefusedStream<LeaseKeepAliveRequest, LeaseKeepAliveResponse>(s);
    }
    return new KeepAliveStream(core_);
  }

 private:
  EtcdApiServer::Core* const core_;
  storage::Store* const store_;
};

}  // namespace

std::unique_ptr<grpc::Service> NewLeaseService(EtcdApiServer::Core* core) {
  return std::make_unique<LeaseService>(core);
}

}  // namespace weft::controller::etcd_api
