// IMDSv2 and the AWS credentials chain, through the real libcurl client,
// against FakeAws's metadata service on 127.0.0.1.

#include <cstdio>
#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/cloud/aws_credentials.h"
#include "agent/cloud/http_client.h"
#include "agent/cloud/imds.h"
#include "common/clock.h"
#include "common/testing.h"
#include "gtest/gtest.h"
#include "tests/cloud/fake_ec2.h"

namespace weft::cloud {
namespace {

using testing::FakeAws;
using testing::FakeRole;

class ImdsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_PROFILE");
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/weft-test-credentials", 1);
  }
  FakeAws fake_;
  std::unique_ptr<HttpClient> http_ = NewCurlHttpClient();
  SleepAdvancingClock clock_;  // IMDS retry pauses move it
};

TEST_F(ImdsTest, FakeRefusesGetsWithoutAToken) {
  // IMDSv1 style: the fake, like an instance that requires v2, says 401.
  auto r = http_->Do({.url = fake_.endpoint() + "/latest/meta-data/instance-id"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 401);
  auto no_ttl = http_->Do({.method = "PUT", .url = fake_.endpoint() + "/latest/api/token"});
  ASSERT_TRUE(no_ttl.ok());
  EXPECT_EQ(no_ttl->status, 400);
}

TEST_F(ImdsTest, OneTokenServesManyGetsAndA401FetchesANewOne) {
  ImdsClient imds(http_.get(), fake_.endpoint() + "/", &clock_);
  for (int i = 0; i < 3; ++i) {
    auto id = imds.Get("meta-data/instance-id");
    ASSERT_TRUE(id.ok()) << id.status();
    EXPECT_EQ(*id, "i-0a1b2c3d4e5f60001");
  }
  EXPECT_EQ(fake_.ImdsTokensIssued(), 1);
  fake_.ExpireImdsTokens();  // e.g. IMDS restarted
  ASSERT_TRUE(imds.Get("meta-data/mac").ok());
  EXPECT_EQ(fake_.ImdsTokensIssued(), 2);
  EXPECT_EQ(fake_.ImdsUnauthorized(), 1);
  // Past the token's TTL the client asks for a new one before IMDS has to refuse.
  clock_.Advance(absl::Hours(6));
  ASSERT_TRUE(imds.Get("meta-data/mac").ok());
  EXPECT_EQ(fake_.ImdsTokensIssued(), 3);
  EXPECT_EQ(fake_.ImdsUnauthorized(), 1);
  EXPECT_TRUE(absl::IsNotFound(imds.Get("meta-data/nothing-here").status()));
}

TEST_F(ImdsTest, IdentityDocument) {
  testing::FakeInstance inst;
  inst.instance_id = "i-0123456789abcdef0";
  inst.region = "eu-central-1";
  fake_.SetInstance(inst);
  ImdsClient imds(http_.get(), fake_.endpoint(), &clock_);
  auto id = imds.Identity();
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->instance_id, "i-0123456789abcdef0");
  EXPECT_EQ(id->region, "eu-central-1");
  EXPECT_EQ(id->private_ip, inst.private_ip);
}

TEST_F(ImdsTest, UnreachableImdsIsUnavailable) {
  ImdsClient imds(http_.get(), "http://127.0.0.1:1", &clock_);
  EXPECT_TRUE(absl::IsUnavailable(imds.Get("meta-data/instance-id").status()));
}

TEST_F(ImdsTest, RoleCredentialsAreCachedAndRefreshedBeforeExpiration) {
  fake_.SetRole({.name = "node-role", .access_key_id = "ASIAONE", .secret_access_key = "s1", .token = "t1",
                 .expiration = clock_.Now() + absl::Hours(1)});
  ImdsClient imds(http_.get(), fake_.endpoint(), &clock_);
  ImdsRoleCredentialsProvider role(&imds, &clock_);
  auto c = role.Get();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->access_key_id, "ASIAONE");
  EXPECT_EQ(c->session_token, "t1");
  EXPECT_EQ(c->source, "imds");
  ASSERT_TRUE(c->expiration.has_value());
  EXPECT_EQ(*c->expiration, clock_.Now() + absl::Hours(1));

  // IMDS rotates the keys; ours are still good for a while.
  fake_.SetRole({.name = "node-role", .access_key_id = "ASIATWO", .secret_access_key = "s2", .token = "t2",
                 .expiration = clock_.Now() + absl::Hours(2)});
  clock_.Advance(absl::Minutes(50));
  EXPECT_EQ(role.Get()->access_key_id, "ASIAONE");
  // Within five minutes of Expiration: fetched again.
  clock_.Advance(absl::Minutes(6));
  EXPECT_EQ(role.Get()->access_key_id, "ASIATWO");
}

TEST_F(ImdsTest, ChainOrderAndErrors) {
  ImdsClient imds(http_.get(), fake_.endpoint(), &clock_);
  auto chain = DefaultAwsCredentialsChain(&imds, &clock_);
  // Nothing anywhere: one error naming every source tried.
  auto none = chain->Get();
  EXPECT_TRUE(absl::IsUnauthenticated(none.status())) << none.status();
  EXPECT_TRUE(absl::StrContains(none.status().message(), "AWS_ACCESS_KEY_ID")) << none.status();
  EXPECT_TRUE(absl::StrContains(none.status().message(), "no IAM role")) << none.status();

  fake_.SetRole({.name = "r", .access_key_id = "ASIAROLE", .secret_access_key = "s", .token = "t",
                 .expiration = clock_.Now() + absl::Hours(6)});
  EXPECT_EQ(chain->Get()->source, "imds");

  const std::string path = absl::StrCat(std::getenv("TEST_TMPDIR"), "/chain-credentials");
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("# comment\n[default]\n aws_access_key_id=AKIDFILE \naws_secret_access_key = sf\naws_session_token=tf\n", f);
  std::fclose(f);
  setenv("AWS_SHARED_CREDENTIALS_FILE", path.c_str(), 1);
  auto file = chain->Get();
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->source, "shared-file");
  EXPECT_EQ(file->access_key_id, "AKIDFILE");
  EXPECT_EQ(file->session_token, "tf");

  setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
  // Half-configured environment: an error, not a silent fallback to the file.
  EXPECT_TRUE(absl::IsInvalidArgument(chain->Get().status()));
  setenv("AWS_SECRET_ACCESS_KEY", "se", 1);
  EXPECT_EQ(chain->Get()->access_key_id, "AKIDENV");
  unsetenv("AWS_ACCESS_KEY_ID");
  unsetenv("AWS_SECRET_ACCESS_KEY");
}

TEST(SharedCredentialsTest, ProfilesAndMissingKeys) {
  constexpr char kText[] =
      "[default]\naws_access_key_id = A\naws_secret_access_key = B\n\n"
      "; another\n[prod]\naws_access_key_id=C\n";
  EXPECT_EQ(ParseSharedCredentials(kText, "default")->secret_access_key, "B");
  EXPECT_TRUE(absl::IsNotFound(ParseSharedCredentials(kText, "prod").status()));  // no secret
  EXPECT_TRUE(absl::IsNotFound(ParseSharedCredentials(kText, "dev").status()));
}

}  // namespace
}  // namespace weft::cloud
