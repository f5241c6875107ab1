#include "tests/cni/cni_runtime.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace weft::testing {
namespace {

using json = nlohmann::json;

// Bazel's strict test environment leaves /usr/sbin off PATH; plugins need
// iptables from there, as they find it under a real runtime.
constexpr char kPath[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr char kNetnsPrefix[] = "wcni";

cni::ChildOutput Run(const std::vector<std::string>& argv, absl::string_view input = "",
                     const std::vector<std::string>& env_overrides = {}) {
  std::vector<std::string> overrides = {kPath};
  overrides.insert(overrides.end(), env_overrides.begin(), env_overrides.end());
  absl::StatusOr<cni::ChildOutput> r = cni::RunChildProcess(argv, cni::EnvironmentWith(overrides), input);
  if (r.ok()) return *std::move(r);
  cni::ChildOutput failed;
  failed.exit_code = -1;
  failed.err = std::string(r.status().message());
  return failed;
}

std::string IpBinary() {
  for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
    if (access(p, X_OK) == 0) return p;
  }
  return "/usr/sbin/ip";
}

PluginOutput FromChild(cni::ChildOutput c) { return PluginOutput{c.exit_code, std::move(c.out), std::move(c.err)}; }

void RemoveStaleNamespaces() {
  DIR* dir = opendir("/run/netns");
  if (dir == nullptr) return;
  std::vector<std::string> stale;
  while (dirent* e = readdir(dir)) {
    absl::string_view name = e->d_name;
    if (!absl::ConsumePrefix(&name, kNetnsPrefix)) continue;
    int pid;
    if (!absl::SimpleAtoi(name.substr(0, name.find('-')), &pid) || pid <= 0) continue;
    if (kill(pid, 0) != 0 && errno == ESRCH) stale.push_back(e->d_name);
  }
  closedir(dir);
  for (const std::string& name : stale) Run({IpBinary(), "netns", "del", name});
}

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
  return FromChild(Run({IpBinary(), "netns", "exec", host_netns_, plugin}, config,
                       {absl::StrCat("CNI_COMMAND=", command),
                        absl::StrCat("CNI_CONTAINERID=", call.container_id),
                        absl::StrCat("CNI_NETNS=", call.netns), absl::StrCat("CNI_IFNAME=", call.ifname),
                        absl::StrCat("CNI_PATH=", absl::StrJoin(cni_path_, ":"))}));
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

absl::StatusOr<std::unique_ptr<ScopedNetns>> ScopedNetns::Create(absl::string_view tag) {
  static std::atomic<int> counter{0};
  RemoveStaleNamespaces();
  std::string name = absl::StrCat(kNetnsPrefix, getpid(), "-", counter++, "-", tag);
  cni::ChildOutput r = Run({IpBinary(), "netns", "add", name});
  if (r.exit_code != 0) return absl::InternalError(absl::StrCat("ip netns add ", name, ": ", r.err));
  std::unique_ptr<ScopedNetns> ns(new ScopedNetns(std::move(name)));
  return ns;
}

ScopedNetns::~ScopedNetns() { Run({IpBinary(), "netns", "del", name_}); }

cni::ChildOutput ScopedNetns::Sh(absl::string_view command) const {
  return Run({IpBinary(), "netns", "exec", name_, "/bin/sh", "-c", std::string(command)});
}

cni::ChildOutput Sh(absl::string_view command) { return Run({"/bin/sh", "-c", std::string(command)}); }

std::string Runfile(absl::string_view path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  return absl::StrCat(srcdir ? srcdir : ".", "/", workspace ? workspace : "weft", "/", path);
}

}  // namespace weft::testing
