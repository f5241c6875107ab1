#pragma once
// What a container runtime does with CNI plugins, for root tests that run the real
// ones: CNI_* in the environment, the network config on stdin, conflists run
// plugin by plugin with prevResult and runtimeConfig (as libcni does).
//
// Plugins run inside a "host" namespace the test made (tests/netns, through
// `ip netns exec`), so cni0, veths, iptables rules and sysctls are made there and
// never on the machine running the test. Needs root: weft_cc_test(root = True).

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/string_view.h"
#include "common/subprocess.h"

namespace weft::testing {

// One plugin call's CNI_* variables.
struct CniCall {
  std::string container_id;
  std::string netns;  // a path, "" for a DEL after the container's namespace is gone
  std::string ifname = "eth0";
};

struct PluginOutput {
  int exit_code = -1;
  std::string out;  // stdout: a result, an error object, or nothing
  std::string err;
  // stdout parsed; a discarded value when it is not JSON.
  nlohmann::json Json() const { return nlohmann::json::parse(out, nullptr, false); }
};

class CniRuntime {
 public:
  // `host_netns` names the namespace plugins run in; `cni_path` is CNI_PATH.
  CniRuntime(std::string host_netns, std::vector<std::string> cni_path)
      : host_netns_(std::move(host_netns)), cni_path_(std::move(cni_path)) {}

  // Runs plugin `type` (found on CNI_PATH) for `command` with `config` on stdin.
  PluginOutput Exec(absl::string_view type, absl::string_view command, const CniCall& call,
                    absl::string_view config) const;

  // A whole conflist, as libcni runs it. ADD: each plugin in order, the previous
  // result as prevResult, and runtimeConfig holding the `runtime_config` entries
  // the plugin declares in "capabilities"; the final result is cached for the
  // container. CHECK: in order, DEL: in reverse order, both with the cached result
  // as prevResult (DEL forgets it). Each returns the first failing plugin's
  // output, else the last plugin's.
  PluginOutput AddList(const nlohmann::json& conflist, const CniCall& call,
                       const nlohmann::json& runtime_config = nlohmann::json::object());
  PluginOutput CheckList(const nlohmann::json& conflist, const CniCall& call,
                         const nlohmann::json& runtime_config = nlohmann::json::object());
  PluginOutput DelList(const nlohmann::json& conflist, const CniCall& call,
                       const nlohmann::json& runtime_config = nlohmann::json::object());

  // The config one plugin of `conflist` gets (name, cniVersion, prevResult and
  // runtimeConfig added).
  static nlohmann::json PluginConfig(const nlohmann::json& conflist, size_t index,
                                     const nlohmann::json& prev_result,
                                     const nlohmann::json& runtime_config);

 private:
  std::string host_netns_;
  std::vector<std::string> cni_path_;
  std::map<std::string, nlohmann::json> cached_results_;  // by container ID
};

// The path of a runfile ("cni/weft-cni").
std::string Runfile(absl::string_view path);

// The names of the files in `dir` (none when it does not exist).
std::vector<std::string> FilesIn(const std::string& dir);

// The addresses host-local holds for `network` under its data dir `ipam_dir`
// (its files other than its lock and last-reserved markers). "cbr0" is the
// network of the shipped conflist.
std::vector<std::string> Reservations(const std::string& ipam_dir,
                                      absl::string_view network = "cbr0");

}  // namespace weft::testing
