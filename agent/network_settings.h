#pragma once
// What the agent takes from the network config JSON (the controller has
// validated the rest): the address families and the backend.

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace weft::agent {

struct NetworkSettings {
  bool ipv4 = true;           // EnableIPv4 (flannel's default: true)
  bool ipv6 = false;          // EnableIPv6 (default false): dual-stack, or IPv6-only without ipv4
  std::string backend_type;   // Backend.Type, lower case; "udp" when absent (flannel's default)
  std::string backend_json;   // the Backend object; "{}" when absent
};

// INVALID_ARGUMENT when the config is not a JSON object or a field has the
// wrong type, or when neither family is enabled.
absl::StatusOr<NetworkSettings> ParseNetworkSettings(absl::string_view config_json);

}  // namespace weft::agent
