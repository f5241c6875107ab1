#pragma once
// CNI version negotiation: which spec versions a network config may name, and
// what each allows. weft-cni speaks spec 1.0.0 and accepts configs of 0.3.0,
// 0.3.1, 0.4.0 and 1.0.0 (the versions the Debian bridge plugin also speaks from
// 0.3.0 up, and the ones whose result format has "interfaces" and "ips").

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace weft::cni {

inline constexpr char kSpecVersion[] = "1.0.0";

const std::vector<std::string>& SupportedVersions();

// OK when `config_version` is supported; else a CNI error 1 that names the
// version and the supported ones. An empty version means 0.1.0 (as in libcni).
absl::Status CheckVersionSupported(absl::string_view config_version);

// CHECK exists from spec 0.4.0 on. `version` must be supported.
bool VersionAllowsCheck(absl::string_view version);

// What VERSION prints:
//   {"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]}
std::string VersionInfoJson();

}  // namespace weft::cni
