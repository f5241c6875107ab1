#pragma once
// The real Prometheus server (Debian's /usr/bin/prometheus) for tests: a
// generated prometheus.yml with a short scrape interval, a temporary storage
// dir, listening on loopback only, optionally inside a network namespace (so
// that it reaches the targets of a netns cluster), and a small client of its
// HTTP API. The server is killed by the destructor, and with the process that
// started it (PR_SET_PDEATHSIG), so a failing test leaves nothing running.

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace weft::testing {

// HTTP from inside network namespace `ns` (a name under /run/netns; "" = the
// caller's): the request runs on a thread that joined the namespace, so only
// its own sockets live there. The body when the status is 2xx, else an error
// carrying status and body.
absl::StatusOr<std::string> HttpGetIn(const std::string& ns, const std::string& host, int port,
                                      const std::string& path, absl::Duration timeout = absl::Seconds(10));
absl::StatusOr<std::string> HttpPostFormIn(const std::string& ns, const std::string& host, int port,
                                           const std::string& path,
                                           const std::vector<std::pair<std::string, std::string>>& form,
                                           absl::Duration timeout = absl::Seconds(10));

// Starts a child (argv[0] looked up in PATH) in its own process group, killed
// when the calling thread exits; stdout and stderr appended to `log_path`.
absl::StatusOr<pid_t> SpawnChild(const std::vector<std::string>& argv, const std::string& log_path);
// SIGKILL to the child's group, then reaps it.
void KillChild(pid_t pid);

struct PrometheusOptions {
  std::string ns;   // network namespace to run in; "" = the test's own
  std::string dir;  // prometheus.yml, data/ and prometheus.log go here
  int port = 0;     // on 127.0.0.1; 0 = a free port (9090 when in a namespace)
  absl::Duration scrape_interval = absl::Seconds(1);
  // job name -> "host:port" targets.
  std::map<std::string, std::vector<std::string>> jobs;
};

class PrometheusServer {
 public:
  // Writes the config, checks it with `promtool check config`, starts the
  // server and waits until /-/ready answers.
  static absl::StatusOr<std::unique_ptr<PrometheusServer>> Start(PrometheusOptions options);
  ~PrometheusServer();
  PrometheusServer(const PrometheusServer&) = delete;
  PrometheusServer& operator=(const PrometheusServer&) = delete;

  // GET /api/v1/<path>, e.g. "targets" or "metadata?metric=x": the "data" member
  // of a status "success" answer; else an error with Prometheus' errorType and
  // error message.
  absl::StatusOr<nlohmann::json> Api(const std::string& path_and_query);
  // An instant query at the current time (POST /api/v1/query): the "data"
  // member ({"resultType": ..., "result": [...]}) or Prometheus' error.
  absl::StatusOr<nlohmann::json> Query(const std::string& promql);

  // Waits until every configured target has been scraped and is "up".
  absl::Status WaitForTargetsUp(absl::Duration timeout);

  const PrometheusOptions& options() const { return options_; }
  std::string config_path() const { return options_.dir + "/prometheus.yml"; }
  std::string log_path() const { return options_.dir + "/prometheus.log"; }

 private:
  explicit PrometheusServer(PrometheusOptions options) : options_(std::move(options)) {}
  static absl::StatusOr<nlohmann::json> Unwrap(absl::StatusOr<std::string> body);

  PrometheusOptions options_;
  pid_t pid_ = -1;
};

// Prometheus' scrape config for `jobs` (YAML), with `interval` for scrapes,
// timeouts and rule evaluation.
std::string PrometheusConfig(const std::map<std::string, std::vector<std::string>>& jobs, absl::Duration interval);

}  // namespace weft::testing
