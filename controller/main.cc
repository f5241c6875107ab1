// weft-controller: allocates per-host subnets as TTL leases, serves them over
// gRPC (weft.v1) and streams lease changes to every agent.
// main only parses flags into ControllerServerOptions (controller/server.h),
// starts the server and turns SIGTERM into its graceful Shutdown().

#include <csignal>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/flags.h"
#include "common/log.h"
#include "common/mutex_mode.h"
#include "controller/limits_flags.h"
#include "controller/server.h"
#include "storage/etcd/etcd_flags.h"

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
ABSL_FLAG(int64_t, watch_replay_revisions, 10000,
          "At start, the store revisions whose lease changes are replayed into the watch history, so agents that "
          "resume from before a restart get the changes they missed rather than a snapshot (0: none; embedded "
          "store only).");
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

absl::Notification* g_stop = nullptr;
void OnSignal(int) {
  if (g_stop && !g_stop->HasBeenNotified()) g_stop->Notify();
}

// The server's options from the flags; exit code 2 (with the reason logged)
// when a group of flags does not parse. The server checks the rest.
int OptionsFromFlags(weft::controller::ControllerServerOptions* o) {
  using namespace weft;
  o->grpc_listen = absl::GetFlag(FLAGS_listen);
  o->metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  o->etcd_api_listen = absl::GetFlag(FLAGS_etcd_listen);
  o->etcd_api_member_name = absl::GetFlag(FLAGS_etcd_name);
  o->allow_plaintext_non_loopback = absl::GetFlag(FLAGS_insecure);

  o->tls.cert_file = absl::GetFlag(FLAGS_tls_cert_file);
  o->tls.key_file = absl::GetFlag(FLAGS_tls_key_file);
  o->tls.client_ca_file = absl::GetFlag(FLAGS_tls_client_ca_file);
  o->tls.refresh_interval = absl::GetFlag(FLAGS_tls_refresh_interval);

  absl::StatusOr<controller::InputLimits> limits = controller::InputLimitsFromFlags();
  if (!limits.ok()) {
    WEFT_LOG(ERROR, "bad limit").Err(limits.status());
    return 2;
  }
  o->input_limits = *limits;

  o->store_kind = absl::GetFlag(FLAGS_store);
  o->restore_from = absl::GetFlag(FLAGS_restore_from);
  o->force_restore = absl::GetFlag(FLAGS_force_restore);
  storage::RocksDbStore::Options& so = o->rocksdb;
  so.path = absl::GetFlag(FLAGS_data_dir);
  so.sync = !absl::GetFlag(FLAGS_unsafe_no_fsync);
  so.quota_bytes = absl::GetFlag(FLAGS_quota_backend_bytes);
  so.max_watch_history_bytes = absl::GetFlag(FLAGS_max_watch_history_bytes);
  so.min_free_bytes = absl::GetFlag(FLAGS_min_free_disk_bytes);
  so.recover_from_corruption = absl::GetFlag(FLAGS_recover_from_corruption);
  so.lease_expiry_interval = absl::GetFlag(FLAGS_lease_expiry_interval);
  so.on_reopen_needed = [](const std::string& why) {
    // Everything acknowledged is durable; the restart's reopen recovers it.
    WEFT_LOG(ERROR, "store needs a reopen: exiting for the supervisor to restart the controller (status 75)")
        .With("why", why);
    std::_Exit(75);
  };
  if (o->store_kind == "etcd" && o->restore_from.empty()) {
    absl::StatusOr<storage::EtcdStore::Options> eo = storage::EtcdOptionsFromFlags();
    if (!eo.ok()) {
      WEFT_LOG(ERROR, "bad etcd flags").Err(eo.status());
      return 2;
    }
    o->etcd = *std::move(eo);
  }

  o->network_prefix = absl::GetFlag(FLAGS_etcd_prefix);
  o->default_lease_ttl = absl::GetFlag(FLAGS_default_lease_ttl);
  o->initial_network_config = absl::GetFlag(FLAGS_initial_config);
  o->batch_lease_writes = absl::GetFlag(FLAGS_batch_lease_writes);
  o->lease_txns_in_flight = absl::GetFlag(FLAGS_lease_txns_in_flight);

  o->watch_bookmark_interval = absl::GetFlag(FLAGS_watch_bookmark_interval);
  o->watch_compress_snapshots = absl::GetFlag(FLAGS_watch_compress_snapshots);
  o->watch_senders = absl::GetFlag(FLAGS_watch_senders);
  o->watch_max_queue = absl::GetFlag(FLAGS_watch_max_queue);
  o->watch_history = absl::GetFlag(FLAGS_watch_history);
  o->watch_replay_revisions = absl::GetFlag(FLAGS_watch_replay_revisions);

  o->election_key = absl::GetFlag(FLAGS_election_key);
  o->election_ttl = absl::GetFlag(FLAGS_election_ttl);
  o->replica_name = absl::GetFlag(FLAGS_replica_name);
  o->compaction_interval = absl::GetFlag(FLAGS_compaction_interval);

  o->shutdown_drain = absl::GetFlag(FLAGS_shutdown_drain);
  o->watch_drain_window = absl::GetFlag(FLAGS_watch_drain_window);
  o->notify_systemd = true;
  return 0;
}

int Run() {
  using namespace weft;
  controller::ControllerServerOptions options;
  if (int rc = OptionsFromFlags(&options); rc != 0) return rc;
  // Start() has logged why it failed.
  absl::StatusOr<std::unique_ptr<controller::ControllerServer>> server =
      controller::ControllerServer::Start(std::move(options));
  if (!server.ok()) {
    return controller::StartFailureOf(server.status()) == controller::StartFailure::kBadSettings ? 2 : 1;
  }

  absl::Notification stop;
  g_stop = &stop;
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  stop.WaitForNotification();
  (*server)->Shutdown();
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
  weft::TurnOffMutexDeadlockDetection();
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
