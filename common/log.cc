#include "common/log.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

ABSL_FLAG(weft::log::Level, log_level, weft::log::Level::kInfo,
          "Least severe log level written: debug, info, warn or error.")
    .OnUpdate([] { weft::log::SetLevel(absl::GetFlag(FLAGS_log_level)); });

namespace weft::log {

namespace internal {
std::atomic<int> min_level{static_cast<int>(Level::kInfo)};
}  // namespace internal

namespace {

struct Output {
  int fd;
  bool journald;
};

Output DefaultOutput() { return {STDERR_FILENO, IsJournalStream(STDERR_FILENO, getenv("JOURNAL_STREAM"))}; }

// Decided once, at the first line, unless SetOutput() came first.
std::atomic<bool> output_set{false};
std::atomic<int> output_fd{STDERR_FILENO};
std::atomic<bool> output_journald{false};
std::atomic<const Clock*> clock{nullptr};

Output CurrentOutput() {
  if (!output_set.load(std::memory_order_acquire)) {
    static const bool initialized = [] {
      const Output o = DefaultOutput();
      SetOutput(o.fd, o.journald);
      return true;
    }();
    (void)initialized;
  }
  return {output_fd.load(std::memory_order_relaxed), output_journald.load(std::memory_order_relaxed)};
}

// syslog(3) priorities: LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR.
int SyslogPriority(Level level) {
  switch (level) {
    case Level::kDebug:
      return 7;
    case Level::kInfo:
      return 6;
    case Level::kWarning:
      return 4;
    case Level::kError:
      return 3;
  }
  return 6;
}

bool NeedsQuotes(absl::string_view v) {
  if (v.empty()) return true;
  for (unsigned char c : v) {
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) return true;
  }
  return false;
}

// Keys are chosen by programmers, but a stray space or '=' must not break the line.
void AppendKey(std::string* out, absl::string_view key) {
  if (key.empty()) {
    out->push_back('_');
    return;
  }
  for (unsigned char c : key) {
    out->push_back(c <= ' ' || c == '"' || c == '=' || c == 0x7f ? '_' : static_cast<char>(c));
  }
}

void WriteAll(int fd, absl::string_view s) {
  // One write(2) in all but pathological cases (a full pipe, a signal): lines
  // from different threads do not interleave.
  while (!s.empty()) {
    const ssize_t n = write(fd, s.data(), s.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // Nowhere to report a failure to log.
    }
    s.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

absl::StatusOr<Level> ParseLevel(absl::string_view s) {
  const std::string l = absl::AsciiStrToLower(s);
  if (l == "debug") return Level::kDebug;
  if (l == "info") return Level::kInfo;
  if (l == "warn" || l == "warning") return Level::kWarning;
  if (l == "error") return Level::kError;
  return absl::InvalidArgumentError(
      absl::StrCat("invalid log level \"", absl::CHexEscape(s), "\": want debug, info, warn or error"));
}

absl::string_view LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarning:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
}

bool AbslParseFlag(absl::string_view text, Level* level, std::string* error) {
  absl::StatusOr<Level> l = ParseLevel(text);
  if (!l.ok()) {
    *error = std::string(l.status().message());
    return false;
  }
  *level = *l;
  return true;
}

std::string AbslUnparseFlag(Level level) { return std::string(LevelName(level)); }

void SetLevel(Level level) { internal::min_level.store(static_cast<int>(level), std::memory_order_relaxed); }

Level GetLevel() { return static_cast<Level>(internal::min_level.load(std::memory_order_relaxed)); }

void SetOutput(int fd, bool journald_style) {
  output_fd.store(fd, std::memory_order_relaxed);
  output_journald.store(journald_style, std::memory_order_relaxed);
  output_set.store(true, std::memory_order_release);
}

void SetClock(const Clock* c) { clock.store(c, std::memory_order_release); }

bool IsJournalStream(int fd, const char* journal_stream) {
  if (journal_stream == nullptr) return false;
  std::pair<absl::string_view, absl::string_view> parts = absl::StrSplit(journal_stream, ':');
  uint64_t dev, ino;
  if (!absl::SimpleAtoi(parts.first, &dev) || !absl::SimpleAtoi(parts.second, &ino)) return false;
  struct stat st;
  if (fstat(fd, &st) != 0) return false;
  return static_cast<uint64_t>(st.st_dev) == dev && static_cast<uint64_t>(st.st_ino) == ino;
}

void AppendValue(std::string* out, absl::string_view v) {
  if (!NeedsQuotes(v)) {
    out->append(v.data(), v.size());
    return;
  }
  out->push_back('"');
  for (unsigned char c : v) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < ' ' || c == 0x7f) {
          absl::StrAppendFormat(out, "\\x%02x", c);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

Line::Line(Level level, absl::string_view msg) : level_(level) {
  buf_.reserve(128);
  if (CurrentOutput().journald) {
    absl::StrAppend(&buf_, "<", SyslogPriority(level), ">");
  } else {
    const Clock* c = clock.load(std::memory_order_acquire);
    const absl::Time now = c != nullptr ? c->Now() : RealClock::Get().Now();
    absl::StrAppend(&buf_, "ts=", absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", now, absl::UTCTimeZone()), " ");
  }
  absl::StrAppend(&buf_, "level=", LevelName(level), " msg=");
  AppendValue(&buf_, msg);
}

Line& Line::With(absl::string_view key, absl::string_view value) {
  buf_.push_back(' ');
  AppendKey(&buf_, key);
  buf_.push_back('=');
  AppendValue(&buf_, value);
  return *this;
}

Line::~Line() {
  buf_.push_back('\n');
  WriteAll(CurrentOutput().fd, buf_);
}

}  // namespace weft::log
