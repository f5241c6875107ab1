#include "controller/lease_index.h"

#include <algorithm>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/quote.h"

namespace weft::controller {
namespace {

std::string Uint128Text(absl::uint128 v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

}  // namespace

std::string SubnetText(const SubnetKey& k) {
  if (k.ipv4) return k.ipv4->ToString();
  if (k.ipv6) return k.ipv6->ToString();
  return "";
}

LeaseIndex::LeaseIndex(Options options)
    : opts_(std::move(options)), config_key_(ConfigKey(opts_.prefix)), subnets_prefix_(SubnetsPrefix(opts_.prefix)) {}

void LeaseIndex::SetAppliedRevision(int64_t revision) { applied_revision_ = std::max(applied_revision_, revision); }

void LeaseIndex::Apply(const storage::Event& ev, std::vector<LeaseChange>* changes, int* expired) {
  if (ev.kv.key == config_key_) {
    if (ev.type == storage::Event::Type::kPut) {
      ApplyConfig(ev.kv.value, ev.kv.mod_revision);
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
    Unindex(text);
    lease_set_revision_ = std::max(lease_set_revision_, ev.kv.mod_revision);
    return;
  }
  absl::Status why;
  LeaseRecord rec = RecordOf(*key, ev.kv, &why);
  // Keep the subnet taken; never hand out what we cannot read.
  if (!rec.valid) ReportCorrupt("lease", ev.kv.key, ev.kv.mod_revision, why);
  // A store lease not granted here (or forgotten): keep what the record knew.
  auto old = leases_.find(text);
  if (rec.expiration == absl::InfiniteFuture() && old != leases_.end() &&
      old->second.store_lease == rec.store_lease) {
    rec.expiration = old->second.expiration;
  }
  // An acquisition's chosen subnet stays pending until its write is in the index.
  if (auto idx = PoolIndex(rec.key)) pending_.erase(*idx);
  if (auto idx = PoolIndex6(rec.key)) pending6_.erase(*idx);
  if (changes) changes->push_back({false, rec, ev.kv.mod_revision});
  lease_set_revision_ = std::max(lease_set_revision_, ev.kv.mod_revision);
  Index(text, std::move(rec));
}

LeaseRecord LeaseIndex::RecordOf(const SubnetKey& key, const storage::KeyValue& kv, absl::Status* why) const {
  LeaseRecord rec;
  rec.key = key;
  rec.store_key = kv.key;
  rec.store_lease = kv.lease;
  rec.create_revision = kv.create_revision;
  rec.mod_revision = kv.mod_revision;
  auto attrs = DecodeLeaseAttrs(kv.value);
  if (attrs.ok()) {
    rec.attrs = *std::move(attrs);
  } else {
    rec.valid = false;
    if (why) *why = attrs.status();
  }
  if (auto d = lease_deadlines_.find(rec.store_lease); rec.store_lease != 0 && d != lease_deadlines_.end()) {
    rec.expiration = d->second;
  }
  return rec;
}

void LeaseIndex::Index(const std::string& text, LeaseRecord rec) {
  Unindex(text);
  if (!rec.attrs.node_name.empty()) by_node_[rec.attrs.node_name] = text;
  if (rec.attrs.public_ip) by_ip_[rec.attrs.public_ip->ToString()] = text;
  if (rec.attrs.public_ipv6) by_ip_[rec.attrs.public_ipv6->ToString()] = text;
  if (rec.key.ipv4 && rec.key.ipv6) by_subnet6_[rec.key.ipv6->ToString()] = text;
  if (auto idx = PoolIndex(rec.key)) pool_->Take(*idx);
  if (auto idx = PoolIndex6(rec.key)) pool6_->Take(*idx);
  if (rec.reserved()) ++reservations_;
  leases_[text] = std::move(rec);
}

void LeaseIndex::Unindex(const std::string& text) {
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
  if (auto idx = PoolIndex(rec.key)) pool_->Give(*idx);
  if (auto idx = PoolIndex6(rec.key)) pool6_->Give(*idx);
  if (rec.reserved()) --reservations_;
  leases_.erase(it);
}

std::optional<uint64_t> LeaseIndex::PoolIndex(const SubnetKey& k) const {
  if (!config_ || !pool_ || !k.ipv4) return std::nullopt;
  return config_->PoolIndex(*k.ipv4);
}

std::optional<absl::uint128> LeaseIndex::PoolIndex6(const SubnetKey& k) const {
  if (!config_ || !pool6_ || !k.ipv6) return std::nullopt;
  return config_->IPv6PoolIndex(*k.ipv6);
}

const LeaseRecord* LeaseIndex::Find(const std::string& text) const {
  auto it = leases_.find(text);
  return it == leases_.end() ? nullptr : &it->second;
}

const LeaseRecord* LeaseIndex::FindByNode(const std::string& node_name) const {
  auto it = by_node_.find(node_name);
  return it == by_node_.end() ? nullptr : &leases_.at(it->second);
}

const LeaseRecord* LeaseIndex::FindByPublicIp(const std::string& ip) const {
  auto it = by_ip_.find(ip);
  return it == by_ip_.end() ? nullptr : &leases_.at(it->second);
}

absl::StatusOr<std::string> LeaseIndex::LeaseText(const std::string& subnet) const {
  std::string text;
  if (auto v4 = IPv4Net::Parse(subnet); v4.ok()) {
    text = v4->ToString();
  } else if (auto v6 = IPv6Net::Parse(subnet); v6.ok()) {
    text = v6->ToString();
    if (auto d = by_subnet6_.find(text); d != by_subnet6_.end()) text = d->second;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("subnet: ", QuoteInput(subnet), " is not an IPv4 or IPv6 subnet (CIDR)"));
  }
  if (leases_.count(text) == 0) return absl::NotFoundError(absl::StrCat("no lease for subnet ", text));
  return text;
}

void LeaseIndex::SetExpiration(const std::string& text, absl::Time expiration) {
  auto it = leases_.find(text);
  if (it != leases_.end()) it->second.expiration = expiration;
}

void LeaseIndex::ApplyConfig(const std::string& value, int64_t revision) {
  auto parsed = ParseNetworkConfig(value);
  config_json_ = value;
  config_revision_ = revision;
  if (!parsed.ok()) {
    // Written around our validation (by flannel's tools, say): allocate nothing
    // until it is fixed rather than guess.
    ReportCorrupt("config", config_key_, revision, parsed.status());
    config_.reset();
    pool_.reset();
    pool6_.reset();
    return;
  }
  config_ = *std::move(parsed);
  RebuildPools();
}

void LeaseIndex::ReportCorrupt(const char* kind, const std::string& key, int64_t revision, const absl::Status& why) {
  // Once per stored value: the load and the watch each apply a write once.
  WEFT_LOG(WARN, "unreadable value in the store skipped")
      .With("kind", kind)
      .With("key", QuoteInput(key))
      .With("revision", revision)
      .Err(why);
  if (opts_.on_corrupt) opts_.on_corrupt(kind);
}

void LeaseIndex::RebuildPools() {
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
    if (auto idx = PoolIndex(rec.key)) pool_->Take(*idx);
    if (auto idx = PoolIndex6(rec.key)) pool6_->Take(*idx);
  }
}

absl::Status LeaseIndex::PickSubnets(const std::string& previous_subnet, const std::string& previous_ipv6_subnet,
                                     SubnetKey* k, PendingPick* pick) {
  if (config_->enable_ipv4 && !k->ipv4) {
    std::optional<uint64_t> idx;
    if (!previous_subnet.empty()) {
      auto prev = IPv4Net::Parse(previous_subnet);
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
    pick->ipv4 = idx;
    pending_.insert(*idx);
    pool_->Take(*idx);
    k->ipv4 = config_->PoolSubnet(*idx);
  }
  if (config_->enable_ipv6 && !k->ipv6) {
    std::optional<absl::uint128> idx;
    if (!previous_ipv6_subnet.empty()) {
      auto prev = IPv6Net::Parse(previous_ipv6_subnet);
      if (prev.ok()) {
        auto p = config_->IPv6PoolIndex(*prev);
        if (p && pool6_->IsFree(*p) && !pending6_.contains(*p)) idx = p;
      }
    }
    if (!idx) idx = pool6_->PickRandom(rng_);
    if (!idx) {
      if (pick->ipv4) {  // both families or neither
        pending_.erase(*pick->ipv4);
        pool_->Give(*pick->ipv4);
        pick->ipv4.reset();
      }
      return absl::ResourceExhaustedError(absl::StrCat(
          "no free IPv6 subnet: all ", Uint128Text(pool6_->size()), " subnets of ",
          config_->ipv6_network->ToString(), " between ", config_->ipv6_subnet_min.ToString(), " and ",
          config_->ipv6_subnet_max.ToString(), " are leased or reserved"));
    }
    pick->ipv6 = idx;
    pending6_.insert(*idx);
    pool6_->Take(*idx);
    k->ipv6 = config_->IPv6PoolSubnet(*idx);
  }
  return absl::OkStatus();
}

void LeaseIndex::ReturnPick(PendingPick* pick, const std::string& text) {
  const bool indexed = leases_.count(text) != 0;
  if (pick->ipv4) {
    pending_.erase(*pick->ipv4);
    if (pool_ && *pick->ipv4 < pool_->size() && !indexed) pool_->Give(*pick->ipv4);
    pick->ipv4.reset();
  }
  if (pick->ipv6) {
    pending6_.erase(*pick->ipv6);
    if (pool6_ && !indexed) pool6_->Give(*pick->ipv6);
    pick->ipv6.reset();
  }
}

void LeaseIndex::ForgetPick(const PendingPick& pick) {
  if (pick.ipv4) pending_.erase(*pick.ipv4);
  if (pick.ipv6) pending6_.erase(*pick.ipv6);
}

void LeaseIndex::NoteStoreLease(int64_t id, absl::Time expiration, absl::Time now) {
  for (auto it = lease_deadlines_.begin(); it != lease_deadlines_.end();) {
    auto cur = it++;
    if (cur->second < now) lease_deadlines_.erase(cur);
  }
  lease_deadlines_[id] = expiration;
}

}  // namespace weft::controller
