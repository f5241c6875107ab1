#pragma once
// LeaseSet: the other hosts' leases as the controller's watch last delivered
// them, by lease name (LeaseName: the IPv4 subnet, or the IPv6 subnet of a
// lease that has none).
//
// Kept compact, because an agent holds every lease of the cluster for as long as
// it runs: each lease as its wire encoding (~95 bytes for a VXLAN lease) rather
// than as a parsed message (~580 bytes with its strings and Timestamp, each a
// heap block of its own). With 20,000 peers that is ~8 MB less resident memory
// (docs/benchmarks.md, "Agent resident memory"). Visit decodes each lease into
// one reused message: 5-7 ms per 20,000 leases at every resync (-c opt).
//
// Not thread-safe.

#include <cstddef>
#include <functional>
#include <string>

#include "absl/container/btree_map.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "proto/weft/v1/weft.pb.h"

namespace weft::agent {

class LeaseSet {
 public:
  // Makes the set exactly `leases` (a snapshot), consuming them: each is freed
  // once encoded, so a snapshot's leases are never held twice.
  void Replace(google::protobuf::RepeatedPtrField<weft::v1::Lease>* leases);
  // Adds `lease`, or overwrites the one with the same name.
  void Put(const weft::v1::Lease& lease);
  // Removes the lease named like `lease`, if there is one.
  void Erase(const weft::v1::Lease& lease);

  // Calls `fn` for every lease, in the order of their names. The reference is
  // valid only during the call.
  void Visit(const std::function<void(const weft::v1::Lease&)>& fn) const;

  size_t size() const { return encoded_.size(); }

 private:
  absl::btree_map<std::string, std::string> encoded_;  // name -> wire encoding
};

}  // namespace weft::agent
