#include "cni/delegate.h"

#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cni/cni_error.h"
#include "common/json.h"
#include "common/subprocess.h"

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
  // The delegate's stdout is whatever it printed: parsed with bounds, read without throwing.
  absl::StatusOr<json::Json> parsed = json::Parse(output, "delegate output");
  if (parsed.ok() && parsed->is_object()) {
    const json::Json& j = *parsed;
    const json::Json* code = json::Find(j, "code");
    absl::StatusOr<std::string> msg = json::GetString(j, "msg");
    if (code != nullptr && code->is_number_unsigned() && code->get<uint64_t>() <= 1000 && msg.ok() &&
        json::Find(j, "msg") != nullptr) {
      absl::StatusOr<std::string> details = json::GetString(j, "details");
      return CniError(static_cast<int>(code->get<uint64_t>()), absl::StrCat(what, ": ", *msg),
                      details.ok() ? *details : "");
    }
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
  SubprocessOptions options;
  options.argv = {*path};
  options.env = EnvironmentWith({absl::StrCat("CNI_COMMAND=", CommandName(command))});
  options.input = std::string(config);
  absl::StatusOr<SubprocessResult> child = RunSubprocess(options);
  if (!child.ok()) {
    return CniError(kOther, absl::StrCat("delegate ", type, ": ", child.status().message()));
  }
  // Runtimes log plugins' stderr: keep the delegate's where they look.
  if (!child->err.empty()) (void)!write(2, child->err.data(), child->err.size());
  if (child->exit_code != 0) {
    return DelegateFailure(type, command, child->exit_code, child->out, child->err);
  }
  return std::move(child->out);
}

}  // namespace weft::cni
