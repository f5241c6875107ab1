#pragma once
// A local stand-in for one Google Compute Engine project: the Compute API v1's
// global routes and operations, and a metadata server per VM, on one loopback
// HTTP port. Tests point a backend at it through its endpoint overrides, so no
// request ever leaves the machine.
//
// It behaves like the real thing where a client can get it wrong:
// - every API request needs "Authorization: Bearer <token>" with a token one of
//   its metadata servers issued and that has not expired (by the given clock) or
//   been revoked; else 401 in Google's error format;
// - metadata requests need "Metadata-Flavor: Google" (else 403), and answers carry
//   that header;
// - route inserts are checked (name syntax, known network, CIDR, priority, no
//   unknown fields); a taken name is 409; past the route quota, 403 with reason
//   QUOTA_EXCEEDED; a nextHopInstance naming no VM fails in the operation
//   (RESOURCE_NOT_FOUND), as GCE does;
// - inserts and deletes answer with an Operation that is DONE only after
//   `polls_until_done` waits/gets and `operation_latency`; the change takes
//   effect then;
// - list answers are paginated (nextPageToken) and filtered (AIP-160 equality
//   terms joined by AND, which is what a client needs; anything else is a 400);
// - throttling and other errors can be injected for the next N API requests.
//
// The metadata server of VM <name> is at MetadataEndpoint(name), i.e. under
// http://127.0.0.1:<port>/vm/<name>. Thread-safe.

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace weft::testing {

struct FakeGceRoute {
  std::string name;
  std::string network;            // canonical: projects/p/global/networks/n
  std::string dest_range;
  std::string next_hop_instance;  // canonical: projects/p/zones/z/instances/i; may be empty
  int64_t priority = 1000;
  std::string description;
};

class FakeGce {
 public:
  struct Options {
    std::string project = "weft-test";
    std::string network = "default";  // the VPC every VM is on
    int route_quota = 100;
    int max_page_size = 500;     // caps a list request's maxResults
    int polls_until_done = 1;    // waits/gets an operation answers RUNNING before DONE
    // Real time an operation takes at least (GCE: seconds). A wait blocks until
    // then, as GCE's operations.wait does; a get just answers RUNNING.
    absl::Duration operation_latency = absl::ZeroDuration();
    absl::Duration token_ttl = absl::Hours(1);
    Clock* clock = &RealClock::Get();  // token expiry
  };

  explicit FakeGce(Options options);
  ~FakeGce();  // Stop()s
  FakeGce(const FakeGce&) = delete;
  FakeGce& operator=(const FakeGce&) = delete;

  // Listens on 127.0.0.1, on a free port.
  absl::Status Start();
  void Stop();

  std::string api_endpoint() const;  // http://127.0.0.1:<port>/compute/v1
  // A VM of the project (what metadata servers describe and nextHopInstance may
  // name); returns its metadata endpoint.
  std::string AddInstance(absl::string_view zone, absl::string_view name);
  std::string MetadataEndpoint(absl::string_view name) const;
  static std::string InstanceUrl(absl::string_view project, absl::string_view zone, absl::string_view name);
  std::string NetworkUrl() const;

  // The route table, and changes behind the client's back (foreign routes, drift).
  std::vector<FakeGceRoute> Routes() const;
  void PutRoute(const FakeGceRoute& route);
  bool RemoveRoute(absl::string_view name);
  void SetRouteQuota(int quota);

  // The next `count` API requests (not metadata) answer `http_status` with
  // Google's error body carrying `reason` ("rateLimitExceeded"...).
  void InjectErrors(int count, int http_status, absl::string_view reason);
  // Every token issued so far is refused from now on (401).
  void RevokeTokens();

  // Counters, by kind: "list", "get", "insert", "delete", "wait", "token",
  // "metadata", "unauthorized" (401s), "no_flavor" (metadata without the header),
  // "injected" (injected errors served), "bad_request" (400s).
  int Count(absl::string_view kind) const;

 private:
  struct Op {
    std::string name;
    std::string type;    // "insert", "delete"
    std::string target;  // route name
    int polls_left = 0;
    absl::Time ready_at;  // real time, see operation_latency
    FakeGceRoute route;     // for inserts
    std::string error_code;
    std::string error_message;
    bool done = false;
  };

  void HandleMetadata(const httplib::Request& req, httplib::Response& res);
  void HandleApi(const httplib::Request& req, httplib::Response& res);
  void ListRoutes(const httplib::Request& req, httplib::Response& res) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void InsertRoute(const httplib::Request& req, httplib::Response& res) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DeleteRoute(const std::string& name, httplib::Response& res) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PollOperation(const std::string& name, bool wait, httplib::Response& res) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string StartOperation(Op op) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Finish(Op& op) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string OperationJson(const Op& op) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string RouteJson(const FakeGceRoute& r) const;
  void Bump(absl::string_view kind) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Options options_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::atomic<bool> loop_exited_{false};
  int port_ = 0;

  mutable absl::Mutex mu_;
  std::map<std::string, std::string> instances_ ABSL_GUARDED_BY(mu_);  // name -> zone
  std::map<std::string, FakeGceRoute> routes_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Op> ops_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Time> tokens_ ABSL_GUARDED_BY(mu_);  // token -> expiry
  int next_id_ ABSL_GUARDED_BY(mu_) = 1;
  int inject_count_ ABSL_GUARDED_BY(mu_) = 0;
  int inject_status_ ABSL_GUARDED_BY(mu_) = 0;
  std::string inject_reason_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int, std::less<>> counts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace weft::testing
