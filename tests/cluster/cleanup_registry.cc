#include "tests/cluster/cleanup_registry.h"

#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace weft::testing {
namespace {

constexpr int kMaxTracked = 512;
std::atomic<pid_t> g_pids[kMaxTracked];
std::atomic<bool> g_ns_used[kMaxTracked];
char g_ns_paths[kMaxTracked][128];
std::atomic<bool> g_interrupted{false};

// Async-signal-safe: kill(2), umount2(2), unlink(2) and _exit(2) only.
void EmergencyCleanup() {
  for (auto& slot : g_pids) {
    const pid_t pid = slot.load();
    if (pid > 0) {
      kill(-pid, SIGKILL);  // its process group: it and whatever it started
      kill(pid, SIGKILL);
    }
  }
  for (int i = 0; i < kMaxTracked; ++i) {
    if (!g_ns_used[i].load()) continue;
    umount2(g_ns_paths[i], MNT_DETACH);
    unlink(g_ns_paths[i]);
  }
}

void OnSignal(int) {
  if (!g_interrupted.exchange(true)) {
    static const char kMsg[] = "\ninterrupted: cleaning up (again to force)\n";
    (void)!write(2, kMsg, sizeof(kMsg) - 1);
    return;
  }
  EmergencyCleanup();
  _exit(130);
}

}  // namespace

void TrackPid(pid_t pid) {
  for (auto& slot : g_pids) {
    pid_t empty = 0;
    if (slot.compare_exchange_strong(empty, pid)) return;
  }
}

void UntrackPid(pid_t pid) {
  for (auto& slot : g_pids) {
    pid_t expected = pid;
    if (slot.compare_exchange_strong(expected, 0)) return;
  }
}

void TrackNamespace(const std::string& ns) {
  const std::string path = absl::StrCat(kNetnsRunDir, "/", ns);
  if (path.size() >= sizeof(g_ns_paths[0])) return;
  for (int i = 0; i < kMaxTracked; ++i) {
    bool expected = false;
    if (g_ns_used[i].compare_exchange_strong(expected, true)) {
      std::memcpy(g_ns_paths[i], path.c_str(), path.size() + 1);
      return;
    }
  }
}

void UntrackNamespace(const std::string& ns) {
  const std::string path = absl::StrCat(kNetnsRunDir, "/", ns);
  for (int i = 0; i < kMaxTracked; ++i) {
    if (g_ns_used[i].load() && path == g_ns_paths[i]) {
      g_ns_used[i].store(false);
      return;
    }
  }
}

void InstallInterruptHandlers() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool InterruptReceived() { return g_interrupted.load(); }

}  // namespace weft::testing
