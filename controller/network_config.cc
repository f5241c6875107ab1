#include "controller/network_config.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/json.h"
#include "common/quote.h"
#include "common/status_macros.h"
#include "controller/limits.h"

namespace weft::controller {
namespace {

using json = weft::json::Json;

absl::Status FieldError(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

absl::StatusOr<std::string> GetString(const json& obj, const char* field) {
  const json& v = obj.at(field);
  if (!v.is_string()) return FieldError(field, "must be a string");
  return v.get<std::string>();
}

absl::StatusOr<int64_t> GetInt(const json& obj, const char* field, int64_t lo, int64_t hi) {
  const json& v = obj.at(field);
  if (!v.is_number_integer() && !v.is_number_unsigned()) {
    return FieldError(field, "must be an integer");
  }
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi)) {
    return FieldError(field, absl::StrCat("must be between ", lo, " and ", hi));
  }
  int64_t n = v.get<int64_t>();
  if (n < lo || n > hi) return FieldError(field, absl::StrCat("must be between ", lo, " and ", hi));
  return n;
}

absl::StatusOr<bool> GetBool(const json& obj, const char* field) {
  const json& v = obj.at(field);
  if (!v.is_boolean()) return FieldError(field, "must be true or false");
  return v.get<bool>();
}

absl::Status ParseBackend(const json& root, bool enable_ipv4, bool enable_ipv6, BackendConfig* b) {
  if (!root.contains("Backend") || root.at("Backend").is_null()) {
    b->type = "udp";  // flannel's default when Backend is absent
    b->port = 8285;
    b->json = R"({"Type":"udp"})";
    return absl::OkStatus();
  }
  const json& be = root.at("Backend");
  if (!be.is_object()) return FieldError("Backend", "must be an object");
  b->json = weft::json::Dump(be);
  if (be.contains("Type")) {
    ASSIGN_OR_RETURN(b->type, GetString(be, "Type"));
    b->type = absl::AsciiStrToLower(b->type);
  } else {
    b->type = "udp";
  }
  if (b->type == "vxlan") {
    if (be.contains("VNI")) { ASSIGN_OR_RETURN(b->vni, GetInt(be, "VNI", 0, (1 << 24) - 1)); }
    if (be.contains("Port")) { ASSIGN_OR_RETURN(b->port, GetInt(be, "Port", 0, 65535)); }
    if (be.contains("GBP")) { ASSIGN_OR_RETURN(b->gbp, GetBool(be, "GBP")); }
    if (be.contains("Learning")) { ASSIGN_OR_RETURN(b->learning, GetBool(be, "Learning")); }
    if (be.contains("DirectRouting")) {
      ASSIGN_OR_RETURN(b->direct_routing, GetBool(be, "DirectRouting"));
    }
    if (be.contains("MTU")) { ASSIGN_OR_RETURN(b->mtu, GetInt(be, "MTU", 68, 65535)); }
    // Read by the agents (agent/backend/vxlan); checked here so a bad value never reaches them.
    if (be.contains("TxChecksumOffload")) {
      const json& v = be.at("TxChecksumOffload");
      const std::string mode = v.is_string() ? absl::AsciiStrToLower(v.get<std::string>()) : "";
      if (!v.is_boolean() && mode != "auto" && mode != "on" && mode != "off") {
        return FieldError("Backend.TxChecksumOffload", "must be \"auto\", \"on\" or \"off\"");
      }
    }
  } else if (b->type == "udp") {
    b->port = 8285;
    if (be.contains("Port")) { ASSIGN_OR_RETURN(b->port, GetInt(be, "Port", 1, 65535)); }
  } else if (b->type == "host-gw") {
  } else if (b->type == "aws-vpc") {
    if (be.contains("RouteTableID")) {
      const json& rt = be.at("RouteTableID");
      if (rt.is_string()) {
        b->route_table_ids.push_back(rt.get<std::string>());
      } else if (rt.is_array()) {
        for (const json& id : rt) {
          if (!id.is_string()) {
            return FieldError("Backend.RouteTableID", "must be a string or a list of strings");
          }
          b->route_table_ids.push_back(id.get<std::string>());
        }
      } else {
        return FieldError("Backend.RouteTableID", "must be a string or a list of strings");
      }
      for (const std::string& id : b->route_table_ids) {
        if (id.rfind("rtb-", 0) != 0) {
          return FieldError("Backend.RouteTableID", absl::StrCat(QuoteInput(id), " is not a route table id (rtb-...)"));
        }
      }
    }
    // Checked here too, not only by the agents: a bad value stored would stop every agent.
    if (be.contains("RouteLimit")) { RETURN_IF_ERROR(GetInt(be, "RouteLimit", 1, 1000).status()); }
  } else if (b->type == "gce") {
    if (be.contains("RouteQuota")) { RETURN_IF_ERROR(GetInt(be, "RouteQuota", 1, 1000000).status()); }
  } else if (b->type == "wireguard") {
    // flannel's keys; checked here too, since a bad value stored would stop every agent.
    for (const char* port : {"ListenPort", "ListenPortV6"}) {
      if (be.contains(port)) { RETURN_IF_ERROR(GetInt(be, port, 0, 65535).status()); }
    }
    if (be.contains("MTU")) {
      ASSIGN_OR_RETURN(b->mtu, GetInt(be, "MTU", 0, 65535));
      if (b->mtu != 0 && b->mtu < 576) return FieldError("Backend.MTU", "must be 0 (derived) or at least 576");
    }
    if (be.contains("PersistentKeepaliveInterval")) {
      RETURN_IF_ERROR(GetInt(be, "PersistentKeepaliveInterval", 0, 65535).status());
    }
    if (be.contains("Mode")) {
      ASSIGN_OR_RETURN(std::string mode, GetString(be, "Mode"));
      mode = absl::AsciiStrToLower(mode);
      if (mode != "separate" && mode != "auto" && mode != "ipv4" && mode != "ipv6") {
        return FieldError("Backend.Mode", absl::StrCat(QuoteInput(mode), " is not separate, auto, ipv4 or ipv6"));
      }
      // The single-device modes reach every peer at one family's PublicIP: a
      // network without that family would leave every peer unreachable.
      if (mode == "ipv6" && !enable_ipv6) {
        return FieldError("Backend.Mode", "ipv6 reaches peers at their PublicIPv6: it needs EnableIPv6");
      }
      if (mode == "ipv4" && !enable_ipv4) {
        return FieldError("Backend.Mode", "ipv4 reaches peers at their PublicIP: it needs EnableIPv4");
      }
    }
    if (be.contains("PSK")) {
      ASSIGN_OR_RETURN(std::string psk, GetString(be, "PSK"));
      std::string raw;
      // Never quoted: a secret.
      if (!psk.empty() && (psk.size() != 44 || !absl::Base64Unescape(psk, &raw) || raw.size() != 32)) {
        return FieldError("Backend.PSK", "must be a WireGuard key: base64 of 32 bytes (`wg genpsk`)");
      }
    }
  } else if (b->type == "alloc" || b->type == "ipip") {
  } else {
    return FieldError("Backend.Type",
                      absl::StrCat("unknown backend type ", QuoteInput(b->type),
                                   " (want vxlan, udp, host-gw, wireguard, aws-vpc, gce, ipip or alloc)"));
  }
  return absl::OkStatus();
}

absl::Status ApplyIPv4Defaults(const json& root, NetworkConfig* c) {
  if (!root.contains("Network")) return FieldError("Network", "required when IPv4 is enabled");
  ASSIGN_OR_RETURN(std::string net, GetString(root, "Network"));
  auto parsed = IPv4Net::Parse(net);
  if (!parsed.ok()) return FieldError("Network", parsed.status().message());
  c->network = *parsed;
  const int plen = c->network.prefix_len();
  if (root.contains("SubnetLen") && !root.at("SubnetLen").is_null() &&
      !(root.at("SubnetLen").is_number() && root.at("SubnetLen").get<double>() == 0)) {
    ASSIGN_OR_RETURN(int64_t sl, GetInt(root, "SubnetLen", 1, 32));
    if (sl > 30) return FieldError("SubnetLen", "must be /30 or shorter (each host needs a tunnel and a bridge address)");
    if (sl < plen + 2) {
      return FieldError("SubnetLen", absl::StrCat("/", sl, " too short for Network /", plen,
                                                  ": the network must hold at least four subnets"));
    }
    c->subnet_len = static_cast<int>(sl);
  } else {
    if (plen > 28) return FieldError("Network", "too small: the minimum useful network prefix is /28");
    c->subnet_len = plen <= 22 ? 24 : plen + 2;
  }
  const uint32_t size = uint32_t{1} << (32 - c->subnet_len);
  const uint32_t mask = c->subnet_len == 0 ? 0 : ~uint32_t{0} << (32 - c->subnet_len);
  const uint32_t net_first = c->network.network().value();
  const uint32_t net_last = c->network.broadcast().value();
  for (const char* field : {"SubnetMin", "SubnetMax"}) {
    const bool is_min = field[6] == 'M' && field[7] == 'i';
    IPv4Addr* out = is_min ? &c->subnet_min : &c->subnet_max;
    if (root.contains(field) && !root.at(field).is_null() &&
        !(root.at(field).is_string() && root.at(field).get<std::string>().empty())) {
      ASSIGN_OR_RETURN(std::string s, GetString(root, field));
      auto a = IPv4Addr::Parse(s);
      if (!a.ok()) return FieldError(field, a.status().message());
      if (!c->network.Contains(*a)) return FieldError(field, absl::StrCat(s, " is not in Network ", c->network.ToString()));
      if ((a->value() & mask) != a->value()) {
        return FieldError(field, absl::StrCat(s, " is not on a /", c->subnet_len, " boundary"));
      }
      *out = *a;
    } else {
      // The first subnet is skipped: its network address would clash with the
      // cluster network's own address on some setups (flannel does the same).
      *out = IPv4Addr::FromUint32(is_min ? net_first + size : (net_last & mask));
    }
  }
  if (c->subnet_min.value() > c->subnet_max.value()) {
    return FieldError("SubnetMin", absl::StrCat(c->subnet_min.ToString(), " is above SubnetMax ",
                                                c->subnet_max.ToString()));
  }
  return absl::OkStatus();
}

absl::uint128 Mask6(int len) {
  if (len == 0) return 0;
  return ~absl::uint128(0) << (128 - len);
}

absl::Status ApplyIPv6Defaults(const json& root, NetworkConfig* c) {
  if (!root.contains("IPv6Network")) return FieldError("IPv6Network", "required when EnableIPv6 is true");
  ASSIGN_OR_RETURN(std::string net, GetString(root, "IPv6Network"));
  auto parsed = IPv6Net::Parse(net);
  if (!parsed.ok()) return FieldError("IPv6Network", parsed.status().message());
  c->ipv6_network = *parsed;
  const int plen = parsed->prefix_len();
  if (root.contains("IPv6SubnetLen") && !root.at("IPv6SubnetLen").is_null() &&
      !(root.at("IPv6SubnetLen").is_number() && root.at("IPv6SubnetLen").get<double>() == 0)) {
    ASSIGN_OR_RETURN(int64_t sl, GetInt(root, "IPv6SubnetLen", 1, 128));
    if (sl > 126) return FieldError("IPv6SubnetLen", "must be /126 or shorter");
    if (sl < plen + 2) {
      return FieldError("IPv6SubnetLen", absl::StrCat("/", sl, " too short for IPv6Network /", plen,
                                                      ": the network must hold at least four subnets"));
    }
    c->ipv6_subnet_len = static_cast<int>(sl);
  } else {
    if (plen > 126) return FieldError("IPv6Network", "too small: the minimum useful prefix is /126");
    c->ipv6_subnet_len = plen <= 62 ? 64 : plen + 2;
  }
  const absl::uint128 size = absl::uint128(1) << (128 - c->ipv6_subnet_len);
  const absl::uint128 mask = Mask6(c->ipv6_subnet_len);
  const absl::uint128 first = parsed->network().value();
  const absl::uint128 last = first | ~Mask6(plen);
  for (const char* field : {"IPv6SubnetMin", "IPv6SubnetMax"}) {
    const bool is_min = absl::string_view(field) == "IPv6SubnetMin";
    IPv6Addr* out = is_min ? &c->ipv6_subnet_min : &c->ipv6_subnet_max;
    if (root.contains(field) && !root.at(field).is_null() &&
        !(root.at(field).is_string() && root.at(field).get<std::string>().empty())) {
      ASSIGN_OR_RETURN(std::string s, GetString(root, field));
      auto a = IPv6Addr::Parse(s);
      if (!a.ok()) return FieldError(field, a.status().message());
      if (!parsed->Contains(*a)) return FieldError(field, absl::StrCat(s, " is not in IPv6Network ", parsed->ToString()));
      if ((a->value() & mask) != a->value()) {
        return FieldError(field, absl::StrCat(s, " is not on a /", c->ipv6_subnet_len, " boundary"));
      }
      *out = *a;
    } else {
      *out = IPv6Addr::FromUint128(is_min ? first + size : (last & mask));
    }
  }
  if (c->ipv6_subnet_min.value() > c->ipv6_subnet_max.value()) {
    return FieldError("IPv6SubnetMin", "is above IPv6SubnetMax");
  }
  return absl::OkStatus();
}

const char* kKnownFields[] = {"Network",       "SubnetLen",     "SubnetMin",     "SubnetMax",
                              "EnableIPv4",    "EnableIPv6",    "IPv6Network",   "IPv6SubnetLen",
                              "IPv6SubnetMin", "IPv6SubnetMax", "Backend",       "LeaseTTL",
                              "EnableNFTables"};

}  // namespace

absl::StatusOr<absl::Duration> ParseTtl(const std::string& field, const std::string& text) {
  absl::Duration d;
  int64_t secs;
  if (absl::SimpleAtoi(text, &secs)) {
    d = absl::Seconds(secs);
  } else if (!absl::ParseDuration(text, &d)) {
    return FieldError(field, absl::StrCat(QuoteInput(text), " is not a duration (like \"24h\" or \"90m\")"));
  }
  if (d < absl::Seconds(10)) return FieldError(field, "must be at least 10s");
  if (d > absl::Hours(24 * 365)) return FieldError(field, "must be at most one year");
  return d;
}

absl::StatusOr<NetworkConfig> ParseNetworkConfig(const std::string& text) {
  ASSIGN_OR_RETURN(json root, weft::json::Parse(text, "config", ValueJsonLimits()));
  if (!root.is_object()) return absl::InvalidArgumentError("config: must be a JSON object");
  for (auto it = root.begin(); it != root.end(); ++it) {
    bool known = false;
    for (const char* f : kKnownFields) known = known || it.key() == f;
    if (!known) return FieldError(QuoteInput(it.key()), "unknown field (field names are case-sensitive, as flannel's)");
  }
  NetworkConfig c;
  if (root.contains("EnableIPv4")) { ASSIGN_OR_RETURN(c.enable_ipv4, GetBool(root, "EnableIPv4")); }
  if (root.contains("EnableIPv6")) { ASSIGN_OR_RETURN(c.enable_ipv6, GetBool(root, "EnableIPv6")); }
  if (!c.enable_ipv4 && !c.enable_ipv6) {
    return FieldError("EnableIPv4", "at least one of EnableIPv4 and EnableIPv6 must be true");
  }
  if (c.enable_ipv4) RETURN_IF_ERROR(ApplyIPv4Defaults(root, &c));
  if (c.enable_ipv6) RETURN_IF_ERROR(ApplyIPv6Defaults(root, &c));
  RETURN_IF_ERROR(ParseBackend(root, c.enable_ipv4, c.enable_ipv6, &c.backend));
  if (root.contains("LeaseTTL")) {
    const json& t = root.at("LeaseTTL");
    std::string s = t.is_string() ? t.get<std::string>() : t.is_number_integer() ? std::to_string(t.get<int64_t>()) : "?";
    ASSIGN_OR_RETURN(c.lease_ttl, ParseTtl("LeaseTTL", s));
  }
  return c;
}

uint64_t NetworkConfig::PoolSize() const {
  if (!enable_ipv4) return 0;
  return ((subnet_max.value() - subnet_min.value()) >> (32 - subnet_len)) + 1;
}

IPv4Net NetworkConfig::PoolSubnet(uint64_t index) const {
  const uint32_t base = subnet_min.value() + static_cast<uint32_t>(index << (32 - subnet_len));
  return *IPv4Net::Make(IPv4Addr::FromUint32(base), subnet_len);
}

std::optional<uint64_t> NetworkConfig::PoolIndex(const IPv4Net& subnet) const {
  if (!enable_ipv4 || subnet.prefix_len() != subnet_len) return std::nullopt;
  const uint32_t a = subnet.network().value();
  if (a < subnet_min.value() || a > subnet_max.value()) return std::nullopt;
  return (a - subnet_min.value()) >> (32 - subnet_len);
}

bool NetworkConfig::InIPv6Pool(const IPv6Net& subnet) const { return IPv6PoolIndex(subnet).has_value(); }

absl::uint128 NetworkConfig::IPv6PoolSize() const {
  if (!enable_ipv6) return 0;
  return ((ipv6_subnet_max.value() - ipv6_subnet_min.value()) >> (128 - ipv6_subnet_len)) + 1;
}

IPv6Net NetworkConfig::IPv6PoolSubnet(absl::uint128 index) const {
  const absl::uint128 base = ipv6_subnet_min.value() + (index << (128 - ipv6_subnet_len));
  return *IPv6Net::Make(IPv6Addr::FromUint128(base), ipv6_subnet_len);
}

std::optional<absl::uint128> NetworkConfig::IPv6PoolIndex(const IPv6Net& subnet) const {
  if (!enable_ipv6 || subnet.prefix_len() != ipv6_subnet_len) return std::nullopt;
  const absl::uint128 a = subnet.network().value();
  if (a < ipv6_subnet_min.value() || a > ipv6_subnet_max.value()) return std::nullopt;
  return (a - ipv6_subnet_min.value()) >> (128 - ipv6_subnet_len);
}

}  // namespace weft::controller
