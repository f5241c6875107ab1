// The controller's network config (flannel's net-conf.json) and TTL syntax.
#include <cstddef>
#include <cstdint>
#include <string>

#include "controller/network_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string s(reinterpret_cast<const char*>(data), size);
  (void)weft::controller::ParseNetworkConfig(s);
  (void)weft::controller::ParseTtl("TTL", s);
  return 0;
}
