#include "controller/lease_codec.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace weft::controller {
namespace {
using json = nlohmann::json;

absl::Status Bad(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}
}  // namespace

std::string SubnetsPrefix(const std::string& prefix) { return prefix + "/subnets/"; }
std::string ConfigKey(const std::string& prefix) { return prefix + "/config"; }

std::string EncodeSubnetKey(const std::string& prefix, const SubnetKey& k) {
  std::string out = SubnetsPrefix(prefix);
  out += k.ipv4 ? k.ipv4->FlannelKey() : std::string("0.0.0.0-0");
  if (k.ipv6) absl::StrAppend(&out, "&", k.ipv6->FlannelKey());
  return out;
}

absl::StatusOr<SubnetKey> ParseSubnetKeySuffix(const std::string& suffix) {
  std::vector<std::string> parts = absl::StrSplit(suffix, '&');
  if (parts.empty() || parts.size() > 2) return Bad("subnet key", absl::StrCat("\"", suffix, "\" is not a subnet key"));
  SubnetKey k;
  if (parts[0] != "0.0.0.0-0") {
    auto v4 = IPv4Net::ParseFlannelKey(parts[0]);
    if (!v4.ok()) return Bad("subnet key", v4.status().message());
    k.ipv4 = *v4;
  }
  if (parts.size() == 2) {
    auto v6 = IPv6Net::ParseFlannelKey(parts[1]);
    if (!v6.ok()) return Bad("subnet key", v6.status().message());
    k.ipv6 = *v6;
  }
  if (!k.ipv4 && !k.ipv6) return Bad("subnet key", "names no subnet");
  return k;
}

std::string EncodeLeaseAttrs(const LeaseAttrs& a) {
  // Field order as flannel's encoder writes them.
  json j = json::object();
  std::string out = "{\"PublicIP\":";
  out += a.public_ip ? json(a.public_ip->ToString()).dump() : "null";
  out += ",\"PublicIPv6\":";
  out += a.public_ipv6 ? json(a.public_ipv6->ToString()).dump() : "null";
  out += ",\"BackendType\":" + json(a.backend_type).dump();
  out += ",\"BackendData\":" + (a.backend_data.empty() ? std::string("null") : a.backend_data);
  if (!a.backend_v6_data.empty()) out += ",\"BackendV6Data\":" + a.backend_v6_data;
  if (!a.node_name.empty()) out += ",\"NodeName\":" + json(a.node_name).dump();
  out += "}";
  return out;
}

absl::StatusOr<std::string> NormalizeJsonObject(const std::string& field, const std::string& text) {
  if (text.empty() || text == "null") return std::string();
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return Bad(field, "not valid JSON");
  if (j.is_null()) return std::string();
  if (!j.is_object()) return Bad(field, "must be a JSON object");
  return j.dump();
}

absl::StatusOr<LeaseAttrs> DecodeLeaseAttrs(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return Bad("lease", "not valid JSON");
  if (!j.is_object()) return Bad("lease", "must be a JSON object");
  LeaseAttrs a;
  if (j.contains("PublicIP") && !j["PublicIP"].is_null()) {
    if (!j["PublicIP"].is_string()) return Bad("PublicIP", "must be a string");
    auto ip = IPv4Addr::Parse(j["PublicIP"].get<std::string>());
    if (!ip.ok()) return Bad("PublicIP", ip.status().message());
    a.public_ip = *ip;
  }
  if (j.contains("PublicIPv6") && !j["PublicIPv6"].is_null()) {
    if (!j["PublicIPv6"].is_string()) return Bad("PublicIPv6", "must be a string");
    auto ip = IPv6Addr::Parse(j["PublicIPv6"].get<std::string>());
    if (!ip.ok()) return Bad("PublicIPv6", ip.status().message());
    a.public_ipv6 = *ip;
  }
  if (!a.public_ip && !a.public_ipv6) return Bad("PublicIP", "missing");
  if (j.contains("BackendType") && !j["BackendType"].is_null()) {
    if (!j["BackendType"].is_string()) return Bad("BackendType", "must be a string");
    a.backend_type = j["BackendType"].get<std::string>();
  }
  for (const char* f : {"BackendData", "BackendV6Data"}) {
    if (!j.contains(f) || j[f].is_null()) continue;
    if (!j[f].is_object()) return Bad(f, "must be a JSON object or null");
    (absl::string_view(f) == "BackendData" ? a.backend_data : a.backend_v6_data) = j[f].dump();
  }
  if (j.contains("NodeName") && !j["NodeName"].is_null()) {
    if (!j["NodeName"].is_string()) return Bad("NodeName", "must be a string");
    a.node_name = j["NodeName"].get<std::string>();
  }
  return a;
}

}  // namespace weft::controller
