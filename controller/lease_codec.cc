#include "controller/lease_codec.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/json.h"
#include "common/status_macros.h"
#include "common/quote.h"
#include "controller/limits.h"

namespace weft::controller {
namespace {
using Json = weft::json::Json;

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
  if (parts.empty() || parts.size() > 2) return Bad("subnet key", absl::StrCat(QuoteInput(suffix), " is not a subnet key"));
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
  std::string out = "{\"PublicIP\":";
  out += a.public_ip ? json::Dump(Json(a.public_ip->ToString())) : "null";
  out += ",\"PublicIPv6\":";
  out += a.public_ipv6 ? json::Dump(Json(a.public_ipv6->ToString())) : "null";
  out += ",\"BackendType\":" + json::Dump(Json(a.backend_type));
  out += ",\"BackendData\":" + (a.backend_data.empty() ? std::string("null") : a.backend_data);
  if (!a.backend_v6_data.empty()) out += ",\"BackendV6Data\":" + a.backend_v6_data;
  if (!a.node_name.empty()) out += ",\"NodeName\":" + json::Dump(Json(a.node_name));
  out += "}";
  return out;
}

absl::StatusOr<std::string> NormalizeJsonObject(const std::string& field, const std::string& text) {
  if (text.empty() || text == "null") return std::string();
  ASSIGN_OR_RETURN(Json j, json::Parse(text, field, ValueJsonLimits()));
  if (j.is_null()) return std::string();
  if (!j.is_object()) return Bad(field, "must be a JSON object");
  return json::Dump(j);
}

namespace {

template <typename Addr>
absl::Status DecodeAddr(const Json& j, const char* field, std::optional<Addr>* out) {
  ASSIGN_OR_RETURN(std::string text, json::GetString(j, field));
  if (text.empty()) return absl::OkStatus();
  auto ip = Addr::Parse(text);
  if (!ip.ok()) return Bad(field, ip.status().message());
  *out = *ip;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<LeaseAttrs> DecodeLeaseAttrs(const std::string& text) {
  ASSIGN_OR_RETURN(Json j, json::Parse(text, "lease", LeaseJsonLimits()));
  if (!j.is_object()) return Bad("lease", "must be a JSON object");
  LeaseAttrs a;
  RETURN_IF_ERROR(DecodeAddr(j, "PublicIP", &a.public_ip));
  RETURN_IF_ERROR(DecodeAddr(j, "PublicIPv6", &a.public_ipv6));
  if (!a.public_ip && !a.public_ipv6) return Bad("PublicIP", "missing");
  ASSIGN_OR_RETURN(a.backend_type, json::GetString(j, "BackendType"));
  for (const char* f : {"BackendData", "BackendV6Data"}) {
    const Json* v = json::Find(j, f);
    if (v == nullptr) continue;
    if (!v->is_object()) return Bad(f, "must be a JSON object or null");
    (absl::string_view(f) == "BackendData" ? a.backend_data : a.backend_v6_data) = json::Dump(*v);
  }
  ASSIGN_OR_RETURN(a.node_name, json::GetString(j, "NodeName"));
  return a;
}

}  // namespace weft::controller
