#pragma once
// Whole-file writes that readers never see half done: a temporary file in the
// same directory, fsync, rename over the target, fsync of the directory. The
// parent directories are created (`dir_mode`) when missing.

#include <sys/types.h>

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace weft {

absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents,
                                 mode_t mode = 0644, mode_t dir_mode = 0755);

// The file's contents; nullopt when it does not exist.
absl::StatusOr<std::optional<std::string>> ReadFileIfExists(const std::string& path);

}  // namespace weft
