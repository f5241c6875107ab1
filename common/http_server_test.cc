#include "common/http_server.h"

#include <httplib.h>

#include <atomic>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace weft {
namespace {

using ::testing::HasSubstr;

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_.AddCounter("weft_test_events_total", "Events.").Get().Inc(7);
    ASSERT_TRUE(server_.Start("127.0.0.1:0").ok());
    ASSERT_GT(server_.port(), 0);
  }
  httplib::Result Get(const std::string& path) {
    httplib::Client client("127.0.0.1", server_.port());
    client.set_connection_timeout(5);
    return client.Get(path.c_str());
  }

  metrics::Registry registry_;
  HttpServer server_{&registry_};
};

TEST_F(HttpServerTest, ServesHealthz) {
  httplib::Result res = Get("/healthz");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "ok\n");
}

TEST_F(HttpServerTest, ServesMetrics) {
  httplib::Result res = Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(res->body, registry_.Serialize());
  EXPECT_THAT(res->body, HasSubstr("weft_test_events_total 7\n"));
}

TEST_F(HttpServerTest, ReadyzFollowsTheReadinessCheck) {
  httplib::Result res = Get("/readyz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_EQ(res->body, "not ready: starting\n");

  server_.SetReady();
  res = Get("/readyz");
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "ok\n");

  server_.SetNotReady("subnet.env not written");
  res = Get("/readyz");
  EXPECT_EQ(res->status, 503);
  EXPECT_EQ(res->body, "not ready: subnet.env not written\n");

  std::atomic<bool> connected{false};
  server_.SetReadinessCheck([&] {
    return connected ? absl::OkStatus() : absl::UnavailableError("controller unreachable");
  });
  EXPECT_EQ(Get("/readyz")->body, "not ready: controller unreachable\n");
  connected = true;
  EXPECT_EQ(Get("/readyz")->status, 200);
}

TEST_F(HttpServerTest, UnknownPathsAre404) {
  httplib::Result res = Get("/nope");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(Get("/healthzz")->status, 404);
}

TEST(HttpServerHandlersTest, ServesAddedHandlersOnExactPaths) {
  HttpServer server(nullptr);
  server.AddGet("/debug/leases.json", [](const HttpRequest& req) {
    std::string body = absl::StrCat("path=", req.path);
    for (const auto& [k, v] : req.params) absl::StrAppend(&body, " ", k, "=", v);
    return HttpResponse{202, "application/json", body};
  });
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
  httplib::Client client("127.0.0.1", server.port());
  httplib::Result res = client.Get("/debug/leases.json?node=n1&limit=5");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 202);
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(res->body, "path=/debug/leases.json limit=5 node=n1");
  EXPECT_EQ(client.Get("/debug/leasesXjson")->status, 404);  // '.' is not a wildcard
  EXPECT_EQ(client.Get("/metrics")->status, 404);            // no registry, no /metrics
  EXPECT_EQ(client.Get("/healthz")->status, 200);
}

TEST(HttpServerLifecycleTest, StartErrors) {
  HttpServer a(nullptr);
  EXPECT_EQ(a.Start("127.0.0.1").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(a.Start("127.0.0.1:99999").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(a.port(), 0);
  ASSERT_TRUE(a.Start("127.0.0.1:0").ok());
  EXPECT_EQ(a.Start("127.0.0.1:0").code(), absl::StatusCode::kFailedPrecondition);

  HttpServer b(nullptr);
  const absl::Status busy = b.Start(absl::StrCat("127.0.0.1:", a.port()));
  EXPECT_EQ(busy.code(), absl::StatusCode::kUnavailable) << busy;
  EXPECT_THAT(std::string(busy.message()), HasSubstr(absl::StrCat("cannot listen for HTTP on 127.0.0.1:", a.port())));
  // A failed bind may be retried elsewhere.
  EXPECT_TRUE(b.Start("127.0.0.1:0").ok());
}

TEST(HttpServerLifecycleTest, StopJoinsAndIsIdempotent) {
  HttpServer s(nullptr);
  ASSERT_TRUE(s.Start("127.0.0.1:0").ok());
  const int port = s.port();
  httplib::Client client("127.0.0.1", port);
  ASSERT_TRUE(client.Get("/healthz"));
  s.Stop();
  s.Stop();
  httplib::Client after("127.0.0.1", port);
  after.set_connection_timeout(1);
  EXPECT_FALSE(after.Get("/healthz"));  // nothing listens any more
  EXPECT_EQ(s.Start("127.0.0.1:0").code(), absl::StatusCode::kFailedPrecondition);
}

TEST(HttpServerLifecycleTest, StopRightAfterStartAndWithoutStart) {
  for (int i = 0; i < 20; ++i) {
    HttpServer s(nullptr);
    ASSERT_TRUE(s.Start("127.0.0.1:0").ok());
    s.Stop();
  }
  HttpServer never_started(nullptr);
  never_started.Stop();
  HttpServer destroyed_running(nullptr);
  ASSERT_TRUE(destroyed_running.Start("127.0.0.1:0").ok());
}

TEST(HttpServerLifecycleTest, ListensOnIPv6Loopback) {
  HttpServer s(nullptr);
  const absl::Status st = s.Start("[::1]:0");
  if (absl::IsUnavailable(st)) GTEST_SKIP() << "no IPv6 loopback here: " << st;
  ASSERT_TRUE(st.ok()) << st;
  httplib::Client client("::1", s.port());
  httplib::Result res = client.Get("/healthz");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
}

}  // namespace
}  // namespace weft
