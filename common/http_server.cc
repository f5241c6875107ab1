#include "common/http_server.h"

#include <errno.h>
#include <httplib.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/check.h"
#include "common/net.h"
#include "common/status_macros.h"

namespace weft {
namespace {

// httplib matches routes as regular expressions; handlers are registered for
// exact paths.
std::string ExactPathPattern(absl::string_view path) {
  std::string out;
  for (char c : path) {
    if (std::strchr(".[]{}()*+?^$|\\", c) != nullptr) out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

void Reply(const HttpResponse& from, httplib::Response& to) {
  to.status = from.status;
  to.set_content(from.body, from.content_type.c_str());
}

}  // namespace

HttpServer::HttpServer(const metrics::Registry* registry)
    : registry_(registry), server_(std::make_unique<httplib::Server>()) {
  // A few workers are plenty for scrapes and probes. A short keep-alive bounds
  // how long Stop() waits for an idle client connection to close.
  server_->new_task_queue = [] { return new httplib::ThreadPool(4); };
  server_->set_keep_alive_timeout(1);
  // Without it a response body written after its headers waits for the client's
  // delayed ACK (~40 ms) on a kept-alive connection.
  server_->set_tcp_nodelay(true);
  // httplib's default also sets SO_REUSEPORT, which would let a second process
  // bind the same port and silently take half the scrapes. SO_REUSEADDR alone
  // still lets a restarted daemon rebind at once.
  server_->set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  AddGet("/healthz", [](const HttpRequest&) { return HttpResponse{200, "text/plain; charset=utf-8", "ok\n"}; });
  AddGet("/readyz", [this](const HttpRequest&) { return Ready(); });
  if (registry_ != nullptr) {
    AddGet("/metrics", [this](const HttpRequest&) {
      return HttpResponse{200, std::string(kMetricsContentType), registry_->Serialize()};
    });
  }
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::AddGet(absl::string_view path, HttpHandler handler) {
  {
    absl::MutexLock l(&mu_);
    WEFT_CHECK(!started_ && !stopped_, "HttpServer::AddGet after Start");
  }
  server_->Get(ExactPathPattern(path),
               [handler = std::move(handler)](const httplib::Request& req, httplib::Response& res) {
                 HttpRequest r;
                 r.path = req.path;
                 r.params.insert(req.params.begin(), req.params.end());
                 Reply(handler(r), res);
               });
}

void HttpServer::SetReadinessCheck(std::function<absl::Status()> check) {
  auto shared = std::make_shared<const std::function<absl::Status()>>(std::move(check));
  absl::MutexLock l(&mu_);
  readiness_ = std::move(shared);
}

void HttpServer::SetReady() {
  SetReadinessCheck([] { return absl::OkStatus(); });
}

void HttpServer::SetNotReady(absl::string_view reason) {
  SetReadinessCheck([status = absl::UnavailableError(reason)] { return status; });
}

HttpResponse HttpServer::Ready() const {
  std::shared_ptr<const std::function<absl::Status()>> check;
  {
    absl::MutexLock l(&mu_);
    check = readiness_;
  }
  // The check runs without the lock: it may be slow or call back into us.
  const absl::Status st = check != nullptr ? (*check)() : absl::UnavailableError("starting");
  if (st.ok()) return HttpResponse{200, "text/plain; charset=utf-8", "ok\n"};
  return HttpResponse{503, "text/plain; charset=utf-8", absl::StrCat("not ready: ", st.message(), "\n")};
}

absl::Status HttpServer::Start(absl::string_view host_port) {
  ASSIGN_OR_RETURN(const HostPort hp, ParseHostPort(host_port));
  absl::MutexLock l(&mu_);
  if (started_ || stopped_) return absl::FailedPreconditionError("HTTP server already started");
  const std::string host = hp.host.empty() ? "0.0.0.0" : hp.host;
  errno = 0;
  int port = hp.port;
  if (port == 0) {
    port = server_->bind_to_any_port(host);
  } else if (!server_->bind_to_port(host, port)) {
    port = -1;
  }
  if (port <= 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen for HTTP on ", hp.ToString(),
                                               errno != 0 ? absl::StrCat(": ", std::strerror(errno)) : ""));
  }
  started_ = true;
  port_ = port;
  thread_ = std::thread([this] {
    server_->listen_after_bind();
    loop_exited_.store(true);
  });
  // httplib's stop() is a no-op until the accept loop runs; wait for it so that
  // a Stop() right after Start() cannot miss it and hang in join().
  while (!server_->is_running() && !loop_exited_.load()) absl::SleepFor(absl::Milliseconds(1));
  return absl::OkStatus();
}

int HttpServer::port() const {
  absl::MutexLock l(&mu_);
  return port_;
}

void HttpServer::Stop() {
  {
    absl::MutexLock l(&mu_);
    if (stopped_) return;
    stopped_ = true;
    if (!started_) return;
  }
  server_->stop();
  thread_.join();
}

}  // namespace weft
