#pragma once
// FlannelValidator: the put check (EtcdApiOptions::validate_put) that keeps
// etcd-API clients from corrupting flannel's allocation state under <prefix>:
//   <prefix>/config             must parse as a network config (flannel's rules);
//   <prefix>/subnets/<subnet>   the key must be a canonical subnet key whose
//                               subnets are pool subnets of the current config
//                               (inside the network, SubnetLen-sized, between
//                               SubnetMin and SubnetMax; IPv6 likewise), the value
//                               a well-formed lease (PublicIP for an IPv4 subnet,
//                               PublicIPv6 for an IPv6 one), and no other lease
//                               may overlap it.
// Other keys pass. Refusals are INVALID_ARGUMENT naming the key and the reason;
// FAILED_PRECONDITION when a lease is written before any valid config exists.

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "controller/etcd_api/etcd_api_server.h"
#include "controller/lease_codec.h"
#include "controller/network_config.h"
#include "storage/store.h"

namespace weft::controller::etcd_api {

// What the checks compare against.
struct FlannelState {
  std::optional<NetworkConfig> config;  // nullopt: none stored, or it does not parse
  std::string config_error;             // why, when a stored config does not parse
  // Existing leases and reservations: store key and its subnets.
  std::vector<std::pair<std::string, SubnetKey>> subnets;
};

// Returns the current state; called once per checked lease put. Must reflect
// every write acknowledged before the call (read-your-writes), or two puts in
// a row could both pass an overlap check.
using FlannelStateSource = std::function<absl::StatusOr<FlannelState>()>;

class FlannelValidator {
 public:
  // `prefix`: flannel's etcd prefix, e.g. "/coreos.com/network".
  FlannelValidator(std::string prefix, FlannelStateSource state);

  absl::Status Validate(const std::string& key, const std::string& value) const;

  // A PutValidator holding a copy of this validator.
  PutValidator AsPutValidator() const;

 private:
  absl::Status ValidateLease(const std::string& key, const std::string& value) const;

  std::string prefix_;
  FlannelStateSource state_;
};

// Reads the state from `store` at each call (one Range for the config and one
// keys-only Range over the subnets). Keys under <prefix>/subnets/ that do not
// parse are left out.
FlannelStateSource FlannelStateFromStore(storage::Store* store, std::string prefix);

}  // namespace weft::controller::etcd_api
