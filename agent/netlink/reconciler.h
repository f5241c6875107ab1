#pragma once
// Keeps the kernel equal to a desired set of neighbours, FDB entries and routes,
// IPv4 and IPv6 alike (a dual-stack backend simply desires more objects).
//
// Each pass dumps what the kernel holds, compares it with the desired state and
// applies the difference in one batch: missing objects are added, different ones
// replaced, ours that are no longer desired deleted. Only our own objects are ever
// deleted: permanent neighbours and FDB entries of our devices, and routes (of
// either family) carrying our route protocol. Because every pass starts from the kernel's actual state, a
// neighbour or route removed by hand comes back at the next pass, and a pass over
// an unchanged kernel sends nothing.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/netlink/programmer.h"
#include "agent/netlink/reconcile_stats.h"

namespace weft::agent {

struct DesiredState {
  std::vector<netlink::Neighbour> neighbours;  // all on Ownership::devices
  std::vector<netlink::FdbEntry> fdb;          // all on Ownership::devices
  std::vector<netlink::Route> routes;          // all with Ownership::route_protocol
  // Nexthop objects the routes go through (Ownership::manage_nexthops only), all
  // with Ownership::route_protocol. A route through a nexthop whose id is held by
  // someone else's nexthop is programmed with its own next hop instead.
  std::vector<netlink::Nexthop> nexthops;
};

// What a pass may change.
struct Ownership {
  // The links whose permanent neighbours and FDB entries are ours (a VXLAN
  // device, or one per family); none for host-gw. Zeros are ignored.
  std::vector<int> devices;
  uint8_t route_protocol = netlink::kWeftRouteProtocol;  // routes and nexthops
  // Whether the kernel has nexthop objects and we use them. When false, desired
  // nexthops are ignored and every route carries its own next hop.
  bool manage_nexthops = false;
};


// What the kernel holds (as dumped): neighbours and FDB entries of the owned
// devices, routes of the owned protocol, nexthops of every protocol.
using ActualState = DesiredState;

struct PlannedChange {
  enum class Kind { kAdd, kUpdate, kRemove };
  Kind kind;
  netlink::Change change;
};

// The changes that turn `actual` into `desired` under `ownership`: deletes first
// (nexthops after the routes through them), then puts (nexthops before routes).
// Adds 1 to *unchanged for each desired object already in place. When `desired`
// names an object twice (same device and neighbour IP, same device and FDB MAC,
// same route prefix), the first wins.
std::vector<PlannedChange> Diff(const Ownership& ownership, const ActualState& actual,
                                const DesiredState& desired, int* unchanged);

// Reconcile hands the kernel at most this many changes per Apply call: a start
// with 20,000 peers in the store plans 60,000 changes, whose copies and netlink
// batch would otherwise all be resident at once (~10 MB; docs/benchmarks.md).
inline constexpr size_t kMaxChangesPerApply = 4096;

// One pass: dump, diff, apply (in calls of at most kMaxChangesPerApply changes).
// The dump is compared with `desired` object by object as it is read (the
// KernelProgrammer::Visit calls): of the kernel's side only what is to change is
// kept, and of the desired side an index of a few bytes an object. A change the kernel refuses is counted in
// stats.errors (and logged) and retried at the next pass; the result is an error
// only when the kernel could not be read or written at all.
absl::StatusOr<ReconcileStats> Reconcile(netlink::KernelProgrammer& kernel,
                                         const Ownership& ownership, const DesiredState& desired);

}  // namespace weft::agent
