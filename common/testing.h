#pragma once
// Helpers shared by tests (testonly): the two ways a test lets time pass, and
// a temporary directory that removes itself.

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace weft {

// Checks `condition` until it holds or `deadline` of real time has passed;
// returns whether it held. For end-to-end waits on what a test cannot drive
// (real processes, the kernel, another process's threads). A unit that takes a
// Clock is tested by advancing a SimulatedClock instead.
bool Eventually(const std::function<bool()>& condition, absl::Duration deadline = absl::Seconds(10));

// A SimulatedClock whose SleepFor moves the time itself instead of waiting for
// another thread to: for code under test that sleeps on the test's own thread
// (retry backoff). Records every pause. Thread-safe.
class SleepAdvancingClock : public SimulatedClock {
 public:
  using SimulatedClock::SimulatedClock;
  void SleepFor(absl::Duration d) override;
  std::vector<absl::Duration> sleeps() const;
  absl::Duration slept() const;  // their sum

 private:
  mutable absl::Mutex sleeps_mu_;
  std::vector<absl::Duration> sleeps_ ABSL_GUARDED_BY(sleeps_mu_);
};

// A fresh directory <root>/<prefix>XXXXXX, removed with everything in it when
// the object goes. The root is $TEST_TMPDIR when set (Bazel), else /tmp; kTmp
// always uses /tmp, for paths that must stay short (a unix socket path has at
// most 107 bytes, and Bazel's TEST_TMPDIR is deep). Movable, not copyable.
class TempDir {
 public:
  enum class Root { kTestTmpDir, kTmp };

  static absl::StatusOr<TempDir> Make(absl::string_view prefix, Root root = Root::kTestTmpDir);
  // Crashes if the directory cannot be made: for tests and benches.
  explicit TempDir(absl::string_view prefix = "weft", Root root = Root::kTestTmpDir);

  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const std::string& path() const { return path_; }
  // path() + "/" + name; makes nothing.
  std::string Join(absl::string_view name) const;
  // Whether the directory stays when the object goes (a failed run's logs).
  // A program that keeps its logs on every failure path calls Keep() first and
  // Keep(false) once it has passed.
  void Keep(bool keep = true) { keep_ = keep; }

 private:
  struct Adopt {};
  TempDir(Adopt, std::string path) : path_(std::move(path)) {}
  void Remove();

  std::string path_;  // empty once moved from
  bool keep_ = false;
};

}  // namespace weft
