#pragma once
// Weft's version, and the git commit a binary was built from.
//
// The version is one constant (common/version.cc). The commit comes from Bazel's
// workspace status (tools/workspace_status.sh) and is stamped only into builds
// with --config=release (--stamp --define=weft_stamp=1): ordinary builds and
// tests say "unknown" and stay cacheable across commits.

#include <string>

#include "absl/strings/string_view.h"

namespace weft::version {

// "0.1.0".
absl::string_view Version();

// The full git commit hash, "unknown" in an unstamped build; "-dirty" appended
// when the tree had uncommitted changes to tracked files.
absl::string_view Commit();

// UTC build time ("2026-12-05T06:50:00Z") of a stamped build, else "".
absl::string_view BuildTime();

// What `--version` prints: "weft-controller 0.1.0 (commit 1bc1720e..., built ...)".
std::string Line(absl::string_view program);

}  // namespace weft::version
