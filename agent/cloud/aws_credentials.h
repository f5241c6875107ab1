#pragma once
// Where AWS credentials come from, in the order the AWS SDKs and CLI use:
//  1. the environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN);
//  2. the shared credentials file: $AWS_SHARED_CREDENTIALS_FILE, else
//     ~/.aws/credentials, section [$AWS_PROFILE] (default "default");
//  3. the instance's IAM role through IMDSv2
//     (/latest/meta-data/iam/security-credentials/<role>), refreshed five minutes
//     before its Expiration.
// A source that is simply not configured answers NOT_FOUND and the chain moves
// on; a source that is configured but broken (half the keys set, an unreadable
// file, a role answer without keys) is an error, not silently skipped.
//
// Thread-safe.

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "agent/cloud/imds.h"
#include "agent/cloud/sigv4.h"
#include "common/clock.h"

namespace weft::cloud {

class AwsCredentialsProvider {
 public:
  virtual ~AwsCredentialsProvider() = default;
  virtual absl::StatusOr<AwsCredentials> Get() = 0;
};

// Reads the variables at every call, so rotated values are picked up.
class EnvCredentialsProvider : public AwsCredentialsProvider {
 public:
  absl::StatusOr<AwsCredentials> Get() override;
};

// `path` empty: $AWS_SHARED_CREDENTIALS_FILE, else $HOME/.aws/credentials.
// `profile` empty: $AWS_PROFILE, else "default". Read at every call (a few
// hundred bytes), so a rotated file is picked up.
class SharedFileCredentialsProvider : public AwsCredentialsProvider {
 public:
  explicit SharedFileCredentialsProvider(std::string path = "", std::string profile = "")
      : path_(std::move(path)), profile_(std::move(profile)) {}
  absl::StatusOr<AwsCredentials> Get() override;

 private:
  const std::string path_;
  const std::string profile_;
};

// The instance role's temporary credentials; `imds` and `clock` outlive it.
class ImdsRoleCredentialsProvider : public AwsCredentialsProvider {
 public:
  static constexpr absl::Duration kRefreshMargin = absl::Minutes(5);
  // Credentials without an Expiration are fetched again after this.
  static constexpr absl::Duration kRefreshUndated = absl::Minutes(15);
  ImdsRoleCredentialsProvider(ImdsClient* imds, const Clock* clock) : imds_(imds), clock_(clock) {}
  absl::StatusOr<AwsCredentials> Get() override;

 private:
  ImdsClient* const imds_;
  const Clock* const clock_;
  absl::Mutex mu_;
  std::optional<AwsCredentials> cached_ ABSL_GUARDED_BY(mu_);
  absl::Time refresh_at_ ABSL_GUARDED_BY(mu_);  // when cached_ is fetched again
};

// The first source that has credentials.
class ChainCredentialsProvider : public AwsCredentialsProvider {
 public:
  explicit ChainCredentialsProvider(std::vector<std::unique_ptr<AwsCredentialsProvider>> sources)
      : sources_(std::move(sources)) {}
  absl::StatusOr<AwsCredentials> Get() override;

 private:
  const std::vector<std::unique_ptr<AwsCredentialsProvider>> sources_;
};

// env, shared file, instance role (through `imds`, which must outlive it).
std::unique_ptr<AwsCredentialsProvider> DefaultAwsCredentialsChain(ImdsClient* imds, const Clock* clock);

// Parses an AWS INI file's section `profile`. NOT_FOUND when the section or its
// keys are absent.
absl::StatusOr<AwsCredentials> ParseSharedCredentials(absl::string_view text, absl::string_view profile);

}  // namespace weft::cloud
