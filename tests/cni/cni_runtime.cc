#include "tests/cni/cni_runtime.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace weft::testing {
namespace {

using json = nlohmann::json;

// Bazel's strict test environment leaves /usr/sbin off PATH; plugins need
// iptables from there, as they find it under a real runtime.
constexpr char kPath[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

}  // namespace

PluginOutput CniRuntime::Exec(absl::string_view type, absl::string_view command, const CniCall& call,
                              absl::string_view config) const {
  std::string plugin;
  for (const std::string& dir : cni_path_) {
    const std::string p = absl::StrCat(dir, "/", type);
    if (access(p.c_str(), X_OK) == 0) {
      plugin = p;
      break;
    }
  }
  if (plugin.empty()) return PluginOutput{-1, "", absl::StrCat("no plugin ", type, " on the CNI path")};
  SubprocessOptions options;
  options.argv = {"ip", "netns", "exec", host_netns_, plugin};
  options.search_path = true;  // on kPath
  options.input = std::string(config);
  options.env = EnvironmentWith(
      {kPath, absl::StrCat("CNI_COMMAND=", command), absl::StrCat("CNI_CONTAINERID=", call.container_id),
       absl::StrCat("CNI_NETNS=", call.netns), absl::StrCat("CNI_IFNAME=", call.ifname),
       absl::StrCat("CNI_PATH=", absl::StrJoin(cni_path_, ":"))});
  absl::StatusOr<SubprocessResult> r = RunSubprocess(options);
  if (!r.ok()) return PluginOutput{-1, "", std::string(r.status().message())};
  return PluginOutput{r->exit_code, std::move(r->out), std::move(r->err)};
}

json CniRuntime::PluginConfig(const json& conflist, size_t index, const json& prev_result,
                              const json& runtime_config) {
  json conf = conflist["plugins"][index];
  conf["name"] = conflist["name"];
  conf["cniVersion"] = conflist["cniVersion"];
  if (!prev_result.is_null()) conf["prevResult"] = prev_result;
  json rc = json::object();
  if (conf.contains("capabilities")) {
    for (const auto& [cap, on] : conf["capabilities"].items()) {
      if (on == true && runtime_config.contains(cap)) rc[cap] = runtime_config[cap];
    }
  }
  if (!rc.empty()) conf["runtimeConfig"] = rc;
  return conf;
}

PluginOutput CniRuntime::AddList(const json& conflist, const CniCall& call, const json& runtime_config) {
  json prev;
  PluginOutput out;
  for (size_t i = 0; i < conflist["plugins"].size(); ++i) {
    const json conf = PluginConfig(conflist, i, prev, runtime_config);
    out = Exec(conf["type"].get<std::string>(), "ADD", call, conf.dump());
    if (out.exit_code != 0) return out;
    prev = out.Json();
  }
  cached_results_[call.container_id] = prev;
  return out;
}

PluginOutput CniRuntime::CheckList(const json& conflist, const CniCall& call, const json& runtime_config) {
  const json prev = cached_results_.count(call.container_id) ? cached_results_[call.container_id] : json();
  PluginOutput out;
  for (size_t i = 0; i < conflist["plugins"].size(); ++i) {
    const json conf = PluginConfig(conflist, i, prev, runtime_config);
    out = Exec(conf["type"].get<std::string>(), "CHECK", call, conf.dump());
    if (out.exit_code != 0) return out;
  }
  return out;
}

PluginOutput CniRuntime::DelList(const json& conflist, const CniCall& call, const json& runtime_config) {
  const json prev = cached_results_.count(call.container_id) ? cached_results_[call.container_id] : json();
  PluginOutput out;
  for (size_t i = conflist["plugins"].size(); i-- > 0;) {
    const json conf = PluginConfig(conflist, i, prev, runtime_config);
    out = Exec(conf["type"].get<std::string>(), "DEL", call, conf.dump());
    if (out.exit_code != 0) return out;
  }
  cached_results_.erase(call.container_id);
  return out;
}

std::string Runfile(absl::string_view path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  return absl::StrCat(srcdir ? srcdir : ".", "/", workspace ? workspace : "weft", "/", path);
}

std::vector<std::string> FilesIn(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) names.push_back(e.path().filename());
  return names;
}

std::vector<std::string> Reservations(const std::string& ipam_dir, absl::string_view network) {
  std::vector<std::string> ips;
  for (const std::string& f : FilesIn(absl::StrCat(ipam_dir, "/", network))) {
    if (f != "lock" && !absl::StartsWith(f, "last_reserved_ip")) ips.push_back(f);
  }
  return ips;
}

}  // namespace weft::testing
