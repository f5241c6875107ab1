#pragma once
// Readiness and status reports to systemd (Type=notify units) through
// sd_notify(3). Every call is a no-op returning OK when NOTIFY_SOCKET is unset,
// i.e. when not run by systemd with Type=notify. Thread-safe.

#include <optional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace weft::systemd {

// READY=1: start-up is complete (systemctl start returns, dependants start).
absl::Status NotifyReady();
// STATUS=...: a one-line status for systemctl status (newlines become spaces).
absl::Status NotifyStatus(absl::string_view status);
// STOPPING=1: shutdown has begun.
absl::Status NotifyStopping();
// WATCHDOG=1: keep-alive for units with WatchdogSec=.
absl::Status NotifyWatchdog();
// How often systemd expects NotifyWatchdog() (WatchdogSec= of this unit), or
// nullopt when no watchdog is enabled for this process. Ping at half of it.
std::optional<absl::Duration> WatchdogInterval();

}  // namespace weft::systemd
