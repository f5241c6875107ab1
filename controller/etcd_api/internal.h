#pragma once
// EtcdApiServer's internals, shared by its services. Not part of the API.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "controller/etcd_api/etcd_api_server.h"
#include "proto/etcd/rpc.grpc.pb.h"
#include "storage/store.h"

namespace weft::controller::etcd_api {

// A few threads running the blocking work that gRPC reactors hand over, so the
// callback executor never waits on the store.
class WorkerPool {
 public:
  explicit WorkerPool(int threads);
  ~WorkerPool();  // runs every queued task, then joins
  void Schedule(absl::AnyInvocable<void()> task);

 private:
  void Loop();
  absl::Mutex mu_;
  std::deque<absl::AnyInvocable<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

// An open stream the server can end (watch or keep-alive). The server calls
// Stop / ProgressTick on a pinned stream; a stream's OnDone unregisters it and
// then waits for the pins to go before deleting it.
class ServerStream {
 public:
  virtual ~ServerStream() = default;
  // Ends the stream with `status`; any thread; idempotent.
  virtual void Stop(const grpc::Status& status) = 0;
  virtual void ProgressTick() {}

  void Pin() {
    absl::MutexLock l(&pin_mu_);
    ++pins_;
  }
  void Unpin() {
    absl::MutexLock l(&pin_mu_);
    --pins_;
  }
  void WaitUnpinned() {
    absl::MutexLock l(&pin_mu_);
    auto unpinned = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(pin_mu_) { return pins_ == 0; };
    pin_mu_.Await(absl::Condition(&unpinned));
  }

 private:
  absl::Mutex pin_mu_;
  int pins_ ABSL_GUARDED_BY(pin_mu_) = 0;
};

// A stream refused before it starts: finishes with `status` at once.
template <typename Request, typename Response>
class RefusedStream final : public grpc::ServerBidiReactor<Request, Response> {
 public:
  explicit RefusedStream(const grpc::Status& status) { this->Finish(status); }
  void OnDone() override { delete this; }
};

// etcd's status for a store error (codes and messages clients match on).
grpc::Status ToEtcdStatus(const absl::Status& s);

class EtcdApiServer::Core {
 public:
  Core(storage::Store* store, EtcdApiOptions options);
  ~Core();

  storage::Store* store() const { return store_; }
  const EtcdApiOptions& options() const { return options_; }
  uint64_t cluster_id() const { return cluster_id_; }
  uint64_t member_id() const { return member_id_; }
  WorkerPool& workers() { return *workers_; }

  void FillHeader(etcdserverpb::ResponseHeader* h, int64_t revision) const;
  // With the store's current revision.
  void FillHeader(etcdserverpb::ResponseHeader* h) const;

  // The access check of the caller of `ctx` (allows everything without an authorizer).
  EtcdAccessCheck Access(const grpc::ServerContextBase& ctx) const;

  // Runs the validator on (key, value); OK when there is none.
  absl::Status ValidatePut(const std::string& key, const std::string& value) const;
  bool has_validator() const { return static_cast<bool>(options_.validate_put); }
  // Held from validation to the end of the write when puts are validated.
  absl::Mutex* validated_writes() ABSL_LOCK_RETURNED(validated_writes_) { return &validated_writes_; }

  // Registers an open stream; false once shut down (the caller ends it).
  bool AddStream(ServerStream* s);
  // Unregisters `s` and waits until the server no longer uses it (OnDone).
  void RemoveStream(ServerStream* s);
  void Shutdown();
  void ProgressTick();

  void Register(grpc::ServerBuilder& builder);

 private:
  // Calls fn on every open stream, pinned, without holding streams_mu_.
  void ForEachStream(const std::function<void(ServerStream*)>& fn);

  storage::Store* const store_;
  const EtcdApiOptions options_;
  uint64_t cluster_id_ = 0;
  uint64_t member_id_ = 0;
  std::unique_ptr<WorkerPool> workers_;
  absl::Mutex validated_writes_;

  absl::Mutex streams_mu_;
  absl::flat_hash_set<ServerStream*> streams_ ABSL_GUARDED_BY(streams_mu_);
  bool shut_down_ ABSL_GUARDED_BY(streams_mu_) = false;

  Timers timers_{*options_.clock};
  Timers::Id progress_timer_ = 0;

  std::vector<std::unique_ptr<grpc::Service>> services_;
};

std::unique_ptr<grpc::Service> NewKvService(EtcdApiServer::Core* core);
std::unique_ptr<grpc::Service> NewWatchService(EtcdApiServer::Core* core);
std::unique_ptr<grpc::Service> NewLeaseService(EtcdApiServer::Core* core);
std::unique_ptr<grpc::Service> NewClusterService(EtcdApiServer::Core* core);
std::unique_ptr<grpc::Service> NewMaintenanceService(EtcdApiServer::Core* core);

}  // namespace weft::controller::etcd_api
