// Lease JSON and keys as stored in etcd / the store (controller/lease_codec).
#include <cstddef>
#include <cstdint>
#include <string>

#include "controller/lease_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string s(reinterpret_cast<const char*>(data), size);
  (void)weft::controller::ParseSubnetKeySuffix(s);
  (void)weft::controller::DecodeLeaseAttrs(s);
  (void)weft::controller::NormalizeJsonObject("backend_data", s);
  return 0;
}
