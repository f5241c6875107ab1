#include "agent/cloud/aws_credentials.h"

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>


#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/json.h"
#include "common/quote.h"
#include "common/status_macros.h"

namespace weft::cloud {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

}  // namespace

absl::StatusOr<AwsCredentials> EnvCredentialsProvider::Get() {
  AwsCredentials c{.access_key_id = Env("AWS_ACCESS_KEY_ID"),
                   .secret_access_key = Env("AWS_SECRET_ACCESS_KEY"),
                   .session_token = Env("AWS_SESSION_TOKEN"),
                   .source = "env"};
  if (c.access_key_id.empty() && c.secret_access_key.empty()) {
    return absl::NotFoundError("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set");
  }
  if (c.access_key_id.empty() || c.secret_access_key.empty()) {
    return absl::InvalidArgumentError("only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set");
  }
  return c;
}

absl::StatusOr<AwsCredentials> ParseSharedCredentials(absl::string_view text, absl::string_view profile) {
  std::map<std::string, std::string> keys;
  bool in_section = false, found_section = false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      absl::string_view name = absl::StripAsciiWhitespace(line.substr(1, line.size() - 2));
      in_section = name == profile;
      found_section |= in_section;
      continue;
    }
    if (!in_section) continue;
    size_t eq = line.find('=');
    if (eq == absl::string_view::npos) continue;
    keys[absl::AsciiStrToLower(absl::StripAsciiWhitespace(line.substr(0, eq)))] =
        std::string(absl::StripAsciiWhitespace(line.substr(eq + 1)));
  }
  if (!found_section) return absl::NotFoundError(absl::StrCat("no profile [", profile, "]"));
  AwsCredentials c{.access_key_id = keys["aws_access_key_id"],
                   .secret_access_key = keys["aws_secret_access_key"],
                   .session_token = keys["aws_session_token"],
                   .source = "shared-file"};
  if (c.access_key_id.empty() || c.secret_access_key.empty()) {
    return absl::NotFoundError(
        absl::StrCat("profile [", profile, "] lacks aws_access_key_id or aws_secret_access_key"));
  }
  return c;
}

absl::StatusOr<AwsCredentials> SharedFileCredentialsProvider::Get() {
  std::string path = path_;
  if (path.empty()) path = Env("AWS_SHARED_CREDENTIALS_FILE");
  if (path.empty()) {
    const std::string home = Env("HOME");
    if (home.empty()) return absl::NotFoundError("no AWS_SHARED_CREDENTIALS_FILE and no HOME");
    path = home + "/.aws/credentials";
  }
  std::string profile = profile_;
  if (profile.empty()) profile = Env("AWS_PROFILE");
  if (profile.empty()) profile = "default";
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("no credentials file ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  absl::StatusOr<AwsCredentials> c = ParseSharedCredentials(ss.str(), profile);
  if (!c.ok()) return absl::Status(c.status().code(), absl::StrCat(path, ": ", c.status().message()));
  return c;
}

absl::StatusOr<AwsCredentials> ImdsRoleCredentialsProvider::Get() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  if (cached_ && now < refresh_at_) return *cached_;

  absl::StatusOr<std::string> roles = imds_->Get("meta-data/iam/security-credentials/");
  if (!roles.ok()) {
    if (absl::IsNotFound(roles.status())) return absl::NotFoundError("the instance has no IAM role");
    return roles.status();
  }
  std::string role(absl::StripAsciiWhitespace(absl::string_view(*roles).substr(0, roles->find('\n'))));
  if (role.empty()) return absl::NotFoundError("the instance has no IAM role");
  ASSIGN_OR_RETURN(std::string doc, imds_->Get(absl::StrCat("meta-data/iam/security-credentials/", role)));
  absl::StatusOr<json::Json> j = json::ParseObject(doc, "IMDS role credentials");
  if (!j.ok()) return absl::UnavailableError(j.status().message());
  // A field of another type is an error (nlohmann's value() would throw).
  std::string code, expiration;
  AwsCredentials c{.source = "imds"};
  for (auto [field, out] : {std::pair{"Code", &code}, std::pair{"AccessKeyId", &c.access_key_id},
                            std::pair{"SecretAccessKey", &c.secret_access_key}, std::pair{"Token", &c.session_token},
                            std::pair{"Expiration", &expiration}}) {
    absl::StatusOr<std::string> v = json::GetString(*j, field);
    if (!v.ok()) return absl::UnavailableError(absl::StrCat("IMDS role credentials: ", v.status().message()));
    *out = *std::move(v);
  }
  if (!code.empty() && code != "Success") {
    return absl::UnavailableError(absl::StrCat("IMDS role credentials: Code ", QuoteInput(code)));
  }
  if (c.access_key_id.empty() || c.secret_access_key.empty()) {
    return absl::UnavailableError("IMDS role credentials lack AccessKeyId or SecretAccessKey");
  }
  // Temporary credentials kept past an Expiration we could not read would fail
  // every AWS call once they lapse: an unreadable one is an error, a missing
  // one is fetched again every kRefreshUndated.
  if (!expiration.empty()) {
    absl::Time exp;
    std::string err;
    if (!absl::ParseTime(absl::RFC3339_full, expiration, &exp, &err)) {
      return absl::UnavailableError(
          absl::StrCat("IMDS role credentials: Expiration ", QuoteInput(expiration), " is not an RFC 3339 time"));
    }
    c.expiration = exp;
  }
  cached_ = c;
  refresh_at_ = c.expiration ? *c.expiration - kRefreshMargin : now + kRefreshUndated;
  return c;
}

absl::StatusOr<AwsCredentials> ChainCredentialsProvider::Get() {
  std::vector<std::string> tried;
  for (const auto& s : sources_) {
    absl::StatusOr<AwsCredentials> c = s->Get();
    if (c.ok() || !absl::IsNotFound(c.status())) return c;
    tried.push_back(std::string(c.status().message()));
  }
  return absl::UnauthenticatedError(absl::StrCat("no AWS credentials found (", absl::StrJoin(tried, "; "), ")"));
}

std::unique_ptr<AwsCredentialsProvider> DefaultAwsCredentialsChain(ImdsClient* imds, const Clock* clock) {
  std::vector<std::unique_ptr<AwsCredentialsProvider>> v;
  v.push_back(std::make_unique<EnvCredentialsProvider>());
  v.push_back(std::make_unique<SharedFileCredentialsProvider>());
  v.push_back(std::make_unique<ImdsRoleCredentialsProvider>(imds, clock));
  return std::make_unique<ChainCredentialsProvider>(std::move(v));
}

}  // namespace weft::cloud
