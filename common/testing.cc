#include "common/testing.h"

#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/check.h"

namespace weft {

bool Eventually(const std::function<bool()>& condition, absl::Duration deadline) {
  const absl::Time end = absl::Now() + deadline;
  // Short polls first, for what is nearly there; then at most every 50 ms.
  absl::Duration poll = absl::Milliseconds(1);
  while (!condition()) {
    if (absl::Now() >= end) return condition();
    absl::SleepFor(std::min(poll, end - absl::Now()));
    poll = std::min(poll * 2, absl::Milliseconds(50));
  }
  return true;
}

void SleepAdvancingClock::SleepFor(absl::Duration d) {
  {
    absl::MutexLock l(&sleeps_mu_);
    sleeps_.push_back(d);
  }
  Advance(std::max(d, absl::ZeroDuration()));
}

std::vector<absl::Duration> SleepAdvancingClock::sleeps() const {
  absl::MutexLock l(&sleeps_mu_);
  return sleeps_;
}

absl::Duration SleepAdvancingClock::slept() const {
  absl::MutexLock l(&sleeps_mu_);
  absl::Duration sum;
  for (absl::Duration d : sleeps_) sum += d;
  return sum;
}

absl::StatusOr<TempDir> TempDir::Make(absl::string_view prefix, Root root) {
  std::string base = "/tmp";
  if (root == Root::kTestTmpDir) {
    if (const char* t = std::getenv("TEST_TMPDIR"); t != nullptr && *t != '\0') base = t;
  }
  std::string tmpl = absl::StrCat(base, "/", prefix, "XXXXXX");
  if (mkdtemp(tmpl.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp ", tmpl, ": ", std::strerror(errno)));
  }
  return TempDir(Adopt{}, std::move(tmpl));
}

TempDir::TempDir(absl::string_view prefix, Root root) {
  absl::StatusOr<TempDir> made = Make(prefix, root);
  WEFT_CHECK(made.ok(), made.status().ToString().c_str());
  path_ = std::exchange(made->path_, std::string());
}

TempDir::TempDir(TempDir&& other) noexcept
    : path_(std::exchange(other.path_, std::string())), keep_(other.keep_) {}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    Remove();
    path_ = std::exchange(other.path_, std::string());
    keep_ = other.keep_;
  }
  return *this;
}

TempDir::~TempDir() { Remove(); }

std::string TempDir::Join(absl::string_view name) const { return absl::StrCat(path_, "/", name); }

void TempDir::Remove() {
  if (path_.empty() || keep_) return;
  std::error_code ignored;  // best effort: a test's leftovers must not fail it
  std::filesystem::remove_all(path_, ignored);
  path_.clear();
}

}  // namespace weft
