#pragma once
// Calling the plugin weft-cni delegates to (normally `bridge`), the seam between
// the plugin logic and the outside world.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cni/cni_args.h"

namespace weft::cni {

class DelegateRunner {
 public:
  virtual ~DelegateRunner() = default;
  // Runs plugin `type` for `command` with `config` on its stdin and returns its
  // stdout. When the plugin fails, the status carries its own CNI error (code,
  // message, details) when it printed one, else CNI 999 with what it printed.
  virtual absl::StatusOr<std::string> Run(absl::string_view type, Command command,
                                          absl::string_view config) = 0;
};

// Runs real plugin executables found on CNI_PATH, as a runtime does: the child gets
// this process's environment (CNI_CONTAINERID, CNI_NETNS, ...) with CNI_COMMAND set
// to the command, and its stderr is passed on to ours. Thread-compatible.
class ExecDelegateRunner : public DelegateRunner {
 public:
  explicit ExecDelegateRunner(std::vector<std::string> cni_path) : cni_path_(std::move(cni_path)) {}

  absl::StatusOr<std::string> Run(absl::string_view type, Command command,
                                  absl::string_view config) override;

 private:
  std::vector<std::string> cni_path_;
};

// The first executable regular file named `type` in `dirs`; CNI 999 when none.
absl::StatusOr<std::string> FindPlugin(absl::string_view type, const std::vector<std::string>& dirs);

// The status for a plugin that exited with `exit_code` (128 + signal when killed)
// and printed `output`: its CNI error relayed (message prefixed with what failed)
// when `output` is one, else CNI 999.
absl::Status DelegateFailure(absl::string_view type, Command command, int exit_code,
                             absl::string_view output, absl::string_view errors);

}  // namespace weft::cni
