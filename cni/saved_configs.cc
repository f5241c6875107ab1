#include "cni/saved_configs.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"

namespace weft::cni {

std::string SavedConfigs::PathFor(absl::string_view container_id) const {
  return absl::StrCat(dir_, "/", container_id);
}

absl::Status SavedConfigs::Save(absl::string_view container_id, absl::string_view config) const {
  return WriteFileAtomically(PathFor(container_id), config, /*mode=*/0600, /*dir_mode=*/0700);
}

absl::StatusOr<std::optional<std::string>> SavedConfigs::Load(absl::string_view container_id) const {
  return ReadFileIfExists(PathFor(container_id));
}

absl::Status SavedConfigs::Remove(absl::string_view container_id) const {
  const std::string path = PathFor(container_id);
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return absl::InternalError(absl::StrCat("cannot remove ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace weft::cni
