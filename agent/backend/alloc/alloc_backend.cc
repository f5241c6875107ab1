#include "agent/backend/alloc/alloc_backend.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/json.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace weft::agent {

absl::Status ValidateAllocConfig(absl::string_view json) {
  if (json.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(const ::weft::json::Json j, ::weft::json::ParseObject(json, "Backend"));
  const ::weft::json::Json* type = ::weft::json::FindFolded(j, "Type");
  if (type != nullptr && !type->is_null() &&
      (!type->is_string() || !absl::EqualsIgnoreCase(type->get<std::string>(), kAllocBackendType))) {
    return absl::InvalidArgumentError(absl::StrCat("Backend.Type is ", ::weft::json::Excerpt(*type), ", not \"alloc\""));
  }
  return absl::OkStatus();
}

absl::StatusOr<BackendInfo> AllocBackend::Init(const LocalConfig& local, const OwnLease& lease,
                                               absl::string_view backend_config_json) {
  RETURN_IF_ERROR(ValidateAllocConfig(backend_config_json));
  lease_ = lease;
  WEFT_LOG(INFO, "alloc backend: subnet allocated, no data path programmed")
      .WithIf(lease.ipv4, "subnet", lease.subnet)
      .WithIf(lease.ipv6_subnet.has_value(), "ipv6_subnet", lease.ipv6_subnet.value_or(IPv6Net()));
  return BackendInfo{kAllocBackendType, "", local.iface_mtu};
}

absl::StatusOr<ReconcileStats> AllocBackend::Reconcile(std::vector<Peer> peers) {
  ReconcileStats stats;
  for (const Peer& p : peers) stats.unchanged += IsOwnLease(p, lease_) ? 0 : 1;
  return stats;
}

}  // namespace weft::agent
