#include "cni/plugin.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "cni/cni_error.h"
#include "cni/delegate_config.h"
#include "cni/net_conf.h"
#include "cni/saved_configs.h"
#include "cni/subnet_env.h"
#include "cni/version.h"
#include "common/json.h"
#include "common/status_macros.h"

namespace weft::cni {
namespace {

using json = nlohmann::json;

// A saved delegate config and the plugin type it names.
struct SavedDelegate {
  json config;
  std::string type;
};

absl::StatusOr<SavedDelegate> DecodeSaved(const std::string& text, const std::string& path) {
  absl::StatusOr<json> parsed = ::weft::json::Parse(text, path);
  json j = parsed.ok() ? *std::move(parsed) : json();
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    return CniError(kOther, absl::StrCat("the saved delegate config ", path, " is corrupt"), text);
  }
  std::string type = j["type"].get<std::string>();
  return SavedDelegate{std::move(j), std::move(type)};
}

absl::StatusOr<std::string> Add(const CniArgs& args, const NetConf& conf, const SavedConfigs& saved,
                                DelegateRunner& delegate) {
  ASSIGN_OR_RETURN(SubnetEnv env, ReadSubnetEnv(conf.subnet_file));
  const json config = RenderDelegateConfig(conf, env);
  const std::string type = config["type"].get<std::string>();
  const std::string text = config.dump();
  RETURN_IF_ERROR(saved.Save(args.container_id, text));

  absl::StatusOr<std::string> result = delegate.Run(type, Command::kAdd, text);
  if (result.ok() && !json::accept(*result)) {
    result = CniError(kOther, absl::StrCat("delegate ", type, " ADD printed a result that is not JSON"),
                      *result);
  }
  if (!result.ok()) {
    // Best effort: the ADD's own error is what the runtime must see.
    (void)delegate.Run(type, Command::kDel, text);
    (void)saved.Remove(args.container_id);
  }
  return result;
}

absl::StatusOr<std::string> Del(const CniArgs& args, const NetConf& conf, const SavedConfigs& saved,
                                DelegateRunner& delegate) {
  ASSIGN_OR_RETURN(std::optional<std::string> text, saved.Load(args.container_id));
  if (!text) return std::string();  // never added, or already deleted
  ASSIGN_OR_RETURN(SavedDelegate d, DecodeSaved(*text, saved.PathFor(args.container_id)));
  if (!conf.prev_result.is_null()) d.config["prevResult"] = conf.prev_result;
  RETURN_IF_ERROR(delegate.Run(d.type, Command::kDel, d.config.dump()).status());
  RETURN_IF_ERROR(saved.Remove(args.container_id));
  return std::string();
}

// The node's lease may have changed since ADD (an agent that lost its lease gets a
// new subnet): the container's address is then unroutable, which CHECK must say.
// Without a readable subnet.env there is nothing to compare with.
absl::Status CheckLeaseUnchanged(const NetConf& conf, const json& saved_config) {
  absl::StatusOr<SubnetEnv> env = ReadSubnetEnv(conf.subnet_file);
  if (!env.ok() || !saved_config.contains("ipam") || !saved_config["ipam"].contains("ranges")) {
    return absl::OkStatus();
  }
  const json now = LeaseRanges(*env);
  const json& then = saved_config["ipam"]["ranges"];
  if (then == now) return absl::OkStatus();
  return CniError(kOther,
                  absl::StrCat("the container's subnet is no longer this node's (", conf.subnet_file,
                               " changed since ADD)"),
                  absl::StrCat("ranges at ADD: ", then.dump(), "; now: ", now.dump()));
}

absl::StatusOr<std::string> Check(const CniArgs& args, const NetConf& conf, const SavedConfigs& saved,
                                  DelegateRunner& delegate) {
  if (!VersionAllowsCheck(conf.cni_version)) {
    return CniError(kIncompatibleVersion,
                    absl::StrCat("CHECK needs cniVersion 0.4.0 or later; the network config has ",
                                 conf.cni_version));
  }
  ASSIGN_OR_RETURN(std::optional<std::string> text, saved.Load(args.container_id));
  if (!text) {
    return CniError(kUnknownContainer,
                    absl::StrCat("no saved config for container ", args.container_id,
                                 ": it was never added on this node, or was deleted"),
                    saved.PathFor(args.container_id));
  }
  ASSIGN_OR_RETURN(SavedDelegate d, DecodeSaved(*text, saved.PathFor(args.container_id)));
  RETURN_IF_ERROR(CheckLeaseUnchanged(conf, d.config));
  if (!conf.prev_result.is_null()) d.config["prevResult"] = conf.prev_result;
  RETURN_IF_ERROR(delegate.Run(d.type, Command::kCheck, d.config.dump()).status());
  return std::string();
}

}  // namespace

absl::StatusOr<std::string> RunPluginCommand(const CniArgs& args, absl::string_view stdin_config,
                                             DelegateRunner& delegate) {
  ASSIGN_OR_RETURN(NetConf conf, ParseNetConf(stdin_config));
  const SavedConfigs saved(conf.data_dir);
  switch (args.command) {
    case Command::kAdd:
      return Add(args, conf, saved, delegate);
    case Command::kDel:
      return Del(args, conf, saved, delegate);
    case Command::kCheck:
      return Check(args, conf, saved, delegate);
    case Command::kVersion:
      break;
  }
  return absl::InternalError("RunPluginCommand called for VERSION");
}

int PluginMain(const EnvLookup& env, absl::string_view stdin_config, std::string* out) {
  absl::StatusOr<std::string> result = [&]() -> absl::StatusOr<std::string> {
    ASSIGN_OR_RETURN(CniArgs args, ParseCniArgs(env));
    if (args.command == Command::kVersion) return VersionInfoJson();
    ExecDelegateRunner delegate(args.path);
    return RunPluginCommand(args, stdin_config, delegate);
  }();
  if (result.ok()) {
    *out = *std::move(result);
    return 0;
  }
  *out = CniErrorJson(result.status(), ResponseVersion(stdin_config));
  return 1;
}

}  // namespace weft::cni
