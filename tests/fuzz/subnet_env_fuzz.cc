// subnet.env, both readers: the CNI plugin's ParseSubnetEnv and the agent's
// ReadPreviousSubnet and ReadPreviousIPv6Subnet (agent/node_files), which read the
// file at start-up.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "agent/node_files.h"
#include "cni/subnet_env.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view s(reinterpret_cast<const char*>(data), size);
  (void)weft::cni::ParseSubnetEnv(s, "subnet.env");

  static const std::string path = [] {
    const char* tmp = std::getenv("TEST_TMPDIR");
    return std::string(tmp != nullptr ? tmp : "/tmp") + "/weft_fuzz_subnet_env." + std::to_string(getpid());
  }();
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  (void)weft::agent::ReadPreviousSubnet(path);
  (void)weft::agent::ReadPreviousIPv6Subnet(path);
  return 0;
}
