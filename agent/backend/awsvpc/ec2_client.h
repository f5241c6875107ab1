#pragma once
// The few EC2 Query API calls the aws-vpc backend makes (API version 2016-11-15,
// form POST to the regional endpoint, SigV4-signed with service "ec2").
// Throttling (RequestLimitExceeded, HTTP 503/429) and unreachable endpoints are
// retried with jittered backoff; EC2's errors come back as statuses:
//   InvalidRoute.NotFound -> NOT_FOUND, RouteAlreadyExists -> ALREADY_EXISTS,
//   RouteLimitExceeded -> RESOURCE_EXHAUSTED, auth failures -> PERMISSION_DENIED
//   or UNAUTHENTICATED, Invalid* -> INVALID_ARGUMENT, still throttled or 5xx ->
//   UNAVAILABLE; the message carries EC2's code, message and request id.
// Thread-safe if the HttpClient and credentials provider are.

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/cloud/aws_credentials.h"
#include "agent/cloud/http_client.h"
#include "common/clock.h"

namespace weft::agent::awsvpc {

inline constexpr char kEc2ApiVersion[] = "2016-11-15";

// https://ec2.<region>.amazonaws.com (amazonaws.com.cn for China's regions).
std::string DefaultEc2Endpoint(absl::string_view region);

// One route of a table, as DescribeRouteTables shows it (IPv4 routes only;
// IPv6 and prefix-list routes come back with an empty destination).
struct Ec2Route {
  std::string destination;  // destinationCidrBlock
  std::string instance_id;
  std::string network_interface_id;
  // Any other target: gatewayId, natGatewayId, transitGatewayId,
  // vpcPeeringConnectionId, egressOnlyInternetGatewayId, localGatewayId,
  // carrierGatewayId, coreNetworkArn: "" when the route has none.
  std::string other_target;
  std::string state;   // "active" or "blackhole"
  std::string origin;  // "CreateRouteTable", "CreateRoute", "EnableVgwRoutePropagation"
};

struct Ec2RouteTable {
  std::string id;
  std::string vpc_id;
  std::vector<Ec2Route> routes;
};

struct Ec2Filter {
  std::string name;
  std::vector<std::string> values;
};

class Ec2Client {
 public:
  // Called after every API call with its action, final status and the number
  // of retries it took (throttled or unreachable attempts).
  using CallObserver = std::function<void(absl::string_view action, const absl::Status& status, int retries)>;

  // Every pointer outlives the client. `clock` signs requests and times the
  // pauses between retries.
  Ec2Client(cloud::HttpClient* http, cloud::AwsCredentialsProvider* creds, std::string endpoint, std::string region,
            Clock* clock, cloud::RetryPolicy retry = {});

  void set_observer(CallObserver observer) { observer_ = std::move(observer); }

  absl::StatusOr<std::vector<Ec2RouteTable>> DescribeRouteTables(const std::vector<std::string>& ids,
                                                                  const std::vector<Ec2Filter>& filters = {});
  absl::Status CreateRoute(absl::string_view table, absl::string_view cidr, absl::string_view instance_id);
  absl::Status ReplaceRoute(absl::string_view table, absl::string_view cidr, absl::string_view instance_id);
  absl::Status DeleteRoute(absl::string_view table, absl::string_view cidr);
  // ModifyInstanceAttribute SourceDestCheck.Value=false: the instance may
  // forward packets that are neither from nor to its own addresses.
  absl::Status DisableSourceDestCheck(absl::string_view instance_id);

  // Sends one action with its parameters; the answer's XML body on HTTP 200.
  absl::StatusOr<std::string> Call(absl::string_view action, std::vector<std::pair<std::string, std::string>> params);

 private:
  cloud::HttpClient* const http_;
  cloud::AwsCredentialsProvider* const creds_;
  const std::string endpoint_;
  const std::string region_;
  Clock* const clock_;
  const cloud::RetryPolicy retry_;
  CallObserver observer_;
};

// Parses DescribeRouteTablesResponse. Exposed for tests.
absl::StatusOr<std::vector<Ec2RouteTable>> ParseDescribeRouteTables(absl::string_view xml);
// EC2's error answer (<Response><Errors><Error><Code>...) as a status; for
// tests. `http_status` decides the code when the body is not EC2's format.
absl::Status Ec2ErrorStatus(absl::string_view action, int http_status, absl::string_view body);

}  // namespace weft::agent::awsvpc
