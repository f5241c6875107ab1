#pragma once
// The HTTP seam of the cloud backends (AWS EC2 + IMDS, GCE): one request in, one
// answer out. The real client is libcurl; tests drive backends with fakes or
// point the real client at a local server.

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace weft::cloud {

struct HttpRequest {
  std::string method = "GET";  // GET, POST, PUT, DELETE
  std::string url;             // absolute: http(s)://host[:port]/path?query
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  absl::Duration timeout = absl::Seconds(10);
};

struct HttpResponse {
  int status = 0;  // HTTP status code
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::string Header(absl::string_view name) const;  // "" when absent; name matched case-insensitively
};

// Interface, so backends can be tested with fakes too. Implementations are
// thread-safe: Do may be called from several threads at once.
class HttpClient {
 public:
  virtual ~HttpClient() = default;
  // Transport errors (connect, timeout, TLS) -> UNAVAILABLE / DEADLINE_EXCEEDED; any HTTP status is OK here.
  // A URL curl cannot use -> INVALID_ARGUMENT. Redirects are not followed.
  virtual absl::StatusOr<HttpResponse> Do(const HttpRequest& req) = 0;
};

// libcurl, thread-safe, TLS verified against the system CA store. Keeps a few
// connections alive between calls (the backends call the same endpoints every
// resync, so TLS handshakes are paid once).
std::unique_ptr<HttpClient> NewCurlHttpClient();

// Retries `call` while it returns a throttling answer (HTTP 429, 503, or AWS RequestLimitExceeded/Throttling
// in the body, decided by `is_throttled`) or UNAVAILABLE, with jittered exponential backoff, up to `max_attempts`.
// The n-th wait is uniform in [d/2, d] with d = min(max, initial * 2^(n-1)).
// After the last attempt, returns what it returned (a throttled answer is still an OK status: the caller reads
// its error). The pauses are `clock`'s SleepFor; `on_retry` (may be null) is called before each.
struct RetryPolicy {
  int max_attempts = 6;
  absl::Duration initial = absl::Milliseconds(200);
  absl::Duration max = absl::Seconds(10);
};
absl::StatusOr<HttpResponse> DoWithRetry(HttpClient& client, const HttpRequest& req, const RetryPolicy& policy,
                                         Clock& clock, std::function<bool(const HttpResponse&)> is_throttled = nullptr,
                                         const std::function<void()>& on_retry = nullptr);

// The wait before attempt `attempt + 1` (attempt >= 1), for `unit` in [0, 1):
// what DoWithRetry sleeps. Exposed for tests.
absl::Duration BackoffDelay(const RetryPolicy& policy, int attempt, double unit);

}  // namespace weft::cloud
