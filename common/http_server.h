#pragma once
// The operational HTTP endpoint every Weft binary serves:
//   /metrics  Prometheus text format 0.0.4 from a metrics::Registry
//   /healthz  200 "ok" while the server runs (the process is alive)
//   /readyz   200 "ok" when the readiness check passes, else 503 "not ready: <reason>"
// plus any GET handlers the binary adds (e.g. debug pages).
//
// Hostile or slow clients cannot starve it: one poll loop owns every socket
// (non-blocking), a request must arrive whole within `read_timeout` (not per
// byte), a response must drain within `write_timeout`, an idle kept-alive
// connection closes after `idle_timeout`, and at most `max_connections` are
// open: a new one evicts the oldest connection still sending its request.
// /healthz is answered on the loop itself, so it never waits for a worker; the
// other handlers run on `workers` threads.
//
// Thread-safety: AddGet() only before Start(). SetReadinessCheck(), SetReady(),
// SetNotReady(), port() and Stop() from any thread. Handlers and the readiness
// check run on the server's worker threads, concurrently with each other.

#include <atomic>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/metrics.h"

namespace weft {

struct HttpRequest {
  std::string path;
  std::multimap<std::string, std::string> params;  // query parameters
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

class HttpServer {
 public:
  static constexpr absl::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

  struct Options {
    int max_connections = 64;
    absl::Duration read_timeout = absl::Seconds(5);   // whole request head
    absl::Duration write_timeout = absl::Seconds(5);  // whole response
    absl::Duration idle_timeout = absl::Seconds(5);   // kept-alive, between requests
    size_t max_request_bytes = 8192;                  // request line + headers
    int workers = 2;
  };

  // `registry` (may be null: no /metrics) is not owned and must outlive the server.
  explicit HttpServer(const metrics::Registry* registry) : HttpServer(registry, Options()) {}
  HttpServer(const metrics::Registry* registry, Options options);
  ~HttpServer();  // Stop()s
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Serves GET `path` (an exact path, no patterns). Before Start() only.
  void AddGet(absl::string_view path, HttpHandler handler);

  // /readyz reports `check`: OK means ready, anything else is "not ready" with the
  // status message as the reason. Until one of these is called /readyz answers
  // 503 "not ready: starting".
  void SetReadinessCheck(std::function<absl::Status()> check);
  void SetReady();
  void SetNotReady(absl::string_view reason);

  // Binds "host:port" (port 0 picks a free port; empty host: every address)
  // and serves on a background thread. Returns once the socket listens.
  // UNAVAILABLE when the address cannot be bound, INVALID_ARGUMENT when it does
  // not parse, FAILED_PRECONDITION when already started.
  absl::Status Start(absl::string_view host_port);
  // The bound port (after a successful Start), else 0.
  int port() const;
  // Stops accepting, closes every connection, waits for running handlers and
  // joins. Idempotent; the server cannot restart.
  void Stop();

 private:
  class Loop;
  HttpResponse Ready() const;

  const metrics::Registry* const registry_;
  const Options options_;
  std::map<std::string, HttpHandler> handlers_;  // fixed after Start()
  std::unique_ptr<Loop> loop_;
  std::thread thread_;
  mutable absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  int port_ ABSL_GUARDED_BY(mu_) = 0;
  std::shared_ptr<const std::function<absl::Status()>> readiness_ ABSL_GUARDED_BY(mu_);
};

}  // namespace weft
