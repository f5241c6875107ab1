#include "agent/subprocess.h"

namespace weft {

absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         absl::string_view input, absl::Duration timeout) {
  SubprocessOptions options;
  options.argv = argv;
  options.search_path = true;
  options.extra_search_dirs = SbinDirs();
  options.input = std::string(input);
  options.merge_stderr = true;
  options.timeout = timeout;
  options.die_with_parent = true;  // the calling thread waits for it
  absl::StatusOr<SubprocessResult> r = RunSubprocess(options);
  if (!r.ok()) return r.status();
  return CommandResult{r->exit_code, std::move(r->out)};
}

}  // namespace weft
