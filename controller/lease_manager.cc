#include "controller/lease_manager.h"

#include <algorithm>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "common/log.h"
#include "common/quote.h"
#include "common/status_macros.h"

namespace weft::controller {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

absl::Duration BucketWidth(absl::Duration ttl) {
  return std::clamp(ttl / 100, absl::Seconds(1), absl::Seconds(60));
}

// A store failure as callers get it: the store over its space quota (the
// NOSPACE alarm) stays RESOURCE_EXHAUSTED, as etcd answers it, so a client can
// tell it from a store it cannot reach (UNAVAILABLE, worth retrying soon).
absl::Status StoreError(const absl::Status& s) {
  const std::string message = absl::StrCat("store: ", s.message());
  return absl::IsResourceExhausted(s) ? absl::ResourceExhaustedError(message) : absl::UnavailableError(message);
}

// Node identity used to serialize one node's acquisitions.
std::string NodeIdentity(const AcquireRequest& r) {
  if (!r.node_name.empty()) return absl::StrCat("name:", r.node_name);
  return absl::StrCat("ip:", r.public_ip.empty() ? r.public_ipv6 : r.public_ip);
}

}  // namespace

std::string SubnetText(const SubnetKey& k) {
  if (k.ipv4) return k.ipv4->ToString();
  if (k.ipv6) return k.ipv6->ToString();
  return "";
}

storage::TxnBatcher::Options LeaseManager::BatcherOptions(const Options& o) {
  storage::TxnBatcher::Options b;
  b.on_commit = o.hooks.on_txn;
  b.enabled = o.batch_writes;
  b.max_in_flight = o.txns_in_flight;
  // Unbatched, as many transactions in flight as a blocking server had
  // requests (the embedded store still group-commits their fsyncs).
  if (!o.batch_writes) b.max_in_flight = 64;
  return b;
}

LeaseManager::LeaseManager(storage::Store* store, Options options)
    : store_(store),
      batcher_(std::make_unique<storage::TxnBatcher>(store, BatcherOptions(options))),
      workers_(std::make_unique<ThreadPool>(4)),
      opts_(std::move(options)),
      config_key_(ConfigKey(opts_.prefix)),
      subnets_prefix_(SubnetsPrefix(opts_.prefix)) {
  sweeper_ = std::thread([this] { SweepApplyWaiters(); });
}

void LeaseManager::StopWaiting() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  if (sweeper_.joinable()) sweeper_.join();  // it fails every wait still pending
}

LeaseManager::~LeaseManager() {
  // Acquisitions still in flight finish (UNAVAILABLE where they would wait for
  // the index); the batcher's and the workers' queues drain, each running what
  // arrives after its own stop on the caller's thread.
  StopWaiting();
  watch_.reset();
  workers_->Stop();
  batcher_->Stop();
}

absl::Status LeaseManager::Start() {
  storage::RangeRequest rr;
  rr.key = opts_.prefix + "/";
  rr.range_end = storage::PrefixEnd(rr.key);
  ASSIGN_OR_RETURN(storage::RangeResponse all, store_->Range(rr));
  {
    absl::MutexLock l(&mu_);
    for (const storage::KeyValue& kv : all.kvs) {
      storage::Event ev;
      ev.type = storage::Event::Type::kPut;
      ev.kv = kv;
      ApplyEventLocked(ev);
    }
    applied_revision_ = all.revision;
  }
  storage::WatchRequest wr;
  wr.key = rr.key;
  wr.range_end = rr.range_end;
  wr.start_revision = all.revision + 1;
  ASSIGN_OR_RETURN(watch_, store_->Watch(wr, [this](const storage::WatchBatch& b) { OnWatch(b); }));
  absl::MutexLock l(&mu_);
  started_ = true;
  return absl::OkStatus();
}

bool LeaseManager::Ready() {
  absl::MutexLock l(&mu_);
  return started_;
}

int64_t LeaseManager::AppliedRevision() {
  absl::MutexLock l(&mu_);
  return applied_revision_;
}

void LeaseManager::OnWatch(const storage::WatchBatch& batch) {
  int expired = 0;
  std::vector<LeaseChange> changes;
  std::vector<std::function<void(absl::Status)>> caught_up;
  {
    absl::MutexLock l(&mu_);
    for (const storage::Event& ev : batch.events) ApplyEventLocked(ev, &changes, &expired);
    applied_revision_ = std::max(applied_revision_, batch.revision);
    auto end = apply_waiters_.upper_bound(applied_revision_);
    for (auto it = apply_waiters_.begin(); it != end; ++it) caught_up.push_back(std::move(it->second.then));
    apply_waiters_.erase(apply_waiters_.begin(), end);
  }
  if (opts_.hooks.on_changes) opts_.hooks.on_changes(changes, batch.revision);
  if (opts_.hooks.on_expired) {
    for (int i = 0; i < expired; ++i) opts_.hooks.on_expired();
  }
  for (auto& then : caught_up) then(absl::OkStatus());
}

void LeaseManager::WhenApplied(int64_t revision, std::function<void(absl::Status)> then) {
  absl::Status now;
  {
    absl::MutexLock l(&mu_);
    if (stopping_) {
      now = absl::UnavailableError("controller shutting down");
    } else if (applied_revision_ < revision) {
      apply_waiters_.emplace(revision, ApplyWaiter{absl::Now() + opts_.apply_timeout, std::move(then)});
      return;
    }
  }
  then(now);
}

void LeaseManager::SweepApplyWaiters() {
  absl::MutexLock l(&mu_);
  while (true) {
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), std::min(absl::Seconds(1), opts_.apply_timeout / 4));
    const absl::Time now = absl::Now();
    std::vector<std::pair<int64_t, std::function<void(absl::Status)>>> late;
    for (auto it = apply_waiters_.begin(); it != apply_waiters_.end();) {
      if (stopping_ || it->second.deadline <= now) {
        late.emplace_back(it->first, std::move(it->second.then));
        it = apply_waiters_.erase(it);
      } else {
        ++it;
      }
    }
    const bool stop = stopping_;
    mu_.Unlock();
    for (auto& [revision, then] : late) {
      then(absl::UnavailableError(stop ? std::string("controller shutting down")
                                       : absl::StrCat("store watch did not deliver revision ", revision, " within ",
                                                      absl::FormatDuration(opts_.apply_timeout))));
    }
    mu_.Lock();
    if (stop) return;
  }
}

void LeaseManager::ApplyEventLocked(const storage::Event& ev, std::vector<LeaseChange>* changes,
                                    int* expired) {
  if (ev.kv.key == config_key_) {
    if (ev.type == storage::Event::Type::kPut) {
      ApplyConfigLocked(ev.kv.value, ev.kv.mod_revision);
    } else {
      config_.reset();
      config_json_.clear();
      pool_.reset();
      pool6_.reset();
    }
    return;
  }
  if (!absl::StartsWith(ev.kv.key, subnets_prefix_)) return;
  auto key = ParseSubnetKeySuffix(ev.kv.key.substr(subnets_prefix_.size()));
  if (!key.ok()) return;  // not a lease key; nothing of ours
  const std::string text = SubnetText(*key);
  if (ev.type == storage::Event::Type::kDelete) {
    auto it = leases_.find(text);
    if (it == leases_.end()) return;
    // A delete we did not ask for, of a lease with a TTL, is an expiry.
    if (expired && !releasing_.erase(text) && !it->second.reserved()) ++*expired;
    if (changes) changes->push_back({true, it->second, ev.kv.mod_revision});
    UnindexLocked(text);
    lease_set_revision_ = std::max(lease_set_revision_, ev.kv.mod_revision);
    return;
  }
  LeaseRecord rec;
  rec.key = *key;
  rec.store_key = ev.kv.key;
  rec.store_lease = ev.kv.lease;
  rec.create_revision = ev.kv.create_revision;
  rec.mod_revision = ev.kv.mod_revision;
  auto attrs = DecodeLeaseAttrs(ev.kv.value);
  if (attrs.ok()) {
    rec.attrs = *std::move(attrs);
  } else {
    rec.valid = false;  // keep the subnet taken; never hand out what we cannot read
    ReportCorruptLocked("lease", ev.kv.key, ev.kv.mod_revision, attrs.status());
  }
  auto old = leases_.find(text);
  if (auto d = lease_deadlines_.find(rec.store_lease); rec.store_lease != 0 && d != lease_deadlines_.end()) {
    rec.expiration = d->second;
  } else if (old != leases_.end() && old->second.store_lease == rec.store_lease) {
    rec.expiration = old->second.expiration;
  }
  // An acquisition's chosen subnet stays pending until its write is in the index.
  if (auto idx = PoolIndexLocked(rec.key)) pending_.erase(*idx);
  if (auto idx = PoolIndex6Locked(rec.key)) pending6_.erase(*idx);
  if (changes) changes->push_back({false, rec, ev.kv.mod_revision});
  lease_set_revision_ = std::max(lease_set_revision_, ev.kv.mod_revision);
  IndexLocked(text, std::move(rec));
}

void LeaseManager::IndexLocked(const std::string& text, LeaseRecord rec) {
  UnindexLocked(text);
  if (!rec.attrs.node_name.empty()) by_node_[rec.attrs.node_name] = text;
  if (rec.attrs.public_ip) by_ip_[rec.attrs.public_ip->ToString()] = text;
  if (rec.attrs.public_ipv6) by_ip_[rec.attrs.public_ipv6->ToString()] = text;
  if (rec.key.ipv4 && rec.key.ipv6) by_subnet6_[rec.key.ipv6->ToString()] = text;
  if (auto idx = PoolIndexLocked(rec.key)) pool_->Take(*idx);
  if (auto idx = PoolIndex6Locked(rec.key)) pool6_->Take(*idx);
  if (rec.reserved()) ++reservations_;
  leases_[text] = std::move(rec);
}

void LeaseManager::UnindexLocked(const std::string& text) {
  auto it = leases_.find(text);
  if (it == leases_.end()) return;
  const LeaseRecord& rec = it->second;
  auto n = by_node_.find(rec.attrs.node_name);
  if (n != by_node_.end() && n->second == text) by_node_.erase(n);
  for (const std::string& ip : {rec.attrs.public_ip ? rec.attrs.public_ip->ToString() : std::string(),
                                rec.attrs.public_ipv6 ? rec.attrs.public_ipv6->ToString() : std::string()}) {
    auto i = ip.empty() ? by_ip_.end() : by_ip_.find(ip);
    if (i != by_ip_.end() && i->second == text) by_ip_.erase(i);
  }
  if (rec.key.ipv4 && rec.key.ipv6) {
    auto i = by_subnet6_.find(rec.key.ipv6->ToString());
    if (i != by_subnet6_.end() && i->second == text) by_subnet6_.erase(i);
  }
  if (auto idx = PoolIndexLocked(rec.key)) pool_->Give(*idx);
  if (auto idx = PoolIndex6Locked(rec.key)) pool6_->Give(*idx);
  if (rec.reserved()) --reservations_;
  leases_.erase(it);
}

std::optional<uint64_t> LeaseManager::PoolIndexLocked(const SubnetKey& k) const {
  if (!config_ || !pool_ || !k.ipv4) return std::nullopt;
  return config_->PoolIndex(*k.ipv4);
}

std::optional<absl::uint128> LeaseManager::PoolIndex6Locked(const SubnetKey& k) const {
  if (!config_ || !pool6_ || !k.ipv6) return std::nullopt;
  return config_->IPv6PoolIndex(*k.ipv6);
}

absl::StatusOr<std::string> LeaseManager::LeaseTextLocked(const std::string& subnet) const {
  std::string text;
  if (auto v4 = IPv4Net::Parse(subnet); v4.ok()) {
    text = v4->ToString();
  } else if (auto v6 = IPv6Net::Parse(subnet); v6.ok()) {
    text = v6->ToString();
    if (auto d = by_subnet6_.find(text); d != by_subnet6_.end()) text = d->second;
  } else {
    return Invalid("subnet", absl::StrCat(QuoteInput(subnet), " is not an IPv4 or IPv6 subnet (CIDR)"));
  }
  if (leases_.count(text) == 0) return absl::NotFoundError(absl::StrCat("no lease for subnet ", text));
  return text;
}

void LeaseManager::ApplyConfigLocked(const std::string& value, int64_t revision) {
  auto parsed = ParseNetworkConfig(value);
  config_json_ = value;
  config_revision_ = revision;
  if (!parsed.ok()) {
    // Written around our validation (by flannel's tools, say): allocate nothing
    // until it is fixed rather than guess.
    ReportCorruptLocked("config", config_key_, revision, parsed.status());
    config_.reset();
    pool_.reset();
    pool6_.reset();
    return;
  }
  config_ = *std::move(parsed);
  RebuildPoolLocked();
}

void LeaseManager::ReportCorruptLocked(const char* kind, const std::string& key, int64_t revision,
                                       const absl::Status& why) {
  // Once per stored value: the load and the watch each apply a write once.
  WEFT_LOG(WARN, "unreadable value in the store skipped")
      .With("kind", kind)
      .With("key", QuoteInput(key))
      .With("revision", revision)
      .Err(why);
  if (opts_.hooks.on_corrupt) opts_.hooks.on_corrupt(kind);
}

void LeaseManager::RebuildPoolLocked() {
  pool_.reset();
  pool6_.reset();
  if (!config_) return;
  if (config_->enable_ipv6) {
    pool6_ = std::make_unique<WideSubnetPool>(config_->IPv6PoolSize());
    for (absl::uint128 idx : pending6_) pool6_->Take(idx);
  }
  if (config_->enable_ipv4 && config_->PoolSize() <= SubnetPool::kMaxSize) {
    pool_ = std::make_unique<SubnetPool>(config_->PoolSize());
    for (uint64_t idx : pending_) {
      if (idx < pool_->size()) pool_->Take(idx);
    }
  }
  for (const auto& [text, rec] : leases_) {
    if (auto idx = PoolIndexLocked(rec.key)) pool_->Take(*idx);
    if (auto idx = PoolIndex6Locked(rec.key)) pool6_->Take(*idx);
  }
}

absl::Status LeaseManager::WaitApplied(int64_t revision) {
  absl::MutexLock l(&mu_);
  auto caught_up = [this, revision]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return applied_revision_ >= revision;
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&caught_up), opts_.apply_timeout)) {
    return absl::UnavailableError(absl::StrCat("store watch did not deliver revision ", revision, " within ",
                                               absl::FormatDuration(opts_.apply_timeout)));
  }
  return absl::OkStatus();
}

absl::Status LeaseManager::CatchUp() { return WaitApplied(written_revision_.load()); }

void LeaseManager::NoteWritten(int64_t revision) {
  int64_t cur = written_revision_.load();
  while (cur < revision && !written_revision_.compare_exchange_weak(cur, revision)) {
  }
}

bool LeaseManager::BucketCurrentLocked(absl::Duration ttl, absl::Time now, absl::Time* expiration) {
  const absl::Duration width = BucketWidth(ttl);
  if (bucket_lease_ == 0 || bucket_ttl_ != ttl || now - bucket_start_ >= width || now < bucket_start_) return false;
  *expiration = bucket_start_ + absl::Seconds(absl::ToInt64Seconds(absl::Ceil(ttl + width, absl::Seconds(1))));
  return true;
}

bool LeaseManager::CachedBucketLease(absl::Duration ttl, absl::Time* expiration, int64_t* id) {
  absl::MutexLock l(&bucket_mu_);
  if (!BucketCurrentLocked(ttl, opts_.clock->Now(), expiration)) return false;
  *id = bucket_lease_;
  return true;
}

absl::StatusOr<int64_t> LeaseManager::BucketLease(absl::Duration ttl, absl::Time* expiration) {
  absl::MutexLock l(&bucket_mu_);
  const absl::Time now = opts_.clock->Now();
  if (!BucketCurrentLocked(ttl, now, expiration)) {
    const int64_t secs = absl::ToInt64Seconds(absl::Ceil(ttl + BucketWidth(ttl), absl::Seconds(1)));
    ASSIGN_OR_RETURN(storage::LeaseGrantResponse g, store_->LeaseGrant(secs));
    bucket_lease_ = g.id;
    bucket_start_ = now;
    bucket_ttl_ = ttl;
    absl::MutexLock l(&mu_);
    for (auto it = lease_deadlines_.begin(); it != lease_deadlines_.end();) {
      auto cur = it++;
      if (cur->second < now) lease_deadlines_.erase(cur);
    }
    lease_deadlines_[g.id] = now + absl::Seconds(secs);
    BucketCurrentLocked(ttl, now, expiration);
  }
  return bucket_lease_;
}

void LeaseManager::Report(const char* op, const absl::Status& s) {
  if (!opts_.hooks.on_result) return;
  const char* result = "ok";
  switch (s.code()) {
    case absl::StatusCode::kOk: break;
    case absl::StatusCode::kInvalidArgument: result = "invalid"; break;
    case absl::StatusCode::kResourceExhausted: result = "exhausted"; break;
    case absl::StatusCode::kNotFound: result = "not_found"; break;
    case absl::StatusCode::kPermissionDenied: result = "denied"; break;
    case absl::StatusCode::kFailedPrecondition: result = "precondition"; break;
    default: result = "error"; break;
  }
  opts_.hooks.on_result(op, result);
}

namespace {

absl::Status ValidateAcquire(const AcquireRequest& r, const NetworkConfig& cfg, LeaseAttrs* attrs) {
  if (!r.node_name.empty()) {
    if (!IsValidNodeName(r.node_name)) {
      return Invalid("node_name", ValidateNodeName(r.node_name).message());
    }
    attrs->node_name = r.node_name;
  }
  if (cfg.enable_ipv4 || !r.public_ip.empty()) {
    if (r.public_ip.empty()) return Invalid("public_ip", "required (the network has IPv4 enabled)");
    auto ip = IPv4Addr::Parse(r.public_ip);
    if (!ip.ok()) return Invalid("public_ip", ip.status().message());
    attrs->public_ip = *ip;
  }
  if (cfg.enable_ipv6 || !r.public_ipv6.empty()) {
    if (r.public_ipv6.empty()) return Invalid("public_ipv6", "required (the network has IPv6 enabled)");
    auto ip = IPv6Addr::Parse(r.public_ipv6);
    if (!ip.ok()) return Invalid("public_ipv6", ip.status().message());
    attrs->public_ipv6 = *ip;
  }
  if (r.backend_type.empty()) return Invalid("backend_type", "required");
  if (r.backend_type != cfg.backend.type) {
    return Invalid("backend_type", absl::StrCat("\"", r.backend_type, "\" does not match the network's backend \"",
                                                cfg.backend.type, "\""));
  }
  attrs->backend_type = r.backend_type;
  ASSIGN_OR_RETURN(attrs->backend_data, NormalizeJsonObject("backend_data", r.backend_data));
  ASSIGN_OR_RETURN(attrs->backend_v6_data, NormalizeJsonObject("backend_v6_data", r.backend_v6_data));
  if (!r.previous_subnet.empty()) {
    auto prev = IPv4Net::Parse(r.previous_subnet);
    if (!prev.ok()) return Invalid("previous_subnet", prev.status().message());
  }
  if (!r.previous_ipv6_subnet.empty()) {
    auto prev = IPv6Net::Parse(r.previous_ipv6_subnet);
    if (!prev.ok()) return Invalid("previous_ipv6_subnet", prev.status().message());
  }
  return absl::OkStatus();
}

absl::Status NoConfig() {
  return absl::FailedPreconditionError(
      "no network config: set one first (weftctl config set FILE)");
}

storage::TxnRequest DeleteIf(const std::string& key, int64_t mod_revision) {
  storage::TxnRequest txn;
  storage::Compare c;
  c.key = key;
  c.target = storage::Compare::Target::kModRevision;
  c.operand = mod_revision;
  txn.compares.push_back(c);
  storage::RequestOp op;
  op.type = storage::RequestOp::Type::kDeleteRange;
  op.delete_range.key = key;
  txn.success.push_back(op);
  return txn;
}

// Whether `k` has a subnet in the config's pool of that family, or the config
// does not enable the family: a lease that fits both is used as it is.
bool FitsIPv4(const NetworkConfig& c, const SubnetKey& k) {
  return !c.enable_ipv4 || (k.ipv4 && c.PoolIndex(*k.ipv4));
}
bool FitsIPv6(const NetworkConfig& c, const SubnetKey& k) { return !c.enable_ipv6 || (k.ipv6 && c.InIPv6Pool(*k.ipv6)); }

std::string Uint128Text(absl::uint128 v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

// Adds to `txn`, before its other writes, the delete of `key` if unchanged
// since `mod_revision`: a lease whose key changes (its IPv6 part) is replaced
// in one transaction, so its node never holds two.
void PrependDeleteIf(storage::TxnRequest* txn, const std::string& key, int64_t mod_revision) {
  storage::TxnRequest del = DeleteIf(key, mod_revision);
  txn->compares.push_back(std::move(del.compares[0]));
  txn->success.insert(txn->success.begin(), std::move(del.success[0]));
}

}  // namespace

// One acquisition in progress, carried from one continuation to the next.
struct LeaseManager::AcquireState {
  AcquireRequest req;
  AcquireDone done;
  std::string identity;
  bool holds_identity = false;  // this node's acquisition in flight (node_turns_)
  LeaseAttrs attrs;
  absl::Duration ttl;
  int attempt = 0;
  absl::Status last = absl::AbortedError("no attempt made");
  // The current attempt, decided under the lock.
  std::string key;
  int64_t expect_mod = 0;  // 0 = create
  bool keep_reservation = false;
  std::optional<uint64_t> picked;         // IPv4 pool index taken as pending
  std::optional<absl::uint128> picked6;   // IPv6 pool index taken as pending
  // The node's lease lacks a family the config now enables (or holds a subnet
  // outside it): the new key replaces it in the same transaction.
  std::string replace_key;
  std::string replace_text;
  int64_t replace_mod = 0;
  std::string text;
  SubnetKey chosen;
  int64_t create_revision = 0;
  absl::Time expiration = absl::InfiniteFuture();
  int64_t lease_id = 0;
  int64_t decided_at = 0;  // the index's revision when the attempt was decided
};

absl::StatusOr<LeaseRecord> LeaseManager::Acquire(const AcquireRequest& req) {
  absl::Notification answered;
  absl::StatusOr<LeaseRecord> result;
  AcquireAsync(req, [&](absl::StatusOr<LeaseRecord> r) {
    result = std::move(r);
    answered.Notify();
  });
  answered.WaitForNotification();
  return result;
}

// An acquisition never blocks its caller: each wait (for this node's previous
// write to reach the index, for a fresh store revision, for a commit) hands the
// rest of the work to whatever ends the wait: the watch, a committer thread, or
// a worker for the one store call that blocks (a new bucket lease, every
// TTL/100).
void LeaseManager::AcquireAsync(const AcquireRequest& req, AcquireDone done) {
  auto st = std::make_shared<AcquireState>();
  st->req = req;
  st->done = std::move(done);
  st->identity = NodeIdentity(req);
  absl::Status v;
  int64_t wait_for = 0;  // this node's previous write, not yet in the index
  bool busy = false;
  {
    absl::MutexLock l(&mu_);
    if (!config_) {
      v = NoConfig();
    } else {
      v = ValidateAcquire(req, *config_, &st->attrs);
      st->ttl = config_->lease_ttl;
    }
    if (v.ok()) {
      auto [turn, first] = node_turns_.try_emplace(st->identity);
      busy = !first;
      if (busy) {
        // One acquisition per node at a time: queue behind the one in flight.
        turn->second.push_back(st);
      } else {
        wait_for = HoldIdentityLocked(*st);
      }
    }
  }
  if (!v.ok()) {
    Finish(st, v);
    return;
  }
  if (busy) return;  // started when the node's current acquisition ends
  StartAcquire(st, wait_for);
}

int64_t LeaseManager::HoldIdentityLocked(AcquireState& st) {
  st.holds_identity = true;
  auto w = node_written_.find(st.identity);
  if (w == node_written_.end()) return 0;
  if (applied_revision_ >= w->second) {
    node_written_.erase(w);
    return 0;
  }
  return w->second;
}

void LeaseManager::StartAcquire(const std::shared_ptr<AcquireState>& st, int64_t wait_for) {
  if (wait_for > 0) {
    // This node's last acknowledged write must be in the index before we decide.
    WhenApplied(wait_for, [this, st](absl::Status s) {
      if (!s.ok()) return Finish(st, absl::UnavailableError("store watch is lagging; retry"));
      {
        absl::MutexLock l(&mu_);
        node_written_.erase(st->identity);
      }
      StartAcquire(st, 0);
    });
    return;
  }
  bool known = true;
  if (opts_.shared_store) {
    absl::MutexLock l(&mu_);
    known = (!st->req.node_name.empty() && by_node_.contains(st->req.node_name)) ||
            (st->attrs.public_ip && by_ip_.contains(st->attrs.public_ip->ToString())) ||
            (st->attrs.public_ipv6 && by_ip_.contains(st->attrs.public_ipv6->ToString()));
  }
  if (known) return Attempt(st);
  // Another replica may have given this node a lease: catch up with the store.
  // The fresh revision rides on the next lease-write transaction (or is an
  // empty one): no extra round trip per wave of new nodes.
  batcher_->RevisionAsync([this, st](absl::StatusOr<int64_t> rev) {
    if (!rev.ok()) return Finish(st, rev.status());
    WhenApplied(*rev, [this, st](absl::Status s) {
      if (!s.ok()) return Finish(st, s);
      Attempt(st);
    });
  });
}

void LeaseManager::Attempt(const std::shared_ptr<AcquireState>& st) {
  if (++st->attempt > opts_.max_attempts) {
    return Finish(st, absl::UnavailableError(absl::StrCat("gave up after ", opts_.max_attempts,
                                                          " attempts: ", st->last.message())));
  }
  if (st->attempt > 1 && opts_.hooks.on_retry) opts_.hooks.on_retry(st->attempt);
  LeaseRecord answer;
  absl::Status stop;
  switch (Decide(*st, &answer, &stop)) {
    case Decision::kAnswer:
      return Finish(st, std::move(answer));
    case Decision::kStop:
      return Finish(st, stop);
    case Decision::kWrite:
      break;
  }
  if (st->keep_reservation) return Write(st);
  if (CachedBucketLease(st->ttl, &st->expiration, &st->lease_id)) return Write(st);
  // A new bucket lease is a store call that blocks: not on the caller's thread.
  workers_->Schedule([this, st] {
    auto b = BucketLease(st->ttl, &st->expiration);
    if (!b.ok()) {
      Unpend(*st);
      return Finish(st, StoreError(b.status()));
    }
    st->lease_id = *b;
    Write(st);
  });
}

LeaseManager::Decision LeaseManager::Decide(AcquireState& st, LeaseRecord* answer, absl::Status* stop) {
  absl::MutexLock l(&mu_);
  st.key.clear();
  st.expect_mod = 0;
  st.keep_reservation = false;
  st.picked.reset();
  st.picked6.reset();
  st.replace_key.clear();
  st.replace_text.clear();
  st.replace_mod = 0;
  st.create_revision = 0;
  st.expiration = absl::InfiniteFuture();
  st.lease_id = 0;
  st.decided_at = applied_revision_;
  if (!config_ || (config_->enable_ipv4 && !pool_)) {
    *stop = config_ ? absl::FailedPreconditionError("network config gives too many subnets") : NoConfig();
    return Decision::kStop;
  }
  const AcquireRequest& req = st.req;
  const LeaseRecord* existing = nullptr;
  if (!req.node_name.empty()) {
    auto it = by_node_.find(req.node_name);
    if (it != by_node_.end()) existing = &leases_.at(it->second);
  }
  // Found by address: the IPv4 one, or the IPv6 one for IPv6-only leases.
  std::optional<std::string> public_ip;
  if (st.attrs.public_ip) {
    public_ip = st.attrs.public_ip->ToString();
  } else if (st.attrs.public_ipv6) {
    public_ip = st.attrs.public_ipv6->ToString();
  }
  if (!existing && public_ip) {
    auto it = by_ip_.find(*public_ip);
    if (it != by_ip_.end()) {
      const LeaseRecord& r = leases_.at(it->second);
      if (req.as_node) {
        // An authenticated node takes over no lease by its address. A lease of
        // another named node stays untouched (this node gets its own subnet: a
        // public IP may be reused by NAT or a replaced host).
        if (r.attrs.node_name.empty()) {
          *stop = absl::PermissionDeniedError(absl::StrCat(
              "the lease of ", SubnetText(r.key), " for public IP ", it->first,
              " names no node: node ", req.node_name,
              " may not take it over; an operator can release it or reserve it for this node"));
          return Decision::kStop;
        }
      } else if (r.attrs.node_name.empty() || req.node_name.empty()) {
        existing = &r;
      }
    }
  }
  SubnetKey k;
  if (existing) {
    st.create_revision = existing->create_revision;
    // Reused as it is when it has a subnet in the pool of every enabled family
    // (a lease outside the config is not reused, as flannel's; a family the
    // config does not enable is kept). A reservation is always its node's.
    const bool has4 = FitsIPv4(*config_, existing->key);
    const bool has6 = FitsIPv6(*config_, existing->key);
    if ((has4 && has6) || existing->reserved()) {
      st.key = existing->store_key;
      st.expect_mod = existing->mod_revision;
      st.keep_reservation = existing->reserved();
      st.text = SubnetText(existing->key);
      st.chosen = existing->key;
      if (st.keep_reservation && existing->valid) {
        // A reservation is handed to its node as it is.
        *answer = *existing;
        return Decision::kAnswer;
      }
      return Decision::kWrite;
    }
    // Keep what still fits (the IPv4 subnet when IPv6 was just enabled), pick
    // the rest, and replace the old key in the same transaction: the node
    // never holds two leases.
    if (has4 && config_->enable_ipv4) k.ipv4 = existing->key.ipv4;
    if (has6 && config_->enable_ipv6) k.ipv6 = existing->key.ipv6;
    st.replace_key = existing->store_key;
    st.replace_text = SubnetText(existing->key);
    st.replace_mod = existing->mod_revision;
    st.create_revision = 0;
  }
  if (absl::Status s = PickSubnetsLocked(st, &k); !s.ok()) {
    *stop = s;
    return Decision::kStop;
  }
  // The old key's delete is ours, not an expiry.
  if (!st.replace_key.empty()) releasing_.insert(st.replace_text);
  st.key = EncodeSubnetKey(opts_.prefix, k);
  st.text = SubnetText(k);
  st.chosen = k;
  return Decision::kWrite;
}

absl::Status LeaseManager::PickSubnetsLocked(AcquireState& st, SubnetKey* k) {
  const AcquireRequest& req = st.req;
  if (config_->enable_ipv4 && !k->ipv4) {
    std::optional<uint64_t> idx;
    if (!req.previous_subnet.empty()) {
      auto prev = IPv4Net::Parse(req.previous_subnet);
      if (prev.ok()) {
        auto p = config_->PoolIndex(*prev);
        if (p && pool_->IsFree(*p) && !pending_.contains(*p)) idx = p;
      }
    }
    // Pending subnets are taken in the pool while in flight, so a pick is free.
    if (!idx) idx = pool_->PickRandom(rng_);
    if (!idx) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "no free subnet: all ", pool_->size(), " subnets of ", config_->network.ToString(), " between ",
          config_->subnet_min.ToString(), " and ", config_->subnet_max.ToString(), " are leased or reserved"));
    }
    st.picked = idx;
    pending_.insert(*idx);
    pool_->Take(*idx);
    k->ipv4 = config_->PoolSubnet(*idx);
  }
  if (config_->enable_ipv6 && !k->ipv6) {
    std::optional<absl::uint128> idx;
    if (!req.previous_ipv6_subnet.empty()) {
      auto prev = IPv6Net::Parse(req.previous_ipv6_subnet);
      if (prev.ok()) {
        auto p = config_->IPv6PoolIndex(*prev);
        if (p && pool6_->IsFree(*p) && !pending6_.contains(*p)) idx = p;
      }
    }
    if (!idx) idx = pool6_->PickRandom(rng_);
    if (!idx) {
      if (st.picked) {  // both families or neither
        pending_.erase(*st.picked);
        pool_->Give(*st.picked);
        st.picked.reset();
      }
      return absl::ResourceExhaustedError(absl::StrCat(
          "no free IPv6 subnet: all ", Uint128Text(pool6_->size()), " subnets of ",
          config_->ipv6_network->ToString(), " between ", config_->ipv6_subnet_min.ToString(), " and ",
          config_->ipv6_subnet_max.ToString(), " are leased or reserved"));
    }
    st.picked6 = idx;
    pending6_.insert(*idx);
    pool6_->Take(*idx);
    k->ipv6 = config_->IPv6PoolSubnet(*idx);
  }
  return absl::OkStatus();
}

void LeaseManager::Unpend(AcquireState& st) {
  if (!st.picked && !st.picked6 && st.replace_key.empty()) return;
  absl::MutexLock l(&mu_);
  // Give them back unless the index now holds a lease for them.
  const bool indexed = leases_.count(st.text) != 0;
  if (st.picked) {
    pending_.erase(*st.picked);
    if (pool_ && *st.picked < pool_->size() && !indexed) pool_->Give(*st.picked);
    st.picked.reset();
  }
  if (st.picked6) {
    pending6_.erase(*st.picked6);
    if (pool6_ && !indexed) pool6_->Give(*st.picked6);
    st.picked6.reset();
  }
  // The old key was not deleted by us after all.
  if (!st.replace_key.empty() && leases_.count(st.replace_text) != 0) releasing_.erase(st.replace_text);
}

void LeaseManager::Write(const std::shared_ptr<AcquireState>& st) {
  storage::TxnRequest txn =
      storage::PutIf(st->key, st->expect_mod == 0 ? storage::Compare::Target::kVersion
                                                  : storage::Compare::Target::kModRevision,
                     st->expect_mod, EncodeLeaseAttrs(st->attrs), st->lease_id);
  // The node's old lease goes first: the new key may share its index text
  // (the same IPv4 subnet, now dual-stack).
  if (!st->replace_key.empty()) PrependDeleteIf(&txn, st->replace_key, st->replace_mod);
  if (!opts_.node_guard_prefix.empty() && st->lease_id != 0) {
    // A reservation (no store lease) needs no guard: its key is the node's.
    const std::string guard = opts_.node_guard_prefix + st->identity;
    storage::Compare c;
    c.key = guard;
    c.target = storage::Compare::Target::kModRevision;
    c.result = storage::Compare::Result::kLess;
    c.operand = st->decided_at + 1;
    txn.compares.push_back(std::move(c));
    storage::RequestOp put;
    put.type = storage::RequestOp::Type::kPut;
    put.put.key = guard;
    put.put.value = st->text;
    put.put.lease = st->lease_id;
    txn.success.push_back(std::move(put));
  }
  batcher_->TxnAsync(std::move(txn), [this, st](absl::StatusOr<storage::TxnResponse> r) { Settle(st, r); });
}

void LeaseManager::Settle(const std::shared_ptr<AcquireState>& st, const absl::StatusOr<storage::TxnResponse>& txn) {
  if (!txn.ok()) {
    Unpend(*st);
    if (absl::IsNotFound(txn.status())) {
      // The bucket lease vanished (expired, or revoked by hand): take a new one.
      {
        absl::MutexLock l(&bucket_mu_);
        bucket_lease_ = 0;
      }
      return Attempt(st);
    }
    return Finish(st, StoreError(txn.status()));
  }
  if (!txn->succeeded) {
    // Someone else wrote first: retry once the index shows what they wrote.
    st->last = absl::AbortedError("lost a race for the subnet; retrying");
    WhenApplied(txn->revision, [this, st](absl::Status w) {
      Unpend(*st);
      if (!w.ok()) return Finish(st, w);
      Attempt(st);
    });
    return;
  }
  // Durable: answer now. The index catches up through the watch; until then the
  // subnet stays pending (taken) and this node's next request waits for it.
  NoteWritten(txn->revision);
  LeaseRecord out;
  out.key = st->chosen;
  out.store_key = st->key;
  out.attrs = st->attrs;
  out.store_lease = st->lease_id;
  out.create_revision = st->expect_mod == 0 ? txn->revision : st->create_revision;
  out.mod_revision = txn->revision;
  out.expiration = st->expiration;
  {
    absl::MutexLock l(&mu_);
    if (applied_revision_ < txn->revision) {
      node_written_[st->identity] = txn->revision;
    } else {
      if (st->picked) pending_.erase(*st->picked);
      if (st->picked6) pending6_.erase(*st->picked6);
    }
  }
  Finish(st, std::move(out));
}

void LeaseManager::Finish(const std::shared_ptr<AcquireState>& st, absl::StatusOr<LeaseRecord> result) {
  // Hand the node to its next queued acquisition, if any.
  std::shared_ptr<AcquireState> next;
  int64_t wait_for = 0;
  if (st->holds_identity) {
    absl::MutexLock l(&mu_);
    st->holds_identity = false;
    auto turn = node_turns_.find(st->identity);
    if (turn->second.empty()) {
      node_turns_.erase(turn);
    } else {
      next = std::move(turn->second.front());
      turn->second.pop_front();
      wait_for = HoldIdentityLocked(*next);
    }
  }
  Report("acquire", result.status());
  AcquireDone done = std::move(st->done);
  done(std::move(result));
  if (next) StartAcquire(next, wait_for);
}

absl::StatusOr<const LeaseRecord*> LeaseManager::FindOwnedLocked(const OwnerRef& req) {
  if (req.subnet.empty()) return Invalid("subnet", "required");
  if (!req.node_name.empty() && !IsValidNodeName(req.node_name)) {
    return Invalid("node_name", ValidateNodeName(req.node_name).message());
  }
  // The node's public address, IPv4 or (IPv6-only leases) IPv6.
  std::optional<IPv4Addr> ip;
  std::optional<IPv6Addr> ip6;
  if (!req.public_ip.empty()) {
    if (auto p = IPv4Addr::Parse(req.public_ip); p.ok()) {
      ip = *p;
    } else if (auto p6 = IPv6Addr::Parse(req.public_ip); p6.ok()) {
      ip6 = *p6;
    } else {
      return Invalid("public_ip", p.status().message());
    }
  }
  if (req.node_name.empty() && !ip && !ip6) return Invalid("node_name", "node_name or public_ip required");
  ASSIGN_OR_RETURN(std::string text, LeaseTextLocked(req.subnet));
  const LeaseRecord& rec = leases_.at(text);
  bool owner;
  if (req.as_node) {
    owner = rec.attrs.node_name == req.node_name;
  } else if (!rec.attrs.node_name.empty() && !req.node_name.empty()) {
    owner = rec.attrs.node_name == req.node_name;
  } else {
    owner = (ip && rec.attrs.public_ip && *rec.attrs.public_ip == *ip) ||
            (ip6 && rec.attrs.public_ipv6 && *rec.attrs.public_ipv6 == *ip6);
  }
  if (!owner) {
    return absl::PermissionDeniedError(absl::StrCat(
        "subnet ", text, " is held by another node (",
        rec.attrs.node_name.empty() ? (rec.attrs.public_ip ? rec.attrs.public_ip->ToString() : "?")
                                    : rec.attrs.node_name,
        ")"));
  }
  return &rec;
}

absl::StatusOr<LeaseRecord> LeaseManager::Renew(const OwnerRef& req) {
  RETURN_IF_ERROR(CatchUp());
  for (int attempt = 1; attempt <= opts_.max_attempts; ++attempt) {
    std::string key, value, text;
    int64_t mod = 0;
    absl::Duration ttl;
    LeaseRecord current;
    {
      absl::MutexLock l(&mu_);
      auto rec = FindOwnedLocked(req);
      if (!rec.ok()) {
        Report("renew", rec.status());
        return rec.status();
      }
      if (!config_) {
        Report("renew", NoConfig());
        return NoConfig();
      }
      if ((*rec)->reserved()) {
        Report("renew", absl::OkStatus());
        return **rec;  // nothing to renew: a reservation has no TTL
      }
      if (!FitsIPv4(*config_, (*rec)->key) || !FitsIPv6(*config_, (*rec)->key)) {
        absl::Status s = absl::FailedPreconditionError(
            absl::StrCat("subnet ", SubnetText((*rec)->key),
                         " no longer fits the network config (outside it, or missing a family it enables); "
                         "acquire a new lease"));
        Report("renew", s);
        return s;
      }
      current = **rec;
      key = (*rec)->store_key;
      value = EncodeLeaseAttrs((*rec)->attrs);
      mod = (*rec)->mod_revision;
      text = SubnetText((*rec)->key);
      ttl = config_->lease_ttl;
    }
    absl::Time expiration;
    auto lease = BucketLease(ttl, &expiration);
    if (!lease.ok()) return StoreError(lease.status());
    auto txn = batcher_->Txn(storage::PutIf(key, storage::Compare::Target::kModRevision, mod, value, *lease));
    if (!txn.ok()) {
      if (absl::IsNotFound(txn.status())) {
        absl::MutexLock l(&bucket_mu_);
        bucket_lease_ = 0;
        continue;
      }
      return StoreError(txn.status());
    }
    if (!txn->succeeded) {
      RETURN_IF_ERROR(WaitApplied(txn->revision));
      continue;  // changed under us; look again
    }
    NoteWritten(txn->revision);
    current.store_lease = *lease;
    current.mod_revision = txn->revision;
    current.expiration = expiration;
    Report("renew", absl::OkStatus());
    return current;
  }
  absl::Status s = absl::UnavailableError("renewal kept racing with other writers; retry");
  Report("renew", s);
  return s;
}

absl::Status LeaseManager::Release(const OwnerRef& req) {
  RETURN_IF_ERROR(CatchUp());
  for (int attempt = 1; attempt <= opts_.max_attempts; ++attempt) {
    std::string key, text;
    int64_t mod = 0;
    {
      absl::MutexLock l(&mu_);
      auto rec = FindOwnedLocked(req);
      if (!rec.ok()) {
        Report("release", rec.status());
        return rec.status();
      }
      key = (*rec)->store_key;
      mod = (*rec)->mod_revision;
      text = SubnetText((*rec)->key);
      releasing_.insert(text);
    }
    auto txn = batcher_->Txn(DeleteIf(key, mod));
    if (!txn.ok()) {
      absl::MutexLock l(&mu_);
      releasing_.erase(text);
      return StoreError(txn.status());
    }
    if (txn->succeeded) {
      NoteWritten(txn->revision);
      Report("release", absl::OkStatus());
      return absl::OkStatus();
    }
    RETURN_IF_ERROR(WaitApplied(txn->revision));
    absl::MutexLock l(&mu_);
    releasing_.erase(text);
  }
  return absl::UnavailableError("release kept racing with other writers; retry");
}

absl::StatusOr<LeaseRecord> LeaseManager::Get(const std::string& subnet) {
  if (subnet.empty()) return Invalid("subnet", "required");
  RETURN_IF_ERROR(CatchUp());
  absl::MutexLock l(&mu_);
  ASSIGN_OR_RETURN(std::string text, LeaseTextLocked(subnet));
  return leases_.at(text);
}

std::vector<LeaseRecord> LeaseManager::List(int64_t* revision) {
  CatchUp().IgnoreError();  // best effort: a lagging watch must not block listing
  absl::MutexLock l(&mu_);
  std::vector<LeaseRecord> out;
  out.reserve(leases_.size());
  for (const auto& [text, rec] : leases_) out.push_back(rec);
  // Numeric order, not text order: 10.1.9.0 before 10.1.10.0.
  std::sort(out.begin(), out.end(), [](const LeaseRecord& a, const LeaseRecord& b) {
    if (a.key.ipv4 && b.key.ipv4) return a.key.ipv4->network().value() < b.key.ipv4->network().value();
    return a.store_key < b.store_key;
  });
  if (revision) *revision = applied_revision_;
  return out;
}

int64_t LeaseManager::LeaseSetRevision() {
  CatchUp().IgnoreError();
  absl::MutexLock l(&mu_);
  return lease_set_revision_;
}

absl::StatusOr<LeaseManager::Page> LeaseManager::ListPage(int page_size, const std::string& page_token) {
  if (page_size < 0 || page_size > kMaxPageSize) {
    return Invalid("page_size", absl::StrCat(page_size, " is not between 0 and ", kMaxPageSize));
  }
  if (page_size == 0) page_size = kDefaultPageSize;
  Page page;
  storage::RangeRequest range;
  range.range_end = storage::PrefixEnd(subnets_prefix_);
  if (page_token.empty()) {
    CatchUp().IgnoreError();  // best effort, as List
    absl::MutexLock l(&mu_);
    page.revision = applied_revision_;
    range.key = subnets_prefix_;
  } else {
    // "<revision>/<last key>", web-safe base64: opaque to clients.
    std::string token;
    const size_t slash = absl::WebSafeBase64Unescape(page_token, &token) ? token.find('/') : std::string::npos;
    if (slash == std::string::npos || !absl::SimpleAtoi(token.substr(0, slash), &page.revision) ||
        page.revision <= 0 || !absl::StartsWith(token.substr(slash + 1), subnets_prefix_)) {
      return Invalid("page_token", absl::StrCat(QuoteInput(page_token), " is not a token from a previous page"));
    }
    range.key = token.substr(slash + 1) + std::string(1, '\0');  // just after the last key
  }
  range.revision = page.revision;
  range.limit = page_size;
  absl::StatusOr<storage::RangeResponse> got = store_->Range(range);
  if (!got.ok()) {
    if (storage::IsCompacted(got.status())) {
      return absl::AbortedError(absl::StrCat("the listing's revision ", page.revision,
                                             " has been compacted away: list again from the first page"));
    }
    return got.status();
  }
  size_t bytes = 0, consumed = 0;
  std::string last_key;
  absl::MutexLock l(&mu_);
  for (const storage::KeyValue& kv : got->kvs) {
    if (bytes >= kMaxPageBytes) break;  // a page stays far below gRPC's 4 MiB default
    ++consumed;
    last_key = kv.key;
    auto key = ParseSubnetKeySuffix(kv.key.substr(subnets_prefix_.size()));
    if (!key.ok()) continue;  // not a lease key
    LeaseRecord rec;
    rec.key = *key;
    rec.store_key = kv.key;
    rec.store_lease = kv.lease;
    rec.create_revision = kv.create_revision;
    rec.mod_revision = kv.mod_revision;
    auto attrs = DecodeLeaseAttrs(kv.value);
    if (attrs.ok()) rec.attrs = *std::move(attrs);
    rec.valid = attrs.ok();
    if (auto d = lease_deadlines_.find(rec.store_lease); rec.store_lease != 0 && d != lease_deadlines_.end()) {
      rec.expiration = d->second;
    }
    bytes += kv.key.size() + kv.value.size();
    page.leases.push_back(std::move(rec));
  }
  if ((got->more || consumed < got->kvs.size()) && !last_key.empty()) {
    page.next_page_token = absl::WebSafeBase64Escape(absl::StrCat(page.revision, "/", last_key));
  }
  return page;
}

absl::StatusOr<LeaseRecord> LeaseManager::Reserve(const ReserveRequest& req) {
  // Read-your-writes: a lease this replica just acknowledged is seen.
  RETURN_IF_ERROR(CatchUp());
  LeaseAttrs attrs;
  SubnetKey k;
  {
    absl::MutexLock l(&mu_);
    if (!config_) return NoConfig();
    std::string v6_text = req.ipv6_subnet;
    if (config_->enable_ipv4) {
      auto sn = IPv4Net::Parse(req.subnet);
      if (!sn.ok()) return Invalid("subnet", sn.status().message());
      if (sn->prefix_len() != config_->subnet_len || !config_->network.Contains(*sn)) {
        return Invalid("subnet", absl::StrCat(sn->ToString(), " is not a /", config_->subnet_len,
                                              " subnet of ", config_->network.ToString()));
      }
      k.ipv4 = *sn;
      auto ip = IPv4Addr::Parse(req.public_ip);
      if (!ip.ok()) return Invalid("public_ip", ip.status().message());
      attrs.public_ip = *ip;
    } else if (v6_text.empty()) {
      v6_text = req.subnet;  // an IPv6-only network: the subnet is the IPv6 one
    }
    if (config_->enable_ipv6) {
      if (v6_text.empty()) {
        // The node's current lease keeps its IPv6 subnet.
        auto held = leases_.find(SubnetText(k));
        if (held == leases_.end() || !held->second.key.ipv6) {
          return Invalid("ipv6_subnet", "required (the network has IPv6 enabled)");
        }
        v6_text = held->second.key.ipv6->ToString();
      }
      auto sn6 = IPv6Net::Parse(v6_text);
      if (!sn6.ok()) return Invalid("ipv6_subnet", sn6.status().message());
      if (sn6->prefix_len() != config_->ipv6_subnet_len || !config_->ipv6_network->Contains(*sn6)) {
        return Invalid("ipv6_subnet", absl::StrCat(sn6->ToString(), " is not a /", config_->ipv6_subnet_len,
                                                   " subnet of ", config_->ipv6_network->ToString()));
      }
      k.ipv6 = *sn6;
      if (!req.public_ipv6.empty()) {
        auto ip6 = IPv6Addr::Parse(req.public_ipv6);
        if (!ip6.ok()) return Invalid("public_ipv6", ip6.status().message());
        attrs.public_ipv6 = *ip6;
      } else if (!config_->enable_ipv4) {
        return Invalid("public_ipv6", "required (an IPv6-only network)");
      }
    } else if (!req.ipv6_subnet.empty()) {
      return Invalid("ipv6_subnet", "the network config does not enable IPv6");
    }
    if (!req.node_name.empty() && !IsValidNodeName(req.node_name)) {
      return Invalid("node_name", ValidateNodeName(req.node_name).message());
    }
    attrs.node_name = req.node_name;
    attrs.backend_type = req.backend_type.empty() ? config_->backend.type : req.backend_type;
    ASSIGN_OR_RETURN(attrs.backend_data, NormalizeJsonObject("backend_data", req.backend_data));
    ASSIGN_OR_RETURN(attrs.backend_v6_data, NormalizeJsonObject("backend_v6_data", req.backend_v6_data));
  }
  const std::string key = EncodeSubnetKey(opts_.prefix, k);
  const std::string text = SubnetText(k);
  for (int attempt = 1; attempt <= opts_.max_attempts; ++attempt) {
    int64_t mod = 0;
    std::string replace_key;  // the lease's old key, when its IPv6 part changes
    int64_t replace_mod = 0;
    {
      absl::MutexLock l(&mu_);
      // The leases holding either subnet: at most the node's own one.
      const LeaseRecord* held = nullptr;
      for (const std::string& t : {text, k.ipv4 && k.ipv6 ? k.ipv6->ToString() : std::string()}) {
        if (t.empty()) continue;
        auto found = LeaseTextLocked(t);
        if (!found.ok()) continue;
        const LeaseRecord& rec = leases_.at(*found);
        const bool same_node = attrs.public_ip ? (rec.attrs.public_ip && *rec.attrs.public_ip == *attrs.public_ip)
                                               : (rec.attrs.public_ipv6 && attrs.public_ipv6 &&
                                                  *rec.attrs.public_ipv6 == *attrs.public_ipv6);
        if (!same_node || (held && held != &rec)) {
          const std::string who = rec.attrs.public_ip     ? rec.attrs.public_ip->ToString()
                                  : rec.attrs.public_ipv6 ? rec.attrs.public_ipv6->ToString()
                                                          : "another node";
          return absl::FailedPreconditionError(absl::StrCat("subnet ", t, " is leased to ", who,
                                                            "; release it first or reserve it for that public IP"));
        }
        held = &rec;
      }
      if (held) {
        if (held->store_key == key) {
          mod = held->mod_revision;
        } else {
          replace_key = held->store_key;
          replace_mod = held->mod_revision;
        }
        // Keep what the node published (its VTEP MAC) when turning its lease into a reservation.
        if (req.backend_data.empty()) attrs.backend_data = held->attrs.backend_data;
        if (req.backend_v6_data.empty()) attrs.backend_v6_data = held->attrs.backend_v6_data;
        if (req.node_name.empty()) attrs.node_name = held->attrs.node_name;
        if (!attrs.public_ipv6) attrs.public_ipv6 = held->attrs.public_ipv6;
      }
      // As flannel's leases (and the etcd API's validator): an IPv6 subnet comes with PublicIPv6.
      if (k.ipv6 && !attrs.public_ipv6) return Invalid("public_ipv6", "required with an IPv6 subnet");
      if (!attrs.node_name.empty()) {
        auto n = by_node_.find(attrs.node_name);
        if (n != by_node_.end() && n->second != text && (!held || n->second != SubnetText(held->key))) {
          return absl::FailedPreconditionError(absl::StrCat("node ", attrs.node_name, " already holds ",
                                                            n->second, "; release it first"));
        }
      }
    }
    storage::TxnRequest txn = storage::PutIf(
        key, mod == 0 ? storage::Compare::Target::kVersion : storage::Compare::Target::kModRevision, mod,
        EncodeLeaseAttrs(attrs), 0);
    if (!replace_key.empty()) PrependDeleteIf(&txn, replace_key, replace_mod);
    auto committed = batcher_->Txn(std::move(txn));
    if (!committed.ok()) return StoreError(committed.status());
    NoteWritten(committed->revision);
    RETURN_IF_ERROR(WaitApplied(committed->revision));
    if (!committed->succeeded) continue;
    absl::MutexLock l(&mu_);
    auto it = leases_.find(text);
    if (it == leases_.end()) continue;
    Report("reserve", absl::OkStatus());
    return it->second;
  }
  return absl::UnavailableError("reserve kept racing with other writers; retry");
}

absl::Status LeaseManager::Unreserve(const std::string& subnet) {
  for (int attempt = 1; attempt <= opts_.max_attempts; ++attempt) {
    std::string key, value, text;
    int64_t mod;
    absl::Duration ttl;
    {
      absl::MutexLock l(&mu_);
      auto found = LeaseTextLocked(subnet);
      if (absl::IsInvalidArgument(found.status())) return found.status();
      auto it = found.ok() ? leases_.find(*found) : leases_.end();
      if (it == leases_.end() || !it->second.reserved()) {
        return absl::NotFoundError(absl::StrCat("no reservation for subnet ", subnet));
      }
      text = it->first;
      key = it->second.store_key;
      value = EncodeLeaseAttrs(it->second.attrs);
      mod = it->second.mod_revision;
      ttl = config_ ? config_->lease_ttl : opts_.default_ttl;
    }
    // The reservation becomes an ordinary lease: its node keeps it while it renews.
    absl::Time expiration;
    ASSIGN_OR_RETURN(int64_t lease, BucketLease(ttl, &expiration));
    auto txn = batcher_->Txn(storage::PutIf(key, storage::Compare::Target::kModRevision, mod, value, lease));
    if (!txn.ok()) return StoreError(txn.status());
    RETURN_IF_ERROR(WaitApplied(txn->revision));
    if (!txn->succeeded) continue;
    absl::MutexLock l(&mu_);
    auto it = leases_.find(text);
    if (it != leases_.end()) it->second.expiration = expiration;
    Report("unreserve", absl::OkStatus());
    return absl::OkStatus();
  }
  return absl::UnavailableError("unreserve kept racing with other writers; retry");
}

absl::StatusOr<std::pair<std::string, int64_t>> LeaseManager::GetConfig() {
  absl::MutexLock l(&mu_);
  if (config_json_.empty()) return absl::NotFoundError("no network config is set");
  return std::make_pair(config_json_, config_revision_);
}

absl::StatusOr<ConfigChange> LeaseManager::SetConfig(const std::string& json, bool force) {
  ASSIGN_OR_RETURN(NetworkConfig cfg, ParseNetworkConfig(json));
  if (cfg.enable_ipv4 && cfg.PoolSize() > SubnetPool::kMaxSize) {
    return Invalid("SubnetLen", absl::StrCat("the network would hold ", cfg.PoolSize(),
                                             " subnets; Weft supports at most ", SubnetPool::kMaxSize));
  }
  ConfigChange change;
  int64_t expect_mod = 0;
  {
    absl::MutexLock l(&mu_);
    for (const auto& [text, rec] : leases_) {
      bool inside = true;
      if (rec.key.ipv4) inside = cfg.enable_ipv4 && cfg.PoolIndex(*rec.key.ipv4).has_value();
      if (inside && rec.key.ipv6) inside = cfg.InIPv6Pool(*rec.key.ipv6);
      if (!inside) change.stranded.push_back(text);
    }
    expect_mod = config_revision_;
  }
  if (!change.stranded.empty() && !force) {
    std::vector<std::string> shown(change.stranded.begin(),
                                   change.stranded.begin() + std::min<size_t>(10, change.stranded.size()));
    return absl::FailedPreconditionError(absl::StrCat(
        change.stranded.size(), " existing lease(s) would fall outside the new config (",
        absl::StrJoin(shown, ", "), change.stranded.size() > 10 ? ", ..." : "",
        "); release them first or force the change"));
  }
  auto txn = store_->Txn(storage::PutIf(config_key_,
                               expect_mod == 0 ? storage::Compare::Target::kVersion
                                               : storage::Compare::Target::kModRevision,
                               expect_mod, json, 0));
  if (!txn.ok()) return StoreError(txn.status());
  RETURN_IF_ERROR(WaitApplied(txn->revision));
  if (!txn->succeeded) {
    return absl::AbortedError("the config changed while this change was checked; read it again and retry");
  }
  change.config = json;
  change.revision = txn->revision;
  return change;
}

LeaseManager::PoolStats LeaseManager::Stats() {
  absl::MutexLock l(&mu_);
  PoolStats s;
  if (pool_) {
    s.size = pool_->size();
    s.free = pool_->free_count();
  }
  if (pool6_) {
    s.ipv6_size = pool6_->size();
    s.ipv6_free = pool6_->free_count();
  }
  s.reservations = reservations_;
  s.leases = leases_.size() - reservations_;
  return s;
}

std::optional<NetworkConfig> LeaseManager::Config() {
  absl::MutexLock l(&mu_);
  return config_;
}

}  // namespace weft::controller
