#pragma once
// Quoting untrusted input inside error messages and logs: at most a short,
// escaped prefix, so a 64 KiB field never turns into a 64 KiB error (gRPC sends
// the message in HTTP/2 trailers, which clients cap at a few KiB).

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace weft {

inline constexpr size_t kQuotedPrefix = 64;

// "abc" with control and non-ASCII bytes C-escaped; longer input keeps its first
// `max_bytes` bytes and says how long it was: "abcd..." (65536 bytes).
std::string QuoteInput(absl::string_view input, size_t max_bytes = kQuotedPrefix);

}  // namespace weft
