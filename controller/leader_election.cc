#include "controller/leader_election.h"

#include <utility>

#include "common/log.h"

namespace weft::controller {

LeaderElection::LeaderElection(storage::Store* store, Options options) : store_(store), opts_(std::move(options)) {}

LeaderElection::~LeaderElection() { Stop(); }

void LeaderElection::Start() {
  campaign_timer_ = timers_.Every(opts_.ttl / 3, absl::ZeroDuration(), [this] { Step(); });
}

void LeaderElection::Stop() {
  if (const Timers::Id id = campaign_timer_.exchange(0); id != 0) timers_.Cancel(id);
  int64_t lease = 0;
  {
    absl::MutexLock l(&mu_);
    std::swap(lease, lease_);
  }
  if (lease != 0) {
    // Resign: the key goes with the lease and another replica's next round wins.
    if (absl::Status s = store_->LeaseRevoke(lease); !s.ok() && !absl::IsNotFound(s)) {
      WEFT_LOG(WARN, "cannot revoke the election lease; another replica takes over after its TTL").Err(s);
    }
  }
  SetLeader(false);
}

std::string LeaderElection::current_leader() const {
  absl::MutexLock l(&mu_);
  return current_;
}

void LeaderElection::SetLeader(bool leader) {
  if (leader_.exchange(leader) == leader) return;
  if (leader) {
    WEFT_LOG(INFO, "this replica now runs the background duties").With("key", opts_.key).With("identity", opts_.identity);
  } else {
    WEFT_LOG(INFO, "this replica no longer runs the background duties").With("key", opts_.key);
  }
  if (opts_.on_change) opts_.on_change(leader);
}

void LeaderElection::Step() {
  const absl::Time now = opts_.clock->Now();
  int64_t lease;
  {
    absl::MutexLock l(&mu_);
    lease = lease_;
  }
  // 1. Keep our lease alive, or take a new one.
  if (lease != 0) {
    absl::StatusOr<int64_t> ka = store_->LeaseKeepAlive(lease);
    if (ka.ok()) {
      absl::MutexLock l(&mu_);
      last_renewed_ = now;
    } else if (absl::IsNotFound(ka.status())) {
      WEFT_LOG(WARN, "election lease expired").With("lease", lease);
      absl::MutexLock l(&mu_);
      lease_ = lease = 0;
    } else {
      bool stale;
      {
        absl::MutexLock l(&mu_);
        stale = now - last_renewed_ >= opts_.ttl / 2;
      }
      // Cannot tell whether the store still counts our lease: stop acting as
      // leader well before it could have expired and another replica won.
      if (stale) SetLeader(false);
      WEFT_LOG(WARN, "cannot renew the election lease").Err(ka.status());
      return;
    }
  }
  if (lease == 0) {
    absl::StatusOr<storage::LeaseGrantResponse> g =
        store_->LeaseGrant(std::max<int64_t>(1, absl::ToInt64Seconds(opts_.ttl)));
    if (!g.ok()) {
      SetLeader(false);
      WEFT_LOG(WARN, "cannot take an election lease").Err(g.status());
      return;
    }
    absl::MutexLock l(&mu_);
    lease_ = lease = g->id;
    last_renewed_ = now;
  }

  // 2. Create the key if nobody holds it; read who holds it either way.
  storage::TxnRequest txn =
      storage::PutIf(opts_.key, storage::Compare::Target::kVersion, 0, opts_.identity, lease);
  storage::RequestOp get;
  get.type = storage::RequestOp::Type::kRange;
  get.range.key = opts_.key;
  txn.failure.push_back(get);
  absl::StatusOr<storage::TxnResponse> r = store_->Txn(txn);
  if (!r.ok()) {
    if (absl::IsNotFound(r.status())) {
      // Our lease expired between the keep-alive and the transaction.
      absl::MutexLock l(&mu_);
      lease_ = 0;
    }
    SetLeader(false);
    WEFT_LOG(WARN, "election round failed").Err(r.status());
    return;
  }
  bool ours = r->succeeded;
  std::string holder = opts_.identity;
  if (!ours && !r->responses.empty() && !r->responses[0].range.kvs.empty()) {
    const storage::KeyValue& kv = r->responses[0].range.kvs[0];
    ours = kv.lease == lease;
    holder = kv.value;
  }
  {
    absl::MutexLock l(&mu_);
    current_ = holder;
  }
  SetLeader(ours);
}

}  // namespace weft::controller
