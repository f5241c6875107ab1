#include "agent/netlink/reconciler.h"

#include <algorithm>
#include <array>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
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

void DiffNeighbours(const Ownership& own, const std::vector<Neighbour>& actual,
                    const std::vector<Neighbour>& desired, Plan& plan, int* unchanged) {
  using Key = std::pair<int, netlink::IPAddr>;  // device, address
  absl::flat_hash_map<Key, const Neighbour*> have;
  for (const Neighbour& n : actual) {
    if (Owns(own, n.ifindex)) have[{n.ifindex, n.ip}] = &n;
  }
  absl::flat_hash_set<Key> wanted;
  for (const Neighbour& d : desired) {
    if (!wanted.insert({d.ifindex, d.ip}).second) continue;
    auto it = have.find(Key{d.ifindex, d.ip});
    if (it == have.end()) {
      plan.Put(Kind::kAdd, d);
    } else if (it->second->mac == d.mac && it->second->state == NUD_PERMANENT) {
      ++*unchanged;
    } else {
      plan.Put(Kind::kUpdate, d);  // other MAC, or a learned/stale entry
    }
  }
  for (const auto& [key, n] : have) {
    // Non-permanent entries are the kernel's own (ARP, NDP), not ours to remove.
    if (IsPermanent(n->state) && !wanted.contains(key)) plan.Delete(*n);
  }
}

void DiffFdb(const Ownership& own, const std::vector<FdbEntry>& actual,
             const std::vector<FdbEntry>& desired, Plan& plan, int* unchanged) {
  // A VXLAN FDB entry may hold several remotes (dsts); dump order puts the one a
  // replace rewrites first.
  using Key = std::pair<int, MacAddr>;  // device, MAC
  absl::flat_hash_map<Key, std::vector<const FdbEntry*>> have;
  for (const FdbEntry& f : actual) {
    if (Owns(own, f.ifindex)) have[{f.ifindex, f.mac}].push_back(&f);
  }
  absl::flat_hash_set<Key> wanted;
  for (const FdbEntry& d : desired) {
    if (!wanted.insert({d.ifindex, d.mac}).second) continue;
    auto it = have.find(Key{d.ifindex, d.mac});
    if (it == have.end()) {
      plan.Put(Kind::kAdd, d);
      continue;
    }
    const std::vector<const FdbEntry*>& remotes = it->second;
    const FdbEntry* same = nullptr;
    for (const FdbEntry* r : remotes) {
      if (r->dst == d.dst && r->state == NUD_PERMANENT) same = r;
    }
    if (same != nullptr) {
      ++*unchanged;
    } else {
      plan.Put(Kind::kUpdate, d);
      same = remotes.front();  // the replace rewrites it
    }
    for (const FdbEntry* r : remotes) {
      if (r != same && r->dst != d.dst) plan.Delete(*r);
    }
  }
  for (const auto& [key, remotes] : have) {
    if (wanted.contains(key)) continue;
    for (const FdbEntry* r : remotes) {
      if (IsPermanent(r->state)) plan.Delete(*r);
    }
  }
}

// Returns the ids of desired nexthops that someone else's nexthop holds already:
// those are not touched, and routes through them go without.
absl::flat_hash_set<uint32_t> DiffNexthops(const Ownership& own, const std::vector<Nexthop>& actual,
                                           const std::vector<Nexthop>& desired, Plan& plan,
                                           int* unchanged) {
  absl::flat_hash_map<uint32_t, const Nexthop*> have;
  for (const Nexthop& n : actual) have[n.id] = &n;
  absl::flat_hash_set<uint32_t> wanted, foreign;
  for (const Nexthop& d : desired) {
    if (!wanted.insert(d.id).second) continue;
    auto it = have.find(d.id);
    if (it == have.end()) {
      plan.Put(Kind::kAdd, d);
    } else if (it->second->protocol != own.route_protocol) {
      foreign.insert(d.id);
    } else if (*it->second == d) {
      ++*unchanged;
    } else {
      plan.Put(Kind::kUpdate, d);
    }
  }
  for (const auto& [id, n] : have) {
    if (n->protocol == own.route_protocol && !wanted.contains(id)) plan.Delete(*n);
  }
  return foreign;
}

bool SameRoute(const Route& have, const Route& want) {
  // Through a nexthop object, the route is its id; the hop itself is the
  // nexthop's business (and what the dump shows of it depends on a sysctl).
  if (want.nexthop_id != 0) return have.nexthop_id == want.nexthop_id && have.protocol == want.protocol;
  return have == want;
}

void DiffRoutes(const Ownership& own, const std::vector<Route>& actual,
                const std::vector<Route>& desired, const absl::flat_hash_set<uint32_t>& no_nexthop,
                Plan& plan, int* unchanged) {
  absl::flat_hash_map<netlink::IPPrefix, const Route*> have;
  for (const Route& r : actual) {
    if (r.protocol == own.route_protocol) have[r.dst] = &r;
  }
  absl::flat_hash_set<netlink::IPPrefix> wanted;
  for (Route d : desired) {
    if (!wanted.insert(d.dst).second) continue;
    if (d.nexthop_id != 0 && (!own.manage_nexthops || no_nexthop.contains(d.nexthop_id))) {
      d.nexthop_id = 0;
    }
    auto it = have.find(d.dst);
    if (it == have.end()) {
      plan.Put(Kind::kAdd, d);
    } else if (SameRoute(*it->second, d)) {
      ++*unchanged;
    } else {
      plan.Put(Kind::kUpdate, d);
    }
  }
  for (const auto& [dst, r] : have) {
    if (!wanted.contains(dst)) plan.Delete(*r);
  }
}


Plan MakePlan(const Ownership& ownership, const ActualState& actual, const DesiredState& desired,
              int* unchanged) {
  Plan plan;
  if (!ownership.devices.empty()) {
    DiffNeighbours(ownership, actual.neighbours, desired.neighbours, plan, unchanged);
    DiffFdb(ownership, actual.fdb, desired.fdb, plan, unchanged);
  }
  absl::flat_hash_set<uint32_t> foreign;
  if (ownership.manage_nexthops) {
    foreign = DiffNexthops(ownership, actual.nexthops, desired.nexthops, plan, unchanged);
  }
  DiffRoutes(ownership, actual.routes, desired.routes, foreign, plan, unchanged);
  return plan;
}

absl::StatusOr<ActualState> DumpActual(netlink::KernelProgrammer& kernel, const Ownership& ownership) {
  ActualState actual;
  for (int device : ownership.devices) {
    if (device == 0) continue;
    ASSIGN_OR_RETURN(std::vector<Neighbour> neighbours, kernel.ListNeighbours(device));
    ASSIGN_OR_RETURN(std::vector<FdbEntry> fdb, kernel.ListFdb(device));
    actual.neighbours.insert(actual.neighbours.end(), neighbours.begin(), neighbours.end());
    actual.fdb.insert(actual.fdb.end(), fdb.begin(), fdb.end());
  }
  ASSIGN_OR_RETURN(actual.routes, kernel.ListRoutes(0, ownership.route_protocol));
  if (ownership.manage_nexthops) {
    ASSIGN_OR_RETURN(actual.nexthops, kernel.ListNexthops(0));
  }
  return actual;
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
  return MakePlan(ownership, actual, desired, unchanged).InOrder();
}

absl::StatusOr<ReconcileStats> Reconcile(netlink::KernelProgrammer& kernel,
                                         const Ownership& ownership, const DesiredState& desired) {
  ReconcileStats stats;
  Plan plan;
  {
    // Freed before the changes go out: the plan holds copies.
    ASSIGN_OR_RETURN(const ActualState actual, DumpActual(kernel, ownership));
    plan = MakePlan(ownership, actual, desired, &stats.unchanged);
  }
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
