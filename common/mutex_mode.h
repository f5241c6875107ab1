#pragma once
// Debian's Abseil is built with mutex deadlock detection on: every lock taken
// while another is held records an edge in one global graph (GraphCycles), under
// one global lock. With thousands of gRPC channels or calls that graph is large
// and every process serializes its mutex traffic on it: a benchmark's client of
// 5,000 channels spent a quarter of its CPU there (docs/benchmarks.md). Binaries
// turn it off at the start of main; tests keep it, as a check of lock order.

#include "absl/synchronization/mutex.h"

namespace weft {

inline void TurnOffMutexDeadlockDetection() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

}  // namespace weft
