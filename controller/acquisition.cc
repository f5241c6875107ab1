// LeaseManager's acquisitions: a chain of continuations per request (one
// node's requests one at a time), each attempt decided under the lock and
// written as one compare-and-swap transaction.

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/status_macros.h"
#include "controller/lease_manager.h"
#include "controller/lease_manager_internal.h"

namespace weft::controller {

namespace {

// Node identity used to serialize one node's acquisitions.
std::string NodeIdentity(const AcquireRequest& r) {
  if (!r.node_name.empty()) return absl::StrCat("name:", r.node_name);
  return absl::StrCat("ip:", r.public_ip.empty() ? r.public_ipv6 : r.public_ip);
}

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
  PendingPick pick;  // pool indices taken as pending
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
    if (const std::optional<NetworkConfig>& config = index_.config(); !config) {
      v = NoConfig();
    } else {
      v = ValidateAcquire(req, *config, &st->attrs);
      st->ttl = config->lease_ttl;
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
  if (index_.applied_revision() >= w->second) {
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
    known = (!st->req.node_name.empty() && index_.FindByNode(st->req.node_name)) ||
            (st->attrs.public_ip && index_.FindByPublicIp(st->attrs.public_ip->ToString())) ||
            (st->attrs.public_ipv6 && index_.FindByPublicIp(st->attrs.public_ipv6->ToString()));
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
  if (std::optional<BucketLeases::Lease> b = buckets_.Cached(st->ttl)) {
    st->lease_id = b->id;
    st->expiration = b->expiration;
    return Write(st);
  }
  // A new bucket lease is a store call that blocks: not on the caller's thread.
  workers_->Schedule([this, st] {
    absl::StatusOr<BucketLeases::Lease> b = buckets_.Get(st->ttl);
    if (!b.ok()) {
      ReleasePendingPick(*st);
      return Finish(st, StoreError(b.status()));
    }
    st->lease_id = b->id;
    st->expiration = b->expiration;
    Write(st);
  });
}

LeaseManager::Decision LeaseManager::Decide(AcquireState& st, LeaseRecord* answer, absl::Status* stop) {
  absl::MutexLock l(&mu_);
  st.key.clear();
  st.expect_mod = 0;
  st.keep_reservation = false;
  st.pick = PendingPick();
  st.replace_key.clear();
  st.replace_text.clear();
  st.replace_mod = 0;
  st.create_revision = 0;
  st.expiration = absl::InfiniteFuture();
  st.lease_id = 0;
  st.decided_at = index_.applied_revision();
  const std::optional<NetworkConfig>& config = index_.config();
  if (!config || (config->enable_ipv4 && !index_.pool())) {
    *stop = config ? absl::FailedPreconditionError("network config gives too many subnets") : NoConfig();
    return Decision::kStop;
  }
  const AcquireRequest& req = st.req;
  const LeaseRecord* existing = nullptr;
  if (!req.node_name.empty()) existing = index_.FindByNode(req.node_name);
  // Found by address: the IPv4 one, or the IPv6 one for IPv6-only leases.
  std::optional<std::string> public_ip;
  if (st.attrs.public_ip) {
    public_ip = st.attrs.public_ip->ToString();
  } else if (st.attrs.public_ipv6) {
    public_ip = st.attrs.public_ipv6->ToString();
  }
  if (!existing && public_ip) {
    if (const LeaseRecord* by_ip = index_.FindByPublicIp(*public_ip)) {
      const LeaseRecord& r = *by_ip;
      if (req.as_node) {
        // An authenticated node takes over no lease by its address. A lease of
        // another named node stays untouched (this node gets its own subnet: a
        // public IP may be reused by NAT or a replaced host).
        if (r.attrs.node_name.empty()) {
          *stop = absl::PermissionDeniedError(absl::StrCat(
              "the lease of ", SubnetText(r.key), " for public IP ", *public_ip,
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
    const bool has4 = FitsIPv4(*config, existing->key);
    const bool has6 = FitsIPv6(*config, existing->key);
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
    if (has4 && config->enable_ipv4) k.ipv4 = existing->key.ipv4;
    if (has6 && config->enable_ipv6) k.ipv6 = existing->key.ipv6;
    st.replace_key = existing->store_key;
    st.replace_text = SubnetText(existing->key);
    st.replace_mod = existing->mod_revision;
    st.create_revision = 0;
  }
  if (absl::Status s = index_.PickSubnets(req.previous_subnet, req.previous_ipv6_subnet, &k, &st.pick); !s.ok()) {
    *stop = s;
    return Decision::kStop;
  }
  // The old key's delete is ours, not an expiry.
  if (!st.replace_key.empty()) index_.MarkReleasing(st.replace_text);
  st.key = EncodeSubnetKey(opts_.prefix, k);
  st.text = SubnetText(k);
  st.chosen = k;
  return Decision::kWrite;
}

void LeaseManager::ReleasePendingPick(AcquireState& st) {
  if (st.pick.empty() && st.replace_key.empty()) return;
  absl::MutexLock l(&mu_);
  // Give them back unless the index now holds a lease for them.
  index_.ReturnPick(&st.pick, st.text);
  // The old key was not deleted by us after all.
  if (!st.replace_key.empty() && index_.Find(st.replace_text)) index_.UnmarkReleasing(st.replace_text);
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
  batcher_->TxnAsync(std::move(txn), [this, st](absl::StatusOr<storage::TxnResponse> r) { OnWriteResult(st, r); });
}

void LeaseManager::OnWriteResult(const std::shared_ptr<AcquireState>& st,
                                 const absl::StatusOr<storage::TxnResponse>& txn) {
  if (!txn.ok()) {
    ReleasePendingPick(*st);
    if (absl::IsNotFound(txn.status())) {
      // The bucket lease vanished (expired, or revoked by hand): take a new one.
      buckets_.Forget();
      return Attempt(st);
    }
    return Finish(st, StoreError(txn.status()));
  }
  if (!txn->succeeded) {
    // Someone else wrote first: retry once the index shows what they wrote.
    st->last = absl::AbortedError("lost a race for the subnet; retrying");
    WhenApplied(txn->revision, [this, st](absl::Status w) {
      ReleasePendingPick(*st);
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
    if (index_.applied_revision() < txn->revision) {
      node_written_[st->identity] = txn->revision;
    } else {
      index_.ForgetPick(st->pick);
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
  Report(Op::kAcquire, result.status());
  AcquireDone done = std::move(st->done);
  done(std::move(result));
  if (next) StartAcquire(next, wait_for);
}

}  // namespace weft::controller
