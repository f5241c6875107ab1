#pragma once
// EtcdStore: the Store (storage/store.h) on a real etcd v3 cluster, through
// etcd's gRPC API (proto/etcd). Flannel's keyspace is used as it is, so Weft
// can adopt an existing flannel etcd in place. Store leases are etcd leases,
// one to one; revisions, versions and compaction are etcd's own.
//
// Endpoints and failover: one channel per endpoint. A call goes to the endpoint
// that answered last; when that endpoint is not connected the call moves on to
// the next one before sending anything. A request that fails with UNAVAILABLE
// (or DEADLINE_EXCEEDED) after it was sent is retried elsewhere only when it is
// a read (or keep-alive) or etcd says it was not applied ("no leader", "server
// stopped"); a write whose outcome is unknown returns UNAVAILABLE ("may or may
// not have been applied") and the next call starts at the next endpoint
// (etcd's clientv3 does the same). A write sent while the leader dies can take
// rpc_timeout to fail that way.
//
// Watches: one bidi stream per Watch, read by its own thread, created with
// etcd's "hasleader" requirement so that a member cut off from the leader ends
// the stream. After any stream failure the watch reconnects (possibly to
// another endpoint) and resumes from the revision after the last one it
// delivered, so the callback sees no gap and no repeat. If that revision has
// been compacted meanwhile, the watch resyncs: it reads the range at the
// current revision R and delivers, in one batch at revision R, a DELETE for
// every key it had seen that is gone and a PUT for every key changed since it
// last delivered; then it carries on from R + 1. (Synthetic events carry no
// prev_kv; deletes carry mod_revision R.)
//
// Progress: a watch's revision advances with its own events, with etcd's
// progress notifications for idle watches (etcd's
// --experimental-watch-progress-notify-interval, 10 min by default), and with
// the store's own check: when a watch has been idle for
// watch_progress_interval and this store has seen a later revision R (in any
// answer), one read-only txn checks that nothing in the watched range changed
// since the last delivered revision and, if so, the watch gets an empty batch
// at R. So a caller that waits for its watch to reach the revision of its own
// write or failed compare-and-swap does not wait for unrelated writes in the
// range. (etcd 3.4's on-demand progress answers are not ordered with events,
// so they are not used.)
//
// Thread-safe.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "grpcpp/grpcpp.h"
#include "proto/etcd/rpc.grpc.pb.h"
#include "storage/store.h"

namespace weft::storage {

class EtcdStore final : public Store {
 public:
  struct Options {
    // "host:port", "http://host:port" or "https://host:port"; at least one.
    // http and https endpoints may not be mixed.
    std::vector<std::string> endpoints;
    // TLS (flannel's --etcd-cafile/--etcd-certfile/--etcd-keyfile): PEM file
    // paths. TLS is on when an endpoint is https:// or ca_file is set; then
    // every endpoint is reached over TLS, verified against ca_file (the system's
    // roots when empty), presenting cert_file/key_file when given (both or
    // neither). With a CA file, the three files are re-read every
    // tls_refresh_interval (a rotated client certificate is used for the next
    // connection, no restart); with the system's roots they are read once.
    std::string ca_file;
    std::string cert_file;
    std::string key_file;
    absl::Duration tls_refresh_interval = absl::Seconds(10);
    // etcd's own authentication (flannel's --etcd-username/--etcd-password):
    // when username is set, Open logs in (Auth.Authenticate) and every call
    // carries the token etcd handed out as its "token" metadata; a token etcd
    // no longer knows ("invalid auth token": simple tokens expire, and die with
    // the member's restart) is renewed by logging in again, and the call is
    // retried once. The password is never logged.
    std::string username;
    std::string password;
    // The key read (count only) to check that etcd answers and to learn the
    // current revision. With etcd auth the user must be allowed to read it:
    // the controller uses its network config key.
    std::string probe_key = std::string(1, '\0');
    // Deadline of one RPC on one endpoint.
    absl::Duration rpc_timeout = absl::Seconds(5);
    // How long a call waits for an endpoint's connection before trying the next.
    absl::Duration connect_timeout = absl::Seconds(1);
    // How long one store call keeps failing over (and waiting out an election)
    // before it returns UNAVAILABLE.
    absl::Duration failover_timeout = absl::Seconds(15);
    // Pause between two rounds over every endpoint, and between watch reconnects.
    absl::Duration retry_backoff = absl::Milliseconds(100);
    // Idle watches are brought to the latest revision seen this often (see
    // Progress above). Zero: only etcd's own progress notifications.
    absl::Duration watch_progress_interval = absl::Milliseconds(250);
    // The time of failover budgets, retry pauses, watch idleness and the
    // progress ticker (gRPC's own deadlines stay on the wall clock). Not owned.
    Clock* clock = &RealClock::Get();
  };

  // Connects, and checks that at least one endpoint answers within
  // failover_timeout (UNAVAILABLE otherwise). INVALID_ARGUMENT for a bad list
  // or a TLS file that cannot be read (the message names the file);
  // UNAUTHENTICATED when etcd refuses the user name or password.
  static absl::StatusOr<std::unique_ptr<EtcdStore>> Open(const Options& options);
  // No call may be running. Watch handles must be destroyed first.
  ~EtcdStore() override;

  absl::StatusOr<RangeResponse> Range(const RangeRequest& req) override;
  absl::StatusOr<PutResponse> Put(const PutRequest& req) override;
  absl::StatusOr<DeleteRangeResponse> DeleteRange(const DeleteRangeRequest& req) override;
  absl::StatusOr<TxnResponse> Txn(const TxnRequest& req) override;
  absl::Status Compact(int64_t revision) override;
  // A linearizable read's revision; on failure the last revision seen.
  int64_t CurrentRevision() override;
  // etcd does not report it: found by probing reads at past revisions (a
  // binary search, log2(revision) reads), starting from what this store has
  // seen. 0 when nothing was compacted.
  int64_t CompactRevision() override;
  absl::StatusOr<LeaseGrantResponse> LeaseGrant(int64_t ttl_seconds, int64_t id = 0) override;
  absl::Status LeaseRevoke(int64_t id) override;
  absl::StatusOr<int64_t> LeaseKeepAlive(int64_t id) override;
  absl::StatusOr<LeaseTimeToLiveResponse> LeaseTimeToLive(int64_t id, bool keys) override;
  absl::StatusOr<std::vector<int64_t>> Leases() override;
  absl::StatusOr<std::unique_ptr<WatchHandle>> Watch(
      const WatchRequest& req, std::function<void(const WatchBatch&)> callback) override;

  // The endpoint calls go to now (for logs and tests).
  std::string current_endpoint() const;
  // Successful logins to etcd so far (auth only; for logs and tests).
  int64_t logins() const { return logins_.load(); }
  // etcd's database size on the current endpoint (Maintenance.Status).
  absl::StatusOr<int64_t> DbSize();

  struct Endpoint;
  struct WatchState;
  class EtcdWatch;

 private:
  explicit EtcdStore(const Options& options);

  // Runs `fn` on an endpoint, failing over as described above. `idempotent`:
  // may be resent after an UNAVAILABLE whose outcome is unknown. The context
  // carries the auth token (see Options::username); a call refused for an
  // expired token logs in again and is sent once more.
  absl::Status Call(bool idempotent, const std::function<grpc::Status(Endpoint&, grpc::ClientContext*)>& fn);
  absl::Status CallOnce(bool idempotent, const std::function<grpc::Status(Endpoint&, grpc::ClientContext*)>& fn,
                        bool with_token);
  // The token for the next call ("" without auth), logging in first if there is none.
  absl::StatusOr<std::string> Token();
  // Adds the token to a call's context (nothing without auth). The token it
  // added is returned so that a refusal can renew exactly that one.
  absl::StatusOr<std::string> Authorize(grpc::ClientContext* ctx);
  // Forgets `stale` (if it is still the current token): the next call logs in again.
  void DropToken(const std::string& stale);
  // Picks a connected endpoint (the current one first), or nullptr after
  // failover_timeout; used by watch streams.
  Endpoint* ConnectedEndpoint(const std::function<bool()>& stop);
  void NoteFailure(const Endpoint* ep);
  // Every watch_progress_interval once there is a watch.
  void CheckProgress();
  void NoteRevision(const etcdserverpb::ResponseHeader& h);
  absl::Status FromEtcd(const grpc::Status& s);

  const Options options_;
  Clock& clock_;
  Timers timers_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  absl::Mutex auth_mu_;  // held while logging in, so that one login serves everyone waiting
  std::string token_ ABSL_GUARDED_BY(auth_mu_);
  std::atomic<int64_t> logins_{0};
  std::atomic<int> current_{0};
  std::atomic<int64_t> last_revision_{0};
  std::atomic<int64_t> known_compact_revision_{0};

  absl::Mutex watches_mu_;
  std::vector<std::weak_ptr<WatchState>> watches_ ABSL_GUARDED_BY(watches_mu_);
  Timers::Id progress_timer_ ABSL_GUARDED_BY(watches_mu_) = 0;  // set with the first watch
};

}  // namespace weft::storage
