#include "agent/cloud/http_client.h"

#include <httplib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace weft::cloud {
namespace {

// A real HTTP server on loopback, so the real libcurl client is what is tested.
class LocalServer {
 public:
  LocalServer() {
    port_ = srv_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { srv_.listen_after_bind(); });
    EXPECT_TRUE(Eventually([this] { return srv_.is_running(); })) << "the local server did not start";
  }
  ~LocalServer() {
    srv_.stop();
    thread_.join();
  }
  httplib::Server& srv() { return srv_; }
  std::string url(absl::string_view path) const { return absl::StrCat("http://127.0.0.1:", port_, path); }

 private:
  httplib::Server srv_;
  int port_ = 0;
  std::thread thread_;
};

TEST(CurlHttpClientTest, PostSendsBodyAndHeadersAndReadsAnswer) {
  LocalServer s;
  s.srv().Post("/echo", [](const httplib::Request& req, httplib::Response& res) {
    res.status = 201;
    res.set_header("X-Method", req.method);
    res.set_header("X-Got-Header", req.get_header_value("X-Custom"));
    res.set_content("got:" + req.body, "text/plain");
  });
  auto client = NewCurlHttpClient();
  HttpRequest req{.method = "POST", .url = s.url("/echo"), .headers = {{"X-Custom", "v1"}}, .body = "a=b&c=d"};
  absl::StatusOr<HttpResponse> r = client->Do(req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->body, "got:a=b&c=d");
  EXPECT_EQ(r->Header("x-method"), "POST");
  EXPECT_EQ(r->Header("X-GOT-HEADER"), "v1");  // lookup ignores case
  EXPECT_EQ(r->Header("absent"), "");
  for (const auto& [k, v] : r->headers) EXPECT_EQ(k, absl::AsciiStrToLower(k));
}

TEST(CurlHttpClientTest, EmptyPutCarriesContentLengthZeroAndDeleteWorks) {
  LocalServer s;
  s.srv().Put("/token", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content(req.has_header("Content-Length") ? "len=" + req.get_header_value("Content-Length") : "nolen",
                    "text/plain");
  });
  s.srv().Delete("/thing", [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
  s.srv().Get("/missing", [](const httplib::Request&, httplib::Response& res) { res.status = 404; });
  auto client = NewCurlHttpClient();
  for (int i = 0; i < 3; ++i) {  // handles are reused: nothing of one request leaks into the next
    auto put = client->Do({.method = "PUT", .url = s.url("/token")});
    ASSERT_TRUE(put.ok()) << put.status();
    EXPECT_EQ(put->body, "len=0");
    auto del = client->Do({.method = "DELETE", .url = s.url("/thing")});
    ASSERT_TRUE(del.ok()) << del.status();
    EXPECT_EQ(del->status, 204);
    auto get = client->Do({.url = s.url("/missing")});
    ASSERT_TRUE(get.ok()) << get.status();  // an HTTP error status is still a transport success
    EXPECT_EQ(get->status, 404);
  }
}

TEST(CurlHttpClientTest, TimeoutIsDeadlineExceeded) {
  absl::Notification client_gave_up;  // outlives the server and its handler
  LocalServer s;
  s.srv().Get("/slow", [&](const httplib::Request&, httplib::Response& res) {
    // Stalls until the client has given up (bounded, so a client that never
    // does gets "late" and fails the test rather than hanging it).
    client_gave_up.WaitForNotificationWithTimeout(absl::Seconds(10));
    res.set_content("late", "text/plain");
  });
  auto client = NewCurlHttpClient();
  auto r = client->Do({.url = s.url("/slow"), .timeout = absl::Milliseconds(150)});
  client_gave_up.Notify();
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsDeadlineExceeded(r.status())) << r.status();
}

TEST(CurlHttpClientTest, RefusedConnectionIsUnavailable) {
  // A port we bound and closed: nothing listens there.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  auto client = NewCurlHttpClient();
  auto r = client->Do({.url = absl::StrCat("http://127.0.0.1:", ntohs(a.sin_port), "/")});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
}

TEST(CurlHttpClientTest, BadUrlAndMethodAreInvalidArgument) {
  auto client = NewCurlHttpClient();
  EXPECT_TRUE(absl::IsInvalidArgument(client->Do({.url = "gopher://127.0.0.1/"}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(client->Do({.method = "PATCH", .url = "http://127.0.0.1/"}).status()));
}

// Answers from a script, to drive DoWithRetry.
class ScriptedClient : public HttpClient {
 public:
  std::vector<absl::StatusOr<HttpResponse>> script;
  int calls = 0;
  absl::StatusOr<HttpResponse> Do(const HttpRequest&) override { return script.at(calls++); }
};

HttpResponse Status(int code, std::string body = "") {
  HttpResponse r;
  r.status = code;
  r.body = std::move(body);
  return r;
}

TEST(DoWithRetryTest, RetriesThrottlingAndUnavailableThenSucceeds) {
  ScriptedClient c;
  c.script = {Status(503), Status(429), absl::UnavailableError("refused"),
              Status(400, "<Code>RequestLimitExceeded</Code>"), Status(200, "ok")};
  SleepAdvancingClock clock;
  int retries = 0;
  RetryPolicy p{.max_attempts = 6, .initial = absl::Milliseconds(100), .max = absl::Milliseconds(300)};
  auto r = DoWithRetry(
      c, {}, p, clock, [](const HttpResponse& r) { return absl::StrContains(r.body, "RequestLimitExceeded"); },
      [&] { ++retries; });
  const std::vector<absl::Duration> slept = clock.sleeps();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->body, "ok");
  EXPECT_EQ(c.calls, 5);
  ASSERT_EQ(slept.size(), 4u);
  EXPECT_EQ(retries, 4);
  // Jittered exponential: in [d/2, d] for d = 100, 200, 300 (capped), 300 ms.
  const int64_t caps[] = {100, 200, 300, 300};
  for (int i = 0; i < 4; ++i) {
    EXPECT_GE(slept[i], absl::Milliseconds(caps[i]) / 2) << i;
    EXPECT_LE(slept[i], absl::Milliseconds(caps[i])) << i;
  }
}

TEST(DoWithRetryTest, GivesUpAfterMaxAttemptsWithLastAnswer) {
  ScriptedClient c;
  c.script = {Status(503, "1"), Status(503, "2"), Status(503, "3")};
  SleepAdvancingClock clock;
  auto r = DoWithRetry(c, {}, RetryPolicy{.max_attempts = 3}, clock);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->body, "3");
  EXPECT_EQ(clock.sleeps().size(), 2u);
}

TEST(DoWithRetryTest, DoesNotRetryOtherErrors) {
  ScriptedClient c;
  c.script = {absl::DeadlineExceededError("slow"), Status(200)};
  SleepAdvancingClock clock;
  auto r = DoWithRetry(c, {}, RetryPolicy{}, clock);
  EXPECT_TRUE(absl::IsDeadlineExceeded(r.status()));
  EXPECT_EQ(c.calls, 1);
  ScriptedClient c2;
  c2.script = {Status(400, "<Code>InvalidParameterValue</Code>")};
  auto r2 = DoWithRetry(c2, {}, RetryPolicy{}, clock);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->status, 400);
  EXPECT_EQ(c2.calls, 1);
  EXPECT_TRUE(clock.sleeps().empty());
}

TEST(BackoffDelayTest, DoublesUpToMax) {
  RetryPolicy p{.initial = absl::Milliseconds(200), .max = absl::Seconds(1)};
  EXPECT_EQ(BackoffDelay(p, 1, 1), absl::Milliseconds(200));
  EXPECT_EQ(BackoffDelay(p, 1, 0), absl::Milliseconds(100));
  EXPECT_EQ(BackoffDelay(p, 2, 0), absl::Milliseconds(200));
  EXPECT_EQ(BackoffDelay(p, 3, 0), absl::Milliseconds(400));
  EXPECT_EQ(BackoffDelay(p, 4, 0), absl::Milliseconds(500));  // 800 capped at 1000 -> [500, 1000]
  EXPECT_EQ(BackoffDelay(p, 40, 0), absl::Milliseconds(500));
}

}  // namespace
}  // namespace weft::cloud
