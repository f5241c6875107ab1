#pragma once
// ControllerClient: the agent's connection to the controller replicas.
//
// Unary calls go to the current endpoint and fail over to the next one on
// UNAVAILABLE / DEADLINE_EXCEEDED. The watch runs on its own thread: it keeps
// the set of leases (snapshot + events), resumes from the last revision after
// a reconnect (any endpoint), and backs off with jitter between attempts.
// Thread-safe.

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "agent/lease_set.h"
#include "common/clock.h"
#include "grpcpp/grpcpp.h"
#include "proto/weft/v1/weft.grpc.pb.h"

namespace weft::agent {

// Jittered exponential backoff: base * 2^n, capped, times a random factor in [0.5, 1.5).
class Backoff {
 public:
  Backoff(absl::Duration base, absl::Duration cap) : base_(base), cap_(cap) {}
  absl::Duration Next();
  void Reset() { attempt_ = 0; }

 private:
  absl::Duration base_, cap_;
  int attempt_ = 0;
  absl::BitGen rng_;
};

// The pause before the watch calls again after its stream ended. A controller
// that ends it while draining gives a hint (common/retry_hint.h): with no other
// endpoint to go to, the watch waits that long, when the restarted controller
// may be up, rather than backing off against one that is gone; with others it
// goes to the next one after the backoff's first step. Without a hint: the next
// backoff step.
absl::Duration WatchRetryDelay(std::optional<absl::Duration> hint, size_t endpoints, Backoff& backoff);

class ControllerClient {
 public:
  struct Options {
    std::vector<std::string> endpoints;
    // From weft::MakeChannelCredentials (common/tls_client.h); nullptr: plaintext.
    std::shared_ptr<grpc::ChannelCredentials> credentials;
    bool tls = false;  // credentials speak TLS (for error messages)
    absl::Duration rpc_timeout = absl::Seconds(10);
    // The watch's reconnect delay: base doubling up to cap, times 0.5-1.5.
    // A 2 s cap: after a controller restart every agent is back within ~3 s
    // of it answering (reconnect_bench; with 10 s, 11 s after a drained
    // restart), for at most one local retry per agent every 1-3 s meanwhile
    // (the channel's own connection attempts are capped at 2 s too).
    absl::Duration backoff_base = absl::Milliseconds(200);
    absl::Duration backoff_cap = absl::Seconds(2);
    // With one endpoint, after a watch ended without a retry hint: how long
    // the next call waits for the channel to connect, paced by the channel's
    // own attempts (200 ms growing to 2 s, +-20%), before it is made anyway
    // (and fails, saying why). A restarted controller's agents come back as
    // soon as it answers, instead of after a backoff grown by calls that failed
    // at once while it was down (watch_compare_bench). Wall clock.
    absl::Duration connect_wait = absl::Seconds(30);
    // The time of the watch's reconnect pauses (RPC deadlines are gRPC's, on
    // the wall clock). Not owned.
    Clock* clock = &RealClock::Get();
  };
  // Called on the watch thread after each message: changed = the lease set
  // changed (false for bookmarks). Read the set with VisitLeases.
  using LeasesCallback = std::function<void(int64_t revision, bool changed)>;

  explicit ControllerClient(Options options);
  ~ControllerClient();

  absl::StatusOr<weft::v1::GetNetworkConfigResponse> GetNetworkConfig();
  absl::StatusOr<weft::v1::AcquireLeaseResponse> Acquire(const weft::v1::AcquireLeaseRequest& req);
  absl::StatusOr<weft::v1::RenewLeaseResponse> Renew(const weft::v1::RenewLeaseRequest& req);
  absl::Status Release(const weft::v1::ReleaseLeaseRequest& req);

  // Starts the watch thread. Call once.
  void StartWatch(LeasesCallback callback);
  void Stop();

  // Calls `fn` for every lease of the set as the watch last delivered it, by
  // name (LeaseSet::Visit), under the client's lock (so: quick, and no calls back into it).
  void VisitLeases(const std::function<void(const weft::v1::Lease&)>& fn);
  // How many leases the set holds now (a hint: the watch may change it before a visit).
  size_t lease_count();

  bool connected() const { return connected_.load(); }
  int64_t reconnects() const { return reconnects_.load(); }
  // Snapshots applied so far (each replaced the whole lease set).
  int64_t snapshots() const { return snapshots_.load(); }
  int64_t revision() const { return revision_.load(); }
  std::string current_endpoint();

 private:
  template <typename Call>
  grpc::Status CallWithFailover(Call call);
  void WatchLoop();
  // Waits up to opts_.connect_wait for `channel` to connect; false if Stop came first.
  bool AwaitConnection(grpc::Channel& channel);
  // Applies a snapshot or events to leases_, consuming a snapshot's leases
  // (a 20,000-lease snapshot is never held twice); true when the set changed.
  bool Apply(weft::v1::WatchLeasesResponse* msg);

  const Options opts_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  absl::Mutex mu_;
  size_t current_ ABSL_GUARDED_BY(mu_) = 0;
  grpc::ClientContext* watch_ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  absl::Mutex leases_mu_;
  LeaseSet leases_ ABSL_GUARDED_BY(leases_mu_);
  LeasesCallback callback_;
  std::thread watch_thread_;
  absl::Notification stop_;
  std::atomic<bool> connected_{false};
  std::atomic<int64_t> reconnects_{0};
  std::atomic<int64_t> snapshots_{0};
  std::atomic<int64_t> revision_{0};
};

}  // namespace weft::agent
