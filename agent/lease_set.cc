#include "agent/lease_set.h"

#include <memory>

#include "agent/lease_fields.h"
#include "common/check.h"

namespace weft::agent {

void LeaseSet::Replace(google::protobuf::RepeatedPtrField<weft::v1::Lease>* leases) {
  encoded_.clear();
  while (!leases->empty()) {
    std::unique_ptr<weft::v1::Lease> lease(leases->ReleaseLast());
    Put(*lease);
  }
}

void LeaseSet::Put(const weft::v1::Lease& lease) { lease.SerializeToString(&encoded_[LeaseName(lease)]); }

void LeaseSet::Erase(const weft::v1::Lease& lease) { encoded_.erase(LeaseName(lease)); }

void LeaseSet::Visit(const std::function<void(const weft::v1::Lease&)>& fn) const {
  weft::v1::Lease lease;  // reused: parsing into it keeps its strings' buffers
  for (const auto& [name, bytes] : encoded_) {
    // Put wrote these bytes from a message of the same type.
    WEFT_CHECK(lease.ParseFromString(bytes), name.c_str());
    fn(lease);
  }
}

}  // namespace weft::agent
