#pragma once
// A server's hint to a client whose call it ends: call again after this long.
//
// The controller sets it on the watch streams it ends while draining at
// SIGTERM: it is about to stop, so an agent with no other replica to go to
// comes back once the drain window has passed, when a restarted controller
// may be up, instead of backing off against one that is gone (and then
// waiting out a grown backoff once the new one answers). The batches the
// drain ends streams in keep the agents' returns spread over the window.
//
// Carried as trailing metadata, a count of milliseconds.

#include <optional>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"

namespace weft {

inline constexpr char kRetryAfterMetadata[] = "weft-retry-after-ms";
// Longer hints are read as this: a client never waits longer on a server's word.
inline constexpr absl::Duration kMaxRetryAfter = absl::Minutes(1);

// Adds the hint to `ctx`'s trailing metadata; before the call is finished.
void SetRetryAfter(grpc::ServerContextBase& ctx, absl::Duration after);

// The hint a finished call carried, if any: nullopt when absent or unreadable,
// at most kMaxRetryAfter.
std::optional<absl::Duration> RetryAfter(const grpc::ClientContext& ctx);
// The hint's value as sent (milliseconds): nullopt unless a whole non-negative
// number that fits; at most kMaxRetryAfter.
std::optional<absl::Duration> ParseRetryAfter(absl::string_view value);

}  // namespace weft
