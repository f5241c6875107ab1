#include "cni/net_conf.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "cni/cni_error.h"
#include "cni/subnet_env.h"
#include "cni/version.h"
#include "common/json.h"
#include "common/status_macros.h"

namespace weft::cni {
namespace {

using json = nlohmann::json;

absl::Status InvalidConfig(absl::string_view field, absl::string_view what) {
  return CniError(kInvalidNetworkConfig, absl::StrCat("invalid network config: ", field, " ", what));
}

absl::StatusOr<json> Decode(absl::string_view text) {
  if (absl::StripAsciiWhitespace(text).empty()) {
    return CniError(kDecodeFailure, "cannot decode the network config: stdin is empty");
  }
  absl::StatusOr<json> parsed = ::weft::json::Parse(text, "stdin");
  if (!parsed.ok()) {
    constexpr size_t kQuoted = 200;
    return CniError(kDecodeFailure, "cannot decode the network config: it is not valid JSON",
                    absl::StrCat(parsed.status().message(), "; stdin starts with: ", text.substr(0, kQuoted)));
  }
  json j = *std::move(parsed);
  if (!j.is_object()) {
    return CniError(kDecodeFailure, "cannot decode the network config: it is not a JSON object");
  }
  if (j.contains("cniVersion") && !j["cniVersion"].is_string()) {
    return CniError(kDecodeFailure, "cannot decode the network config: cniVersion is not a string");
  }
  return j;
}

// A string field: `fallback` when absent; an error when present but not a
// non-empty string.
absl::StatusOr<std::string> StringField(const json& j, const char* field, absl::string_view fallback) {
  if (!j.contains(field)) return std::string(fallback);
  const json& v = j[field];
  if (!v.is_string() || v.get<std::string>().empty()) {
    return InvalidConfig(field, "must be a non-empty string");
  }
  return v.get<std::string>();
}

absl::StatusOr<json> ObjectField(const json& j, const char* field) {
  if (!j.contains(field) || j[field].is_null()) return json::object();
  if (!j[field].is_object()) return InvalidConfig(field, "must be an object");
  return j[field];
}

absl::Status ValidateIpam(const json& ipam, absl::string_view where) {
  if (ipam.contains("type") && !ipam["type"].is_string()) {
    return InvalidConfig(absl::StrCat(where, ".type"), "must be a string");
  }
  if (ipam.contains("routes") && !ipam["routes"].is_null() && !ipam["routes"].is_array()) {
    return InvalidConfig(absl::StrCat(where, ".routes"), "must be a list");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<NetConf> ParseNetConf(absl::string_view text) {
  ASSIGN_OR_RETURN(json j, Decode(text));
  NetConf conf;
  ASSIGN_OR_RETURN(conf.cni_version, ::weft::json::GetString(j, "cniVersion"));  // a string (Decode checked)
  RETURN_IF_ERROR(CheckVersionSupported(conf.cni_version));

  if (!j.contains("name")) return InvalidConfig("name", "is missing");
  ASSIGN_OR_RETURN(conf.name, StringField(j, "name", ""));
  ASSIGN_OR_RETURN(conf.subnet_file, StringField(j, "subnetFile", kDefaultSubnetFile));
  ASSIGN_OR_RETURN(conf.data_dir, StringField(j, "dataDir", kDefaultDataDir));
  ASSIGN_OR_RETURN(conf.delegate, ObjectField(j, "delegate"));
  ASSIGN_OR_RETURN(conf.ipam, ObjectField(j, "ipam"));
  RETURN_IF_ERROR(ValidateIpam(conf.ipam, "ipam"));

  if (conf.delegate.contains("type")) {
    const json& t = conf.delegate["type"];
    // The type names a file on CNI_PATH: never a path of its own.
    if (!t.is_string() || t.get<std::string>().empty() ||
        t.get<std::string>().find('/') != std::string::npos || t.get<std::string>() == "." ||
        t.get<std::string>() == "..") {
      return InvalidConfig("delegate.type", "must be a plugin name (a file name on CNI_PATH)");
    }
  }
  if (conf.delegate.contains("ipam")) {
    if (!conf.delegate["ipam"].is_object()) return InvalidConfig("delegate.ipam", "must be an object");
    RETURN_IF_ERROR(ValidateIpam(conf.delegate["ipam"], "delegate.ipam"));
  }
  if (j.contains("prevResult") && !j["prevResult"].is_null()) {
    if (!j["prevResult"].is_object()) return InvalidConfig("prevResult", "must be an object");
    conf.prev_result = j["prevResult"];
  }
  return conf;
}

std::string ResponseVersion(absl::string_view text) {
  absl::StatusOr<json> j = Decode(text);
  if (!j.ok()) return kSpecVersion;
  const std::string v = j->value("cniVersion", "");
  return CheckVersionSupported(v).ok() ? v : kSpecVersion;
}

}  // namespace weft::cni
