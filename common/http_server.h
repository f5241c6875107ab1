#pragma once
// The operational HTTP endpoint every Weft binary serves:
//   /metrics  Prometheus text format 0.0.4 from a metrics::Registry
//   /healthz  200 "ok" while the server runs (the process is alive)
//   /readyz   200 "ok" when the readiness check passes, else 503 "not ready: <reason>"
// plus any GET handlers the binary adds (e.g. debug pages).
//
// Thread-safety: AddGet() only before Start(). SetReadinessCheck(), SetReady(),
// SetNotReady(), port() and Stop() from any thread. Handlers and the readiness
// check run on the server's worker threads, concurrently with each other.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/metrics.h"

namespace httplib {
class Server;
}  // namespace httplib

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

  // `registry` (may be null: no /metrics) is not owned and must outlive the server.
  explicit HttpServer(const metrics::Registry* registry);
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
  // Stops accepting, finishes and joins. Idempotent; the server cannot restart.
  void Stop();

 private:
  HttpResponse Ready() const;

  const metrics::Registry* const registry_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::atomic<bool> loop_exited_{false};
  mutable absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  int port_ ABSL_GUARDED_BY(mu_) = 0;
  std::shared_ptr<const std::function<absl::Status()>> readiness_ ABSL_GUARDED_BY(mu_);
};

}  // namespace weft
