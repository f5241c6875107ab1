#include "cni/delegate.h"

#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cni/child_process.h"
#include "cni/cni_error.h"

namespace weft::cni {

absl::StatusOr<std::string> FindPlugin(absl::string_view type, const std::vector<std::string>& dirs) {
  for (const std::string& dir : dirs) {
    const std::string path = absl::StrCat(dir, "/", type);
    struct stat st;
    if (stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0) {
      return path;
    }
  }
  return CniError(kOther, absl::StrCat("cannot find the delegate plugin \"", type, "\" on CNI_PATH"),
                  absl::StrCat("CNI_PATH=", absl::StrJoin(dirs, ":")));
}

absl::Status DelegateFailure(absl::string_view type, Command command, int exit_code,
                             absl::string_view output, absl::string_view errors) {
  const std::string what = absl::StrCat("delegate ", type, " ", CommandName(command), " failed");
  nlohmann::json j = nlohmann::json::parse(output.begin(), output.end(), nullptr, false);
  if (j.is_object() && j.contains("code") && j["code"].is_number_unsigned() && j.contains("msg") &&
      j["msg"].is_string()) {
    std::string details = j.value("details", "");
    return CniError(j["code"].get<int>(), absl::StrCat(what, ": ", j["msg"].get<std::string>()), details);
  }
  const std::string how = exit_code > 128 ? absl::StrCat("killed by signal ", exit_code - 128)
                                          : absl::StrCat("exit code ", exit_code);
  return CniError(kOther, absl::StrCat(what, " (", how, ") without a CNI error"),
                  absl::StrCat("stdout: ", output, "\nstderr: ", errors));
}

absl::StatusOr<std::string> ExecDelegateRunner::Run(absl::string_view type, Command command,
                                                    absl::string_view config) {
  absl::StatusOr<std::string> path = FindPlugin(type, cni_path_);
  if (!path.ok()) return path.status();
  absl::StatusOr<ChildOutput> child =
      RunChildProcess({*path}, EnvironmentWith({absl::StrCat("CNI_COMMAND=", CommandName(command))}),
                      config);
  if (!child.ok()) {
    return CniError(kOther, absl::StrCat("cannot run delegate ", *path, ": ", child.status().message()));
  }
  // Runtimes log plugins' stderr: keep the delegate's where they look.
  if (!child->err.empty()) (void)!write(2, child->err.data(), child->err.size());
  if (child->exit_code != 0) {
    return DelegateFailure(type, command, child->exit_code, child->out, child->err);
  }
  return std::move(child->out);
}

}  // namespace weft::cni
