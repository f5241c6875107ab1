#include "agent/cloud/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/backoff.h"

namespace weft::cloud {

std::string HttpResponse::Header(absl::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (absl::EqualsIgnoreCase(k, name)) return v;
  }
  return "";
}

namespace {

// Cloud API answers are small (a route table, a token); a bigger body means
// something is wrong, and we would rather fail than buffer it.
constexpr size_t kMaxBodyBytes = 32 << 20;
// Idle easy handles kept for reuse; each keeps its connection cache.
constexpr size_t kMaxIdleHandles = 4;

struct Transfer {
  HttpResponse resp;
  bool too_big = false;
};

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  if (t->resp.body.size() + len > kMaxBodyBytes) {
    t->too_big = true;
    return 0;  // aborts the transfer with CURLE_WRITE_ERROR
  }
  t->resp.body.append(data, len);
  return len;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  absl::string_view line(data, len);
  // A status line starts a new header block (after "100 Continue", say): only
  // the final response's headers count.
  if (absl::StartsWith(line, "HTTP/")) {
    t->resp.headers.clear();
    return len;
  }
  size_t colon = line.find(':');
  if (colon == absl::string_view::npos) return len;
  std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(line.substr(0, colon)));
  std::string value(absl::StripAsciiWhitespace(line.substr(colon + 1)));
  t->resp.headers.emplace_back(std::move(name), std::move(value));
  return len;
}

absl::Status CurlError(CURLcode code, const char* errbuf, const HttpRequest& req) {
  std::string msg = absl::StrCat(req.method, " ", req.url, ": ", errbuf[0] ? errbuf : curl_easy_strerror(code));
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return absl::DeadlineExceededError(msg);
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return absl::InvalidArgumentError(msg);
    default:
      return absl::UnavailableError(msg);
  }
}

class CurlHttpClient : public HttpClient {
 public:
  CurlHttpClient() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  }
  ~CurlHttpClient() override {
    for (CURL* h : idle_) curl_easy_cleanup(h);
  }

  absl::StatusOr<HttpResponse> Do(const HttpRequest& req) override {
    if (req.method != "GET" && req.method != "POST" && req.method != "PUT" && req.method != "DELETE") {
      return absl::InvalidArgumentError(absl::StrCat("unsupported HTTP method \"", req.method, "\""));
    }
    CURL* h = Take();
    if (h == nullptr) return absl::ResourceExhaustedError("curl_easy_init failed");
    absl::StatusOr<HttpResponse> result = Perform(h, req);
    Give(h);
    return result;
  }

 private:
  absl::StatusOr<HttpResponse> Perform(CURL* h, const HttpRequest& req) {
    Transfer t;
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_slist* headers = nullptr;
    for (const auto& [k, v] : req.headers) {
      // "Name;" is curl's way to send a header with an empty value.
      headers = curl_slist_append(headers, (v.empty() ? absl::StrCat(k, ";") : absl::StrCat(k, ": ", v)).c_str());
    }
    // No "Expect: 100-continue" round trip for bigger POST bodies.
    headers = curl_slist_append(headers, "Expect:");

    long timeout_ms = std::max<long>(1, absl::ToInt64Milliseconds(req.timeout));
    curl_easy_setopt(h, CURLOPT_URL, req.url.c_str());
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM: we are multi-threaded
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
    if (req.method == "GET") {
      curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
      // POSTFIELDS sends the body with its Content-Length (0 for an empty PUT,
      // which IMDS's token endpoint wants); CUSTOMREQUEST renames the method.
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, req.body.data());
      if (req.method != "POST") curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    }
    CURLcode code = curl_easy_perform(h);
    curl_slist_free_all(headers);
    if (t.too_big) {
      return absl::ResourceExhaustedError(
          absl::StrCat(req.method, " ", req.url, ": answer larger than ", kMaxBodyBytes, " bytes"));
    }
    if (code != CURLE_OK) return CurlError(code, errbuf, req);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    t.resp.status = static_cast<int>(status);
    return std::move(t.resp);
  }

  CURL* Take() {
    {
      absl::MutexLock lock(&mu_);
      if (!idle_.empty()) {
        CURL* h = idle_.back();
        idle_.pop_back();
        return h;
      }
    }
    return curl_easy_init();
  }

  void Give(CURL* h) {
    // Options do not leak into the next request: reset keeps the connection
    // cache, DNS cache and TLS session ids, which is what reuse is for.
    curl_easy_reset(h);
    absl::MutexLock lock(&mu_);
    if (idle_.size() < kMaxIdleHandles) {
      idle_.push_back(h);
      return;
    }
    curl_easy_cleanup(h);
  }

  absl::Mutex mu_;
  std::vector<CURL*> idle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::unique_ptr<HttpClient> NewCurlHttpClient() { return std::make_unique<CurlHttpClient>(); }

absl::Duration BackoffDelay(const RetryPolicy& policy, int attempt, double unit) {
  const absl::Duration d = ExponentialBackoff(policy.initial, policy.max, attempt - 1);
  return d / 2 + (d / 2) * unit;
}

absl::StatusOr<HttpResponse> DoWithRetry(HttpClient& client, const HttpRequest& req, const RetryPolicy& policy,
                                         Clock& clock, std::function<bool(const HttpResponse&)> is_throttled,
                                         const std::function<void()>& on_retry) {
  absl::BitGen rng;
  const int attempts = std::max(1, policy.max_attempts);
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<HttpResponse> r = client.Do(req);
    bool retry = false;
    if (!r.ok()) {
      retry = absl::IsUnavailable(r.status());
    } else {
      retry = r->status == 429 || r->status == 503 || (is_throttled && is_throttled(*r));
    }
    if (!retry || attempt >= attempts) return r;
    if (on_retry) on_retry();
    clock.SleepFor(BackoffDelay(policy, attempt, absl::Uniform(rng, 0.0, 1.0)));
  }
}

}  // namespace weft::cloud
