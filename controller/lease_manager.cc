#include "controller/lease_manager.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/quote.h"
#include "common/status_macros.h"
#include "controller/lease_manager_internal.h"

namespace weft::controller {

namespace lease_internal {

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

void PrependDeleteIf(storage::TxnRequest* txn, const std::string& key, int64_t mod_revision) {
  storage::TxnRequest del = DeleteIf(key, mod_revision);
  txn->compares.push_back(std::move(del.compares[0]));
  txn->success.insert(txn->success.begin(), std::move(del.success[0]));
}

}  // namespace lease_internal

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
      opts_(std::move(options)),
      config_key_(ConfigKey(opts_.prefix)),
      subnets_prefix_(SubnetsPrefix(opts_.prefix)),
      batcher_(std::make_unique<storage::TxnBatcher>(store, BatcherOptions(opts_))),
      workers_(std::make_unique<ThreadPool>(4)),
      waiters_(opts_.clock, opts_.apply_timeout),
      buckets_(store, opts_.clock,
               [this](const BucketLeases::Lease& lease, absl::Time now) {
                 // Before anyone writes with it: records using it get its expiration.
                 absl::MutexLock l(&mu_);
                 index_.NoteStoreLease(lease.id, lease.expiration, now);
               }),
      index_(LeaseIndex::Options{opts_.prefix, opts_.hooks.on_corrupt}) {
  waiters_.StartSweeper();
}

void LeaseManager::StopWaiting() { waiters_.Stop(); }

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
  RETURN_IF_ERROR(Load());
  return Follow();
}

absl::Status LeaseManager::Load() {
  storage::RangeRequest rr;
  rr.key = opts_.prefix + "/";
  rr.range_end = storage::PrefixEnd(rr.key);
  // The revision to load at: replay_revisions back, not below the compaction.
  int64_t base = 0;  // 0: the current state
  if (opts_.replay_revisions > 0) {
    const int64_t current = store_->CurrentRevision();
    // A store starts at revision 1, with nothing in it.
    base = std::max({current - opts_.replay_revisions, store_->CompactRevision(), int64_t{1}});
    if (base >= current) base = 0;
  }
  rr.revision = base;
  // An error (compacted meanwhile, say) is the caller's: start again without a replay.
  ASSIGN_OR_RETURN(storage::RangeResponse all, store_->Range(rr));
  loaded_store_revision_ = all.revision;  // a past read answers with the current revision
  std::vector<RevisionWaiters::Callback> caught_up;
  {
    absl::MutexLock l(&mu_);
    for (storage::KeyValue& kv : all.kvs) {
      storage::Event ev;
      ev.type = storage::Event::Type::kPut;
      ev.kv = std::move(kv);
      index_.Apply(ev);
    }
    index_.SetAppliedRevision(base != 0 ? base : all.revision);
    caught_up = waiters_.Reach(index_.applied_revision());
  }
  for (auto& then : caught_up) then(absl::OkStatus());
  return absl::OkStatus();
}

absl::Status LeaseManager::Follow() {
  storage::WatchRequest wr;
  wr.key = opts_.prefix + "/";
  wr.range_end = storage::PrefixEnd(wr.key);
  const int64_t from = AppliedRevision();
  wr.start_revision = from + 1;
  ASSIGN_OR_RETURN(watch_, store_->Watch(wr, [this](const storage::WatchBatch& b) { OnWatch(b); }));
  absl::MutexLock l(&mu_);
  if (from < loaded_store_revision_) {
    // The replay comes through the watch, on the store's thread; readiness
    // waits until on_changes has had all of it.
    const absl::Condition replayed(+[](std::atomic<bool>* done) { return done->load(); }, &replayed_);
    if (!opts_.clock->AwaitWithTimeout(mu_, replayed, opts_.apply_timeout)) {
      WEFT_LOG(WARN, "the store's watch had not replayed its recent history in time; going on")
          .With("applied_revision", index_.applied_revision())
          .With("target_revision", loaded_store_revision_);
    }
  }
  started_ = true;
  return absl::OkStatus();
}

bool LeaseManager::Ready() {
  absl::MutexLock l(&mu_);
  return started_;
}

int64_t LeaseManager::AppliedRevision() {
  absl::MutexLock l(&mu_);
  return index_.applied_revision();
}

void LeaseManager::OnWatch(const storage::WatchBatch& batch) {
  int expired = 0;
  std::vector<LeaseChange> changes;
  std::vector<RevisionWaiters::Callback> caught_up;
  {
    absl::MutexLock l(&mu_);
    for (const storage::Event& ev : batch.events) index_.Apply(ev, &changes, &expired);
    index_.SetAppliedRevision(batch.revision);
    caught_up = waiters_.Reach(index_.applied_revision());
  }
  if (opts_.hooks.on_changes) opts_.hooks.on_changes(changes, batch.revision);
  // Expiries replayed at start were counted by the controller that saw them happen.
  if (opts_.hooks.on_expired && batch.revision > loaded_store_revision_) {
    for (int i = 0; i < expired; ++i) opts_.hooks.on_expired();
  }
  if (batch.revision >= loaded_store_revision_ && !replayed_.load(std::memory_order_relaxed)) {
    absl::MutexLock l(&mu_);  // Follow waits for it
    replayed_.store(true);
  }
  for (auto& then : caught_up) then(absl::OkStatus());
}

void LeaseManager::NoteWritten(int64_t revision) {
  int64_t cur = written_revision_.load();
  while (cur < revision && !written_revision_.compare_exchange_weak(cur, revision)) {
  }
}

void LeaseManager::Report(Op op, const absl::Status& s) {
  if (!opts_.hooks.on_result) return;
  const char* name = "acquire";
  switch (op) {
    case Op::kAcquire: name = "acquire"; break;
    case Op::kRenew: name = "renew"; break;
    case Op::kRelease: name = "release"; break;
    case Op::kReserve: name = "reserve"; break;
    case Op::kUnreserve: name = "unreserve"; break;
  }
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
  opts_.hooks.on_result(name, result);
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
  ASSIGN_OR_RETURN(std::string text, index_.LeaseText(req.subnet));
  const LeaseRecord& rec = index_.leases().at(text);
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
        Report(Op::kRenew, rec.status());
        return rec.status();
      }
      const std::optional<NetworkConfig>& config = index_.config();
      if (!config) {
        Report(Op::kRenew, NoConfig());
        return NoConfig();
      }
      if ((*rec)->reserved()) {
        Report(Op::kRenew, absl::OkStatus());
        return **rec;  // nothing to renew: a reservation has no TTL
      }
      if (!FitsIPv4(*config, (*rec)->key) || !FitsIPv6(*config, (*rec)->key)) {
        absl::Status s = absl::FailedPreconditionError(
            absl::StrCat("subnet ", SubnetText((*rec)->key),
                         " no longer fits the network config (outside it, or missing a family it enables); "
                         "acquire a new lease"));
        Report(Op::kRenew, s);
        return s;
      }
      current = **rec;
      key = (*rec)->store_key;
      value = EncodeLeaseAttrs((*rec)->attrs);
      mod = (*rec)->mod_revision;
      text = SubnetText((*rec)->key);
      ttl = config->lease_ttl;
    }
    absl::StatusOr<BucketLeases::Lease> lease = buckets_.Get(ttl);
    if (!lease.ok()) return StoreError(lease.status());
    auto txn = batcher_->Txn(storage::PutIf(key, storage::Compare::Target::kModRevision, mod, value, lease->id));
    if (!txn.ok()) {
      if (absl::IsNotFound(txn.status())) {
        buckets_.Forget();
        continue;
      }
      return StoreError(txn.status());
    }
    if (!txn->succeeded) {
      RETURN_IF_ERROR(WaitApplied(txn->revision));
      continue;  // changed under us; look again
    }
    NoteWritten(txn->revision);
    current.store_lease = lease->id;
    current.mod_revision = txn->revision;
    current.expiration = lease->expiration;
    Report(Op::kRenew, absl::OkStatus());
    return current;
  }
  absl::Status s = absl::UnavailableError("renewal kept racing with other writers; retry");
  Report(Op::kRenew, s);
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
        Report(Op::kRelease, rec.status());
        return rec.status();
      }
      key = (*rec)->store_key;
      mod = (*rec)->mod_revision;
      text = SubnetText((*rec)->key);
      index_.MarkReleasing(text);
    }
    auto txn = batcher_->Txn(DeleteIf(key, mod));
    if (!txn.ok()) {
      absl::MutexLock l(&mu_);
      index_.UnmarkReleasing(text);
      return StoreError(txn.status());
    }
    if (txn->succeeded) {
      NoteWritten(txn->revision);
      Report(Op::kRelease, absl::OkStatus());
      return absl::OkStatus();
    }
    RETURN_IF_ERROR(WaitApplied(txn->revision));
    absl::MutexLock l(&mu_);
    index_.UnmarkReleasing(text);
  }
  return absl::UnavailableError("release kept racing with other writers; retry");
}

absl::StatusOr<LeaseRecord> LeaseManager::Get(const std::string& subnet) {
  if (subnet.empty()) return Invalid("subnet", "required");
  RETURN_IF_ERROR(CatchUp());
  absl::MutexLock l(&mu_);
  ASSIGN_OR_RETURN(std::string text, index_.LeaseText(subnet));
  return index_.leases().at(text);
}

std::vector<LeaseRecord> LeaseManager::List(int64_t* revision) {
  CatchUp().IgnoreError();  // best effort: a lagging watch must not block listing
  absl::MutexLock l(&mu_);
  std::vector<LeaseRecord> out;
  out.reserve(index_.leases().size());
  for (const auto& [text, rec] : index_.leases()) out.push_back(rec);
  // Numeric order, not text order: 10.1.9.0 before 10.1.10.0.
  std::sort(out.begin(), out.end(), [](const LeaseRecord& a, const LeaseRecord& b) {
    if (a.key.ipv4 && b.key.ipv4) return a.key.ipv4->network().value() < b.key.ipv4->network().value();
    return a.store_key < b.store_key;
  });
  if (revision) *revision = index_.applied_revision();
  return out;
}

int64_t LeaseManager::LeaseSetRevision() {
  CatchUp().IgnoreError();
  absl::MutexLock l(&mu_);
  return index_.lease_set_revision();
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
    page.revision = index_.applied_revision();
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
    bytes += kv.key.size() + kv.value.size();
    page.leases.push_back(index_.RecordOf(*key, kv));
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
    const std::optional<NetworkConfig>& config = index_.config();
    if (!config) return NoConfig();
    std::string v6_text = req.ipv6_subnet;
    if (config->enable_ipv4) {
      auto sn = IPv4Net::Parse(req.subnet);
      if (!sn.ok()) return Invalid("subnet", sn.status().message());
      if (sn->prefix_len() != config->subnet_len || !config->network.Contains(*sn)) {
        return Invalid("subnet", absl::StrCat(sn->ToString(), " is not a /", config->subnet_len,
                                              " subnet of ", config->network.ToString()));
      }
      k.ipv4 = *sn;
      auto ip = IPv4Addr::Parse(req.public_ip);
      if (!ip.ok()) return Invalid("public_ip", ip.status().message());
      attrs.public_ip = *ip;
    } else if (v6_text.empty()) {
      v6_text = req.subnet;  // an IPv6-only network: the subnet is the IPv6 one
    }
    if (config->enable_ipv6) {
      if (v6_text.empty()) {
        // The node's current lease keeps its IPv6 subnet.
        const LeaseRecord* held = index_.Find(SubnetText(k));
        if (!held || !held->key.ipv6) {
          return Invalid("ipv6_subnet", "required (the network has IPv6 enabled)");
        }
        v6_text = held->key.ipv6->ToString();
      }
      auto sn6 = IPv6Net::Parse(v6_text);
      if (!sn6.ok()) return Invalid("ipv6_subnet", sn6.status().message());
      if (sn6->prefix_len() != config->ipv6_subnet_len || !config->ipv6_network->Contains(*sn6)) {
        return Invalid("ipv6_subnet", absl::StrCat(sn6->ToString(), " is not a /", config->ipv6_subnet_len,
                                                   " subnet of ", config->ipv6_network->ToString()));
      }
      k.ipv6 = *sn6;
      if (!req.public_ipv6.empty()) {
        auto ip6 = IPv6Addr::Parse(req.public_ipv6);
        if (!ip6.ok()) return Invalid("public_ipv6", ip6.status().message());
        attrs.public_ipv6 = *ip6;
      } else if (!config->enable_ipv4) {
        return Invalid("public_ipv6", "required (an IPv6-only network)");
      }
    } else if (!req.ipv6_subnet.empty()) {
      return Invalid("ipv6_subnet", "the network config does not enable IPv6");
    }
    if (!req.node_name.empty() && !IsValidNodeName(req.node_name)) {
      return Invalid("node_name", ValidateNodeName(req.node_name).message());
    }
    attrs.node_name = req.node_name;
    attrs.backend_type = req.backend_type.empty() ? config->backend.type : req.backend_type;
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
        auto found = index_.LeaseText(t);
        if (!found.ok()) continue;
        const LeaseRecord& rec = index_.leases().at(*found);
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
        const LeaseRecord* n = index_.FindByNode(attrs.node_name);
        if (n && SubnetText(n->key) != text && n != held) {
          return absl::FailedPreconditionError(absl::StrCat("node ", attrs.node_name, " already holds ",
                                                            SubnetText(n->key), "; release it first"));
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
    const LeaseRecord* reserved = index_.Find(text);
    if (!reserved) continue;
    Report(Op::kReserve, absl::OkStatus());
    return *reserved;
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
      auto found = index_.LeaseText(subnet);
      if (absl::IsInvalidArgument(found.status())) return found.status();
      const LeaseRecord* rec = found.ok() ? index_.Find(*found) : nullptr;
      if (!rec || !rec->reserved()) {
        return absl::NotFoundError(absl::StrCat("no reservation for subnet ", subnet));
      }
      text = *found;
      key = rec->store_key;
      value = EncodeLeaseAttrs(rec->attrs);
      mod = rec->mod_revision;
      ttl = index_.config() ? index_.config()->lease_ttl : opts_.default_ttl;
    }
    // The reservation becomes an ordinary lease: its node keeps it while it renews.
    ASSIGN_OR_RETURN(BucketLeases::Lease lease, buckets_.Get(ttl));
    auto txn = batcher_->Txn(storage::PutIf(key, storage::Compare::Target::kModRevision, mod, value, lease.id));
    if (!txn.ok()) return StoreError(txn.status());
    RETURN_IF_ERROR(WaitApplied(txn->revision));
    if (!txn->succeeded) continue;
    absl::MutexLock l(&mu_);
    index_.SetExpiration(text, lease.expiration);
    Report(Op::kUnreserve, absl::OkStatus());
    return absl::OkStatus();
  }
  return absl::UnavailableError("unreserve kept racing with other writers; retry");
}

absl::StatusOr<std::pair<std::string, int64_t>> LeaseManager::GetConfig() {
  absl::MutexLock l(&mu_);
  if (index_.config_json().empty()) return absl::NotFoundError("no network config is set");
  return std::make_pair(index_.config_json(), index_.config_revision());
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
    for (const auto& [text, rec] : index_.leases()) {
      bool inside = true;
      if (rec.key.ipv4) inside = cfg.enable_ipv4 && cfg.PoolIndex(*rec.key.ipv4).has_value();
      if (inside && rec.key.ipv6) inside = cfg.InIPv6Pool(*rec.key.ipv6);
      if (!inside) change.stranded.push_back(text);
    }
    expect_mod = index_.config_revision();
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
  if (const SubnetPool* pool = index_.pool()) {
    s.size = pool->size();
    s.free = pool->free_count();
  }
  if (const WideSubnetPool* pool6 = index_.pool6()) {
    s.ipv6_size = pool6->size();
    s.ipv6_free = pool6->free_count();
  }
  s.reservations = index_.reservations();
  s.leases = index_.leases().size() - index_.reservations();
  return s;
}

std::optional<NetworkConfig> LeaseManager::Config() {
  absl::MutexLock l(&mu_);
  return index_.config();
}

}  // namespace weft::controller
