#include "common/sd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace weft::systemd {
namespace {

// sd_notify(3)'s protocol, spoken directly: one datagram to the AF_UNIX socket
// named by $NOTIFY_SOCKET ('@' = abstract namespace). Not through libsystemd,
// which would map it and six more libraries (gcrypt, zstd, lzma, lz4, cap...)
// into weft-agent for ~1 MB of resident memory (docs/benchmarks.md).
int SendToNotifySocket(const std::string& state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return 0;
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  const size_t len = std::strlen(path);
  if ((path[0] != '/' && path[0] != '@') || len >= sizeof(addr.sun_path)) return -EINVAL;
  std::memcpy(addr.sun_path, path, len);
  if (path[0] == '@') addr.sun_path[0] = '\0';
  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  const socklen_t addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  const ssize_t n = sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr), addr_len);
  const int err = errno;
  close(fd);
  if (n < 0) return -err;
  return 1;
}

absl::Status Notify(const std::string& state) {
  const int r = SendToNotifySocket(state);
  if (r < 0) {
    return absl::UnavailableError(absl::StrCat("sd_notify(\"", absl::StrReplaceAll(state, {{"\n", "\\n"}}),
                                               "\") failed: ", std::strerror(-r)));
  }
  return absl::OkStatus();  // sent, or r == 0: NOTIFY_SOCKET unset
}

}  // namespace

absl::Status NotifyReady() { return Notify("READY=1"); }

absl::Status NotifyStatus(absl::string_view status) {
  return Notify(absl::StrCat("STATUS=", absl::StrReplaceAll(status, {{"\r", " "}, {"\n", " "}})));
}

absl::Status NotifyStopping() { return Notify("STOPPING=1"); }

absl::Status NotifyWatchdog() { return Notify("WATCHDOG=1"); }

std::optional<absl::Duration> WatchdogInterval() {
  // sd_watchdog_enabled(3): WATCHDOG_USEC, and WATCHDOG_PID (when set) naming this process.
  const char* usec_env = std::getenv("WATCHDOG_USEC");
  uint64_t usec = 0;
  if (usec_env == nullptr || !absl::SimpleAtoi(usec_env, &usec) || usec == 0) return std::nullopt;
  if (const char* pid_env = std::getenv("WATCHDOG_PID"); pid_env != nullptr && pid_env[0] != '\0') {
    int64_t pid = 0;
    if (!absl::SimpleAtoi(pid_env, &pid) || pid != getpid()) return std::nullopt;
  }
  return absl::Microseconds(usec);
}

}  // namespace weft::systemd
