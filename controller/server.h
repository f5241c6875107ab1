#pragma once
// ControllerServer: the whole controller (store, lease manager, watch fan-out,
// replica election and background duties, gRPC services, etcd API, metrics and
// readiness endpoint) wired together, as weft-controller runs it. main() only
// turns flags into ControllerServerOptions and signals into Shutdown(); tests
// start one in process (port 0 picks a free port).
//
// Thread-safety: the accessors, Ready(), Shutdown() and Wait() may be called
// from any thread once Start() has returned.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/http_server.h"
#include "common/metrics.h"
#include "controller/authz.h"
#include "controller/background_duties.h"
#include "controller/callback_queue_waker.h"
#include "controller/controller_metrics.h"
#include "controller/drain_gate.h"
#include "controller/grpc_services.h"
#include "controller/leader_election.h"
#include "controller/lease_fanout.h"
#include "controller/lease_manager.h"
#include "controller/limits.h"
#include "controller/reflection_v1.h"
#include "controller/store_health.h"
#include "controller/tls_credentials.h"
#include "controller/etcd_api/etcd_api_server.h"
#include "grpcpp/grpcpp.h"
#include "storage/etcd/etcd_store.h"
#include "storage/rocksdb/rocksdb_store.h"
#include "storage/store.h"

namespace weft::controller {

// Everything weft-controller derives from its flags (the flag each field comes
// from is named; the defaults are the flags'). Start() checks it, with the
// flags' names in its errors.
struct ControllerServerOptions {
  // Listeners. "host:port"; port 0 picks a free port (see the port accessors).
  std::string grpc_listen = "127.0.0.1:7800";     // --listen
  std::string metrics_listen = "127.0.0.1:7801";  // --metrics-listen; empty: no HTTP endpoint
  std::string etcd_api_listen;                    // --etcd-listen; empty: no etcd v3 API
  std::string etcd_api_member_name = "weft";      // --etcd-name
  // Plaintext listeners on non-loopback addresses are refused unless this is set.
  bool allow_plaintext_non_loopback = false;      // --insecure

  // Mutual TLS of the gRPC and etcd-API listeners: all three files or none
  // (--tls-cert-file, --tls-key-file, --tls-client-ca-file). refresh_interval
  // (--tls-refresh-interval, at least 1 s) also paces the etcd store's TLS reloads.
  ServerTlsOptions tls;

  // The store: "rocksdb" (embedded, rocksdb.path is --data-dir) or "etcd".
  std::string store_kind = "rocksdb";  // --store
  // --data-dir, --unsafe-no-fsync, --quota-backend-bytes, --max-watch-history-bytes,
  // --min-free-disk-bytes, --recover-from-corruption, --lease-expiry-interval;
  // on_reopen_needed is the process's answer to a store that must be reopened.
  // on_commit is the server's own (commit metrics).
  storage::RocksDbStore::Options rocksdb;
  // --etcd-*, for store_kind "etcd". probe_key and tls_refresh_interval are the
  // server's own (from network_prefix and tls.refresh_interval).
  storage::EtcdStore::Options etcd;
  // Before opening: restore rocksdb.path from this snapshot file (--restore-from),
  // even into a non-empty directory, moved aside, if force_restore (--force-restore).
  std::string restore_from;
  bool force_restore = false;

  // Leases and the network config.
  std::string network_prefix = "/coreos.com/network";      // --etcd-prefix
  absl::Duration default_lease_ttl = absl::Hours(24);      // --default-lease-ttl
  std::string initial_network_config;                       // --initial-config: stored when none is set
  bool batch_lease_writes = true;                           // --batch-lease-writes
  int lease_txns_in_flight = 2;                             // --lease-txns-in-flight (1-16)

  // WatchLeases streams.
  absl::Duration watch_bookmark_interval = absl::Seconds(30);  // --watch-bookmark-interval
  bool watch_compress_snapshots = false;                       // --watch-compress-snapshots
  int watch_senders = 0;                                       // --watch-senders; 0: one per CPU, at most 8
  int64_t watch_max_queue = 1024;                              // --watch-max-queue
  int64_t watch_history = 10000;                               // --watch-history
  int64_t watch_replay_revisions = 10000;                      // --watch-replay-revisions

  // Replicas sharing a store: the election of the one running the background duties.
  std::string election_key = "/weft.io/controller/leader";  // --election-key
  absl::Duration election_ttl = absl::Seconds(10);          // --election-ttl
  std::string replica_name;                                  // --replica-name; empty: <hostname>/<grpc_listen>
  absl::Duration compaction_interval = absl::Minutes(5);    // --compaction-interval (etcd store only)

  // Bounds on client input (--max-*).
  InputLimits input_limits;

  // Shutdown(): how long new calls are refused while calls in flight finish
  // (--shutdown-drain), then the window the watch streams are ended over
  // (--watch-drain-window).
  absl::Duration shutdown_drain = absl::Seconds(1);
  absl::Duration watch_drain_window = absl::Seconds(2);

  // Tell systemd (sd_notify) when serving and when stopping.
  bool notify_systemd = false;
};

// Why Start() failed, which weft-controller turns into its exit status.
enum class StartFailure {
  kCannotStart,  // the store, a listener, the snapshot to restore (exit 1)
  kBadSettings,  // an option, or a combination of them, is wrong (exit 2)
};
// The kind of a status Start() returned.
StartFailure StartFailureOf(const absl::Status& status);

class ControllerServer {
 public:
  using Options = ControllerServerOptions;

  // Opens the store, loads the leases and serves on every listener; returns once
  // the gRPC port answers. Each failure is logged (as weft-controller always
  // has) and returned, its StartFailureOf() saying why; everything started so
  // far is stopped again.
  static absl::StatusOr<std::unique_ptr<ControllerServer>> Start(Options options);

  // Shutdown()s if it has not run.
  ~ControllerServer();
  ControllerServer(const ControllerServer&) = delete;
  ControllerServer& operator=(const ControllerServer&) = delete;

  // The bound ports; 0 for a listener that is off.
  int grpc_port() const { return grpc_port_; }
  int etcd_api_port() const { return etcd_port_; }
  int metrics_port() const;

  // What /readyz reports: OK once the leases are loaded, the store takes writes
  // and a network config is set.
  absl::Status Ready() const;

  // The graceful stop of SIGTERM: NOT_SERVING, new calls refused for
  // shutdown_drain while calls in flight finish, the duties and the election
  // given up, the watch streams ended over watch_drain_window, then every
  // listener stopped. Blocks until done; a second call waits for the first.
  // The store is closed when the server is destroyed.
  void Shutdown();
  // Blocks until Shutdown() has finished (called by another thread).
  void Wait();

 private:
  explicit ControllerServer(Options options);
  absl::Status StartServing();
  // A new lease manager and fan-out: the leases loaded, the history replayed.
  absl::Status StartLeases(const LeaseManager::Options& mo);
  absl::Status SetUpTransport();
  absl::Status OpenStore();
  absl::Status ListenGrpc();
  void OnLeaseChanges(const std::vector<LeaseChange>& changes, int64_t revision);

  // Destroyed in the reverse order of this list, as weft-controller's locals were.
  const Options options_;
  metrics::Registry registry_;
  ControllerMetrics metrics_;
  std::shared_ptr<grpc::ServerCredentials> credentials_;
  std::unique_ptr<ServerCertMonitor> cert_monitor_;
  bool tls_ = false;
  std::unique_ptr<storage::Store> store_;
  std::string store_location_;
  std::string replica_name_;
  std::unique_ptr<LeaderElection> election_;
  std::unique_ptr<BackgroundDuties> duties_;
  std::unique_ptr<LeaseFanout> fanout_;
  std::unique_ptr<LeaseManager> manager_;
  std::unique_ptr<const Authorizer> authz_;
  std::unique_ptr<LeaseServiceImpl> lease_service_;
  std::unique_ptr<NetworkServiceImpl> network_service_;
  DrainGate drain_gate_;
  std::atomic<StoreHealthMonitor*> health_for_status_{nullptr};  // set once it runs
  std::unique_ptr<ReflectionV1Service> reflection_v1_;
  std::unique_ptr<etcd_api::EtcdApiServer> etcd_api_;
  int etcd_port_ = 0;
  std::unique_ptr<grpc::Server> grpc_server_;
  int grpc_port_ = 0;
  std::unique_ptr<CallbackQueueWaker> callback_queue_waker_;
  std::unique_ptr<StoreHealthMonitor> store_health_;
  std::unique_ptr<HttpServer> http_;

  bool started_ = false;  // Start() succeeded: there is something to shut down
  absl::Mutex shutdown_mu_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;
  absl::Notification shutdown_done_;
};

}  // namespace weft::controller
