#pragma once
// Flannel's `alloc` backend: the agent takes its lease and writes subnet.env
// (and the Docker options) but programs no data path: no device, no routes.
// For clusters whose packets travel by other means (another CNI, routes made
// elsewhere) that only want flannel's subnet allocation. The lease carries no
// BackendData; containers get the external interface's MTU. Dual-stack
// networks too: there is no data path to lack IPv6.

#include <string>
#include <vector>

#include "agent/backend/backend.h"

namespace weft::agent {

inline constexpr char kAllocBackendType[] = "alloc";

// flannel's alloc defines no option: only checks that `json` is an object
// whose Type, when given, is alloc.
absl::Status ValidateAllocConfig(absl::string_view json);

class AllocBackend : public Backend {
 public:
  absl::StatusOr<BackendInfo> Init(const LocalConfig& local, const OwnLease& lease,
                                   absl::string_view backend_config_json) override;
  // Counts the other leases as unchanged; changes nothing.
  absl::StatusOr<ReconcileStats> Reconcile(std::vector<Peer> peers) override;
  absl::Status Teardown() override { return absl::OkStatus(); }
  absl::StatusOr<std::string> LeaseData() override { return std::string(); }
  absl::StatusOr<std::string> LeaseV6Data() override { return std::string(); }
  std::string device_name() const override { return std::string(); }

 private:
  OwnLease lease_;
};

}  // namespace weft::agent
