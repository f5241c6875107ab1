#pragma once
// The weft.v1 gRPC services over a LeaseManager. AcquireLease, the hot path
// (every joining node, thousands at once when a cluster starts), uses the
// callback API over LeaseManager::AcquireAsync: no thread waits for its
// commit. The other unary methods use the sync API (they block on a durable
// commit, which must not stall the callback executor).

#include <functional>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/grpc_status.h"
#include "controller/authz.h"
#include "controller/drain_gate.h"
#include "controller/lease_manager.h"
#include "grpcpp/grpcpp.h"
#include "proto/weft/v1/weft.grpc.pb.h"

namespace weft::controller {

// Called after every RPC with its method name, result code and duration.
using RpcObserver = std::function<void(const char* method, grpc::StatusCode code, absl::Duration took)>;

void ToProto(const LeaseRecord& rec, weft::v1::Lease* out);

// Whether a new weft.v1 call may proceed, decided in one place for every
// method: UNAVAILABLE once the drain gate has closed (shutdown), then the
// authorization table (authz.h; without an authorizer everyone may do
// everything).
class Admission {
 public:
  explicit Admission(const Authorizer* authz) : authz_(authz) {}
  // New calls are answered UNAVAILABLE once `gate` closes. Set before the server starts.
  void SetDrainGate(const DrainGate* gate) { gate_ = gate; }
  // For the lease methods, *node_name is the request's and becomes the name to
  // act as; *as_node says whether the caller is that node.
  grpc::Status Admit(const grpc::ServerContextBase& ctx, Method m, std::string* node_name = nullptr,
                     bool* as_node = nullptr) const;

 private:
  const Authorizer* const authz_;
  const DrainGate* gate_ = nullptr;
};

// The Watch method is provided by a mixin (see lease_fanout.h); this class has the
// unary methods. `Base` lets the caller add the streaming method's mixin.
class LeaseServiceImpl
    : public weft::v1::LeaseService::WithCallbackMethod_AcquireLease<
          weft::v1::LeaseService::WithRawCallbackMethod_WatchLeases<weft::v1::LeaseService::Service>> {
 public:
  // WatchLeases is raw (bytes in, bytes out) so the hub can serialize each change
  // once for every stream.
  using WatchFactory = std::function<grpc::ServerWriteReactor<grpc::ByteBuffer>*(
      grpc::CallbackServerContext*, const grpc::ByteBuffer*)>;

  // Every method is authorized by `authz` (authz.h) first; null: everyone may
  // do everything.
  LeaseServiceImpl(LeaseManager* manager, RpcObserver observer, WatchFactory watch,
                   const Authorizer* authz = nullptr);

  grpc::ServerUnaryReactor* AcquireLease(grpc::CallbackServerContext* ctx, const weft::v1::AcquireLeaseRequest* req,
                                         weft::v1::AcquireLeaseResponse* resp) override;
  grpc::Status RenewLease(grpc::ServerContext* ctx, const weft::v1::RenewLeaseRequest*,
                          weft::v1::RenewLeaseResponse*) override;
  grpc::Status ReleaseLease(grpc::ServerContext* ctx, const weft::v1::ReleaseLeaseRequest*,
                            weft::v1::ReleaseLeaseResponse*) override;
  grpc::Status GetLease(grpc::ServerContext* ctx, const weft::v1::GetLeaseRequest*,
                        weft::v1::GetLeaseResponse*) override;
  grpc::Status ListLeases(grpc::ServerContext* ctx, const weft::v1::ListLeasesRequest*,
                          weft::v1::ListLeasesResponse*) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* WatchLeases(grpc::CallbackServerContext* ctx,
                                                          const grpc::ByteBuffer* req) override;

  // The expiry of a store lease the manager did not grant itself (a subnet
  // written through the etcd API with an etcd lease of its own, as flannel's
  // tools do), for GetLease and ListLeases; nullopt when unknown. Main wires
  // the store's LeaseTimeToLive. Set before the server starts.
  using ForeignLeaseExpiry = std::function<std::optional<absl::Time>(int64_t store_lease)>;
  void SetForeignLeaseExpiry(ForeignLeaseExpiry f) { foreign_expiry_ = std::move(f); }

 private:
  // Fills `out`'s expiration from foreign_expiry_ when the manager knew none.
  // `cache`: answers already looked up in this call (one per store lease).
  void AddForeignExpiry(const LeaseRecord& rec, weft::v1::Lease* out,
                        absl::flat_hash_map<int64_t, std::optional<absl::Time>>* cache) const;

  LeaseManager* const manager_;
  const RpcObserver observer_;
  const WatchFactory watch_;
  ForeignLeaseExpiry foreign_expiry_;
  Admission admission_;

 public:
  // New calls are answered UNAVAILABLE once `gate` closes (shutdown).
  void SetDrainGate(const DrainGate* gate) { admission_.SetDrainGate(gate); }
};

class NetworkServiceImpl : public weft::v1::NetworkService::Service {
 public:
  NetworkServiceImpl(LeaseManager* manager, RpcObserver observer, const Authorizer* authz = nullptr);

  grpc::Status GetNetworkConfig(grpc::ServerContext* ctx, const weft::v1::GetNetworkConfigRequest*,
                                weft::v1::GetNetworkConfigResponse*) override;
  grpc::Status SetNetworkConfig(grpc::ServerContext* ctx, const weft::v1::SetNetworkConfigRequest*,
                                weft::v1::SetNetworkConfigResponse*) override;
  grpc::Status Reserve(grpc::ServerContext* ctx, const weft::v1::ReserveRequest*,
                       weft::v1::ReserveResponse*) override;
  grpc::Status Unreserve(grpc::ServerContext* ctx, const weft::v1::UnreserveRequest*,
                         weft::v1::UnreserveResponse*) override;
  grpc::Status GetStatus(grpc::ServerContext* ctx, const weft::v1::GetStatusRequest*,
                         weft::v1::GetStatusResponse*) override;

  // What GetStatus reports beyond the manager's own state: filled by `source`
  // (main wires the election, the store's health and the watch hub's count).
  using StatusSource = std::function<void(weft::v1::GetStatusResponse*)>;
  void SetStatusSource(StatusSource source) { status_source_ = std::move(source); }

 private:
  LeaseManager* const manager_;
  const RpcObserver observer_;
  Admission admission_;
  StatusSource status_source_;

 public:
  void SetDrainGate(const DrainGate* gate) { admission_.SetDrainGate(gate); }
};

}  // namespace weft::controller
