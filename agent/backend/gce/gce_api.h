#pragma once
// The slice of Google Compute Engine the gce backend needs: the metadata server
// (who am I, an OAuth token) and the global routes of the Compute API v1 with
// their operations. Plain HTTP + JSON over cloud::HttpClient, no Google SDK.
//
// Errors carry the API's own words and map to status codes the backend acts on:
//   NOT_FOUND (404), ALREADY_EXISTS (409), RESOURCE_EXHAUSTED (quota exceeded,
//   403 quotaExceeded / QUOTA_EXCEEDED), UNAUTHENTICATED (401), PERMISSION_DENIED
//   (other 403), INVALID_ARGUMENT (400), UNAVAILABLE (throttled after every
//   retry, 5xx, transport), INTERNAL (an answer that does not parse).
// Throttling (429, 503, 403 rateLimitExceeded/userRateLimitExceeded) and transport
// errors are retried with backoff; a 401 fetches a fresh token and retries once.
//
// Not thread-safe: one caller at a time (the backend's single thread).

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent/cloud/http_client.h"
#include "common/clock.h"
#include "common/metrics.h"

namespace weft::agent::gce {

inline constexpr char kDefaultApiEndpoint[] = "https://compute.googleapis.com/compute/v1";
inline constexpr char kDefaultMetadataEndpoint[] = "http://metadata.google.internal";

// Resource URLs are compared in this canonical, partial form: "projects/p/global/
// networks/n", "projects/p/zones/z/instances/i". The API answers with full URLs
// ("https://www.googleapis.com/compute/v1/projects/..."), accepts both.
std::string CanonicalResourceUrl(absl::string_view url);

// This VM, as its metadata server describes it.
struct InstanceInfo {
  std::string project;  // project id, e.g. "my-project"
  std::string zone;     // e.g. "us-central1-a"
  std::string name;     // instance name
  std::string network;  // VPC network name of the first interface, e.g. "default"
  std::string InstanceUrl() const;  // projects/<project>/zones/<zone>/instances/<name>
  std::string NetworkUrl() const;   // projects/<project>/global/networks/<network>
};

// A route as the backend sees it. URLs canonical (see above).
struct Route {
  std::string name;
  std::string network;
  std::string dest_range;         // "10.1.19.0/24"
  std::string next_hop_instance;  // empty for routes with another kind of next hop
  int64_t priority = 1000;
  std::string description;
  bool operator==(const Route& o) const {
    return name == o.name && network == o.network && dest_range == o.dest_range &&
           next_hop_instance == o.next_hop_instance && priority == o.priority && description == o.description;
  }
};

// A started insert or delete. Route operations are global; `zone` is set only
// when the API answers with a zonal one.
struct Operation {
  std::string name;
  std::string zone;
  std::string target;  // the route's name, for messages
};

// The metrics the API client feeds (see docs/metrics.md, "GCE backend").
struct ApiMetrics {
  explicit ApiMetrics(metrics::Registry& r);
  // operation: metadata, token, list, insert, delete, wait; result: ok, not_found,
  // conflict, quota, throttled, denied, error.
  metrics::Family<metrics::Counter>& requests;
  metrics::Counter& retries;
};

struct ApiOptions {
  std::string api_endpoint = kDefaultApiEndpoint;            // no trailing slash needed
  std::string metadata_endpoint = kDefaultMetadataEndpoint;
  cloud::RetryPolicy retry;
  // A token is refreshed this long before the metadata server says it expires.
  absl::Duration token_refresh_margin = absl::Minutes(1);
  // How many times an operation is waited on (each wait: up to ~2 min on GCE)
  // before giving up with DEADLINE_EXCEEDED.
  int max_operation_waits = 20;
  int list_page_size = 500;
  Clock* clock = &RealClock::Get();  // token lifetimes and retry pauses
};

class GceApi {
 public:
  // `http` and `metrics` (may be null) must outlive the client.
  GceApi(cloud::HttpClient* http, ApiOptions options, ApiMetrics* metrics);

  // From the metadata server; cached after the first complete answer.
  absl::StatusOr<InstanceInfo> Instance();

  // Every route of the project matching `filter` (AIP-160 syntax, e.g.
  // description = "weft: 10.1.0.0/16"), following nextPageToken.
  absl::StatusOr<std::vector<Route>> ListRoutes(absl::string_view filter);
  absl::StatusOr<Operation> InsertRoute(const Route& route);
  absl::StatusOr<Operation> DeleteRoute(absl::string_view name);
  // Until the operation is DONE. An error recorded in the operation
  // (error.errors[]) comes back as a status naming its code and message.
  absl::Status Wait(const Operation& op);

 private:
  absl::StatusOr<std::string> Metadata(absl::string_view path);
  absl::StatusOr<std::string> Token();
  // An authenticated API call, throttling retried, a 401 retried once with a new
  // token. Returns the body of a 2xx answer, else the mapped error.
  absl::StatusOr<std::string> Call(absl::string_view operation, absl::string_view method, const std::string& url,
                                   std::string body);
  absl::StatusOr<cloud::HttpResponse> Send(const cloud::HttpRequest& req);
  void Count(absl::string_view operation, absl::string_view result);
  absl::StatusOr<Operation> ParseOperation(absl::string_view body, absl::string_view target);
  std::string ProjectUrl(absl::string_view project) const;

  cloud::HttpClient* const http_;
  const ApiOptions options_;
  ApiMetrics* const metrics_;
  std::unique_ptr<InstanceInfo> instance_;
  std::string token_;
  absl::Time token_refresh_at_ = absl::InfinitePast();
};

// Google's JSON error body ({"error":{"code":403,"message":"...","errors":[{"reason":
// "rateLimitExceeded"}]}}) and HTTP status as a status; `what` prefixes the message.
absl::Status ApiError(int http_status, absl::string_view body, absl::string_view what);
// 429, 503, or 403 with reason rateLimitExceeded / userRateLimitExceeded.
bool IsThrottled(const cloud::HttpResponse& response);

}  // namespace weft::agent::gce
