#pragma once
// The delegate config rendered at ADD, kept per container (<dir>/<container ID>,
// flannel's layout) so that DEL and CHECK use exactly what ADD used, even after
// subnet.env changed or disappeared. Files are written atomically (temporary
// file, fsync, rename, fsync of the directory): a crash never leaves half a config.
//
// Container IDs must already be validated (see ParseCniArgs): they become file
// names. Different containers never share a file, so concurrent plugin calls need
// no lock; calls for one container are serialized by the runtime.

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace weft::cni {

class SavedConfigs {
 public:
  explicit SavedConfigs(std::string dir) : dir_(std::move(dir)) {}

  // Creates the directory (mode 0700, as flannel) when needed; the file is 0600.
  absl::Status Save(absl::string_view container_id, absl::string_view config) const;
  // nullopt when nothing is saved for the container.
  absl::StatusOr<std::optional<std::string>> Load(absl::string_view container_id) const;
  // OK when nothing was saved.
  absl::Status Remove(absl::string_view container_id) const;

  std::string PathFor(absl::string_view container_id) const;

 private:
  std::string dir_;
};

}  // namespace weft::cni
