#include "controller/grpc_services.h"

#include "absl/time/clock.h"
#include "common/version.h"

namespace weft::controller {
namespace {

// Times one RPC and reports it on destruction.
class RpcTimer {
 public:
  RpcTimer(const RpcObserver& obs, const char* method) : obs_(obs), method_(method), start_(absl::Now()) {}
  grpc::Status Done(grpc::Status s) {
    if (obs_) obs_(method_, s.error_code(), absl::Now() - start_);
    return s;
  }

 private:
  const RpcObserver& obs_;
  const char* method_;
  absl::Time start_;
};

}  // namespace

grpc::Status Admission::Admit(const grpc::ServerContextBase& ctx, Method m, std::string* node_name,
                              bool* as_node) const {
  if (gate_ != nullptr && gate_->closed()) return DrainGate::Refusal();
  if (!authz_) return grpc::Status::OK;
  Identity id;
  grpc::Status s = authz_->Authorize(ctx, m, node_name, &id);
  if (as_node) *as_node = id.role == Role::kNode;
  return s;
}

namespace {
void SetExpiration(absl::Time t, weft::v1::Lease* out) {
  const int64_t ns = absl::ToUnixNanos(t);
  out->mutable_expiration()->set_seconds(ns / 1000000000);
  out->mutable_expiration()->set_nanos(static_cast<int32_t>(ns % 1000000000));
}
}  // namespace

void ToProto(const LeaseRecord& rec, weft::v1::Lease* out) {
  if (rec.key.ipv4) out->set_subnet(rec.key.ipv4->ToString());
  if (rec.key.ipv6) out->set_ipv6_subnet(rec.key.ipv6->ToString());
  if (rec.attrs.public_ip) out->set_public_ip(rec.attrs.public_ip->ToString());
  if (rec.attrs.public_ipv6) out->set_public_ipv6(rec.attrs.public_ipv6->ToString());
  out->set_node_name(rec.attrs.node_name);
  out->set_backend_type(rec.attrs.backend_type);
  out->set_backend_data(rec.attrs.backend_data);
  out->set_backend_v6_data(rec.attrs.backend_v6_data);
  out->set_reserved(rec.reserved());
  out->set_revision(rec.mod_revision);
  if (!rec.reserved() && rec.expiration != absl::InfiniteFuture()) SetExpiration(rec.expiration, out);
}

void LeaseServiceImpl::AddForeignExpiry(const LeaseRecord& rec, weft::v1::Lease* out,
                                        absl::flat_hash_map<int64_t, std::optional<absl::Time>>* cache) const {
  // Bounded: a page of flannel-written leases, each with its own etcd lease,
  // costs at most this many lookups (round trips on an etcd store).
  constexpr size_t kMaxLookups = 1000;
  if (!foreign_expiry_ || rec.reserved() || rec.expiration != absl::InfiniteFuture()) return;
  auto it = cache->find(rec.store_lease);
  if (it == cache->end()) {
    if (cache->size() >= kMaxLookups) return;
    it = cache->emplace(rec.store_lease, foreign_expiry_(rec.store_lease)).first;
  }
  if (it->second) SetExpiration(*it->second, out);
}

LeaseServiceImpl::LeaseServiceImpl(LeaseManager* manager, RpcObserver observer, WatchFactory watch,
                                   const Authorizer* authz)
    : manager_(manager), observer_(std::move(observer)), watch_(std::move(watch)), admission_(authz) {}

grpc::ServerUnaryReactor* LeaseServiceImpl::AcquireLease(grpc::CallbackServerContext* ctx,
                                                          const weft::v1::AcquireLeaseRequest* req,
                                                          weft::v1::AcquireLeaseResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  AcquireRequest r;
  r.node_name = req->node_name();
  if (grpc::Status s = admission_.Admit(*ctx, Method::kAcquireLease, &r.node_name, &r.as_node); !s.ok()) {
    if (observer_) observer_("AcquireLease", s.error_code(), absl::ZeroDuration());
    reactor->Finish(s);
    return reactor;
  }
  r.public_ip = req->public_ip();
  r.public_ipv6 = req->public_ipv6();
  r.backend_type = req->backend_type();
  r.backend_data = req->backend_data();
  r.backend_v6_data = req->backend_v6_data();
  r.previous_subnet = req->previous_subnet();
  r.previous_ipv6_subnet = req->previous_ipv6_subnet();
  // The answer may come on another thread, after this method has returned; the
  // response message lives until the reactor finishes.
  manager_->AcquireAsync(r, [this, reactor, resp, start = absl::Now()](absl::StatusOr<LeaseRecord> rec) {
    grpc::Status s = grpc::Status::OK;
    if (!rec.ok()) {
      s = ToGrpcStatus(rec.status());
    } else {
      ToProto(*rec, resp->mutable_lease());
      if (auto cfg = manager_->Config()) {
        if (cfg->enable_ipv4) resp->set_network(cfg->network.ToString());
        if (cfg->ipv6_network) resp->set_ipv6_network(cfg->ipv6_network->ToString());
        resp->mutable_ttl()->set_seconds(absl::ToInt64Seconds(cfg->lease_ttl));
      }
      resp->set_revision(rec->mod_revision);
    }
    if (observer_) observer_("AcquireLease", s.error_code(), absl::Now() - start);
    reactor->Finish(s);
  });
  return reactor;
}

grpc::Status LeaseServiceImpl::RenewLease(grpc::ServerContext* ctx, const weft::v1::RenewLeaseRequest* req,
                                          weft::v1::RenewLeaseResponse* resp) {
  RpcTimer t(observer_, "RenewLease");
  OwnerRef owner{req->subnet(), req->node_name(), req->public_ip()};
  if (grpc::Status s = admission_.Admit(*ctx, Method::kRenewLease, &owner.node_name, &owner.as_node); !s.ok()) {
    return t.Done(s);
  }
  auto rec = manager_->Renew(owner);
  if (!rec.ok()) return t.Done(ToGrpcStatus(rec.status()));
  ToProto(*rec, resp->mutable_lease());
  return t.Done(grpc::Status::OK);
}

grpc::Status LeaseServiceImpl::ReleaseLease(grpc::ServerContext* ctx, const weft::v1::ReleaseLeaseRequest* req,
                                            weft::v1::ReleaseLeaseResponse*) {
  RpcTimer t(observer_, "ReleaseLease");
  OwnerRef owner{req->subnet(), req->node_name(), req->public_ip()};
  if (grpc::Status s = admission_.Admit(*ctx, Method::kReleaseLease, &owner.node_name, &owner.as_node); !s.ok()) {
    return t.Done(s);
  }
  return t.Done(ToGrpcStatus(manager_->Release(owner)));
}

grpc::Status LeaseServiceImpl::GetLease(grpc::ServerContext* ctx, const weft::v1::GetLeaseRequest* req,
                                        weft::v1::GetLeaseResponse* resp) {
  RpcTimer t(observer_, "GetLease");
  if (grpc::Status s = admission_.Admit(*ctx, Method::kGetLease); !s.ok()) return t.Done(s);
  auto rec = manager_->Get(req->subnet());
  if (!rec.ok()) return t.Done(ToGrpcStatus(rec.status()));
  ToProto(*rec, resp->mutable_lease());
  absl::flat_hash_map<int64_t, std::optional<absl::Time>> cache;
  AddForeignExpiry(*rec, resp->mutable_lease(), &cache);
  return t.Done(grpc::Status::OK);
}

grpc::Status LeaseServiceImpl::ListLeases(grpc::ServerContext* ctx, const weft::v1::ListLeasesRequest* req,
                                          weft::v1::ListLeasesResponse* resp) {
  RpcTimer t(observer_, "ListLeases");
  if (grpc::Status s = admission_.Admit(*ctx, Method::kListLeases); !s.ok()) return t.Done(s);
  auto page = manager_->ListPage(req->page_size(), req->page_token());
  if (!page.ok()) return t.Done(ToGrpcStatus(page.status()));
  absl::flat_hash_map<int64_t, std::optional<absl::Time>> cache;
  for (const LeaseRecord& rec : page->leases) {
    weft::v1::Lease* out = resp->add_leases();
    ToProto(rec, out);
    AddForeignExpiry(rec, out, &cache);
  }
  resp->set_revision(page->revision);
  resp->set_next_page_token(page->next_page_token);
  return t.Done(grpc::Status::OK);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* LeaseServiceImpl::WatchLeases(grpc::CallbackServerContext* ctx,
                                                                           const grpc::ByteBuffer* req) {
  class Refused : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
   public:
    explicit Refused(const grpc::Status& s) { Finish(s); }
    void OnDone() override { delete this; }
  };
  // Shutting down, streams are being drained: a new one goes to another replica.
  if (grpc::Status s = admission_.Admit(*ctx, Method::kWatchLeases); !s.ok()) return new Refused(s);
  if (watch_) return watch_(ctx, req);
  class Unimplemented : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
   public:
    Unimplemented() { Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "watch not enabled")); }
    void OnDone() override { delete this; }
  };
  return new Unimplemented();
}

NetworkServiceImpl::NetworkServiceImpl(LeaseManager* manager, RpcObserver observer, const Authorizer* authz)
    : manager_(manager), observer_(std::move(observer)), admission_(authz) {}

grpc::Status NetworkServiceImpl::GetNetworkConfig(grpc::ServerContext* ctx, const weft::v1::GetNetworkConfigRequest*,
                                                  weft::v1::GetNetworkConfigResponse* resp) {
  RpcTimer t(observer_, "GetNetworkConfig");
  if (grpc::Status s = admission_.Admit(*ctx, Method::kGetNetworkConfig); !s.ok()) return t.Done(s);
  auto cfg = manager_->GetConfig();
  if (!cfg.ok()) return t.Done(ToGrpcStatus(cfg.status()));
  resp->set_config(cfg->first);
  resp->set_revision(cfg->second);
  return t.Done(grpc::Status::OK);
}

grpc::Status NetworkServiceImpl::SetNetworkConfig(grpc::ServerContext* ctx, const weft::v1::SetNetworkConfigRequest* req,
                                                  weft::v1::SetNetworkConfigResponse* resp) {
  RpcTimer t(observer_, "SetNetworkConfig");
  if (grpc::Status s = admission_.Admit(*ctx, Method::kSetNetworkConfig); !s.ok()) return t.Done(s);
  auto change = manager_->SetConfig(req->config(), req->force());
  if (!change.ok()) return t.Done(ToGrpcStatus(change.status()));
  resp->set_config(change->config);
  resp->set_revision(change->revision);
  for (const std::string& s : change->stranded) resp->add_stranded_subnets(s);
  return t.Done(grpc::Status::OK);
}

grpc::Status NetworkServiceImpl::Reserve(grpc::ServerContext* ctx, const weft::v1::ReserveRequest* req,
                                         weft::v1::ReserveResponse* resp) {
  RpcTimer t(observer_, "Reserve");
  if (grpc::Status s = admission_.Admit(*ctx, Method::kReserve); !s.ok()) return t.Done(s);
  ReserveRequest r{req->subnet(),       req->public_ip(),   req->node_name(),      req->backend_type(),
                   req->backend_data(), req->ipv6_subnet(), req->public_ipv6(), req->backend_v6_data()};
  auto rec = manager_->Reserve(r);
  if (!rec.ok()) return t.Done(ToGrpcStatus(rec.status()));
  ToProto(*rec, resp->mutable_lease());
  return t.Done(grpc::Status::OK);
}

grpc::Status NetworkServiceImpl::Unreserve(grpc::ServerContext* ctx, const weft::v1::UnreserveRequest* req,
                                           weft::v1::UnreserveResponse*) {
  RpcTimer t(observer_, "Unreserve");
  if (grpc::Status s = admission_.Admit(*ctx, Method::kUnreserve); !s.ok()) return t.Done(s);
  return t.Done(ToGrpcStatus(manager_->Unreserve(req->subnet())));
}

grpc::Status NetworkServiceImpl::GetStatus(grpc::ServerContext* ctx, const weft::v1::GetStatusRequest*,
                                           weft::v1::GetStatusResponse* resp) {
  RpcTimer t(observer_, "GetStatus");
  if (grpc::Status s = admission_.Admit(*ctx, Method::kGetStatus); !s.ok()) return t.Done(s);
  const absl::Time now = absl::Now();
  resp->set_version(std::string(version::Version()));
  resp->set_commit(std::string(version::Commit()));
  resp->set_revision(manager_->AppliedRevision());
  if (auto cfg = manager_->GetConfig(); cfg.ok()) resp->set_network_config(cfg->first);
  if (std::optional<NetworkConfig> cfg = manager_->Config()) {
    resp->set_backend_type(cfg->backend.type.empty() ? "vxlan" : cfg->backend.type);
  }
  const LeaseManager::PoolStats stats = manager_->Stats();
  weft::v1::GetStatusResponse::Pool* pool = resp->mutable_pool();
  pool->set_subnets(stats.size);
  pool->set_free(stats.free);
  pool->set_leases(stats.leases);
  pool->set_reserved(stats.reservations);
  auto saturated = [](absl::uint128 v) { return absl::Uint128High64(v) != 0 ? UINT64_MAX : absl::Uint128Low64(v); };
  pool->set_ipv6_subnets(saturated(stats.ipv6_size));
  pool->set_ipv6_free(saturated(stats.ipv6_free));
  uint64_t expiring = 0;
  for (const LeaseRecord& rec : manager_->List()) {
    if (!rec.reserved() && rec.expiration < now + absl::Hours(1)) ++expiring;
  }
  pool->set_expiring_within_hour(expiring);
  resp->mutable_time()->set_seconds(absl::ToUnixSeconds(now));
  if (status_source_) status_source_(resp);
  return t.Done(grpc::Status::OK);
}

}  // namespace weft::controller
