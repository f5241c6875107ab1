#include "agent/cloud/imds.h"


#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/json.h"
#include "common/status_macros.h"

namespace weft::cloud {
namespace {

// IMDS is a link-local service: it answers in milliseconds or not at all.
constexpr absl::Duration kImdsTimeout = absl::Seconds(2);
const RetryPolicy kImdsRetry{.max_attempts = 3, .initial = absl::Milliseconds(100), .max = absl::Seconds(1)};

absl::Status ImdsError(absl::string_view what, const HttpResponse& r) {
  std::string msg = absl::StrCat("IMDS ", what, ": HTTP ", r.status, " ", r.body.substr(0, 200));
  if (r.status == 404) return absl::NotFoundError(msg);
  return absl::UnavailableError(msg);
}

std::string TrimmedEndpoint(std::string e) {
  while (!e.empty() && e.back() == '/') e.pop_back();
  return e;
}

}  // namespace

ImdsClient::ImdsClient(HttpClient* http, std::string endpoint, Clock* clock, absl::Duration token_ttl)
    : http_(http), endpoint_(TrimmedEndpoint(std::move(endpoint))), clock_(clock), token_ttl_(token_ttl) {}

absl::StatusOr<std::string> ImdsClient::Token(bool refresh) {
  absl::MutexLock lock(&mu_);
  if (!refresh && !token_.empty() && clock_->Now() < token_expiry_) return token_;
  HttpRequest req{.method = "PUT",
                  .url = endpoint_ + "/latest/api/token",
                  .headers = {{"X-aws-ec2-metadata-token-ttl-seconds",
                               absl::StrCat(absl::ToInt64Seconds(token_ttl_))}},
                  .timeout = kImdsTimeout};
  const absl::Time asked = clock_->Now();
  ASSIGN_OR_RETURN(HttpResponse r, DoWithRetry(*http_, req, kImdsRetry, *clock_));
  if (r.status != 200 || r.body.empty()) return ImdsError("token", r);
  token_ = r.body;
  // A minute of slack so a token never expires between our check and IMDS's.
  token_expiry_ = asked + token_ttl_ - std::min(absl::Minutes(1), token_ttl_ / 2);
  return token_;
}

absl::StatusOr<std::string> ImdsClient::Get(absl::string_view path) {
  path = absl::StripPrefix(path, "/");
  for (int attempt = 0; attempt < 2; ++attempt) {
    ASSIGN_OR_RETURN(std::string token, Token(/*refresh=*/attempt > 0));
    HttpRequest req{.url = absl::StrCat(endpoint_, "/latest/", path),
                    .headers = {{"X-aws-ec2-metadata-token", token}},
                    .timeout = kImdsTimeout};
    ASSIGN_OR_RETURN(HttpResponse r, DoWithRetry(*http_, req, kImdsRetry, *clock_));
    if (r.status == 200) return r.body;
    // 401: the token expired or IMDS restarted; one fresh token, then give up.
    if (r.status == 401 && attempt == 0) continue;
    return ImdsError(path, r);
  }
  return absl::UnavailableError("IMDS keeps refusing fresh tokens (HTTP 401)");
}

absl::StatusOr<InstanceIdentity> ImdsClient::Identity() {
  ASSIGN_OR_RETURN(std::string doc, Get("dynamic/instance-identity/document"));
  absl::StatusOr<json::Json> j = json::ParseObject(doc, "IMDS instance identity document");
  if (!j.ok()) return absl::UnavailableError(j.status().message());
  InstanceIdentity id;
  for (auto [field, out] : {std::pair{"instanceId", &id.instance_id}, std::pair{"region", &id.region},
                            std::pair{"availabilityZone", &id.availability_zone},
                            std::pair{"accountId", &id.account_id}, std::pair{"privateIp", &id.private_ip}}) {
    absl::StatusOr<std::string> v = json::GetString(*j, field);
    if (!v.ok()) return absl::UnavailableError(absl::StrCat("IMDS instance identity document: ", v.status().message()));
    *out = *std::move(v);
  }
  if (id.instance_id.empty() || id.region.empty()) {
    return absl::UnavailableError("IMDS instance identity document lacks instanceId or region");
  }
  return id;
}

}  // namespace weft::cloud
