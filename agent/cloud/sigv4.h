#pragma once
// AWS Signature Version 4 (AWS4-HMAC-SHA256), header-based, as documented in
// "Create a signed AWS API request" and checked against AWS's SigV4 test suite.
//
// What is signed: every header of the request (names lower-cased, values trimmed
// with inner runs of spaces collapsed, repeated names joined with ','), plus
// `host` from the URL; the canonical URI (dot segments and empty segments
// removed, each segment percent-decoded then encoded once, as the AWS SDKs do
// for every service but S3); the canonical query (pairs decoded, re-encoded,
// sorted); and the SHA-256 of the body.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent/cloud/http_client.h"

namespace weft::cloud {

struct AwsCredentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;            // temporary credentials only
  std::optional<absl::Time> expiration;  // temporary credentials only
  std::string source;                    // "env", "shared-file", "imds": for logs
};

// The intermediate strings, so tests can compare each with AWS's published ones.
struct SigV4Parts {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;      // hex
  std::string authorization;  // the Authorization header's value
};

// Signs `req` as it is. It must carry an X-Amz-Date header (yyyymmddThhmmssZ),
// whose date also makes the credential scope. A Host header, when present, wins
// over the URL's authority. INVALID_ARGUMENT for a URL that does not parse or a
// missing/malformed X-Amz-Date.
absl::StatusOr<SigV4Parts> ComputeSigV4(const HttpRequest& req, const AwsCredentials& creds,
                                        absl::string_view region, absl::string_view service);

// Adds X-Amz-Date (from `now`), X-Amz-Security-Token (with a session token) and
// Authorization to `req`. Any of those already present are replaced.
absl::Status SignV4(HttpRequest* req, const AwsCredentials& creds, absl::string_view region,
                    absl::string_view service, absl::Time now);

// "20150830T123600Z".
std::string AmzDate(absl::Time t);

// Building blocks, shared with code that verifies signatures.
std::string Sha256Hex(absl::string_view data);
std::string HmacSha256(absl::string_view key, absl::string_view data);  // raw 32 bytes
std::string HexEncode(absl::string_view raw);
// RFC 3986 unreserved characters stay, everything else is %XX (upper case).
std::string UriEncode(absl::string_view s, bool keep_slash);
std::string PercentDecode(absl::string_view s);
// "k1=v1&k2=v2" with UriEncode'd names and values, in the given order: a form
// body or query string for the AWS Query APIs.
std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace weft::cloud
