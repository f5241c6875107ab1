#pragma once
// EtcdApiServer: etcd v3's gRPC API as etcd 3.4 serves it, over a
// weft::storage::Store, so that etcdctl, flanneld and other unmodified etcd
// clients read, write and watch the controller's keyspace:
//   KV: Range (sort, revision filters, limit, keys/count only, at a revision),
//       Put (prev_kv, lease, ignore_value, ignore_lease), DeleteRange, Txn
//       (not nested), Compact.
//   Watch: one bidi stream carrying many watches: create (start revision,
//       prefix/range, prev_kv, NOPUT/NODELETE filters, client-chosen ids,
//       progress_notify), cancel, progress requests; a compacted start revision
//       is answered as etcd does (created, then canceled with compact_revision).
//   Lease: Grant, Revoke, KeepAlive (bidi stream), TimeToLive, Leases.
//   Cluster.MemberList (this one member); Maintenance: Status (real DB size,
//       faults), Alarm (the store's NOSPACE alarm), Defragment, Snapshot (the
//       store's consistent snapshot plus etcd's SHA-256 trailer).
// Errors carry etcd's codes and messages (storage/etcdwire/etcd_wire.h), which
// clients match on.
//
// Puts are checked by an optional validator (every put, including each put of
// either Txn branch) before anything is written; a refusal fails the whole
// request with the validator's status and stores nothing. Validated writes are
// serialized (validate then write as one step), so two etcd-API clients cannot
// both pass a check that only one of them may pass.
//
// Threads: unary methods use gRPC's sync API (they block on durable commits);
// the two streams use the callback API and hand their blocking store calls to a
// small worker pool, so the callback executor never waits on the disk.
//
// Lifetime: create, Register() on a ServerBuilder, build the server. To stop:
// Shutdown() (ends the streams with UNAVAILABLE so that clients fail over),
// then grpc::Server::Shutdown(), then destroy the EtcdApiServer.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "grpcpp/grpcpp.h"
#include "storage/store.h"

namespace weft::controller::etcd_api {

// Decides whether `value` may be stored at `key`. OK to accept; otherwise the
// request fails with this status (INVALID_ARGUMENT for bad data) and nothing is
// written. Called with the value that would be stored (for ignore_value, the
// current one). Must be thread-safe.
using PutValidator = std::function<absl::Status(const std::string& key, const std::string& value)>;

// What a request does, for the access check (one call per operation: each
// compare and op of a Txn, each watch created on a stream).
enum class EtcdOp {
  kRange,             // also a Txn compare
  kPut,
  kDeleteRange,
  kCompact,
  kWatch,
  kLeaseGrant,
  kLeaseRevoke,
  kLeaseKeepAlive,
  kLeaseTimeToLive,      // without keys
  kLeaseTimeToLiveKeys,  // with the keys attached to the lease (any key)
  kLeaseLeases,
  kMemberList,
  kStatus,
  kMaintenance,  // any other Maintenance method (defragment, alarms, snapshot...)
};
// Checks one operation of an identified caller: OK, or the status that fails the
// request (PERMISSION_DENIED "etcdserver: permission denied", UNAUTHENTICATED).
// `key`/`range_end` as in etcd's requests; empty for operations without keys.
using EtcdAccessCheck =
    std::function<grpc::Status(EtcdOp op, const std::string& key, const std::string& range_end)>;
// Identifies the caller of a call or stream (once per call or stream) and returns
// its check. Must be thread-safe.
using EtcdAuthorizer = std::function<EtcdAccessCheck(const grpc::ServerContextBase& ctx)>;

struct EtcdApiOptions {
  // Identity in response headers, MemberList and Status. 0 = derived from
  // `name` (member) and `cluster_name` (cluster), stable across restarts.
  uint64_t cluster_id = 0;
  uint64_t member_id = 0;
  std::string name = "weft";
  std::string cluster_name = "weft";
  // Client URLs advertised by MemberList, e.g. "http://10.0.0.1:2379".
  std::vector<std::string> client_urls;
  // The version Status reports: the etcd API level served.
  std::string version = "3.4.0";
  uint64_t raft_term = 1;
  // Size of the store on disk, for Status (dbSize); null = 0.
  std::function<int64_t()> db_size;

  PutValidator validate_put;
  // Null: every caller may do everything.
  EtcdAuthorizer authorize;

  Clock* clock = &RealClock::Get();
  // How often watches created with progress_notify get a progress response
  // when they received no events (etcd's default: 10 minutes).
  absl::Duration progress_notify_interval = absl::Minutes(10);
  // etcd's defaults (--max-txn-ops, the lease minimum TTL for its default
  // election timeout).
  int max_txn_ops = 128;
  int64_t min_lease_ttl_seconds = 2;
  // A watch stream whose client reads too slowly is ended (UNAVAILABLE; clients
  // resume from their last revision) once this many responses are queued.
  size_t max_queued_watch_responses = 10000;
  // Bounds on what one client can make the server hold: keys in one Range
  // answer (beyond: more=true, etcd's paging; 0 in a request = this many) and
  // watches open on one Watch stream (beyond: the create is canceled, saying so).
  int64_t max_range_keys = 100000;
  int max_watches_per_stream = 1000;
  // Threads for the streams' blocking store calls (history reads, keep-alives).
  int worker_threads = 2;
};

class EtcdApiServer {
 public:
  EtcdApiServer(storage::Store* store, EtcdApiOptions options);
  ~EtcdApiServer();
  EtcdApiServer(const EtcdApiServer&) = delete;
  EtcdApiServer& operator=(const EtcdApiServer&) = delete;

  // Adds the KV, Watch, Lease, Cluster and Maintenance services. Once.
  void Register(grpc::ServerBuilder& builder);

  // Ends every open watch and keep-alive stream with UNAVAILABLE ("etcdserver:
  // server stopped") and refuses new ones. Idempotent.
  void Shutdown();

  uint64_t cluster_id() const;
  uint64_t member_id() const;

  // Sends the progress notifications that are due (normally a timer of
  // options.clock does it every progress_notify_interval). For tests.
  void ProgressTick();

  class Core;

 private:
  std::unique_ptr<Core> core_;
};

// The gRPC services RegisterEtcdApi registers (for health and reflection).
inline constexpr const char* kEtcdServiceNames[] = {"etcdserverpb.KV", "etcdserverpb.Watch", "etcdserverpb.Lease",
                                                    "etcdserverpb.Cluster", "etcdserverpb.Maintenance"};

// Creates the server, registers its services on `builder` and returns it; it
// must outlive the grpc::Server built from `builder` (see the lifetime above).
std::unique_ptr<EtcdApiServer> RegisterEtcdApi(grpc::ServerBuilder& builder, storage::Store* store,
                                               EtcdApiOptions options);

}  // namespace weft::controller::etcd_api
