#pragma once
// A local stand-in for EC2's Query API and the instance metadata service
// (IMDSv2), on 127.0.0.1, for tests of the aws-vpc backend. One HTTP server
// answers both: POST / is EC2, /latest/... is IMDS.
//
// EC2 side. Every request must carry a valid SigV4 signature (service "ec2",
// the fake's region) made with credentials the test accepted: the fake
// recomputes it with its own code, so a signing bug cannot hide behind a
// matching bug. It checks the form (Action, Version=2016-11-15, required
// parameters), keeps route tables, enforces a per-table route limit
// (RouteLimitExceeded), and answers errors in EC2's XML format
// (<Response><Errors><Error><Code>...). ThrottleNext(n) makes the next n calls
// fail with HTTP 503 RequestLimitExceeded.
//
// IMDS side: tokens from PUT /latest/api/token (the TTL header is required);
// every GET without a valid token gets 401, as an instance that requires IMDSv2.
//
// Thread-safe: the server runs its own threads; tests call the rest from theirs.

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace weft::testing {

struct FakeRoute {
  std::string destination;
  std::string instance_id;  // an instance route (EC2 also shows its ENI)
  std::string gateway_id;   // "local", "igw-...", or "" (a NAT route uses nat_gateway_id)
  std::string nat_gateway_id;
  std::string state = "active";
  std::string origin = "CreateRoute";
};

struct FakeRouteTable {
  std::string id;
  std::string vpc_id;
  std::vector<std::string> subnet_ids;  // explicit associations
  bool main = false;
  std::vector<FakeRoute> routes;
};

struct FakeInstance {
  std::string instance_id = "i-0a1b2c3d4e5f60001";
  std::string region = "us-east-1";
  std::string availability_zone = "us-east-1a";
  std::string mac = "0e:00:00:00:00:01";
  std::string subnet_id = "subnet-0001";
  std::string vpc_id = "vpc-0001";
  std::string private_ip = "172.31.0.11";
};

struct FakeRole {
  std::string name;
  std::string access_key_id;
  std::string secret_access_key;
  std::string token;
  absl::Time expiration;
};

class FakeAws {
 public:
  FakeAws();
  ~FakeAws();

  // http://127.0.0.1:<port>: pass as both the EC2 and the IMDS endpoint.
  std::string endpoint() const;

  // Credentials EC2 accepts (`token` non-empty: temporary ones, whose
  // X-Amz-Security-Token must be sent and signed).
  void AcceptCredentials(const std::string& access_key_id, const std::string& secret, const std::string& token = "");
  void SetInstance(const FakeInstance& instance);
  void SetRole(const FakeRole& role);  // also accepted by EC2
  void AddRouteTable(const FakeRouteTable& table);
  void SetRouteLimit(int limit);  // per table, every route counted; default 50
  void ThrottleNext(int calls);
  void ExpireImdsTokens();  // tokens handed out so far stop working (401)

  std::vector<FakeRoute> Routes(const std::string& table) const;
  std::optional<FakeRoute> Route(const std::string& table, const std::string& destination) const;
  // Calls answered with HTTP 200, by action.
  int Calls(const std::string& action) const;
  int TotalCalls() const;  // every EC2 request, errors included
  int SignatureFailures() const;
  int MalformedRequests() const;  // bad Version, Action, missing parameters
  int Throttled() const;
  int ImdsUnauthorized() const;  // IMDS GETs refused for want of a valid token
  int ImdsTokensIssued() const;
  // Instances whose source/destination check was turned off.
  std::set<std::string> SourceDestCheckDisabled() const;
  // Access keys EC2 calls were signed with, by key.
  std::map<std::string, int> CallsByAccessKey() const;

 private:
  struct Answer {
    int status = 200;
    std::string body;
  };
  void HandleEc2(const httplib::Request& req, httplib::Response& res);
  void HandleImds(const httplib::Request& req, httplib::Response& res);
  Answer Ec2Action(const std::string& action, const std::multimap<std::string, std::string>& params)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string VerifySignature(const httplib::Request& req) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  FakeRouteTable* FindTable(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;

  mutable absl::Mutex mu_;
  struct Secret {
    std::string secret;
    std::string token;
  };
  std::map<std::string, Secret> credentials_ ABSL_GUARDED_BY(mu_);
  FakeInstance instance_ ABSL_GUARDED_BY(mu_);
  std::optional<FakeRole> role_ ABSL_GUARDED_BY(mu_);
  std::vector<FakeRouteTable> tables_ ABSL_GUARDED_BY(mu_);
  int route_limit_ ABSL_GUARDED_BY(mu_) = 50;
  int throttle_next_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<std::string> imds_tokens_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> calls_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> calls_by_key_ ABSL_GUARDED_BY(mu_);
  int total_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int signature_failures_ ABSL_GUARDED_BY(mu_) = 0;
  int malformed_ ABSL_GUARDED_BY(mu_) = 0;
  int throttled_ ABSL_GUARDED_BY(mu_) = 0;
  int imds_unauthorized_ ABSL_GUARDED_BY(mu_) = 0;
  int tokens_issued_ ABSL_GUARDED_BY(mu_) = 0;
  int request_seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<std::string> src_dst_disabled_ ABSL_GUARDED_BY(mu_);
};

}  // namespace weft::testing
