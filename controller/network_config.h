#pragma once
// The network config: flannel's JSON at <prefix>/config, parsed and validated
// with flannel's defaults and limits, plus Weft's optional "LeaseTTL".

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/net.h"

namespace weft::controller {

struct BackendConfig {
  std::string type;  // "vxlan", "udp", "host-gw", "aws-vpc", "gce", "wireguard", "ipip", "alloc"
  // vxlan
  int64_t vni = 1;
  int64_t port = 0;  // vxlan: 0 = kernel default 8472; udp: default 8285
  bool gbp = false;
  bool learning = false;
  bool direct_routing = false;
  int64_t mtu = 0;  // 0 = derived from the external interface
  // aws-vpc
  std::vector<std::string> route_table_ids;
  std::string json;  // the Backend object as given, for agents to read their fields
};

struct NetworkConfig {
  bool enable_ipv4 = true;
  bool enable_ipv6 = false;
  IPv4Net network;
  int subnet_len = 0;
  IPv4Addr subnet_min;
  IPv4Addr subnet_max;
  std::optional<IPv6Net> ipv6_network;
  int ipv6_subnet_len = 0;
  IPv6Addr ipv6_subnet_min;
  IPv6Addr ipv6_subnet_max;
  BackendConfig backend;
  absl::Duration lease_ttl = absl::Hours(24);

  // Number of IPv4 subnets between SubnetMin and SubnetMax inclusive.
  uint64_t PoolSize() const;
  // The i-th subnet of the pool (0 = SubnetMin).
  IPv4Net PoolSubnet(uint64_t index) const;
  // Index of `subnet` in the pool, or nullopt when it is not a pool subnet
  // (outside [SubnetMin, SubnetMax], or not SubnetLen-sized and aligned).
  std::optional<uint64_t> PoolIndex(const IPv4Net& subnet) const;

  // Is `subnet` (IPv6) a valid IPv6 pool subnet?
  bool InIPv6Pool(const IPv6Net& subnet) const;
  // The IPv6 pool (EnableIPv6), as the IPv4 one: subnets between IPv6SubnetMin
  // and IPv6SubnetMax inclusive, index 0 = IPv6SubnetMin. 0 when IPv6 is off.
  absl::uint128 IPv6PoolSize() const;
  IPv6Net IPv6PoolSubnet(absl::uint128 index) const;
  std::optional<absl::uint128> IPv6PoolIndex(const IPv6Net& subnet) const;
};

// Parses and validates flannel's JSON. Errors are INVALID_ARGUMENT with a message
// naming the field ("SubnetLen: must be <= 30").
absl::StatusOr<NetworkConfig> ParseNetworkConfig(const std::string& json);

// Parses a duration as Go writes it ("24h", "90m", "1h30m", "45s") or as an
// integer number of seconds.
absl::StatusOr<absl::Duration> ParseTtl(const std::string& field, const std::string& text);

}  // namespace weft::controller
