// Every backend's config block and peer BackendData, as found in a network
// config or in another node's lease.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "agent/backend/awsvpc/awsvpc_backend.h"
#include "agent/backend/gce/gce_backend.h"
#include "agent/backend/hostgw/hostgw_backend.h"
#include "agent/backend/udp/udp_backend.h"
#include "agent/backend/vxlan/vxlan_backend.h"
#include "agent/backend/wireguard/wireguard_backend.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view s(reinterpret_cast<const char*>(data), size);
  (void)weft::agent::ParseVxlanConfig(s);
  (void)weft::agent::ParseVxlanLeaseData(s);
  (void)weft::agent::ParseUdpConfig(s);
  (void)weft::agent::ValidateHostgwConfig(s);
  (void)weft::agent::ParseAwsVpcConfig(s);
  (void)weft::agent::ParseAwsVpcLeaseInstance(s);
  (void)weft::agent::gce::ParseGceConfig(s);
  (void)weft::agent::gce::ParseGceLeaseData(s);
  (void)weft::agent::ParseWireguardConfig(s);
  if (auto d = weft::agent::ParseWireguardLeaseData(s); d.ok()) {
    auto again = weft::agent::ParseWireguardLeaseData(weft::agent::EncodeWireguardLeaseData(*d));
    FUZZ_CHECK(again.ok() && again->public_key == d->public_key && again->port == d->port);
  }
  return 0;
}
