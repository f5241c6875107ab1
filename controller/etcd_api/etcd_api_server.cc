#include "controller/etcd_api/etcd_api_server.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "common/grpc_status.h"
#include "controller/etcd_api/internal.h"
#include "storage/etcdwire/etcd_wire.h"

namespace weft::controller::etcd_api {

namespace wire = storage::etcdwire;

namespace {

// FNV-1a: stable across builds and runs (absl::Hash is not), never 0.
uint64_t StableId(const std::string& text) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h == 0 ? 1 : h;
}

class ClusterService final : public etcdserverpb::Cluster::Service {
 public:
  explicit ClusterService(EtcdApiServer::Core* core) : core_(core) {}

  grpc::Status MemberList(grpc::ServerContext* ctx, const etcdserverpb::MemberListRequest*,
                          etcdserverpb::MemberListResponse* resp) override {
    if (grpc::Status s = core_->Access(*ctx)(EtcdOp::kMemberList, "", ""); !s.ok()) return s;
    core_->FillHeader(resp->mutable_header());
    etcdserverpb::Member* m = resp->add_members();
    m->set_id(core_->member_id());
    m->set_name(core_->options().name);
    for (const std::string& url : core_->options().client_urls) m->add_clienturls(url);
    return grpc::Status::OK;
  }

 private:
  EtcdApiServer::Core* const core_;
};

}  // namespace

std::unique_ptr<grpc::Service> NewClusterService(EtcdApiServer::Core* core) {
  return std::make_unique<ClusterService>(core);
}

grpc::Status ToEtcdStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  const absl::string_view m = s.message();
  if (storage::IsCompacted(s)) return grpc::Status(grpc::StatusCode::OUT_OF_RANGE, wire::kErrCompacted);
  if (absl::IsOutOfRange(s) && absl::StrContains(m, "future revision")) {
    return grpc::Status(grpc::StatusCode::OUT_OF_RANGE, wire::kErrFutureRev);
  }
  if (absl::IsNotFound(s) && absl::StrContains(m, "lease")) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, wire::kErrLeaseNotFound);
  }
  if (absl::IsAlreadyExists(s) && absl::StrContains(m, "lease")) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, wire::kErrLeaseExist);
  }
  if (absl::IsInvalidArgument(s) && absl::StrContains(m, "key is not provided")) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, wire::kErrEmptyKey);
  }
  if (absl::IsInvalidArgument(s) && absl::StrContains(m, "duplicate key")) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, wire::kErrDuplicateKey);
  }
  return ToGrpcStatus(absl::Status(s.code(), m));
}

// ---- WorkerPool ----

WorkerPool::WorkerPool(int threads) {
  for (int i = 0; i < std::max(1, threads); ++i) threads_.emplace_back([this] { Loop(); });
}

WorkerPool::~WorkerPool() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  for (std::thread& t : threads_) t.join();
}

void WorkerPool::Schedule(absl::AnyInvocable<void()> task) {
  absl::MutexLock l(&mu_);
  queue_.push_back(std::move(task));
}

void WorkerPool::Loop() {
  for (;;) {
    absl::AnyInvocable<void()> task;
    {
      absl::MutexLock l(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !queue_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping, and everything ran
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

// ---- Core ----

EtcdApiServer::Core::Core(storage::Store* store, EtcdApiOptions options)
    : store_(store), options_(std::move(options)) {
  cluster_id_ = options_.cluster_id != 0 ? options_.cluster_id : StableId("cluster/" + options_.cluster_name);
  member_id_ = options_.member_id != 0 ? options_.member_id
                                       : StableId("member/" + options_.cluster_name + "/" + options_.name);
  workers_ = std::make_unique<WorkerPool>(options_.worker_threads);
  services_.push_back(NewKvService(this));
  services_.push_back(NewWatchService(this));
  services_.push_back(NewLeaseService(this));
  services_.push_back(NewClusterService(this));
  services_.push_back(NewMaintenanceService(this));
  // Not below 100 ms: the loop this timer replaces looked no more often.
  progress_timer_ = timers_.Every(std::max(options_.progress_notify_interval, absl::Milliseconds(100)),
                                  [this] { ProgressTick(); });
}

EtcdApiServer::Core::~Core() {
  Shutdown();
  timers_.Cancel(progress_timer_);
  workers_.reset();  // finishes what the streams handed over
}

void EtcdApiServer::Core::FillHeader(etcdserverpb::ResponseHeader* h, int64_t revision) const {
  h->set_cluster_id(cluster_id_);
  h->set_member_id(member_id_);
  h->set_revision(revision);
  h->set_raft_term(options_.raft_term);
}

void EtcdApiServer::Core::FillHeader(etcdserverpb::ResponseHeader* h) const {
  FillHeader(h, store_->CurrentRevision());
}

EtcdAccessCheck EtcdApiServer::Core::Access(const grpc::ServerContextBase& ctx) const {
  if (!options_.authorize) {
    return [](EtcdOp, const std::string&, const std::string&) { return grpc::Status::OK; };
  }
  return options_.authorize(ctx);
}

absl::Status EtcdApiServer::Core::ValidatePut(const std::string& key, const std::string& value) const {
  if (!options_.validate_put) return absl::OkStatus();
  return options_.validate_put(key, value);
}

bool EtcdApiServer::Core::AddStream(ServerStream* s) {
  absl::MutexLock l(&streams_mu_);
  if (shut_down_) return false;
  streams_.insert(s);
  return true;
}

void EtcdApiServer::Core::RemoveStream(ServerStream* s) {
  {
    absl::MutexLock l(&streams_mu_);
    streams_.erase(s);
  }
  s->WaitUnpinned();
}

void EtcdApiServer::Core::ForEachStream(const std::function<void(ServerStream*)>& fn) {
  std::vector<ServerStream*> streams;
  {
    absl::MutexLock l(&streams_mu_);
    for (ServerStream* s : streams_) {
      s->Pin();
      streams.push_back(s);
    }
  }
  // Outside the lock: these calls may start gRPC operations, whose reactions
  // must never wait on streams_mu_.
  for (ServerStream* s : streams) {
    fn(s);
    s->Unpin();
  }
}

void EtcdApiServer::Core::Shutdown() {
  {
    absl::MutexLock l(&streams_mu_);
    shut_down_ = true;
  }
  const grpc::Status stopped(grpc::StatusCode::UNAVAILABLE, "etcdserver: server stopped");
  ForEachStream([&](ServerStream* s) { s->Stop(stopped); });
}

void EtcdApiServer::Core::ProgressTick() {
  ForEachStream([](ServerStream* s) { s->ProgressTick(); });
}

void EtcdApiServer::Core::Register(grpc::ServerBuilder& builder) {
  for (auto& s : services_) builder.RegisterService(s.get());
}

// ---- EtcdApiServer ----

EtcdApiServer::EtcdApiServer(storage::Store* store, EtcdApiOptions options)
    : core_(std::make_unique<Core>(store, std::move(options))) {}

EtcdApiServer::~EtcdApiServer() = default;

void EtcdApiServer::Register(grpc::ServerBuilder& builder) { core_->Register(builder); }
void EtcdApiServer::Shutdown() { core_->Shutdown(); }
void EtcdApiServer::ProgressTick() { core_->ProgressTick(); }
uint64_t EtcdApiServer::cluster_id() const { return core_->cluster_id(); }
uint64_t EtcdApiServer::member_id() const { return core_->member_id(); }

std::unique_ptr<EtcdApiServer> RegisterEtcdApi(grpc::ServerBuilder& builder, storage::Store* store,
                                               EtcdApiOptions options) {
  auto server = std::make_unique<EtcdApiServer>(store, std::move(options));
  server->Register(builder);
  return server;
}

}  // namespace weft::controller::etcd_api
