// weft-controller: allocates per-host subnets as TTL leases, serves them over
// gRPC (weft.v1) and streams lease changes to every agent.
// main only parses flags into a config and wires the parts together.

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/flags.h"
#include "common/http_server.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/sd_notify.h"
#include "common/version.h"
#include "controller/controller_metrics.h"
#include "controller/store_health.h"
#include "controller/background_duties.h"
#include "controller/grpc_services.h"
#include "controller/leader_election.h"
#include "controller/tls_credentials.h"
#include "controller/lease_manager.h"
#include "controller/reflection_v1.h"
#include "controller/limits_flags.h"
#include "controller/lease_fanout.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "absl/strings/str_join.h"
#include "grpcpp/resource_quota.h"
#include "absl/strings/str_split.h"
#include "controller/etcd_api/etcd_api_server.h"
#include "controller/etcd_api/flannel_validator.h"
#include "storage/etcd/etcd_flags.h"
#include "storage/etcd/etcd_store.h"
#include "storage/rocksdb/rocksdb_store.h"
#include "storage/rocksdb/snapshot_archive.h"

ABSL_FLAG(std::string, data_dir, "/var/lib/weft", "Directory of the embedded store (RocksDB).");
ABSL_FLAG(std::string, listen, "127.0.0.1:7800", "gRPC listen address (host:port).");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:7801",
          "HTTP listen address for /metrics, /healthz and /readyz; empty to disable.");
ABSL_FLAG(std::string, etcd_prefix, "/coreos.com/network", "Key prefix of the network (flannel's).");
ABSL_FLAG(absl::Duration, default_lease_ttl, absl::Hours(24),
          "Lease TTL when the network config sets no LeaseTTL.");
ABSL_FLAG(absl::Duration, lease_expiry_interval, absl::Seconds(1), "How often expired leases are collected.");
ABSL_FLAG(absl::Duration, watch_bookmark_interval, absl::Seconds(30), "Bookmark period for idle watch streams.");
ABSL_FLAG(bool, watch_compress_snapshots, false,
          "gzip WatchLeases snapshots (not events) for clients that accept it: about a sixth of the bytes, "
          "for CPU per stream.");
ABSL_FLAG(int32_t, watch_senders, 0,
          "Threads that start the writes of one lease change to the watch streams (0: one per CPU, at most 8).");
ABSL_FLAG(int64_t, watch_max_queue, 1024, "Messages queued per watch stream before it is resynced.");
ABSL_FLAG(int64_t, watch_history, 10000, "Lease events kept so watch streams can resume without a snapshot.");
ABSL_FLAG(std::string, initial_config, "",
          "A network config (flannel's JSON) stored at start-up when none is set yet.");
ABSL_FLAG(std::string, store, "rocksdb",
          "Where leases live: rocksdb (embedded, in --data-dir; one replica) or etcd (--etcd-endpoints; "
          "several replicas may share it).");
ABSL_FLAG(std::string, etcd_listen, "",
          "Serve the etcd v3 API (etcdctl, flannel's tools) on this host:port, over the same store; empty: off.");
ABSL_FLAG(std::string, etcd_name, "weft", "Member name reported by the etcd API (member list, status).");
ABSL_FLAG(absl::Duration, election_ttl, absl::Seconds(10),
          "TTL of the store lease behind the replica election: how long the background duties pause when "
          "the replica running them dies.");
ABSL_FLAG(std::string, election_key, "/weft.io/controller/leader",
          "Store key of the replica election (outside flannel's keyspace).");
ABSL_FLAG(std::string, replica_name, "",
          "This replica's name in the election key; default <hostname>/<--listen>.");
ABSL_FLAG(absl::Duration, compaction_interval, absl::Minutes(5),
          "--store=etcd: the elected replica compacts etcd's history to the revision of one interval earlier, "
          "as kube-apiserver does; 0 to leave compaction to etcd's own settings.");
ABSL_FLAG(bool, batch_lease_writes, true,
          "Concurrent lease writes share one store transaction (one etcd round trip for many leases); "
          "false writes one transaction per lease (benchmark baseline).");
ABSL_FLAG(int32_t, lease_txns_in_flight, 2,
          "Merged lease-write transactions in flight at once (1-16). More keeps a remote etcd busy while "
          "answers travel back; fewer makes each transaction carry more writes.");
ABSL_FLAG(absl::Duration, shutdown_drain, absl::Seconds(1),
          "At SIGTERM, how long new calls are answered UNAVAILABLE (so clients go to another replica) while "
          "calls in flight finish, before the server stops; gRPC would cancel calls arriving after that.");
ABSL_FLAG(absl::Duration, watch_drain_window, absl::Seconds(2),
          "At SIGTERM, after --shutdown-drain, the WatchLeases streams open are ended in batches spread over this "
          "window (their agents resume on another replica gradually, not all at once); 0 = all at once.");
ABSL_FLAG(bool, unsafe_no_fsync, false, "Do not fsync writes (benchmark upper bound only; loses data on crash).");
ABSL_FLAG(int64_t, quota_backend_bytes, 0,
          "Size quota of the embedded store on disk, as etcd's: above it the NOSPACE alarm is raised and writes "
          "that add data fail (RESOURCE_EXHAUSTED) until `etcdctl alarm disarm`; 0 = no quota.");
ABSL_FLAG(int64_t, max_watch_history_bytes, 64 << 20,
          "An etcd-API watch from an old revision of the embedded store may replay at most this many bytes of "
          "history (it is read into memory first); more cancels the watch with a reason. 0 = no limit.");
ABSL_FLAG(int64_t, min_free_disk_bytes, 20 << 20,
          "The embedded store refuses writes (UNAVAILABLE, until space returns) while the file system of "
          "--data-dir has less free space than this; RocksDB needs a memtable's worth (16 MiB) to recover.");
ABSL_FLAG(bool, recover_from_corruption, false,
          "Open an embedded store whose write-ahead log has a corrupted record by dropping that record and "
          "everything after it (logged: how many bytes and write batches). Without it such a store is refused.");
ABSL_FLAG(std::string, restore_from, "",
          "Before starting, restore the embedded store into --data-dir from this snapshot file (etcdctl snapshot "
          "save or weftctl snapshot save against a controller). --data-dir must be missing or empty.");
ABSL_FLAG(bool, force_restore, false,
          "With --restore-from: restore even if --data-dir is not empty (the old one is renamed aside).");

// Transport security of the gRPC and etcd-API listeners (docs/security.md).
ABSL_FLAG(std::string, tls_cert_file, "", "PEM certificate the controller serves (with --tls-key-file); re-read when it changes.");
ABSL_FLAG(std::string, tls_key_file, "", "PEM private key of --tls-cert-file; re-read when it changes.");
ABSL_FLAG(std::string, tls_client_ca_file, "",
          "PEM CA bundle client certificates must chain to: with the two above, both listeners require mutual TLS "
          "and callers are authorized by the identity in their certificate.");
ABSL_FLAG(absl::Duration, tls_refresh_interval, absl::Seconds(5),
          "How often the TLS files (the listeners' and the --etcd-* ones) are checked for changes (rotation "
          "without restart); at least 1s.");
ABSL_FLAG(bool, insecure, false,
          "Allow plaintext listeners on non-loopback addresses (anyone who reaches them may do anything).");

namespace {

// The listeners' credentials from the TLS flags; exit code 2 (with the reason
// logged) on a bad combination or bad files. Without TLS only loopback
// listeners are allowed, unless --insecure.
struct Transport {
  std::shared_ptr<grpc::ServerCredentials> credentials;
  std::unique_ptr<weft::controller::ServerCertMonitor> monitor;
  bool tls = false;
};
int SetUpTransport(Transport* t) {
  using namespace weft;
  controller::ServerTlsOptions to;
  to.cert_file = absl::GetFlag(FLAGS_tls_cert_file);
  to.key_file = absl::GetFlag(FLAGS_tls_key_file);
  to.client_ca_file = absl::GetFlag(FLAGS_tls_client_ca_file);
  to.refresh_interval = absl::GetFlag(FLAGS_tls_refresh_interval);
  const int set = !to.cert_file.empty() + !to.key_file.empty() + !to.client_ca_file.empty();
  if (set != 0 && set != 3) {
    WEFT_LOG(ERROR, "TLS needs all of --tls-cert-file, --tls-key-file and --tls-client-ca-file");
    return 2;
  }
  if (to.refresh_interval < absl::Seconds(1)) {
    WEFT_LOG(ERROR, "--tls-refresh-interval must be at least 1s").With("value", to.refresh_interval);
    return 2;
  }
  if (set == 3) {
    auto creds = controller::MakeServerCredentials(to);
    if (!creds.ok()) {
      WEFT_LOG(ERROR, "cannot set up TLS").Err(creds.status());
      return 2;
    }
    t->credentials = *creds;
    t->monitor = std::make_unique<controller::ServerCertMonitor>(to);
    t->tls = true;
    return 0;
  }
  t->credentials = grpc::InsecureServerCredentials();
  std::vector<std::string> exposed;
  for (const std::string& addr : {absl::GetFlag(FLAGS_listen), absl::GetFlag(FLAGS_etcd_listen)}) {
    if (!addr.empty() && !controller::IsLoopbackListen(addr)) exposed.push_back(addr);
  }
  if (exposed.empty()) return 0;
  if (!absl::GetFlag(FLAGS_insecure)) {
    WEFT_LOG(ERROR,
             "refusing to listen on a non-loopback address without TLS: anyone who reaches it could take over "
             "the network; use TLS (--tls-cert-file, --tls-key-file, --tls-client-ca-file; docs/security.md) or "
             "--insecure")
        .With("listen", absl::StrJoin(exposed, ","));
    return 2;
  }
  WEFT_LOG(WARNING,
           "--insecure: plaintext listener on a non-loopback address; any client that reaches it may do anything "
           "(docs/security.md)")
      .With("listen", absl::StrJoin(exposed, ","));
  return 0;
}

absl::Notification* g_stop = nullptr;
void OnSignal(int) {
  if (g_stop && !g_stop->HasBeenNotified()) g_stop->Notify();
}

int Run() {
  using namespace weft;
  metrics::Registry registry;
  metrics::AddProcessMetrics(registry);
  metrics::AddBuildInfo(registry, version::Version(), version::Commit());
  controller::ControllerMetrics cm(registry);
  Transport transport;
  if (int rc = SetUpTransport(&transport); rc != 0) return rc;
  absl::StatusOr<controller::InputLimits> limits = controller::InputLimitsFromFlags();
  if (!limits.ok()) {
    WEFT_LOG(ERROR, "bad limit").Err(limits.status());
    return 2;
  }
  controller::SetLimits(*limits);

  absl::StatusOr<std::unique_ptr<storage::Store>> store;
  const std::string store_kind = absl::GetFlag(FLAGS_store);
  std::string store_where;
  if (const std::string from = absl::GetFlag(FLAGS_restore_from); !from.empty()) {
    if (store_kind != "rocksdb") {
      WEFT_LOG(ERROR, "--restore-from restores the embedded store only (--store=rocksdb)");
      return 2;
    }
    auto restored = storage::snapshot_archive::RestoreArchive(from, absl::GetFlag(FLAGS_data_dir),
                                                              absl::GetFlag(FLAGS_force_restore));
    if (!restored.ok()) {
      WEFT_LOG(ERROR, "cannot restore the store").With("from", from).Err(restored.status());
      return 1;
    }
    WEFT_LOG(INFO, "store restored from snapshot")
        .With("from", from)
        .With("data_dir", absl::GetFlag(FLAGS_data_dir))
        .With("files", restored->files)
        .With("bytes", restored->bytes)
        .With("checksum_verified", restored->checksum_verified)
        .With("old_data_moved_to", restored->moved_aside);
  }
  if (store_kind == "rocksdb") {
    storage::RocksDbStore::Options so;
    so.quota_bytes = absl::GetFlag(FLAGS_quota_backend_bytes);
    so.max_watch_history_bytes = absl::GetFlag(FLAGS_max_watch_history_bytes);
    so.recover_from_corruption = absl::GetFlag(FLAGS_recover_from_corruption);
    so.min_free_bytes = absl::GetFlag(FLAGS_min_free_disk_bytes);
    so.on_reopen_needed = [](const std::string& why) {
      // Everything acknowledged is durable; the restart's reopen recovers it.
      WEFT_LOG(ERROR, "store needs a reopen: exiting for the supervisor to restart the controller (status 75)")
          .With("why", why);
      std::_Exit(75);
    };
    so.path = absl::GetFlag(FLAGS_data_dir);
    so.sync = !absl::GetFlag(FLAGS_unsafe_no_fsync);
    so.lease_expiry_interval = absl::GetFlag(FLAGS_lease_expiry_interval);
    so.on_commit = [&cm](absl::Duration latency, int batch) { cm.ObserveCommit(latency, batch); };
    store_where = so.path;
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
    absl::StatusOr<storage::EtcdStore::Options> eo = storage::EtcdOptionsFromFlags();
    if (!eo.ok()) {
      WEFT_LOG(ERROR, "bad etcd flags").Err(eo.status());
      return 2;
    }
    eo->probe_key = absl::StrCat(absl::GetFlag(FLAGS_etcd_prefix), "/config");  // readable with etcd auth
    eo->tls_refresh_interval = absl::GetFlag(FLAGS_tls_refresh_interval);
    store_where = absl::StrJoin(eo->endpoints, ",");
    store = storage::EtcdStore::Open(*eo);
    if (!store.ok() && (store.status().code() == absl::StatusCode::kInvalidArgument ||
                        store.status().code() == absl::StatusCode::kUnauthenticated)) {
      WEFT_LOG(ERROR, "bad etcd settings or credentials").With("where", store_where).Err(store.status());
      return 2;
    }
  } else {
    WEFT_LOG(ERROR, "--store must be rocksdb or etcd").With("store", store_kind);
    return 2;
  }
  if (!store.ok()) {
    WEFT_LOG(ERROR, "cannot open the store").With("store", store_kind).With("where", store_where).Err(store.status());
    return 1;
  }

  // One replica among those sharing the store runs the once-per-cluster duties
  // (with the embedded store there is one replica, and it wins at once).
  controller::LeaderElection::Options lo;
  lo.key = absl::GetFlag(FLAGS_election_key);
  lo.ttl = absl::GetFlag(FLAGS_election_ttl);
  lo.identity = absl::GetFlag(FLAGS_replica_name);
  if (lo.identity.empty()) {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    lo.identity = absl::StrCat(host, "/", absl::GetFlag(FLAGS_listen));
  }
  lo.on_change = [&cm](bool leader) { cm.ObserveLeadership(leader); };
  controller::LeaderElection election(store->get(), lo);
  controller::BackgroundDuties::Options dop;
  if (store_kind == "etcd") dop.compaction_interval = absl::GetFlag(FLAGS_compaction_interval);
  dop.on_compaction = [&cm](const absl::Status& s, int64_t) { cm.ObserveCompaction(s); };
  controller::BackgroundDuties duties(store->get(), &election, dop);

  std::unique_ptr<controller::LeaseFanout> hub;
  controller::LeaseManager::Options mo;
  mo.prefix = absl::GetFlag(FLAGS_etcd_prefix);
  mo.default_ttl = absl::GetFlag(FLAGS_default_lease_ttl);
  mo.shared_store = store_kind == "etcd";
  if (mo.shared_store) {
    mo.node_guard_prefix = absl::StrCat("/weft.io/controller/nodes", absl::StripSuffix(mo.prefix, "/"), "/");
  }
  mo.batch_writes = absl::GetFlag(FLAGS_batch_lease_writes);
  mo.txns_in_flight = absl::GetFlag(FLAGS_lease_txns_in_flight);
  if (mo.txns_in_flight < 1 || mo.txns_in_flight > 16) {
    WEFT_LOG(ERROR, "--lease-txns-in-flight must be between 1 and 16").With("value", mo.txns_in_flight);
    return 2;
  }
  mo.hooks = cm.ManagerHooks();
  // Every replica sees each expiry through its watch; only the elected one counts it.
  mo.hooks.on_expired = [&duties, count = mo.hooks.on_expired] {
    if (duties.Expired()) count();
  };
  mo.hooks.on_changes = [&hub](const std::vector<controller::LeaseChange>& changes, int64_t revision) {
    if (!hub) return;
    std::vector<weft::v1::LeaseEvent> events;
    events.reserve(changes.size());
    for (const auto& c : changes) {
      weft::v1::LeaseEvent e;
      e.set_type(c.deleted ? weft::v1::LeaseEvent::TYPE_DELETE : weft::v1::LeaseEvent::TYPE_PUT);
      controller::ToProto(c.record, e.mutable_lease());
      e.set_revision(c.revision);
      events.push_back(std::move(e));
    }
    hub->Publish(events, revision);
  };
  controller::LeaseManager manager(store->get(), mo);
  if (absl::Status s = manager.Start(); !s.ok()) {
    WEFT_LOG(ERROR, "cannot load leases from the store").Err(s);
    return 1;
  }
  election.Step();  // a lone replica leads from the start
  election.Start();
  duties.Start();
  controller::LeaseFanout::Options ho;
  ho.bookmark_interval = absl::GetFlag(FLAGS_watch_bookmark_interval);
  ho.max_queue = static_cast<size_t>(absl::GetFlag(FLAGS_watch_max_queue));
  ho.history = static_cast<size_t>(absl::GetFlag(FLAGS_watch_history));
  ho.hooks = cm.HubHooks();
  ho.senders = absl::GetFlag(FLAGS_watch_senders);
  ho.compress_snapshots = absl::GetFlag(FLAGS_watch_compress_snapshots);
  if (ho.senders <= 0) ho.senders = static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
  hub = std::make_unique<controller::LeaseFanout>(&manager, ho);
  cm.WatchManager(registry, &manager);

  if (const std::string init = absl::GetFlag(FLAGS_initial_config); !init.empty()) {
    if (!manager.GetConfig().ok()) {
      auto change = manager.SetConfig(init, false);
      if (!change.ok()) {
        WEFT_LOG(ERROR, "--initial-config refused").Err(change.status());
        return 2;
      }
      WEFT_LOG(INFO, "initial network config stored").With("revision", change->revision);
    }
  }

  // Who may do what (one table, controller/authz.h): from the client certificate
  // with TLS; everyone is an operator without.
  controller::Authorizer::Options ao;
  ao.tls = transport.tls;
  ao.prefix = mo.prefix;
  ao.election_key = lo.key;
  ao.registry = &registry;
  const controller::Authorizer authz(ao);

  auto observer = [&cm](const char* m, grpc::StatusCode c, absl::Duration d) { cm.ObserveRpc(m, c, d); };
  controller::LeaseServiceImpl lease_service(&manager, observer,
                                             [&hub](grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req) {
                                               return hub->Open(ctx, req);
                                             },
                                             &authz);
  // Leases written through the etcd API with an etcd lease of their own expire
  // with it: show when.
  lease_service.SetForeignLeaseExpiry([s = store->get()](int64_t id) -> std::optional<absl::Time> {
    absl::StatusOr<storage::LeaseTimeToLiveResponse> ttl = s->LeaseTimeToLive(id, false);
    if (!ttl.ok() || ttl->ttl_seconds < 0) return std::nullopt;
    return absl::Now() + absl::Seconds(ttl->ttl_seconds);
  });
  controller::NetworkServiceImpl network_service(&manager, observer, &authz);
  controller::DrainGate drain_gate;
  lease_service.SetDrainGate(&drain_gate);
  network_service.SetDrainGate(&drain_gate);
  std::atomic<controller::StoreHealthMonitor*> health_for_status{nullptr};  // set once it runs
  network_service.SetStatusSource([&](weft::v1::GetStatusResponse* resp) {
    resp->set_replica(lo.identity);
    resp->set_leader(election.leader());
    resp->set_store(store_kind);
    resp->set_store_location(store_where);
    if (controller::StoreHealthMonitor* h = health_for_status.load()) {
      if (absl::Status s = h->Check(); !s.ok()) resp->set_store_problem(std::string(s.message()));
    }
    resp->set_watch_streams(cm.watch_streams());
  });

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen), transport.credentials, &port);
  builder.RegisterService(&lease_service);
  builder.RegisterService(&network_service);
  // Reflection v1 (ours) and v1alpha (gRPC's) describe every service served.
  std::vector<std::string> reflected = {weft::v1::LeaseService::service_full_name(),
                                        weft::v1::NetworkService::service_full_name(), "grpc.health.v1.Health",
                                        "grpc.reflection.v1.ServerReflection",
                                        "grpc.reflection.v1alpha.ServerReflection"};
  if (!absl::GetFlag(FLAGS_etcd_listen).empty()) {
    for (const char* n : controller::etcd_api::kEtcdServiceNames) reflected.push_back(n);
  }
  controller::ReflectionV1Service reflection_v1(reflected);
  builder.RegisterService(&reflection_v1);
  std::unique_ptr<controller::etcd_api::EtcdApiServer> etcd_api;
  int etcd_port = 0;
  if (const std::string etcd_listen = absl::GetFlag(FLAGS_etcd_listen); !etcd_listen.empty()) {
    controller::etcd_api::EtcdApiOptions eo;
    eo.name = absl::GetFlag(FLAGS_etcd_name);
    // The etcd API level served (3.4, as Debian's etcdctl 3.4.23 that the tests
    // drive), with Weft's own version as semver build metadata: clients that
    // check it (clientv3 RejectOldCluster) read only "3.4".
    eo.version = absl::StrCat("3.4.0+weft.", version::Version());
    if (store_kind == "etcd") {  // the embedded store reports its size through Health()
      auto* etcd_store = static_cast<storage::EtcdStore*>(store->get());
      eo.db_size = [etcd_store]() -> int64_t {
        absl::StatusOr<int64_t> size = etcd_store->DbSize();
        return size.ok() ? *size : 0;
      };
    }
    eo.client_urls = {absl::StrCat(transport.tls ? "https://" : "http://", etcd_listen)};
    eo.max_range_keys = limits->max_range_keys;
    eo.max_watches_per_stream = limits->max_watches_per_stream;
    // Writes under the network prefix that would corrupt allocation state are refused.
    eo.validate_put =
        controller::etcd_api::FlannelValidator(mo.prefix, controller::etcd_api::FlannelStateFromStore(store->get(), mo.prefix))
            .AsPutValidator();
    eo.authorize = authz.EtcdHook();
    builder.AddListeningPort(etcd_listen, transport.credentials, &etcd_port);
    etcd_api = controller::etcd_api::RegisterEtcdApi(builder, store->get(), eo);
  }
  // Bounded input (controller/limits.h): one message at most --max-request-bytes
  // (RESOURCE_EXHAUSTED beyond), a bounded number of calls per connection, and
  // no SO_REUSEPORT, so a second controller on the same port fails to start
  // instead of silently splitting the clients between two allocators.
  builder.SetMaxReceiveMessageSize(static_cast<int>(limits->max_request_bytes));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, limits->max_concurrent_streams);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  grpc::ResourceQuota quota("weft-controller");
  quota.Resize(static_cast<size_t>(limits->max_grpc_memory_bytes));
  builder.SetResourceQuota(quota);
  // Unary calls block on a durable commit: keep enough pollers that a burst of
  // blocked handlers does not starve new requests of a thread to read them.
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::NUM_CQS, 2);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 2);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, 4);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    WEFT_LOG(ERROR, "cannot listen (address in use by another process, or not an address of this host?)")
        .With("listen", absl::GetFlag(FLAGS_listen))
        .With("etcd_listen", absl::GetFlag(FLAGS_etcd_listen));
    return 1;
  }
  server->GetHealthCheckService()->SetServingStatus(true);
  // Per-service statuses exist only once set: name every service, so that a
  // check of one of them follows the store too.
  std::vector<std::string> service_names = {weft::v1::LeaseService::service_full_name(),
                                            weft::v1::NetworkService::service_full_name()};
  if (etcd_api) {
    for (const char* n : controller::etcd_api::kEtcdServiceNames) service_names.push_back(n);
  }
  for (const std::string& n : service_names) server->GetHealthCheckService()->SetServingStatus(n, true);
  // A store that cannot write (disk full, quota) makes every service, and the
  // overall "" status, NOT_SERVING until it recovers.
  controller::StoreHealthMonitor::Options hmo;
  hmo.on_change = [&server](bool serving, const std::string&) {
    server->GetHealthCheckService()->SetServingStatus(serving);
  };
  controller::StoreHealthMonitor store_health(store->get(), registry, hmo);
  store_health.Start();
  health_for_status.store(&store_health);
  if (etcd_api && etcd_port == 0) {
    WEFT_LOG(ERROR, "cannot listen for the etcd API (address in use by another process?)")
        .With("etcd_listen", absl::GetFlag(FLAGS_etcd_listen));
    return 1;
  }

  std::unique_ptr<HttpServer> http;
  if (const std::string addr = absl::GetFlag(FLAGS_metrics_listen); !addr.empty()) {
    http = std::make_unique<HttpServer>(&registry);
    http->SetReadinessCheck([&manager, &store_health]() -> absl::Status {
      if (!manager.Ready()) return absl::UnavailableError("loading leases");
      if (absl::Status s = store_health.Check(); !s.ok()) return s;
      if (!manager.Config()) return absl::UnavailableError("no network config set");
      return absl::OkStatus();
    });
    if (absl::Status s = http->Start(addr); !s.ok()) {
      WEFT_LOG(ERROR, "cannot serve metrics").With("metrics_listen", addr).Err(s);
      return 1;
    }
  }
  WEFT_LOG(INFO, "weft-controller serving")
      .With("listen", absl::GetFlag(FLAGS_listen))
      .With("port", port)
      .With("metrics_listen", absl::GetFlag(FLAGS_metrics_listen))
      .With("store", store_kind)
      .With("where", store_where)
      .With("etcd_listen", absl::GetFlag(FLAGS_etcd_listen))
      .With("tls", transport.tls)
      .With("prefix", mo.prefix)
      .With("revision", manager.AppliedRevision())
      .With("replica", lo.identity)
      .With("leader", election.leader());
  if (absl::Status n = systemd::NotifyReady(); !n.ok()) {
    WEFT_LOG(WARN, "cannot tell systemd we are ready").Err(n);
  }

  absl::Notification stop;
  g_stop = &stop;
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  stop.WaitForNotification();

  WEFT_LOG(INFO, "weft-controller stopping");
  systemd::NotifyStopping().IgnoreError();  // best effort: we are going anyway
  health_for_status.store(nullptr);
  store_health.Stop();
  server->GetHealthCheckService()->SetServingStatus(false);
  // Lame duck (controller/drain_gate.h): new calls get UNAVAILABLE while the
  // connections stay open, calls in flight finish.
  drain_gate.Close();
  absl::SleepFor(absl::GetFlag(FLAGS_shutdown_drain));
  duties.Stop();
  election.Stop();  // resign: another replica takes the duties over at once
  // Agents' watch streams go in batches, not all at the same instant: the other
  // replicas see a ramp of resumes, not a storm.
  hub->Drain(absl::GetFlag(FLAGS_watch_drain_window));
  hub->Shutdown();
  if (etcd_api) etcd_api->Shutdown();
  manager.StopWaiting();  // no request waits on the watch through the shutdown
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (http) http->Stop();
  hub.reset();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  weft::SetProgramHelp({
      .name = "weft-controller",
      .summary = "allocates per-host subnets as TTL leases, serves them over gRPC (weft.v1) and the etcd v3 API, "
                 "and streams lease changes to every agent.",
      .synopsis = "[FLAGS]",
      .groups =
          {
              {"Listeners", {"listen", "metrics_listen", "etcd_listen", "etcd_name", "insecure"}},
              {"TLS (docs/security.md)", {"tls_*"}},
              {"Store", {"store", "data_dir", "etcd_prefix", "unsafe_no_fsync", "quota_backend_bytes",
                         "min_free_disk_bytes", "recover_from_corruption", "restore_from", "force_restore"}},
              {"etcd store (--store=etcd)", {"etcd_*", "compaction_interval", "batch_lease_writes",
                                             "lease_txns_in_flight"}},
              {"Leases and network config", {"default_lease_ttl", "lease_expiry_interval", "initial_config"}},
              {"Watch streams", {"watch_*"}},
              {"Replicas", {"election_*", "replica_name", "shutdown_drain"}},
              {"Input limits (hostile clients)", {"max_*"}},
              {"Logging", {"log_*"}},
          },
      .footer = "Exit status: 0 stopped cleanly (SIGTERM); 1 could not start (store, listener); 2 bad flags or "
                "settings; 75 the store needs a reopen (the supervisor restarts it). docs/operations.md.",
  });
  // Debian's Abseil is built with deadlock detection on: it records every lock
  // order in a global graph, serializing all mutex traffic. Off in production.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  auto args = weft::ParseFlagsWithEnv(argc, argv, "WEFT_");
  if (!args.ok()) {
    WEFT_LOG(ERROR, "bad flags").Err(args.status());
    return 2;
  }
  if (args->size() > 1) {
    WEFT_LOG(ERROR, "unexpected argument").With("arg", std::string((*args)[1]));
    return 2;
  }
  return Run();
}
