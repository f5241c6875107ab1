#include "controller/etcd_api/flannel_validator.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/quote.h"

namespace weft::controller::etcd_api {

namespace {

std::string TrimPrefix(std::string prefix) {
  while (prefix.size() > 1 && prefix.back() == '/') prefix.pop_back();
  return prefix;
}

absl::Status Refuse(const std::string& key, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat("refused put of ", QuoteInput(key, 256), ": ", why));
}

// Why `subnet` is not a pool subnet of the IPv4 side of `c` ("" if it is).
std::string IPv4PoolProblem(const NetworkConfig& c, const IPv4Net& subnet) {
  if (!c.enable_ipv4) return "IPv4 is disabled in the network config";
  if (!c.network.Contains(subnet.network())) {
    return absl::StrCat("subnet ", subnet.ToString(), " is outside the network ", c.network.ToString());
  }
  if (subnet.prefix_len() != c.subnet_len) {
    return absl::StrCat("subnet ", subnet.ToString(), " is not a /", c.subnet_len, " (SubnetLen)");
  }
  if (!c.PoolIndex(subnet)) {
    return absl::StrCat("subnet ", subnet.ToString(), " is outside SubnetMin..SubnetMax (", c.subnet_min.ToString(),
                        "..", c.subnet_max.ToString(), ")");
  }
  return "";
}

std::string IPv6PoolProblem(const NetworkConfig& c, const IPv6Net& subnet) {
  if (!c.enable_ipv6 || !c.ipv6_network) return "IPv6 is disabled in the network config";
  if (!c.ipv6_network->Contains(subnet.network())) {
    return absl::StrCat("subnet ", subnet.ToString(), " is outside the network ", c.ipv6_network->ToString());
  }
  if (subnet.prefix_len() != c.ipv6_subnet_len) {
    return absl::StrCat("subnet ", subnet.ToString(), " is not a /", c.ipv6_subnet_len, " (IPv6SubnetLen)");
  }
  if (!c.InIPv6Pool(subnet)) {
    return absl::StrCat("subnet ", subnet.ToString(), " is outside IPv6SubnetMin..IPv6SubnetMax (",
                        c.ipv6_subnet_min.ToString(), "..", c.ipv6_subnet_max.ToString(), ")");
  }
  return "";
}

}  // namespace

FlannelValidator::FlannelValidator(std::string prefix, FlannelStateSource state)
    : prefix_(TrimPrefix(std::move(prefix))), state_(std::move(state)) {}

PutValidator FlannelValidator::AsPutValidator() const {
  return [v = *this](const std::string& key, const std::string& value) { return v.Validate(key, value); };
}

absl::Status FlannelValidator::Validate(const std::string& key, const std::string& value) const {
  if (key == ConfigKey(prefix_)) {
    absl::StatusOr<NetworkConfig> c = ParseNetworkConfig(value);
    if (!c.ok()) return Refuse(key, absl::StrCat("invalid network config: ", c.status().message()));
    return absl::OkStatus();
  }
  if (absl::StartsWith(key, SubnetsPrefix(prefix_))) return ValidateLease(key, value);
  return absl::OkStatus();
}

absl::Status FlannelValidator::ValidateLease(const std::string& key, const std::string& value) const {
  const std::string suffix = key.substr(SubnetsPrefix(prefix_).size());
  absl::StatusOr<SubnetKey> sk = ParseSubnetKeySuffix(suffix);
  if (!sk.ok()) return Refuse(key, absl::StrCat("not a subnet key: ", sk.status().message()));
  const std::string canonical = EncodeSubnetKey(prefix_, *sk);
  if (canonical != key) return Refuse(key, absl::StrCat("not in flannel's key form (", canonical, ")"));
  absl::StatusOr<LeaseAttrs> attrs = DecodeLeaseAttrs(value);
  if (!attrs.ok()) return Refuse(key, absl::StrCat("malformed lease: ", attrs.status().message()));
  if (sk->ipv4 && !attrs->public_ip) return Refuse(key, "malformed lease: PublicIP is required for an IPv4 subnet");
  if (sk->ipv6 && !attrs->public_ipv6) {
    return Refuse(key, "malformed lease: PublicIPv6 is required for an IPv6 subnet");
  }
  if (attrs->backend_type.empty()) return Refuse(key, "malformed lease: BackendType is empty");

  absl::StatusOr<FlannelState> state = state_();
  if (!state.ok()) return state.status();
  if (!state->config) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refused put of ", key, ": no valid network config at ", ConfigKey(prefix_),
        state->config_error.empty() ? "" : absl::StrCat(" (", state->config_error, ")")));
  }
  const NetworkConfig& c = *state->config;
  if (sk->ipv4) {
    if (std::string p = IPv4PoolProblem(c, *sk->ipv4); !p.empty()) return Refuse(key, p);
  } else if (c.enable_ipv4) {
    return Refuse(key, "an IPv4 subnet is required (IPv4 is enabled in the network config)");
  }
  if (sk->ipv6) {
    if (std::string p = IPv6PoolProblem(c, *sk->ipv6); !p.empty()) return Refuse(key, p);
  } else if (c.enable_ipv6) {
    return Refuse(key, "an IPv6 subnet is required (IPv6 is enabled in the network config)");
  }
  for (const auto& [other_key, other] : state->subnets) {
    if (other_key == key) continue;  // rewriting the same lease
    if (sk->ipv4 && other.ipv4 && sk->ipv4->Overlaps(*other.ipv4)) {
      return Refuse(key, absl::StrCat("subnet ", sk->ipv4->ToString(), " overlaps the lease at ", other_key));
    }
    if (sk->ipv6 && other.ipv6 && sk->ipv6->Overlaps(*other.ipv6)) {
      return Refuse(key, absl::StrCat("subnet ", sk->ipv6->ToString(), " overlaps the lease at ", other_key));
    }
  }
  return absl::OkStatus();
}

FlannelStateSource FlannelStateFromStore(storage::Store* store, std::string prefix) {
  prefix = TrimPrefix(std::move(prefix));
  return [store, prefix]() -> absl::StatusOr<FlannelState> {
    FlannelState state;
    storage::RangeRequest config;
    config.key = ConfigKey(prefix);
    absl::StatusOr<storage::RangeResponse> c = store->Range(config);
    if (!c.ok()) return c.status();
    if (!c->kvs.empty()) {
      absl::StatusOr<NetworkConfig> parsed = ParseNetworkConfig(c->kvs[0].value);
      if (parsed.ok()) {
        state.config = *std::move(parsed);
      } else {
        state.config_error = std::string(parsed.status().message());
      }
    }
    const std::string subnets_prefix = SubnetsPrefix(prefix);
    storage::RangeRequest subnets;
    subnets.key = subnets_prefix;
    subnets.range_end = storage::PrefixEnd(subnets_prefix);
    subnets.keys_only = true;
    absl::StatusOr<storage::RangeResponse> s = store->Range(subnets);
    if (!s.ok()) return s.status();
    for (const storage::KeyValue& kv : s->kvs) {
      absl::StatusOr<SubnetKey> sk = ParseSubnetKeySuffix(kv.key.substr(subnets_prefix.size()));
      if (sk.ok()) state.subnets.emplace_back(kv.key, *sk);
    }
    return state;
  };
}

}  // namespace weft::controller::etcd_api
