#include "agent/netlink/reconciler.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace weft::agent {
namespace {

using netlink::Change;
using netlink::FdbEntry;
using netlink::Neighbour;
using netlink::Nexthop;
using netlink::Route;
using Kind = PlannedChange::Kind;

constexpr size_t kMaxErrorsKept = 10;

bool IsPermanent(uint16_t state) { return (state & NUD_PERMANENT) != 0; }

bool Owns(const Ownership& own, int ifindex) {
  return ifindex != 0 && std::find(own.devices.begin(), own.devices.end(), ifindex) != own.devices.end();
}

// Builds deletes and (adds + updates) separately so deletes can go first: a
// departed peer's objects are gone before a new peer's take their place. Nexthops
// are deleted after the routes through them and put before them.
struct Plan {
  std::vector<PlannedChange> deletes;
  std::vector<PlannedChange> nexthop_deletes;
  std::vector<PlannedChange> nexthop_puts;
  std::vector<PlannedChange> puts;
  void Delete(netlink::Change::Object o) {
    auto& to = std::holds_alternative<Nexthop>(o) ? nexthop_deletes : deletes;
    to.push_back({Kind::kRemove, {Change::Op::kDelete, std::move(o)}});
  }
  void Put(Kind kind, netlink::Change::Object o) {
    auto& to = std::holds_alternative<Nexthop>(o) ? nexthop_puts : puts;
    to.push_back({kind, {Change::Op::kReplace, std::move(o)}});
  }
  // The lists in the order their changes must reach the kernel.
  std::array<const std::vector<PlannedChange>*, 4> Lists() const {
    return {&deletes, &nexthop_deletes, &nexthop_puts, &puts};
  }
  // Every change as one list, in that order (Diff, for tests).
  std::vector<PlannedChange> InOrder() const {
    std::vector<PlannedChange> out;
    for (const std::vector<PlannedChange>* list : Lists()) out.insert(out.end(), list->begin(), list->end());
    return out;
  }
};

// No such position.
constexpr size_t kNone = ~size_t{0};

// What the dump showed of a desired object.
enum class Seen : uint8_t {
  kDuplicate,  // an earlier desired object has its key: this one is ignored
  kMissing,    // not in the dump: to add
  kSame,       // in place
  kDifferent,  // there, but not as desired: to replace
  kForeign,    // a nexthop id held by someone else's nexthop: left alone
};

// The desired objects of one kind, indexed once by key (the first of each key
// wins), with what the dump showed of each. The dump is compared with them as it
// is read, so only the index (a few bytes an object) and what is to change are
// kept, never a copy of the kernel's side (~3 MB with 20,000 peers).
template <typename T, typename KeyOf>
class DesiredIndex {
 public:
  using Key = std::decay_t<decltype(KeyOf()(std::declval<const T&>()))>;

  explicit DesiredIndex(const std::vector<T>& desired)
      : desired_(desired), seen_(desired.size(), Seen::kMissing), index_(0, Hash{&desired}, Eq{&desired}) {
    index_.reserve(desired.size());
    for (size_t i = 0; i < desired.size(); ++i) {
      if (!index_.insert(Position{static_cast<uint32_t>(i)}).second) seen_[i] = Seen::kDuplicate;
    }
  }

  // The position of the desired object with `key`, or kNone.
  size_t Find(const Key& key) const {
    auto it = index_.find(key);
    return it == index_.end() ? kNone : it->i;
  }
  const T& operator[](size_t i) const { return desired_[i]; }
  Seen& seen(size_t i) { return seen_[i]; }
  Seen seen(size_t i) const { return seen_[i]; }

  // Forgets what the dump showed of the desired objects `pred` is true of (a dump
  // read again from the start).
  template <typename Pred>
  void Forget(Pred pred) {
    for (size_t i = 0; i < desired_.size(); ++i) {
      if (seen_[i] != Seen::kDuplicate && pred(desired_[i])) seen_[i] = Seen::kMissing;
    }
  }

  // Puts what is missing or different, as `wanted` makes it of the desired
  // object, in desired order; counts what is in place.
  template <typename Wanted>
  void PutDifferences(Plan& plan, int* unchanged, Wanted wanted) const {
    for (size_t i = 0; i < desired_.size(); ++i) {
      switch (seen_[i]) {
        case Seen::kMissing: plan.Put(Kind::kAdd, wanted(desired_[i])); break;
        case Seen::kDifferent: plan.Put(Kind::kUpdate, wanted(desired_[i])); break;
        case Seen::kSame: ++*unchanged; break;
        case Seen::kDuplicate:
        case Seen::kForeign: break;
      }
    }
  }
  void PutDifferences(Plan& plan, int* unchanged) const {
    PutDifferences(plan, unchanged, [](const T& d) -> const T& { return d; });
  }

 private:
  // The index holds positions in the desired list; it is looked up by key.
  struct Position {
    uint32_t i;
  };
  struct Hash {
    using is_transparent = void;
    const std::vector<T>* desired;
    size_t operator()(Position p) const { return absl::Hash<Key>()(KeyOf()((*desired)[p.i])); }
    size_t operator()(const Key& k) const { return absl::Hash<Key>()(k); }
  };
  struct Eq {
    using is_transparent = void;
    const std::vector<T>* desired;
    Key KeyAt(Position p) const { return KeyOf()((*desired)[p.i]); }
    bool operator()(Position a, Position b) const { return KeyAt(a) == KeyAt(b); }
    bool operator()(Position a, const Key& b) const { return KeyAt(a) == b; }
    bool operator()(const Key& a, Position b) const { return a == KeyAt(b); }
  };

  const std::vector<T>& desired_;
  std::vector<Seen> seen_;
  absl::flat_hash_set<Position, Hash, Eq> index_;
};

struct NeighbourKey {
  std::pair<int, netlink::IPAddr> operator()(const Neighbour& n) const { return {n.ifindex, n.ip}; }
};
struct FdbKey {
  std::pair<int, MacAddr> operator()(const FdbEntry& f) const { return {f.ifindex, f.mac}; }
};
struct NexthopKey {
  uint32_t operator()(const Nexthop& n) const { return n.id; }
};
struct RouteKey {
  netlink::IPPrefix operator()(const Route& r) const { return r.dst; }
};

bool SameRoute(const Route& have, const Route& want) {
  // Through a nexthop object, the route is its id; the hop itself is the
  // nexthop's business (and what the dump shows of it depends on a sysctl).
  if (want.nexthop_id != 0) return have.nexthop_id == want.nexthop_id && have.protocol == want.protocol;
  return have == want;
}

// Compares the kernel's objects, one at a time as they are dumped, with the
// desired state, and makes the plan. Each kind's dump may be read again from the
// start (Forget*, then the objects again). The nexthops must be dumped before
// the routes: whether a route may go through its nexthop depends on them.
class Comparison {
 public:
  Comparison(const Ownership& own, const DesiredState& desired)
      : own_(own), neighbours_(desired.neighbours), fdb_(desired.fdb), nexthops_(desired.nexthops),
        routes_(desired.routes) {}

  void Compare(const Neighbour& n) {
    if (!Owns(own_, n.ifindex)) return;
    const auto key = NeighbourKey()(n);
    if (const size_t i = neighbours_.Find(key); i != kNone) {
      // A learned or stale entry, or another MAC, is replaced.
      const bool same = n.mac == neighbours_[i].mac && n.state == NUD_PERMANENT;
      neighbours_.seen(i) = same ? Seen::kSame : Seen::kDifferent;
    } else if (IsPermanent(n.state)) {
      stray_neighbours_[key] = n;
    } else {
      stray_neighbours_.erase(key);  // the kernel's own (ARP, NDP), not ours to remove
    }
  }
  void ForgetNeighbours(int ifindex) {
    neighbours_.Forget([ifindex](const Neighbour& d) { return d.ifindex == ifindex; });
    absl::erase_if(stray_neighbours_, [ifindex](const auto& kv) { return kv.first.first == ifindex; });
  }

  // A VXLAN FDB entry may hold several remotes (dsts); dump order puts the one a
  // replace rewrites first.
  void Compare(const FdbEntry& f) {
    if (!Owns(own_, f.ifindex)) return;
    const size_t i = fdb_.Find(FdbKey()(f));
    if (i == kNone) {
      if (IsPermanent(f.state)) fdb_deletes_.push_back(f);
      return;
    }
    const FdbEntry& d = fdb_[i];
    Seen& seen = fdb_.seen(i);
    const bool first = seen == Seen::kMissing;
    if (f.dst == d.dst) {
      if (f.state == NUD_PERMANENT) {
        seen = Seen::kSame;
      } else if (first) {
        seen = Seen::kDifferent;
      }
    } else if (first) {
      // The replace rewrites it, unless the desired remote turns up as well.
      fdb_fronts_.push_back({i, f});
      seen = Seen::kDifferent;
    } else {
      fdb_deletes_.push_back(f);
    }
  }
  void ForgetFdb(int ifindex) {
    fdb_.Forget([ifindex](const FdbEntry& d) { return d.ifindex == ifindex; });
    fdb_fronts_.erase(std::remove_if(fdb_fronts_.begin(), fdb_fronts_.end(),
                                     [ifindex](const auto& front) { return front.second.ifindex == ifindex; }),
                      fdb_fronts_.end());
    fdb_deletes_.erase(std::remove_if(fdb_deletes_.begin(), fdb_deletes_.end(),
                                      [ifindex](const FdbEntry& f) { return f.ifindex == ifindex; }),
                       fdb_deletes_.end());
  }

  void Compare(const Nexthop& n) {
    if (const size_t i = nexthops_.Find(n.id); i != kNone) {
      nexthops_.seen(i) = n.protocol != own_.route_protocol ? Seen::kForeign
                          : n == nexthops_[i]                ? Seen::kSame
                                                             : Seen::kDifferent;
    } else if (n.protocol == own_.route_protocol) {
      stray_nexthops_[n.id] = n;
    } else {
      stray_nexthops_.erase(n.id);
    }
  }
  void ForgetNexthops() {
    nexthops_.Forget([](const Nexthop&) { return true; });
    stray_nexthops_.clear();
  }

  void Compare(const Route& r) {
    if (r.protocol != own_.route_protocol) return;
    if (const size_t i = routes_.Find(r.dst); i != kNone) {
      routes_.seen(i) = SameRoute(r, Wanted(routes_[i])) ? Seen::kSame : Seen::kDifferent;
    } else {
      stray_routes_[r.dst] = r;
    }
  }
  void ForgetRoutes() {
    routes_.Forget([](const Route&) { return true; });
    stray_routes_.clear();
  }

  // Deletes first (nexthops after the routes through them), then puts (nexthops
  // before routes).
  Plan Finish(int* unchanged) const {
    Plan plan;
    if (!own_.devices.empty()) {
      neighbours_.PutDifferences(plan, unchanged);
      for (const auto& [key, n] : stray_neighbours_) plan.Delete(n);
      fdb_.PutDifferences(plan, unchanged);
      for (const auto& [i, f] : fdb_fronts_) {
        if (fdb_.seen(i) == Seen::kSame) plan.Delete(f);
      }
      for (const FdbEntry& f : fdb_deletes_) plan.Delete(f);
    }
    if (own_.manage_nexthops) {
      nexthops_.PutDifferences(plan, unchanged);
      for (const auto& [id, n] : stray_nexthops_) plan.Delete(n);
    }
    routes_.PutDifferences(plan, unchanged, [this](const Route& d) { return Wanted(d); });
    for (const auto& [dst, r] : stray_routes_) plan.Delete(r);
    return plan;
  }

 private:
  // A desired route as it is programmed: without its nexthop when nexthops are
  // not ours to use, or when someone else's nexthop holds the id.
  Route Wanted(Route d) const {
    if (d.nexthop_id == 0) return d;
    const size_t i = own_.manage_nexthops ? nexthops_.Find(d.nexthop_id) : kNone;
    if (!own_.manage_nexthops || (i != kNone && nexthops_.seen(i) == Seen::kForeign)) d.nexthop_id = 0;
    return d;
  }

  const Ownership& own_;
  DesiredIndex<Neighbour, NeighbourKey> neighbours_;
  DesiredIndex<FdbEntry, FdbKey> fdb_;
  DesiredIndex<Nexthop, NexthopKey> nexthops_;
  DesiredIndex<Route, RouteKey> routes_;
  // Ours and not desired (the last dumped of each key, as the kernel keeps one).
  absl::flat_hash_map<std::pair<int, netlink::IPAddr>, Neighbour> stray_neighbours_;
  absl::flat_hash_map<uint32_t, Nexthop> stray_nexthops_;
  absl::flat_hash_map<netlink::IPPrefix, Route> stray_routes_;
  // The first remote of a desired MAC when it is not the desired one.
  std::vector<std::pair<size_t, FdbEntry>> fdb_fronts_;
  // Remotes to delete: those of MACs not desired (permanent ones), and the
  // other remotes of desired MACs.
  std::vector<FdbEntry> fdb_deletes_;
};

// Compares the kernel's objects with `desired` as they are dumped.
absl::StatusOr<Plan> CompareWithKernel(netlink::KernelProgrammer& kernel, const Ownership& ownership,
                                       const DesiredState& desired, int* unchanged) {
  Comparison c(ownership, desired);
  for (int device : ownership.devices) {
    if (device == 0) continue;
    RETURN_IF_ERROR(kernel.VisitNeighbours(
        device, [&c, device] { c.ForgetNeighbours(device); }, [&c](const Neighbour& n) { c.Compare(n); }));
    RETURN_IF_ERROR(kernel.VisitFdb(
        device, [&c, device] { c.ForgetFdb(device); }, [&c](const FdbEntry& f) { c.Compare(f); }));
  }
  if (ownership.manage_nexthops) {
    RETURN_IF_ERROR(
        kernel.VisitNexthops(0, [&c] { c.ForgetNexthops(); }, [&c](const Nexthop& n) { c.Compare(n); }));
  }
  RETURN_IF_ERROR(kernel.VisitRoutes(
      0, ownership.route_protocol, [&c] { c.ForgetRoutes(); }, [&c](const Route& r) { c.Compare(r); }));
  return c.Finish(unchanged);
}

void Count(const PlannedChange& p, const absl::Status& s, ReconcileStats& stats) {
  // Deleting what is already gone reaches the goal all the same.
  if (s.ok() || (p.kind == Kind::kRemove && absl::IsNotFound(s))) {
    switch (p.kind) {
      case Kind::kAdd: ++stats.added; break;
      case Kind::kUpdate: ++stats.updated; break;
      case Kind::kRemove: ++stats.removed; break;
    }
    return;
  }
  ++stats.errors;
  if (stats.first_errors.size() < kMaxErrorsKept) {
    stats.first_errors.push_back(s);
    WEFT_LOG(WARN, "kernel refused a change; retrying at the next resync").Err(s);
  }
}

}  // namespace

std::vector<PlannedChange> Diff(const Ownership& ownership, const ActualState& actual,
                                const DesiredState& desired, int* unchanged) {
  Comparison c(ownership, desired);
  for (const Neighbour& n : actual.neighbours) c.Compare(n);
  for (const FdbEntry& f : actual.fdb) c.Compare(f);
  if (ownership.manage_nexthops) {
    for (const Nexthop& n : actual.nexthops) c.Compare(n);
  }
  for (const Route& r : actual.routes) c.Compare(r);
  return c.Finish(unchanged).InOrder();
}

absl::StatusOr<ReconcileStats> Reconcile(netlink::KernelProgrammer& kernel,
                                         const Ownership& ownership, const DesiredState& desired) {
  ReconcileStats stats;
  ASSIGN_OR_RETURN(const Plan plan, CompareWithKernel(kernel, ownership, desired, &stats.unchanged));
  // At most kMaxChangesPerApply changes at a time, each list in its turn, so
  // the copies handed to the kernel and their netlink batch stay small however
  // long the plan.
  std::vector<Change> changes;
  for (const std::vector<PlannedChange>* list : plan.Lists()) {
    for (size_t begin = 0; begin < list->size(); begin += kMaxChangesPerApply) {
      const size_t end = std::min(list->size(), begin + kMaxChangesPerApply);
      changes.clear();
      for (size_t i = begin; i < end; ++i) changes.push_back((*list)[i].change);
      ASSIGN_OR_RETURN(std::vector<absl::Status> results, kernel.Apply(changes));
      for (size_t i = begin; i < end; ++i) Count((*list)[i], results[i - begin], stats);
    }
  }
  if (stats.errors > static_cast<int>(kMaxErrorsKept)) {
    WEFT_LOG(WARN, "kernel refused more changes than logged")
        .With("refused", stats.errors)
        .With("logged", kMaxErrorsKept);
  }
  return stats;
}

}  // namespace weft::agent
