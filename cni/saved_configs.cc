#include "cni/saved_configs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace weft::cni {
namespace {

absl::Status ErrnoError(absl::string_view what, absl::string_view path) {
  return absl::InternalError(absl::StrCat("cannot ", what, " ", path, ": ", std::strerror(errno)));
}

// mkdir -p with `mode` for the directories it creates.
absl::Status MakeDirs(const std::string& dir, mode_t mode) {
  for (size_t slash = dir.find('/', 1);; slash = dir.find('/', slash + 1)) {
    const std::string prefix = dir.substr(0, slash);
    if (!prefix.empty() && mkdir(prefix.c_str(), mode) != 0 && errno != EEXIST) {
      return ErrnoError("create directory", prefix);
    }
    if (slash == std::string::npos) return absl::OkStatus();
  }
}

absl::Status WriteAll(int fd, absl::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("write", path);
    data.remove_prefix(n);
  }
  return absl::OkStatus();
}

absl::Status SyncDir(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open directory", dir);
  const int r = fsync(fd);
  close(fd);
  if (r != 0) return ErrnoError("sync directory", dir);
  return absl::OkStatus();
}

}  // namespace

std::string SavedConfigs::PathFor(absl::string_view container_id) const {
  return absl::StrCat(dir_, "/", container_id);
}

absl::Status SavedConfigs::Save(absl::string_view container_id, absl::string_view config) const {
  if (absl::Status s = MakeDirs(dir_, 0700); !s.ok()) return s;
  const std::string path = PathFor(container_id);
  std::string tmp = absl::StrCat(dir_, "/.", container_id, ".XXXXXX");
  const int fd = mkostemp(tmp.data(), O_CLOEXEC);  // mode 0600
  if (fd < 0) return ErrnoError("create", tmp);
  absl::Status s = WriteAll(fd, config, tmp);
  if (s.ok() && fsync(fd) != 0) s = ErrnoError("sync", tmp);
  if (close(fd) != 0 && s.ok()) s = ErrnoError("close", tmp);
  if (s.ok() && rename(tmp.c_str(), path.c_str()) != 0) s = ErrnoError("rename into place", path);
  if (!s.ok()) {
    unlink(tmp.c_str());
    return s;
  }
  return SyncDir(dir_);
}

absl::StatusOr<std::optional<std::string>> SavedConfigs::Load(absl::string_view container_id) const {
  const std::string path = PathFor(container_id);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) return std::nullopt;
  if (fd < 0) return ErrnoError("open", path);
  std::string data;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      absl::Status s = ErrnoError("read", path);
      close(fd);
      return s;
    }
    if (n == 0) break;
    data.append(buf, n);
  }
  close(fd);
  return data;
}

absl::Status SavedConfigs::Remove(absl::string_view container_id) const {
  const std::string path = PathFor(container_id);
  if (unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoError("remove", path);
  return absl::OkStatus();
}

}  // namespace weft::cni
