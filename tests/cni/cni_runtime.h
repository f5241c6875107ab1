#pragma once
// What a container runtime does with CNI plugins, for root tests that run the real
// ones: CNI_* in the environment, the network config on stdin, conflists run
// plugin by plugin with prevResult and runtimeConfig (as libcni does), and named
// network namespaces for the "host" and its containers.
//
// Plugins run inside a host namespace the test made (through `ip netns exec`), so
// cni0, veths, iptables rules and sysctls are made there and never on the machine
// running the test. Needs root: use with weft_cc_test(root = True).

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cni/child_process.h"

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

// A named network namespace (`ip netns add`, so `ip netns exec` and CNI_NETNS
// paths work), deleted with everything in it when the object goes away, even when
// the test fails. Names are wcni<pid>-<n>-<tag>; namespaces left by a test process
// that died are removed by the next Create.
class ScopedNetns {
 public:
  static absl::StatusOr<std::unique_ptr<ScopedNetns>> Create(absl::string_view tag);
  ~ScopedNetns();
  ScopedNetns(const ScopedNetns&) = delete;
  ScopedNetns& operator=(const ScopedNetns&) = delete;

  const std::string& name() const { return name_; }
  std::string path() const { return "/run/netns/" + name_; }
  // Runs `sh -c command` inside the namespace.
  cni::ChildOutput Sh(absl::string_view command) const;

 private:
  explicit ScopedNetns(std::string name) : name_(std::move(name)) {}
  std::string name_;
};

// Runs `sh -c command` in the test's own namespace, with the sbin directories on PATH.
cni::ChildOutput Sh(absl::string_view command);

// The path of a runfile ("cni/weft-cni").
std::string Runfile(absl::string_view path);

}  // namespace weft::testing
