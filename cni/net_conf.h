#pragma once
// weft-cni's network config (what the runtime gives on stdin), flannel's keys:
//
//   {"cniVersion":"1.0.0","name":"weft","type":"weft-cni",
//    "subnetFile":"/run/flannel/subnet.env",      (optional, this default)
//    "dataDir":"/var/lib/cni/flannel",            (optional, this default)
//    "delegate":{"hairpinMode":true},             (optional: merged into the bridge config)
//    "ipam":{...},                                (optional: flannel's place for IPAM options)
//    "prevResult":{...}}                          (set by the runtime for CHECK, DEL, chains)
//
// The defaults are flannel's, so a node moved from flannel to Weft keeps finding
// the files of containers flannel added.

#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace weft::cni {

inline constexpr char kDefaultDataDir[] = "/var/lib/cni/flannel";

struct NetConf {
  std::string cni_version;
  std::string name;
  std::string subnet_file;
  std::string data_dir;
  nlohmann::json delegate = nlohmann::json::object();
  nlohmann::json ipam = nlohmann::json::object();
  nlohmann::json prev_result;  // null when absent
};

// Errors, in this order: not JSON or not an object, or cniVersion not a string:
// CNI 6; an unsupported cniVersion: CNI 1; a field of the wrong type or a missing
// name: CNI 7.
absl::StatusOr<NetConf> ParseNetConf(absl::string_view text);

// The cniVersion to answer with when `text` fails: its own when that is one
// weft-cni speaks, else kSpecVersion.
std::string ResponseVersion(absl::string_view text);

}  // namespace weft::cni
