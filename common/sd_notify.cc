#include "common/sd_notify.h"

#include <systemd/sd-daemon.h>

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace weft::systemd {
namespace {

absl::Status Notify(const std::string& state) {
  const int r = sd_notify(/*unset_environment=*/0, state.c_str());
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
  uint64_t usec = 0;
  if (sd_watchdog_enabled(/*unset_environment=*/0, &usec) <= 0) return std::nullopt;
  return absl::Microseconds(usec);
}

}  // namespace weft::systemd
