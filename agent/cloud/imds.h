#pragma once
// EC2's instance metadata service, version 2 only (session tokens): a PUT to
// /latest/api/token with X-aws-ec2-metadata-token-ttl-seconds gives a token,
// sent with every GET as X-aws-ec2-metadata-token. IMDSv1 (plain GETs) is never
// used: instances that require v2 are the norm, and v2 is what AWS advises.
//
// Thread-safe. The token is kept until a minute before its TTL ends, and dropped
// (then fetched again, once) when IMDS answers 401.

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/cloud/http_client.h"
#include "common/clock.h"

namespace weft::cloud {

inline constexpr char kDefaultImdsEndpoint[] = "http://169.254.169.254";

// /latest/dynamic/instance-identity/document, the fields the backends use.
struct InstanceIdentity {
  std::string instance_id;        // "i-0123456789abcdef0"
  std::string region;             // "eu-west-1"
  std::string availability_zone;  // "eu-west-1a"
  std::string account_id;
  std::string private_ip;
};

class ImdsClient {
 public:
  // `http` and `clock` must outlive the client. `endpoint`: scheme://host[:port],
  // no trailing slash needed.
  ImdsClient(HttpClient* http, std::string endpoint, Clock* clock,
             absl::Duration token_ttl = absl::Hours(6));

  // GET /latest/<path> ("meta-data/instance-id"). NOT_FOUND for a 404,
  // UNAVAILABLE when IMDS cannot be reached or answers another error.
  absl::StatusOr<std::string> Get(absl::string_view path);

  absl::StatusOr<InstanceIdentity> Identity();

  const std::string& endpoint() const { return endpoint_; }

 private:
  absl::StatusOr<std::string> Token(bool refresh);

  HttpClient* const http_;
  const std::string endpoint_;
  Clock* const clock_;
  const absl::Duration token_ttl_;
  absl::Mutex mu_;
  std::string token_ ABSL_GUARDED_BY(mu_);
  absl::Time token_expiry_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace weft::cloud
