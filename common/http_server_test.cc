#include "common/http_server.h"

#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/metrics.h"
#include "common/testing.h"
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

// A raw loopback client, for requests httplib would not send.
int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Everything the server sends until it closes or `deadline` passes.
std::string ReadAll(int fd, absl::Time deadline) {
  std::string out;
  char buf[4096];
  while (absl::Now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, n);
  }
  return out;
}

// True when the peer closed `fd` (recv sees EOF or a reset) before `deadline`.
bool ClosedByPeer(int fd, absl::Time deadline) {
  char buf[256];
  while (absl::Now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return true;
  }
  return false;
}

// The issue-14 attack: many connections trickling a request a byte at a time.
// /healthz and /metrics must still answer promptly, and each trickler is cut
// off once its whole-request deadline passes even though it keeps sending.
TEST(HttpServerSlowClientsTest, SlowLorisDoesNotStarveHealthzOrMetrics) {
  metrics::Registry registry;
  HttpServer::Options o;
  o.max_connections = 8;
  o.read_timeout = absl::Seconds(2);
  HttpServer server(&registry, o);
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
  const int port = server.port();

  std::atomic<bool> stop{false};
  std::atomic<int> cut_off{0};
  std::vector<std::thread> slow;
  for (int i = 0; i < 16; ++i) {
    slow.emplace_back([&, port] {
      const int fd = Connect(port);
      if (fd < 0) return;
      const std::string req = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ";
      const absl::Time end = absl::Now() + absl::Seconds(20);
      for (size_t k = 0; !stop.load() && absl::Now() < end; ++k) {
        const char c = k < req.size() ? req[k] : 'a';
        if (send(fd, &c, 1, MSG_NOSIGNAL) != 1) {
          cut_off++;
          break;
        }
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 100) > 0) {  // the server closed us (EOF/reset)
          char b;
          if (recv(fd, &b, 1, 0) <= 0) {
            cut_off++;
            break;
          }
        }
      }
      close(fd);
    });
  }
  // Every trickler is in: 16 on 8 slots means 8 evicted to make room (or cut
  // off by the read timeout), and the 8 left hold every slot.
  ASSERT_TRUE(Eventually([&] { return cut_off.load() >= 8; })) << cut_off.load() << " cut off";
  for (int round = 0; round < 5; ++round) {
    for (const char* path : {"/healthz", "/metrics"}) {
      const absl::Time t0 = absl::Now();
      httplib::Client client("127.0.0.1", port);
      client.set_connection_timeout(2);
      client.set_read_timeout(2);
      httplib::Result res = client.Get(path);
      ASSERT_TRUE(res) << path << " round " << round << ": " << httplib::to_string(res.error());
      EXPECT_EQ(res->status, 200) << path;
      EXPECT_LT(absl::Now() - t0, absl::Seconds(1)) << path << " answered slowly";
    }
  }
  // Every trickler is disconnected (evicted or timed out) although it never stops sending.
  Eventually([&] { return cut_off.load() >= 16; });
  EXPECT_EQ(cut_off.load(), 16);
  stop = true;
  for (auto& t : slow) t.join();
}

TEST(HttpServerSlowClientsTest, SlowReadinessCheckDoesNotDelayHealthz) {
  HttpServer::Options o;
  o.workers = 1;
  HttpServer server(nullptr, o);
  absl::Notification release;
  server.SetReadinessCheck([&] {
    release.WaitForNotificationWithTimeout(absl::Seconds(10));
    return absl::OkStatus();
  });
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
  std::thread readyz([&] {
    httplib::Client c("127.0.0.1", server.port());
    c.set_read_timeout(15);
    c.Get("/readyz");
  });
  httplib::Client client("127.0.0.1", server.port());
  client.set_read_timeout(2);
  const absl::Time t0 = absl::Now();
  for (int i = 0; i < 3; ++i) {
    httplib::Result res = client.Get("/healthz");
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 200);
  }
  EXPECT_LT(absl::Now() - t0, absl::Seconds(1));
  release.Notify();
  readyz.join();
}

TEST(HttpServerSlowClientsTest, ResponseToAClientThatNeverReadsIsDropped) {
  metrics::Registry registry;
  for (int i = 0; i < 10000; ++i) {  // ~10 MB: more than loopback's socket buffers hold
    registry.AddCounter(absl::StrCat("weft_test_padding_", i, "_total"), std::string(1000, 'h')).Get().Inc();
  }
  const size_t full = registry.Serialize().size();
  HttpServer::Options o;
  o.write_timeout = absl::Milliseconds(500);
  HttpServer server(&registry, o);
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
  // Tiny receive buffers, many pipelined scrapes, never read: the server's send blocks.
  std::vector<int> fds;
  for (int i = 0; i < 4; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(server.port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    const std::string req = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_EQ(send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
    fds.push_back(fd);
  }
  httplib::Client client("127.0.0.1", server.port());
  client.set_read_timeout(2);
  EXPECT_EQ(client.Get("/healthz")->status, 200);
  // Once each answer has started (the handler may be slow on a loaded machine), the
  // clients read nothing for twice the write timeout: the server gives up on them,
  // so draining now ends in EOF/reset long before the whole body could arrive.
  for (int fd : fds) {
    pollfd p{fd, POLLIN, 0};
    ASSERT_EQ(poll(&p, 1, 30000), 1) << "no answer started";
  }
  // A duration, not a wait: the server's own wall-clock write timeout must pass
  // while nobody reads, and nothing outside the server shows that it has (2x,
  // for the poll loop to notice on a loaded machine).
  absl::SleepFor(2 * o.write_timeout);
  for (int fd : fds) {
    const std::string got = ReadAll(fd, absl::Now() + absl::Seconds(5));
    EXPECT_LT(got.size(), full);
    close(fd);
  }
}

TEST(HttpServerProtocolTest, HostileRequestHeads) {
  HttpServer server(nullptr);
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
  const auto exchange = [&](const std::string& bytes) {
    const int fd = Connect(server.port());
    EXPECT_GE(fd, 0);
    send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    shutdown(fd, SHUT_WR);
    std::string got = ReadAll(fd, absl::Now() + absl::Seconds(5));
    close(fd);
    return got;
  };
  EXPECT_THAT(exchange("GET /healthz HTTP/1.1\r\n\r\n"), HasSubstr("HTTP/1.1 200 OK"));
  EXPECT_THAT(exchange("POST /healthz HTTP/1.1\r\n\r\n"), HasSubstr("HTTP/1.1 405"));
  EXPECT_THAT(exchange("garbage\r\n\r\n"), HasSubstr("HTTP/1.1 400"));
  EXPECT_THAT(exchange("GET /" + std::string(20000, 'a') + " HTTP/1.1\r\n\r\n"), HasSubstr("HTTP/1.1 431"));
  EXPECT_THAT(exchange("GET /health%7a HTTP/1.1\r\n\r\n"), HasSubstr("HTTP/1.1 200 OK"));
  // Two pipelined requests on one connection: two answers, in order.
  const std::string two = exchange("GET /healthz HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\n");
  EXPECT_THAT(two, HasSubstr("200 OK"));
  EXPECT_THAT(two, HasSubstr("404 Not Found"));
  EXPECT_LT(two.find("200 OK"), two.find("404 Not Found"));
  // An idle connection is closed after the read timeout.
  HttpServer::Options o;
  o.read_timeout = absl::Milliseconds(300);
  HttpServer quick(nullptr, o);
  ASSERT_TRUE(quick.Start("127.0.0.1:0").ok());
  const int idle = Connect(quick.port());
  EXPECT_TRUE(ClosedByPeer(idle, absl::Now() + absl::Seconds(5)));
  close(idle);
}

}  // namespace
}  // namespace weft
