#include "common/retry_hint.h"

#include <algorithm>
#include <string>

#include "absl/strings/numbers.h"

namespace weft {

void SetRetryAfter(grpc::ServerContextBase& ctx, absl::Duration after) {
  ctx.AddTrailingMetadata(kRetryAfterMetadata,
                          std::to_string(std::max<int64_t>(absl::ToInt64Milliseconds(after), 0)));
}

std::optional<absl::Duration> RetryAfter(const grpc::ClientContext& ctx) {
  const auto& trailers = ctx.GetServerTrailingMetadata();
  auto it = trailers.find(kRetryAfterMetadata);
  if (it == trailers.end()) return std::nullopt;
  return ParseRetryAfter(absl::string_view(it->second.data(), it->second.size()));
}

std::optional<absl::Duration> ParseRetryAfter(absl::string_view value) {
  int64_t ms = 0;
  if (!absl::SimpleAtoi(value, &ms) || ms < 0) return std::nullopt;
  return std::min(absl::Milliseconds(ms), kMaxRetryAfter);
}

}  // namespace weft
