#include "agent/network_settings.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/json.h"
#include "common/status_macros.h"

namespace weft::agent {

absl::StatusOr<NetworkSettings> ParseNetworkSettings(absl::string_view config_json) {
  ASSIGN_OR_RETURN(const json::Json j, json::ParseObject(config_json, "network config"));
  NetworkSettings s;
  absl::StatusOr<bool> v4 = json::GetBool(j, "EnableIPv4", true);
  absl::StatusOr<bool> v6 = json::GetBool(j, "EnableIPv6", false);
  if (!v4.ok()) return absl::InvalidArgumentError(absl::StrCat("network config: ", v4.status().message()));
  if (!v6.ok()) return absl::InvalidArgumentError(absl::StrCat("network config: ", v6.status().message()));
  s.ipv4 = *v4;
  s.ipv6 = *v6;
  if (!s.ipv4 && !s.ipv6) {
    return absl::InvalidArgumentError("network config: EnableIPv4 and EnableIPv6 are both false (no address family)");
  }
  const json::Json* be = json::Find(j, "Backend");
  if (be == nullptr) {
    s.backend_type = "udp";
    s.backend_json = "{}";
    return s;
  }
  if (!be->is_object()) return absl::InvalidArgumentError("network config: Backend is not an object");
  const json::Json* t = json::Find(*be, "Type");
  s.backend_type = t != nullptr && t->is_string() ? absl::AsciiStrToLower(t->get<std::string>()) : "udp";
  s.backend_json = json::Dump(*be);
  return s;
}

}  // namespace weft::agent
