// GceApi against a scripted HttpClient: error mapping, token caching, the
// metadata server's header, operation errors. The same client against a local
// HTTP fake of GCE is exercised in tests/cloud.

#include "agent/backend/gce/gce_api.h"

#include <functional>

#include "absl/strings/match.h"
#include "common/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace weft::agent::gce {
namespace {

using ::testing::HasSubstr;

class ScriptedHttp : public cloud::HttpClient {
 public:
  using Handler = std::function<cloud::HttpResponse(const cloud::HttpRequest&)>;
  explicit ScriptedHttp(Handler h) : handler_(std::move(h)) {}
  absl::StatusOr<cloud::HttpResponse> Do(const cloud::HttpRequest& req) override {
    requests.push_back(req);
    return handler_(req);
  }
  std::vector<cloud::HttpRequest> requests;

 private:
  Handler handler_;
};

cloud::HttpResponse Answer(int status, std::string body, bool flavor = true) {
  cloud::HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  if (flavor) r.headers.emplace_back("metadata-flavor", "Google");
  return r;
}

std::string HeaderOf(const cloud::HttpRequest& req, absl::string_view name) {
  for (const auto& [k, v] : req.headers) {
    if (absl::EqualsIgnoreCase(k, name)) return v;
  }
  return "";
}

// A metadata server handing out tokens "t1", "t2"... valid `ttl_seconds`, and an
// API that answers every call with `api_body`.
struct World {
  int tokens = 0;
  int ttl_seconds = 3600;
  std::string api_body = R"({"items":[]})";
  cloud::HttpResponse Handle(const cloud::HttpRequest& req) {
    if (absl::StrContains(req.url, "/computeMetadata/v1/")) {
      if (HeaderOf(req, "Metadata-Flavor") != "Google") return Answer(403, "missing header");
      if (absl::EndsWith(req.url, "/token")) {
        ++tokens;
        return Answer(200, absl::StrCat(R"({"access_token":"t)", tokens, R"(","expires_in":)", ttl_seconds,
                                        R"(,"token_type":"Bearer"})"));
      }
      if (absl::EndsWith(req.url, "/project-id")) return Answer(200, "proj");
      if (absl::EndsWith(req.url, "/zone")) return Answer(200, "projects/42/zones/europe-west1-b");
      if (absl::EndsWith(req.url, "/name")) return Answer(200, "vm-1");
      if (absl::EndsWith(req.url, "/network")) return Answer(200, "projects/42/networks/vpc-a");
      return Answer(404, "");
    }
    return Answer(200, api_body, false);
  }
};

class GceApiTest : public ::testing::Test {
 protected:
  GceApiTest() : http_([this](const cloud::HttpRequest& r) { return world_.Handle(r); }) {}
  GceApi MakeApi() {
    ApiOptions o;
    o.api_endpoint = "http://api.test/compute/v1";
    o.metadata_endpoint = "http://md.test";
    o.clock = &clock_;
    return GceApi(&http_, o, nullptr);
  }
  World world_;
  SleepAdvancingClock clock_;  // retry pauses move it
  ScriptedHttp http_;
};

TEST(GceApiErrorsTest, MapsGoogleErrorsToCodes) {
  auto err = [](int status, const char* reason) {
    return ApiError(status, absl::StrCat(R"({"error":{"code":)", status, R"(,"message":"m","errors":[{"reason":")",
                                         reason, R"("}]}})"),
                    "POST x");
  };
  EXPECT_EQ(err(403, "QUOTA_EXCEEDED").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(err(403, "quotaExceeded").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(err(403, "rateLimitExceeded").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(err(403, "forbidden").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(err(404, "notFound").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(err(409, "alreadyExists").code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(err(401, "authError").code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(err(400, "invalid").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(err(500, "backendError").code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(err(403, "QUOTA_EXCEEDED").message(), HasSubstr("POST x: HTTP 403 (quotaexceeded): m"));
  EXPECT_THAT(ApiError(502, "<html>bad gateway</html>", "GET y").message(), HasSubstr("bad gateway"));
}

TEST(GceApiErrorsTest, ThrottlingIsRecognised) {
  EXPECT_TRUE(IsThrottled(Answer(429, "")));
  EXPECT_TRUE(IsThrottled(Answer(503, "")));
  EXPECT_TRUE(IsThrottled(Answer(403, R"({"error":{"errors":[{"reason":"userRateLimitExceeded"}]}})")));
  EXPECT_FALSE(IsThrottled(Answer(403, R"({"error":{"errors":[{"reason":"QUOTA_EXCEEDED"}]}})")));
  EXPECT_FALSE(IsThrottled(Answer(500, "")));
}

TEST(GceApiErrorsTest, CanonicalUrls) {
  EXPECT_EQ(CanonicalResourceUrl("https://www.googleapis.com/compute/v1/projects/p/global/networks/n"),
            "projects/p/global/networks/n");
  EXPECT_EQ(CanonicalResourceUrl("projects/p/zones/z/instances/i"), "projects/p/zones/z/instances/i");
  EXPECT_EQ(CanonicalResourceUrl(""), "");
}

TEST_F(GceApiTest, DescribesTheInstanceFromMetadata) {
  GceApi api = MakeApi();
  auto self = api.Instance();
  ASSERT_TRUE(self.ok()) << self.status();
  EXPECT_EQ(self->InstanceUrl(), "projects/proj/zones/europe-west1-b/instances/vm-1");
  EXPECT_EQ(self->NetworkUrl(), "projects/proj/global/networks/vpc-a");
  const size_t asked = http_.requests.size();
  ASSERT_TRUE(api.Instance().ok());
  EXPECT_EQ(http_.requests.size(), asked);  // cached
}

TEST_F(GceApiTest, RefusesAMetadataAnswerWithoutTheFlavorHeader) {
  ScriptedHttp liar([](const cloud::HttpRequest&) { return Answer(200, "proj", /*flavor=*/false); });
  ApiOptions o;
  o.metadata_endpoint = "http://md.test";
  GceApi api(&liar, o, nullptr);
  EXPECT_THAT(api.Instance().status().message(), HasSubstr("Metadata-Flavor"));
}

TEST_F(GceApiTest, TokenIsCachedUntilShortlyBeforeExpiry) {
  GceApi api = MakeApi();
  ASSERT_TRUE(api.ListRoutes("").ok());
  ASSERT_TRUE(api.ListRoutes("").ok());
  EXPECT_EQ(world_.tokens, 1);
  EXPECT_EQ(HeaderOf(http_.requests.back(), "Authorization"), "Bearer t1");
  clock_.Advance(absl::Minutes(58));
  ASSERT_TRUE(api.ListRoutes("").ok());
  EXPECT_EQ(world_.tokens, 1);
  clock_.Advance(absl::Minutes(1) + absl::Seconds(1));  // within the 1 min margin of expiry
  ASSERT_TRUE(api.ListRoutes("").ok());
  EXPECT_EQ(world_.tokens, 2);
  EXPECT_EQ(HeaderOf(http_.requests.back(), "Authorization"), "Bearer t2");
}

TEST_F(GceApiTest, ShortLivedTokenIsUsedForHalfItsLife) {
  world_.ttl_seconds = 60;
  GceApi api = MakeApi();
  ASSERT_TRUE(api.ListRoutes("").ok());
  clock_.Advance(absl::Seconds(29));
  ASSERT_TRUE(api.ListRoutes("").ok());
  EXPECT_EQ(world_.tokens, 1);
  clock_.Advance(absl::Seconds(2));
  ASSERT_TRUE(api.ListRoutes("").ok());
  EXPECT_EQ(world_.tokens, 2);
}

TEST_F(GceApiTest, OperationErrorsNameTheirCodeAndMessage) {
  world_.api_body =
      R"({"name":"op-1","status":"DONE","operationType":"insert","error":{"errors":[{"code":"RESOURCE_NOT_FOUND",)"
      R"("message":"The resource 'projects/p/zones/z/instances/gone' was not found"}]}})";
  GceApi api = MakeApi();
  absl::Status s = api.Wait(Operation{"op-1", "", "weft-x-10-1-2-0-24"});
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("insert of route weft-x-10-1-2-0-24 failed (op-1): RESOURCE_NOT_FOUND"));
  EXPECT_THAT(s.message(), HasSubstr("instances/gone"));
  EXPECT_TRUE(absl::EndsWith(http_.requests.back().url, "/projects/proj/global/operations/op-1/wait"));
  world_.api_body = R"({"name":"op-2","status":"DONE","error":{"errors":[{"code":"QUOTA_EXCEEDED","message":"q"}]}})";
  EXPECT_EQ(api.Wait(Operation{"op-2", "", "r"}).code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(GceApiTest, OperationThatNeverFinishesTimesOut) {
  world_.api_body = R"({"name":"op-1","status":"RUNNING"})";
  GceApi api = MakeApi();
  EXPECT_EQ(api.Wait(Operation{"op-1", "", "r"}).code(), absl::StatusCode::kDeadlineExceeded);
}

}  // namespace
}  // namespace weft::agent::gce
