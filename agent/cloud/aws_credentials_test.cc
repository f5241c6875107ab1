// The instance metadata answers the AWS backends read (the identity document,
// the role's credentials), from a scripted IMDS: well-formed, of another type,
// not JSON, partial. Each wrong answer is a clear error naming the field, never
// a crash (nlohmann's value() threw on a field of another type), and the
// role's credentials are cached until five minutes before they expire.

#include "agent/cloud/aws_credentials.h"

#include <map>
#include <string>

#include "agent/cloud/http_client.h"
#include "agent/cloud/imds.h"
#include "common/clock.h"
#include "gtest/gtest.h"

namespace weft::cloud {
namespace {

// IMDSv2 on a map of paths: a PUT for the token, GETs answered from `pages`
// (404 for any other path); counts the GETs of each path.
class ScriptedImds : public HttpClient {
 public:
  absl::StatusOr<HttpResponse> Do(const HttpRequest& r) override {
    HttpResponse out;
    const std::string path = r.url.substr(r.url.find("/latest/") + 8);
    if (r.method == "PUT" && path == "api/token") {
      out.status = 200;
      out.body = "token";
      return out;
    }
    gets[path]++;
    auto it = pages.find(path);
    out.status = it == pages.end() ? 404 : 200;
    if (it != pages.end()) out.body = it->second;
    return out;
  }
  std::map<std::string, std::string> pages;
  std::map<std::string, int> gets;
};

constexpr char kRolePath[] = "meta-data/iam/security-credentials/";
constexpr char kCredsPath[] = "meta-data/iam/security-credentials/weft-node";
constexpr char kIdentityPath[] = "dynamic/instance-identity/document";

class CloudAnswersTest : public ::testing::Test {
 protected:
  void SetUp() override { http_.pages[kRolePath] = "weft-node\n"; }
  absl::StatusOr<AwsCredentials> Credentials(const std::string& doc) {
    http_.pages[kCredsPath] = doc;
    ImdsRoleCredentialsProvider p(&imds_, &clock_);
    return p.Get();
  }
  std::string Creds(const std::string& expiration_json) {
    return R"({"Code":"Success","AccessKeyId":"AKIDEXAMPLE","SecretAccessKey":"secret","Token":"tok",)"
           R"("Expiration":)" + expiration_json + "}";
  }

  SimulatedClock clock_{absl::FromUnixSeconds(1'790'000'000)};  // 2026-09; the credentials expire 2027-01-15
  ScriptedImds http_;
  ImdsClient imds_{&http_, "http://169.254.169.254", &clock_};
};

TEST_F(CloudAnswersTest, RoleCredentialsAreReadAndCachedUntilFiveMinutesBeforeExpiry) {
  http_.pages[kCredsPath] = Creds(R"("2027-01-15T08:00:00Z")");
  ImdsRoleCredentialsProvider p(&imds_, &clock_);
  auto c = p.Get();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->access_key_id, "AKIDEXAMPLE");
  EXPECT_EQ(c->session_token, "tok");
  ASSERT_TRUE(c->expiration.has_value());
  const absl::Time expiry = *c->expiration;
  ASSERT_TRUE(p.Get().ok());
  EXPECT_EQ(http_.gets[kCredsPath], 1) << "cached";
  clock_.Advance(expiry - absl::Minutes(4) - clock_.Now());
  ASSERT_TRUE(p.Get().ok());
  EXPECT_EQ(http_.gets[kCredsPath], 2) << "refreshed within five minutes of expiry";
}

TEST_F(CloudAnswersTest, RoleCredentialsWithoutExpirationAreFetchedAgainAfterFifteenMinutes) {
  http_.pages[kCredsPath] = Creds("null");
  ImdsRoleCredentialsProvider p(&imds_, &clock_);
  auto c = p.Get();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->expiration.has_value());
  clock_.Advance(absl::Minutes(14));
  ASSERT_TRUE(p.Get().ok());
  EXPECT_EQ(http_.gets[kCredsPath], 1);
  clock_.Advance(absl::Minutes(2));
  ASSERT_TRUE(p.Get().ok());
  EXPECT_EQ(http_.gets[kCredsPath], 2);
}

TEST_F(CloudAnswersTest, RoleCredentialsOfAnotherTypeAreAClearError) {
  struct Case {
    std::string doc;
    std::string names;  // what the error must mention
  };
  const Case cases[] = {
      {R"({"Code":"Success","AccessKeyId":12345,"SecretAccessKey":"s"})", "AccessKeyId"},
      {R"({"Code":"Success","AccessKeyId":"a","SecretAccessKey":{"k":"v"}})", "SecretAccessKey"},
      {R"({"Code":["Success"],"AccessKeyId":"a","SecretAccessKey":"s"})", "Code"},
      {Creds("1800000000"), "Expiration"},
      {Creds(R"("tomorrow")"), "Expiration"},
      {R"({"Code":"Failure","Message":"no"})", "Failure"},
      {R"({"Code":"Success"})", "AccessKeyId"},
      {R"(["AccessKeyId","SecretAccessKey"])", "IMDS role credentials"},
      {"not json at all", "IMDS role credentials"},
      {std::string(100000, '['), "IMDS role credentials"},
  };
  for (const Case& c : cases) {
    auto got = Credentials(c.doc);
    ASSERT_FALSE(got.ok()) << c.doc.substr(0, 80);
    EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable) << got.status();
    EXPECT_NE(got.status().message().find(c.names), std::string::npos)
        << "for " << c.doc.substr(0, 80) << ": " << got.status();
    EXPECT_LT(got.status().message().size(), 400u) << "the error quotes at most a prefix";
  }
}

TEST_F(CloudAnswersTest, NoRoleIsNotFoundSoTheChainMovesOn) {
  http_.pages.erase(kRolePath);
  ImdsRoleCredentialsProvider p(&imds_, &clock_);
  EXPECT_EQ(p.Get().status().code(), absl::StatusCode::kNotFound);
  http_.pages[kRolePath] = "\n";
  EXPECT_EQ(p.Get().status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CloudAnswersTest, IdentityDocumentOfAnotherTypeIsAClearError) {
  http_.pages[kIdentityPath] =
      R"({"instanceId":"i-0123","region":"eu-west-1","availabilityZone":"eu-west-1a",)"
      R"("accountId":"123456789012","privateIp":"10.0.0.5"})";
  auto id = imds_.Identity();
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->region, "eu-west-1");
  EXPECT_EQ(id->private_ip, "10.0.0.5");
  for (const char* doc : {R"({"instanceId":"i-0123","region":7})", R"({"instanceId":null,"region":"eu-west-1"})",
                          R"({"instanceId":"i-0123"})", R"("i-0123")", "{"}) {
    http_.pages[kIdentityPath] = doc;
    auto bad = imds_.Identity();
    ASSERT_FALSE(bad.ok()) << doc;
    EXPECT_NE(bad.status().message().find("identity document"), std::string::npos) << bad.status();
  }
}

}  // namespace
}  // namespace weft::cloud
