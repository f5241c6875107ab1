#pragma once
// Flannel's lease keys and JSON values.
//   key:   <prefix>/subnets/10.1.19.0-24        (dual-stack: ...-24&fd00:12:13::-56)
//   value: {"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan",
//           "BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}
// Weft adds "NodeName" when the agent gave one; flannel's decoder ignores unknown
// fields, so flannel and Weft can read each other's leases.

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/net.h"

namespace weft::controller {

struct LeaseAttrs {
  std::optional<IPv4Addr> public_ip;
  std::optional<IPv6Addr> public_ipv6;
  std::string backend_type;
  std::string backend_data;     // JSON object text, "" = null
  std::string backend_v6_data;  // JSON object text, "" = null
  std::string node_name;
};

struct SubnetKey {
  std::optional<IPv4Net> ipv4;
  std::optional<IPv6Net> ipv6;
};

std::string SubnetsPrefix(const std::string& prefix);  // "<prefix>/subnets/"
std::string ConfigKey(const std::string& prefix);      // "<prefix>/config"
std::string EncodeSubnetKey(const std::string& prefix, const SubnetKey& k);
// Parses the part after "<prefix>/subnets/". INVALID_ARGUMENT on anything else.
absl::StatusOr<SubnetKey> ParseSubnetKeySuffix(const std::string& suffix);

std::string EncodeLeaseAttrs(const LeaseAttrs& a);
// Strict: PublicIP must be an IPv4 address (or null/absent for IPv6-only),
// BackendData a JSON object or null. INVALID_ARGUMENT naming the field.
absl::StatusOr<LeaseAttrs> DecodeLeaseAttrs(const std::string& json);

// Validates that `text` is a JSON object (or empty = null); returns it compacted.
absl::StatusOr<std::string> NormalizeJsonObject(const std::string& field, const std::string& text);

}  // namespace weft::controller
