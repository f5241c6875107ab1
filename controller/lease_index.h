#pragma once
// LeaseIndex: every lease under <prefix>/subnets/ and the network config as
// applied from the store's events (a load, then the watch), with the subnet
// pools (SubnetPool for IPv4, WideSubnetPool for IPv6) and the lookups by node
// name, public IP and IPv6 subnet. It decides nothing against the store and
// starts no thread: the store's events are its only input besides the
// acquisitions' pending picks.
//
// Thread-compatible: LeaseManager calls every method with its mu_ held.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/numeric/int128.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "controller/lease_codec.h"
#include "controller/network_config.h"
#include "controller/subnet_pool.h"
#include "storage/store.h"

namespace weft::controller {

struct LeaseRecord {
  SubnetKey key;
  std::string store_key;
  LeaseAttrs attrs;
  int64_t store_lease = 0;  // 0 = reservation (no TTL)
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  absl::Time expiration = absl::InfiniteFuture();
  bool valid = true;  // false: the stored value is malformed; the subnet stays taken
  bool reserved() const { return store_lease == 0; }
};

// One lease change the manager applied from the store.
struct LeaseChange {
  bool deleted = false;
  LeaseRecord record;  // for deletes: the lease as it was (key set)
  int64_t revision = 0;
};

// Text form of a lease's subnet used as the index key and in the API.
std::string SubnetText(const SubnetKey& k);

// The pool indices an acquisition in flight took (taken in the pools and
// pending until its write is in the index, or it gives them back).
struct PendingPick {
  std::optional<uint64_t> ipv4;
  std::optional<absl::uint128> ipv6;
  bool empty() const { return !ipv4 && !ipv6; }
};

class LeaseIndex {
 public:
  struct Options {
    std::string prefix = "/coreos.com/network";
    // A value this index cannot read (kind: "lease" or "config"): logged and
    // skipped; the hook counts it. Called from Apply.
    std::function<void(const char* kind)> on_corrupt;
  };

  explicit LeaseIndex(Options options);

  // Applies one store event; keys other than the config and leases are
  // ignored. Appends lease changes to `changes` and counts expiries (deletes of
  // leases with a TTL not marked releasing) in `expired`, when given.
  void Apply(const storage::Event& ev, std::vector<LeaseChange>* changes = nullptr, int* expired = nullptr);
  // The index holds every event up to `revision` (never goes back).
  void SetAppliedRevision(int64_t revision);
  int64_t applied_revision() const { return applied_revision_; }
  // The revision of the last lease put or delete applied.
  int64_t lease_set_revision() const { return lease_set_revision_; }

  // The config as applied: unset when absent or unreadable; its JSON as
  // stored (empty when absent) and the revision that wrote it.
  const std::optional<NetworkConfig>& config() const { return config_; }
  const std::string& config_json() const { return config_json_; }
  int64_t config_revision() const { return config_revision_; }

  // Leases by index key (SubnetText of their key).
  const std::map<std::string, LeaseRecord>& leases() const { return leases_; }
  const LeaseRecord* Find(const std::string& text) const;
  const LeaseRecord* FindByNode(const std::string& node_name) const;
  // By public IPv4 or IPv6 address (text).
  const LeaseRecord* FindByPublicIp(const std::string& ip) const;
  // The index key of the lease holding `subnet`, given in either family (a
  // dual-stack lease is found by its IPv6 subnet too). INVALID_ARGUMENT for a
  // malformed subnet, NOT_FOUND when no lease holds it.
  absl::StatusOr<std::string> LeaseText(const std::string& subnet) const;
  // A lease's expiration as this replica knows it (after a renewal, say).
  void SetExpiration(const std::string& text, absl::Time expiration);

  // The record a stored lease key-value describes (`key` parsed from its
  // key): expiration from NoteStoreLease when known; `valid` false when the
  // value cannot be decoded, the reason in `why` when given.
  LeaseRecord RecordOf(const SubnetKey& key, const storage::KeyValue& kv, absl::Status* why = nullptr) const;

  // The pools of the families the config enables (null otherwise, or IPv4
  // when the config gives more than SubnetPool::kMaxSize subnets).
  const SubnetPool* pool() const { return pool_.get(); }
  const WideSubnetPool* pool6() const { return pool6_.get(); }
  // Entries of leases() without a TTL.
  uint64_t reservations() const { return reservations_; }

  // Picks the subnets `k` lacks of the families the config enables (the
  // previous ones when free), taking them in the pools as pending in `pick`.
  // RESOURCE_EXHAUSTED, giving back what it took, when a pool is full. The
  // config must be set, with an IPv4 pool when it enables IPv4.
  absl::Status PickSubnets(const std::string& previous_subnet, const std::string& previous_ipv6_subnet,
                           SubnetKey* k, PendingPick* pick);
  // The pick's write failed or lost: its indices are no longer pending and go
  // back to the pools unless the index now holds a lease `text` for them.
  void ReturnPick(PendingPick* pick, const std::string& text);
  // The pick's write is already in the index: its indices are no longer pending.
  void ForgetPick(const PendingPick& pick);

  // A delete of `text` that this replica writes itself, not an expiry.
  void MarkReleasing(const std::string& text) { releasing_.insert(text); }
  void UnmarkReleasing(const std::string& text) { releasing_.erase(text); }

  // A store lease this replica granted, with its expiration: records using it
  // get it (those of store leases expired before `now` are forgotten).
  void NoteStoreLease(int64_t id, absl::Time expiration, absl::Time now);

 private:
  void ApplyConfig(const std::string& value, int64_t revision);
  void ReportCorrupt(const char* kind, const std::string& key, int64_t revision, const absl::Status& why);
  void Index(const std::string& text, LeaseRecord rec);
  void Unindex(const std::string& text);
  void RebuildPools();
  std::optional<uint64_t> PoolIndex(const SubnetKey& k) const;
  std::optional<absl::uint128> PoolIndex6(const SubnetKey& k) const;

  const Options opts_;
  const std::string config_key_;      // <prefix>/config
  const std::string subnets_prefix_;  // <prefix>/subnets/

  int64_t applied_revision_ = 0;
  int64_t lease_set_revision_ = 0;
  std::optional<NetworkConfig> config_;
  std::string config_json_;
  int64_t config_revision_ = 0;
  std::unique_ptr<SubnetPool> pool_;        // IPv4 (EnableIPv4)
  std::unique_ptr<WideSubnetPool> pool6_;   // IPv6 (EnableIPv6)
  // subnet (IPv4 CIDR text, or IPv6 CIDR text for IPv6-only) -> lease
  std::map<std::string, LeaseRecord> leases_;
  uint64_t reservations_ = 0;
  absl::flat_hash_map<std::string, std::string> by_node_;
  // Public IPv4 and IPv6 addresses (text) -> lease.
  absl::flat_hash_map<std::string, std::string> by_ip_;
  // IPv6 subnet text of dual-stack leases -> lease (IPv6-only leases are keyed by it).
  absl::flat_hash_map<std::string, std::string> by_subnet6_;
  // Pool indices chosen by an in-flight acquisition.
  absl::flat_hash_set<uint64_t> pending_;
  absl::flat_hash_set<absl::uint128> pending6_;
  // Subnets we are deleting ourselves (a delete of anything else is an expiry).
  absl::flat_hash_set<std::string> releasing_;
  // Expiration of each bucket store lease we granted, for the records using it.
  absl::flat_hash_map<int64_t, absl::Time> lease_deadlines_;
  absl::BitGen rng_;
};

}  // namespace weft::controller
