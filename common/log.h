#pragma once
// Structured logging: one logfmt line per event, fit for journald and for grep.
//
//   WEFT_LOG(INFO, "lease acquired").With("subnet", subnet).With("node", name);
//
// writes (to stderr, in one write(2))
//
//   ts=2024-05-01T10:00:00.123456Z level=info msg="lease acquired" subnet=10.1.19.0/24 node=n1
//
// Under journald (stderr is the stream named by JOURNAL_STREAM) the timestamp is
// left out, since the journal stamps each line itself, and the line starts with
// the syslog priority ("<6>level=info msg=...") so journalctl -p filters work.
//
// Values are quoted when they are empty or hold spaces, quotes, '=' or control
// characters; inside quotes \ " and control characters are escaped (\n, \t,
// \x01), so an event never spans lines.
//
// A disabled level costs one relaxed atomic load: the message and the With()
// arguments are not evaluated. The level comes from --log-level (debug, info,
// warn, error; default info) or SetLevel(). Thread-safe.

#include <atomic>
#include <string>
#include <type_traits>

#include "absl/flags/declare.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace weft::log {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// "debug", "info", "warn" (or "warning"), "error", any case.
absl::StatusOr<Level> ParseLevel(absl::string_view s);
absl::string_view LevelName(Level level);  // "debug", "info", "warn", "error"

// For ABSL_FLAG(weft::log::Level, ...).
bool AbslParseFlag(absl::string_view text, Level* level, std::string* error);
std::string AbslUnparseFlag(Level level);

namespace internal {
extern std::atomic<int> min_level;
}  // namespace internal

void SetLevel(Level level);
Level GetLevel();
inline bool Enabled(Level level) {
  return static_cast<int>(level) >= internal::min_level.load(std::memory_order_relaxed);
}

// Where lines go. By default stderr, with journald style when stderr is the
// journal stream. Not meant to change while other threads log (set it up in
// main or in a test's SetUp).
void SetOutput(int fd, bool journald_style);
// Timestamps come from `clock` (nullptr: the real clock). For tests.
void SetClock(const Clock* clock);
// True when `journal_stream` ("DEV:INODE", the value of $JOURNAL_STREAM) names
// the file open as `fd`: systemd's documented test for "my stderr is the journal".
bool IsJournalStream(int fd, const char* journal_stream);

// Appends `value` to `out`, quoted and escaped when logfmt needs it.
void AppendValue(std::string* out, absl::string_view value);

// One event being built; written when it is destroyed (at the end of the
// WEFT_LOG statement). Use through WEFT_LOG.
class Line {
 public:
  Line(Level level, absl::string_view msg);
  ~Line();
  Line(const Line&) = delete;
  Line& operator=(const Line&) = delete;

  Line& With(absl::string_view key, absl::string_view value);
  Line& With(absl::string_view key, const char* value) { return With(key, absl::string_view(value)); }
  Line& With(absl::string_view key, const std::string& value) { return With(key, absl::string_view(value)); }
  Line& With(absl::string_view key, bool value) { return With(key, value ? "true" : "false"); }
  Line& With(absl::string_view key, const absl::Status& status) { return With(key, status.ToString()); }
  Line& With(absl::string_view key, absl::Duration d) { return With(key, absl::FormatDuration(d)); }
  // Numbers, and any type with a ToString() method (IPv4Net, MacAddr...).
  template <typename T>
  Line& With(absl::string_view key, const T& value) {
    if constexpr (std::is_arithmetic_v<T>) {
      return With(key, absl::StrCat(value));
    } else {
      return With(key, value.ToString());
    }
  }
  // With(key, value) only when `cond` holds (a field some events have).
  template <typename T>
  Line& WithIf(bool cond, absl::string_view key, const T& value) {
    return cond ? With(key, value) : *this;
  }
  // Shorthand for With("err", status).
  Line& Err(const absl::Status& status) { return With("err", status); }

 private:
  Level level_;
  std::string buf_;
};

// Severity names for WEFT_LOG(INFO, ...).
namespace severity {
inline constexpr Level DEBUG = Level::kDebug;
inline constexpr Level INFO = Level::kInfo;
inline constexpr Level WARN = Level::kWarning;
inline constexpr Level WARNING = Level::kWarning;
inline constexpr Level ERROR = Level::kError;
}  // namespace severity

}  // namespace weft::log

// --log-level, defined in log.cc.
ABSL_DECLARE_FLAG(weft::log::Level, log_level);

// WEFT_LOG(DEBUG|INFO|WARN|WARNING|ERROR, "message").With("key", value)...;
// The switch makes the macro one statement, safe inside if/else without braces.
#define WEFT_LOG(severity_name, msg)                                                  \
  switch (0)                                                                          \
  case 0:                                                                             \
  default:                                                                            \
    if (!::weft::log::Enabled(::weft::log::severity::severity_name)) {                \
    } else                                                                            \
      ::weft::log::Line(::weft::log::severity::severity_name, msg)
