#pragma once
// Exponential backoff without jitter: base * 2^attempt, capped. Callers add the
// jitter their protocol wants (retries of one client spread over a range).

#include <algorithm>

#include "absl/time/time.h"

namespace weft {

// attempt 0 -> base, 1 -> 2 * base, ... never above cap.
inline absl::Duration ExponentialBackoff(absl::Duration base, absl::Duration cap, int attempt) {
  absl::Duration d = base;
  for (int i = 0; i < attempt && d < cap; ++i) d *= 2;
  return std::min(d, cap);
}

}  // namespace weft
