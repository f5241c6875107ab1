#include "controller/server.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/log.h"
#include "common/sd_notify.h"
#include "common/status_macros.h"
#include "common/version.h"
#include "controller/etcd_api/flannel_validator.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/resource_quota.h"
#include "storage/rocksdb/snapshot_archive.h"

namespace weft::controller {
namespace {

// Start()'s errors carry their StartFailure as a payload.
constexpr char kStartFailureUrl[] = "type.weft.io/weft.controller.StartFailure";
constexpr char kBadSettingsPayload[] = "bad-settings";

// `what`, with the reason it failed when there is one; the cause's code, else `code`.
absl::Status StartError(StartFailure failure, absl::StatusCode code, absl::string_view what,
                        const absl::Status& cause = absl::OkStatus()) {
  absl::Status s = cause.ok() ? absl::Status(code, what)
                              : absl::Status(cause.code(), absl::StrCat(what, ": ", cause.message()));
  if (failure == StartFailure::kBadSettings) s.SetPayload(kStartFailureUrl, absl::Cord(kBadSettingsPayload));
  return s;
}
absl::Status BadSettings(absl::string_view what, const absl::Status& cause = absl::OkStatus()) {
  return StartError(StartFailure::kBadSettings, absl::StatusCode::kInvalidArgument, what, cause);
}
absl::Status CannotStart(absl::string_view what, const absl::Status& cause = absl::OkStatus()) {
  return StartError(StartFailure::kCannotStart, absl::StatusCode::kUnavailable, what, cause);
}

metrics::Registry& WithProcessMetrics(metrics::Registry& registry) {
  metrics::AddProcessMetrics(registry);
  metrics::AddBuildInfo(registry, version::Version(), version::Commit());
  return registry;
}

}  // namespace

StartFailure StartFailureOf(const absl::Status& status) {
  auto p = status.GetPayload(kStartFailureUrl);
  return p && *p == kBadSettingsPayload ? StartFailure::kBadSettings : StartFailure::kCannotStart;
}

absl::StatusOr<std::unique_ptr<ControllerServer>> ControllerServer::Start(Options options) {
  std::unique_ptr<ControllerServer> server(new ControllerServer(std::move(options)));
  if (absl::Status s = server->StartServing(); !s.ok()) return s;
  server->started_ = true;
  return server;
}

ControllerServer::ControllerServer(Options options)
    : options_(std::move(options)), metrics_(WithProcessMetrics(registry_)) {}

ControllerServer::~ControllerServer() {
  if (started_) Shutdown();
  // After a failed start the fan-out may still be there: it reads the manager
  // (bookmarks), which goes first.
  fanout_.reset();
}

int ControllerServer::metrics_port() const { return http_ ? http_->port() : 0; }

// The listeners' credentials from the TLS options; kBadSettings on a bad
// combination or bad files. Without TLS only loopback listeners are allowed,
// unless allow_plaintext_non_loopback.
absl::Status ControllerServer::SetUpTransport() {
  const ServerTlsOptions& to = options_.tls;
  const int set = !to.cert_file.empty() + !to.key_file.empty() + !to.client_ca_file.empty();
  if (set != 0 && set != 3) {
    constexpr char kWhat[] = "TLS needs all of --tls-cert-file, --tls-key-file and --tls-client-ca-file";
    WEFT_LOG(ERROR, kWhat);
    return BadSettings(kWhat);
  }
  if (to.refresh_interval < absl::Seconds(1)) {
    constexpr char kWhat[] = "--tls-refresh-interval must be at least 1s";
    WEFT_LOG(ERROR, kWhat).With("value", to.refresh_interval);
    return BadSettings(kWhat);
  }
  if (set == 3) {
    auto creds = MakeServerCredentials(to);
    if (!creds.ok()) {
      WEFT_LOG(ERROR, "cannot set up TLS").Err(creds.status());
      return BadSettings("cannot set up TLS", creds.status());
    }
    credentials_ = *creds;
    cert_monitor_ = std::make_unique<ServerCertMonitor>(to);
    tls_ = true;
    return absl::OkStatus();
  }
  credentials_ = grpc::InsecureServerCredentials();
  std::vector<std::string> exposed;
  for (const std::string& addr : {options_.grpc_listen, options_.etcd_api_listen}) {
    if (!addr.empty() && !IsLoopbackListen(addr)) exposed.push_back(addr);
  }
  if (exposed.empty()) return absl::OkStatus();
  if (!options_.allow_plaintext_non_loopback) {
    constexpr char kWhat[] =
        "refusing to listen on a non-loopback address without TLS: anyone who reaches it could take over "
        "the network; use TLS (--tls-cert-file, --tls-key-file, --tls-client-ca-file; docs/security.md) or "
        "--insecure";
    WEFT_LOG(ERROR, kWhat).With("listen", absl::StrJoin(exposed, ","));
    return BadSettings(absl::StrCat(kWhat, " (", absl::StrJoin(exposed, ","), ")"));
  }
  WEFT_LOG(WARNING,
           "--insecure: plaintext listener on a non-loopback address; any client that reaches it may do anything "
           "(docs/security.md)")
      .With("listen", absl::StrJoin(exposed, ","));
  return absl::OkStatus();
}

// Restores the embedded store from a snapshot if asked, then opens the store.
absl::Status ControllerServer::OpenStore() {
  const std::string& store_kind = options_.store_kind;
  const std::string& data_dir = options_.rocksdb.path;
  if (const std::string& from = options_.restore_from; !from.empty()) {
    if (store_kind != "rocksdb") {
      constexpr char kWhat[] = "--restore-from restores the embedded store only (--store=rocksdb)";
      WEFT_LOG(ERROR, kWhat);
      return BadSettings(kWhat);
    }
    auto restored = storage::snapshot_archive::RestoreArchive(from, data_dir, options_.force_restore);
    if (!restored.ok()) {
      WEFT_LOG(ERROR, "cannot restore the store").With("from", from).Err(restored.status());
      return CannotStart(absl::StrCat("cannot restore the store from ", from), restored.status());
    }
    WEFT_LOG(INFO, "store restored from snapshot")
        .With("from", from)
        .With("data_dir", data_dir)
        .With("files", restored->files)
        .With("bytes", restored->bytes)
        .With("checksum_verified", restored->checksum_verified)
        .With("old_data_moved_to", restored->moved_aside);
  }
  absl::StatusOr<std::unique_ptr<storage::Store>> store;
  if (store_kind == "rocksdb") {
    storage::RocksDbStore::Options so = options_.rocksdb;
    so.on_commit = [this](absl::Duration latency, int batch) { metrics_.ObserveCommit(latency, batch); };
    store_location_ = so.path;
    auto rocks = storage::RocksDbStore::Open(so);
    if (rocks.ok() && !(*rocks)->recovery_report().empty()) {
      WEFT_LOG(WARN, "store recovered from corruption; data was dropped")
          .With("dropped", (*rocks)->recovery_report());
    }
    if (rocks.ok()) {
      store = std::unique_ptr<storage::Store>(std::move(*rocks));
    } else {
      store = rocks.status();
    }
  } else if (store_kind == "etcd") {
    storage::EtcdStore::Options eo = options_.etcd;
    eo.probe_key = absl::StrCat(options_.network_prefix, "/config");  // readable with etcd auth
    eo.tls_refresh_interval = options_.tls.refresh_interval;
    store_location_ = absl::StrJoin(eo.endpoints, ",");
    store = storage::EtcdStore::Open(eo);
    if (!store.ok() && (store.status().code() == absl::StatusCode::kInvalidArgument ||
                        store.status().code() == absl::StatusCode::kUnauthenticated)) {
      WEFT_LOG(ERROR, "bad etcd settings or credentials").With("where", store_location_).Err(store.status());
      return BadSettings(absl::StrCat("bad etcd settings or credentials for ", store_location_), store.status());
    }
  } else {
    constexpr char kWhat[] = "--store must be rocksdb or etcd";
    WEFT_LOG(ERROR, kWhat).With("store", store_kind);
    return BadSettings(absl::StrCat(kWhat, ", not \"", store_kind, "\""));
  }
  if (!store.ok()) {
    WEFT_LOG(ERROR, "cannot open the store")
        .With("store", store_kind)
        .With("where", store_location_)
        .Err(store.status());
    return CannotStart(absl::StrCat("cannot open the store (", store_kind, " at ", store_location_, ")"),
                       store.status());
  }
  store_ = std::move(*store);
  return absl::OkStatus();
}

void ControllerServer::OnLeaseChanges(const std::vector<LeaseChange>& changes, int64_t revision) {
  if (!fanout_) return;
  std::vector<weft::v1::LeaseEvent> events;
  events.reserve(changes.size());
  for (const auto& c : changes) {
    weft::v1::LeaseEvent e;
    e.set_type(c.deleted ? weft::v1::LeaseEvent::TYPE_DELETE : weft::v1::LeaseEvent::TYPE_PUT);
    ToProto(c.record, e.mutable_lease());
    e.set_revision(c.revision);
    events.push_back(std::move(e));
  }
  fanout_->Publish(events, revision);
}

absl::Status ControllerServer::StartLeases(const LeaseManager::Options& mo) {
  fanout_.reset();  // it reads the manager
  manager_ = std::make_unique<LeaseManager>(store_.get(), mo);
  RETURN_IF_ERROR(manager_->Load());
  // The fan-out starts at the loaded revision; what the manager then replays
  // from the store goes into its history.
  LeaseFanout::Options ho;
  ho.bookmark_interval = options_.watch_bookmark_interval;
  ho.max_queue = static_cast<size_t>(options_.watch_max_queue);
  ho.history = static_cast<size_t>(options_.watch_history);
  ho.hooks = metrics_.HubHooks();
  ho.senders = options_.watch_senders;
  ho.compress_snapshots = options_.watch_compress_snapshots;
  if (ho.senders <= 0) ho.senders = static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
  fanout_ = std::make_unique<LeaseFanout>(manager_.get(), ho);
  return manager_->Follow();
}

absl::Status ControllerServer::StartServing() {
  RETURN_IF_ERROR(SetUpTransport());
  SetLimits(options_.input_limits);
  RETURN_IF_ERROR(OpenStore());
  const bool etcd_store = options_.store_kind == "etcd";

  // One replica among those sharing the store runs the once-per-cluster duties
  // (with the embedded store there is one replica, and it wins at once).
  LeaderElection::Options lo;
  lo.key = options_.election_key;
  lo.ttl = options_.election_ttl;
  lo.identity = options_.replica_name;
  if (lo.identity.empty()) {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    lo.identity = absl::StrCat(host, "/", options_.grpc_listen);
  }
  replica_name_ = lo.identity;
  lo.on_change = [this](bool leader) { metrics_.ObserveLeadership(leader); };
  election_ = std::make_unique<LeaderElection>(store_.get(), lo);
  BackgroundDuties::Options dop;
  if (etcd_store) dop.compaction_interval = options_.compaction_interval;
  dop.on_compaction = [this](const absl::Status& s, int64_t) { metrics_.ObserveCompaction(s); };
  duties_ = std::make_unique<BackgroundDuties>(store_.get(), election_.get(), dop);

  LeaseManager::Options mo;
  mo.prefix = options_.network_prefix;
  mo.default_ttl = options_.default_lease_ttl;
  mo.shared_store = etcd_store;
  if (mo.shared_store) {
    mo.node_guard_prefix = absl::StrCat("/weft.io/controller/nodes", absl::StripSuffix(mo.prefix, "/"), "/");
  }
  mo.batch_writes = options_.batch_lease_writes;
  mo.txns_in_flight = options_.lease_txns_in_flight;
  if (mo.txns_in_flight < 1 || mo.txns_in_flight > 16) {
    constexpr char kWhat[] = "--lease-txns-in-flight must be between 1 and 16";
    WEFT_LOG(ERROR, kWhat).With("value", mo.txns_in_flight);
    return BadSettings(absl::StrCat(kWhat, ", not ", mo.txns_in_flight));
  }
  mo.hooks = metrics_.ManagerHooks();
  // Every replica sees each expiry through its watch; only the elected one counts it.
  mo.hooks.on_expired = [this, count = mo.hooks.on_expired] {
    if (duties_->Expired()) count();
  };
  mo.hooks.on_changes = [this](const std::vector<LeaseChange>& changes, int64_t revision) {
    OnLeaseChanges(changes, revision);
  };
  // The embedded store's recent history is replayed into the fan-out's, so
  // agents that resume from before this start get the changes they missed, not
  // a snapshot. Not on etcd: its watch does not say when a replay whose last
  // revisions are other keys' is over, and agents of a replica resume on
  // another one, whose history is warm.
  mo.replay_revisions = etcd_store ? 0 : std::max<int64_t>(options_.watch_replay_revisions, 0);
  absl::Status started = StartLeases(mo);
  if (!started.ok() && mo.replay_revisions > 0) {
    WEFT_LOG(WARN, "cannot replay the store's recent history; starting from its current state").Err(started);
    mo.replay_revisions = 0;
    started = StartLeases(mo);
  }
  if (!started.ok()) {
    WEFT_LOG(ERROR, "cannot load leases from the store").Err(started);
    return CannotStart("cannot load leases from the store", started);
  }
  election_->Step();  // a lone replica leads from the start
  election_->Start();
  duties_->Start();
  metrics_.WatchManager(registry_, manager_.get());

  if (const std::string& init = options_.initial_network_config; !init.empty()) {
    if (!manager_->GetConfig().ok()) {
      auto change = manager_->SetConfig(init, false);
      if (!change.ok()) {
        WEFT_LOG(ERROR, "--initial-config refused").Err(change.status());
        return BadSettings("--initial-config refused", change.status());
      }
      WEFT_LOG(INFO, "initial network config stored").With("revision", change->revision);
    }
  }

  // Who may do what (one table, controller/authz.h): from the client certificate
  // with TLS; everyone is an operator without.
  Authorizer::Options ao;
  ao.tls = tls_;
  ao.prefix = mo.prefix;
  ao.election_key = lo.key;
  ao.registry = &registry_;
  authz_ = std::make_unique<const Authorizer>(ao);

  auto observer = [this](const char* m, grpc::StatusCode c, absl::Duration d) { metrics_.ObserveRpc(m, c, d); };
  lease_service_ = std::make_unique<LeaseServiceImpl>(
      manager_.get(), observer,
      [this](grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req) { return fanout_->Open(ctx, req); },
      authz_.get());
  // Leases written through the etcd API with an etcd lease of their own expire
  // with it: show when.
  lease_service_->SetForeignLeaseExpiry([s = store_.get()](int64_t id) -> std::optional<absl::Time> {
    absl::StatusOr<storage::LeaseTimeToLiveResponse> ttl = s->LeaseTimeToLive(id, false);
    if (!ttl.ok() || ttl->ttl_seconds < 0) return std::nullopt;
    return absl::Now() + absl::Seconds(ttl->ttl_seconds);
  });
  network_service_ = std::make_unique<NetworkServiceImpl>(manager_.get(), observer, authz_.get());
  lease_service_->SetDrainGate(&drain_gate_);
  network_service_->SetDrainGate(&drain_gate_);
  network_service_->SetStatusSource([this](weft::v1::GetStatusResponse* resp) {
    resp->set_replica(replica_name_);
    resp->set_leader(election_->leader());
    resp->set_store(options_.store_kind);
    resp->set_store_location(store_location_);
    if (StoreHealthMonitor* h = health_for_status_.load()) {
      if (absl::Status s = h->Check(); !s.ok()) resp->set_store_problem(std::string(s.message()));
    }
    resp->set_watch_streams(metrics_.watch_streams());
  });

  RETURN_IF_ERROR(ListenGrpc());

  if (const std::string& addr = options_.metrics_listen; !addr.empty()) {
    http_ = std::make_unique<HttpServer>(&registry_);
    http_->SetReadinessCheck([this] { return Ready(); });
    if (absl::Status s = http_->Start(addr); !s.ok()) {
      WEFT_LOG(ERROR, "cannot serve metrics").With("metrics_listen", addr).Err(s);
      return CannotStart(absl::StrCat("cannot serve metrics on ", addr), s);
    }
  }
  WEFT_LOG(INFO, "weft-controller serving")
      .With("listen", options_.grpc_listen)
      .With("port", grpc_port_)
      .With("metrics_listen", options_.metrics_listen)
      .With("store", options_.store_kind)
      .With("where", store_location_)
      .With("etcd_listen", options_.etcd_api_listen)
      .With("tls", tls_)
      .With("prefix", mo.prefix)
      .With("revision", manager_->AppliedRevision())
      .With("replica", replica_name_)
      .With("leader", election_->leader());
  if (options_.notify_systemd) {
    if (absl::Status n = systemd::NotifyReady(); !n.ok()) {
      WEFT_LOG(WARN, "cannot tell systemd we are ready").Err(n);
    }
  }
  return absl::OkStatus();
}

// The gRPC server (weft.v1, health, reflection, and the etcd API if asked) on
// its listeners, and the store's health behind its serving status.
absl::Status ControllerServer::ListenGrpc() {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.grpc_listen, credentials_, &grpc_port_);
  builder.RegisterService(lease_service_.get());
  builder.RegisterService(network_service_.get());
  // Reflection v1 (ours) and v1alpha (gRPC's) describe every service served.
  std::vector<std::string> reflected = {weft::v1::LeaseService::service_full_name(),
                                        weft::v1::NetworkService::service_full_name(), "grpc.health.v1.Health",
                                        "grpc.reflection.v1.ServerReflection",
                                        "grpc.reflection.v1alpha.ServerReflection"};
  if (!options_.etcd_api_listen.empty()) {
    for (const char* n : etcd_api::kEtcdServiceNames) reflected.push_back(n);
  }
  reflection_v1_ = std::make_unique<ReflectionV1Service>(reflected);
  builder.RegisterService(reflection_v1_.get());
  const InputLimits& limits = options_.input_limits;
  if (const std::string& etcd_listen = options_.etcd_api_listen; !etcd_listen.empty()) {
    etcd_api::EtcdApiOptions eo;
    eo.name = options_.etcd_api_member_name;
    // The etcd API level served (3.4, as Debian's etcdctl 3.4.23 that the tests
    // drive), with Weft's own version as semver build metadata: clients that
    // check it (clientv3 RejectOldCluster) read only "3.4".
    eo.version = absl::StrCat("3.4.0+weft.", version::Version());
    if (options_.store_kind == "etcd") {  // the embedded store reports its size through Health()
      auto* etcd_store = static_cast<storage::EtcdStore*>(store_.get());
      eo.db_size = [etcd_store]() -> int64_t {
        absl::StatusOr<int64_t> size = etcd_store->DbSize();
        return size.ok() ? *size : 0;
      };
    }
    eo.client_urls = {absl::StrCat(tls_ ? "https://" : "http://", etcd_listen)};
    eo.max_range_keys = limits.max_range_keys;
    eo.max_watches_per_stream = limits.max_watches_per_stream;
    // Writes under the network prefix that would corrupt allocation state are refused.
    const std::string& prefix = options_.network_prefix;
    eo.validate_put =
        etcd_api::FlannelValidator(prefix, etcd_api::FlannelStateFromStore(store_.get(), prefix)).AsPutValidator();
    eo.authorize = authz_->EtcdHook();
    builder.AddListeningPort(etcd_listen, credentials_, &etcd_port_);
    etcd_api_ = etcd_api::RegisterEtcdApi(builder, store_.get(), eo);
  }
  // Bounded input (controller/limits.h): one message at most --max-request-bytes
  // (RESOURCE_EXHAUSTED beyond), a bounded number of calls per connection, and
  // no SO_REUSEPORT, so a second controller on the same port fails to start
  // instead of silently splitting the clients between two allocators.
  builder.SetMaxReceiveMessageSize(static_cast<int>(limits.max_request_bytes));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, limits.max_concurrent_streams);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  grpc::ResourceQuota quota("weft-controller");
  quota.Resize(static_cast<size_t>(limits.max_grpc_memory_bytes));
  builder.SetResourceQuota(quota);
  // Unary calls block on a durable commit: keep enough pollers that a burst of
  // blocked handlers does not starve new requests of a thread to read them.
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::NUM_CQS, 2);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 2);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, 4);
  grpc_server_ = builder.BuildAndStart();
  if (!grpc_server_ || grpc_port_ == 0) {
    constexpr char kWhat[] = "cannot listen (address in use by another process, or not an address of this host?)";
    WEFT_LOG(ERROR, kWhat).With("listen", options_.grpc_listen).With("etcd_listen", options_.etcd_api_listen);
    return CannotStart(absl::StrCat(kWhat, ": ", options_.grpc_listen));
  }
  // gRPC 1.51 idles its callback queue into 100 ms sleeps after a quiet
  // second; the waker keeps it from ever getting there.
  callback_queue_waker_ = std::make_unique<CallbackQueueWaker>(CallbackQueueWaker::Options());
  callback_queue_waker_->Start();
  grpc_server_->GetHealthCheckService()->SetServingStatus(true);
  // Per-service statuses exist only once set: name every service, so that a
  // check of one of them follows the store too.
  std::vector<std::string> service_names = {weft::v1::LeaseService::service_full_name(),
                                            weft::v1::NetworkService::service_full_name()};
  if (etcd_api_) {
    for (const char* n : etcd_api::kEtcdServiceNames) service_names.push_back(n);
  }
  for (const std::string& n : service_names) grpc_server_->GetHealthCheckService()->SetServingStatus(n, true);
  // A store that cannot write (disk full, quota) makes every service, and the
  // overall "" status, NOT_SERVING until it recovers.
  StoreHealthMonitor::Options hmo;
  hmo.on_change = [this](bool serving, const std::string&) {
    grpc_server_->GetHealthCheckService()->SetServingStatus(serving);
  };
  store_health_ = std::make_unique<StoreHealthMonitor>(store_.get(), registry_, hmo);
  store_health_->Start();
  health_for_status_.store(store_health_.get());
  if (etcd_api_ && etcd_port_ == 0) {
    constexpr char kWhat[] = "cannot listen for the etcd API (address in use by another process?)";
    WEFT_LOG(ERROR, kWhat).With("etcd_listen", options_.etcd_api_listen);
    return CannotStart(absl::StrCat(kWhat, ": ", options_.etcd_api_listen));
  }
  return absl::OkStatus();
}

absl::Status ControllerServer::Ready() const {
  if (!manager_->Ready()) return absl::UnavailableError("loading leases");
  if (absl::Status s = store_health_->Check(); !s.ok()) return s;
  if (!manager_->Config()) return absl::UnavailableError("no network config set");
  return absl::OkStatus();
}

void ControllerServer::Shutdown() {
  absl::MutexLock l(&shutdown_mu_);
  if (shut_down_) return;
  shut_down_ = true;
  WEFT_LOG(INFO, "weft-controller stopping");
  if (options_.notify_systemd) systemd::NotifyStopping().IgnoreError();  // best effort: we are going anyway
  health_for_status_.store(nullptr);
  store_health_->Stop();
  grpc_server_->GetHealthCheckService()->SetServingStatus(false);
  // Lame duck (controller/drain_gate.h): new calls get UNAVAILABLE while the
  // connections stay open, calls in flight finish.
  drain_gate_.Close();
  absl::SleepFor(options_.shutdown_drain);
  duties_->Stop();
  election_->Stop();  // resign: another replica takes the duties over at once
  // Agents' watch streams go in batches, not all at the same instant: the other
  // replicas see a ramp of resumes, not a storm.
  fanout_->Drain(options_.watch_drain_window);
  fanout_->Shutdown();
  if (etcd_api_) etcd_api_->Shutdown();
  manager_->StopWaiting();  // no request waits on the watch through the shutdown
  callback_queue_waker_->Stop();  // the calls still in flight keep the queue busy themselves
  grpc_server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (http_) http_->Stop();
  fanout_.reset();
  shutdown_done_.Notify();
}

void ControllerServer::Wait() { shutdown_done_.WaitForNotification(); }

}  // namespace weft::controller
