#include "cni/version.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cni/cni_error.h"

namespace weft::cni {

const std::vector<std::string>& SupportedVersions() {
  static const auto* versions = new std::vector<std::string>{"0.3.0", "0.3.1", "0.4.0", "1.0.0"};
  return *versions;
}

absl::Status CheckVersionSupported(absl::string_view config_version) {
  const auto& supported = SupportedVersions();
  if (std::find(supported.begin(), supported.end(), config_version) != supported.end()) {
    return absl::OkStatus();
  }
  const std::string named =
      config_version.empty() ? "no cniVersion (that means 0.1.0)"
                             : absl::StrCat("cniVersion \"", config_version, "\"");
  return CniError(kIncompatibleVersion,
                  absl::StrCat("incompatible CNI versions: the network config has ", named,
                               "; weft-cni supports ", absl::StrJoin(supported, ", ")),
                  absl::StrCat("plugin supports [", absl::StrJoin(supported, " "), "]"));
}

bool VersionAllowsCheck(absl::string_view version) {
  return version != "0.3.0" && version != "0.3.1";
}

std::string VersionInfoJson() {
  nlohmann::json j;
  j["cniVersion"] = kSpecVersion;
  j["supportedVersions"] = SupportedVersions();
  return j.dump();
}

}  // namespace weft::cni
