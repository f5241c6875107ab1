// The GCE fake checked with the real HTTP client: what it demands of a client
// (token, Metadata-Flavor, request shapes) and what it answers (Google's error
// format, operations, pages). The backend tests rely on all of this.

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "agent/cloud/http_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cloud/fake_gce.h"

namespace weft::testing {
namespace {

using Json = nlohmann::json;
using ::testing::HasSubstr;

class GceFakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FakeGce::Options o;
    o.clock = &clock_;
    o.max_page_size = 2;
    o.polls_until_done = 2;
    o.route_quota = 3;
    fake_ = std::make_unique<FakeGce>(o);
    ASSERT_TRUE(fake_->Start().ok());
    metadata_ = fake_->AddInstance("zone-a", "vm-1");
  }

  cloud::HttpResponse Do(const std::string& method, const std::string& url, std::string body = "",
                         std::vector<std::pair<std::string, std::string>> headers = {}) {
    cloud::HttpRequest req;
    req.method = method;
    req.url = url;
    req.body = std::move(body);
    req.headers = std::move(headers);
    auto r = http_->Do(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : cloud::HttpResponse{};
  }
  std::string Token() {
    auto r = Do("GET", metadata_ + "/computeMetadata/v1/instance/service-accounts/default/token", "",
                {{"Metadata-Flavor", "Google"}});
    return Json::parse(r.body)["access_token"].get<std::string>();
  }
  cloud::HttpResponse Api(const std::string& method, const std::string& path, const std::string& token,
                          std::string body = "") {
    std::vector<std::pair<std::string, std::string>> h = {{"Authorization", "Bearer " + token}};
    if (!body.empty()) h.emplace_back("Content-Type", "application/json");
    return Do(method, absl::StrCat(fake_->api_endpoint(), "/projects/weft-test/", path), std::move(body), h);
  }
  std::string RouteBody(const std::string& name, const std::string& dest) {
    return Json{{"name", name},
                {"network", fake_->NetworkUrl()},
                {"destRange", dest},
                {"priority", 1000},
                {"nextHopInstance", FakeGce::InstanceUrl("weft-test", "zone-a", "vm-1")},
                {"description", "d"}}
        .dump();
  }
  // Inserts and waits the operation out.
  void Insert(const std::string& token, const std::string& name, const std::string& dest) {
    auto r = Api("POST", "global/routes", token, RouteBody(name, dest));
    ASSERT_EQ(r.status, 200) << r.body;
    const std::string op = Json::parse(r.body)["name"];
    while (Json::parse(Api("POST", "global/operations/" + op + "/wait", token).body)["status"] != "DONE") {
    }
  }

  SimulatedClock clock_;
  std::unique_ptr<FakeGce> fake_;
  std::unique_ptr<cloud::HttpClient> http_ = cloud::NewCurlHttpClient();
  std::string metadata_;
};

TEST_F(GceFakeTest, MetadataNeedsTheFlavorHeader) {
  auto r = Do("GET", metadata_ + "/computeMetadata/v1/project/project-id");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(fake_->Count("no_flavor"), 1);
  r = Do("GET", metadata_ + "/computeMetadata/v1/instance/zone", "", {{"Metadata-Flavor", "Google"}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "projects/123456789012/zones/zone-a");
  EXPECT_EQ(r.Header("Metadata-Flavor"), "Google");
}

TEST_F(GceFakeTest, ApiNeedsAValidUnexpiredToken) {
  auto r = Api("GET", "global/routes", "made-up");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(Json::parse(r.body)["error"]["code"], 401);
  const std::string token = Token();
  EXPECT_EQ(Api("GET", "global/routes", token).status, 200);
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(Api("GET", "global/routes", token).status, 401);
  const std::string fresh = Token();
  EXPECT_EQ(Api("GET", "global/routes", fresh).status, 200);
  fake_->RevokeTokens();
  EXPECT_EQ(Api("GET", "global/routes", fresh).status, 401);
  EXPECT_EQ(fake_->Count("unauthorized"), 3);
}

TEST_F(GceFakeTest, InsertIsAnOperationDoneAfterPolls) {
  const std::string token = Token();
  auto r = Api("POST", "global/routes", token, RouteBody("r-1", "10.1.1.0/24"));
  ASSERT_EQ(r.status, 200) << r.body;
  Json op = Json::parse(r.body);
  EXPECT_EQ(op["status"], "RUNNING");
  EXPECT_TRUE(fake_->Routes().empty());  // not before the operation is done
  const std::string wait = "global/operations/" + op["name"].get<std::string>() + "/wait";
  EXPECT_EQ(Json::parse(Api("POST", wait, token).body)["status"], "RUNNING");
  EXPECT_EQ(Json::parse(Api("POST", wait, token).body)["status"], "DONE");
  ASSERT_EQ(fake_->Routes().size(), 1u);
  EXPECT_EQ(fake_->Routes()[0].dest_range, "10.1.1.0/24");
  // The list answers with full URLs, as GCE does.
  Json list = Json::parse(Api("GET", "global/routes", token).body);
  EXPECT_EQ(list["items"][0]["nextHopInstance"],
            "https://www.googleapis.com/compute/v1/projects/weft-test/zones/zone-a/instances/vm-1");
  EXPECT_EQ(Api("POST", "global/routes", token, RouteBody("r-1", "10.1.9.0/24")).status, 409);
}

TEST_F(GceFakeTest, RefusesMalformedInserts) {
  const std::string token = Token();
  Json body = Json::parse(RouteBody("r-1", "10.1.1.0/24"));
  body["nextHop"] = "x";
  EXPECT_EQ(Api("POST", "global/routes", token, body.dump()).status, 400);
  EXPECT_EQ(Api("POST", "global/routes", token, RouteBody("R_1", "10.1.1.0/24")).status, 400);
  EXPECT_EQ(Api("POST", "global/routes", token, RouteBody("r-1", "10.1.1.1/24")).status, 400);
  EXPECT_EQ(Api("POST", "global/routes", token, "not json").status, 400);
  EXPECT_TRUE(fake_->Routes().empty());
}

TEST_F(GceFakeTest, UnknownNextHopFailsInTheOperation) {
  const std::string token = Token();
  Json body = Json::parse(RouteBody("r-1", "10.1.1.0/24"));
  body["nextHopInstance"] = FakeGce::InstanceUrl("weft-test", "zone-a", "nobody");
  Json op = Json::parse(Api("POST", "global/routes", token, body.dump()).body);
  const std::string get = "global/operations/" + op["name"].get<std::string>();
  Api("GET", get, token);
  op = Json::parse(Api("GET", get, token).body);
  EXPECT_EQ(op["status"], "DONE");
  EXPECT_EQ(op["error"]["errors"][0]["code"], "RESOURCE_NOT_FOUND");
  EXPECT_TRUE(fake_->Routes().empty());
}

TEST_F(GceFakeTest, QuotaIsA403InGooglesFormat) {
  const std::string token = Token();
  for (int i = 0; i < 3; ++i) Insert(token, absl::StrCat("r-", i), absl::StrCat("10.1.", i, ".0/24"));
  auto r = Api("POST", "global/routes", token, RouteBody("r-9", "10.1.9.0/24"));
  EXPECT_EQ(r.status, 403);
  Json err = Json::parse(r.body)["error"];
  EXPECT_EQ(err["code"], 403);
  EXPECT_EQ(err["errors"][0]["reason"], "QUOTA_EXCEEDED");
  EXPECT_THAT(err["message"].get<std::string>(), HasSubstr("Quota 'ROUTES' exceeded"));
}

TEST_F(GceFakeTest, ListsArePagedAndFiltered) {
  const std::string token = Token();
  for (int i = 0; i < 3; ++i) Insert(token, absl::StrCat("r-", i), absl::StrCat("10.1.", i, ".0/24"));
  fake_->PutRoute(FakeGceRoute{"foreign", fake_->NetworkUrl(), "10.9.0.0/16", "", 900, "not ours"});
  std::vector<std::string> names;
  std::string page;
  int pages = 0;
  do {
    Json list = Json::parse(
        Api("GET", "global/routes?maxResults=500&filter=description%20%3D%20%22d%22" + (page.empty() ? "" : "&pageToken=" + page),
            token)
            .body);
    for (const Json& item : list["items"]) names.push_back(item["name"]);
    page = list.value("nextPageToken", "");
    ++pages;
  } while (!page.empty());
  EXPECT_EQ(pages, 2);  // the fake pages by 2
  EXPECT_THAT(names, ::testing::ElementsAre("r-0", "r-1", "r-2"));
  EXPECT_EQ(Api("GET", "global/routes?filter=description%20~%20d", token).status, 400);
}

TEST_F(GceFakeTest, InjectedThrottling) {
  const std::string token = Token();
  fake_->InjectErrors(2, 403, "rateLimitExceeded");
  auto r = Api("GET", "global/routes", token);
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(Json::parse(r.body)["error"]["errors"][0]["reason"], "rateLimitExceeded");
  EXPECT_EQ(Api("GET", "global/routes", token).status, 403);
  EXPECT_EQ(Api("GET", "global/routes", token).status, 200);
  EXPECT_EQ(fake_->Count("injected"), 2);
}

}  // namespace
}  // namespace weft::testing
