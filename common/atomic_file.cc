#include "common/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace weft {
namespace {

absl::Status ErrnoError(absl::string_view what, absl::string_view path) {
  const int err = errno;
  std::string msg = absl::StrCat("cannot ", what, " ", path, ": ", std::strerror(err));
  if (err == EACCES || err == EPERM || err == EROFS) return absl::PermissionDeniedError(msg);
  return absl::InternalError(msg);
}

std::string Dirname(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

absl::Status MakeDirs(const std::string& dir, mode_t mode) {
  for (size_t slash = dir.find('/', 1);; slash = dir.find('/', slash + 1)) {
    const std::string prefix = dir.substr(0, slash);
    if (!prefix.empty() && mkdir(prefix.c_str(), mode) != 0 && errno != EEXIST) {
      return ErrnoError("create directory", prefix);
    }
    if (slash == std::string::npos) return absl::OkStatus();
  }
}

}  // namespace

absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents,
                                 mode_t mode, mode_t dir_mode) {
  const std::string dir = Dirname(path);
  if (absl::Status s = MakeDirs(dir, dir_mode); !s.ok()) return s;
  std::string tmp = absl::StrCat(path, ".tmp.XXXXXX");
  const int fd = mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) return ErrnoError("create", tmp);
  absl::Status s;
  if (fchmod(fd, mode) != 0) s = ErrnoError("chmod", tmp);
  for (size_t done = 0; s.ok() && done < contents.size();) {
    const ssize_t n = write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      s = ErrnoError("write", tmp);
    } else {
      done += static_cast<size_t>(n);
    }
  }
  if (s.ok() && fsync(fd) != 0) s = ErrnoError("sync", tmp);
  if (close(fd) != 0 && s.ok()) s = ErrnoError("close", tmp);
  if (s.ok() && rename(tmp.c_str(), path.c_str()) != 0) s = ErrnoError("rename into place", path);
  if (!s.ok()) {
    unlink(tmp.c_str());
    return s;
  }
  // The rename is durable only once the directory is.
  const int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return ErrnoError("open directory", dir);
  const int r = fsync(dfd);
  close(dfd);
  if (r != 0) return ErrnoError("sync directory", dir);
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> ReadFileIfExists(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    return ErrnoError("open", path);
  }
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      absl::Status s = ErrnoError("read", path);
      close(fd);
      return s;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

}  // namespace weft
