#pragma once
// The aws-vpc backend: no encapsulation, the VPC's route tables carry the
// traffic. Every lease's subnet gets a route, in each route table of the config,
// to the instance that holds the lease (the InstanceID it publishes in its
// BackendData), and this instance's source/destination check is turned off so
// it may forward packets for its containers.
//
// Every agent writes the same desired state (all aws-vpc leases, its own
// included), so agents never fight: a route is created by whichever agent sees
// the lease first, replaced when the subnet moved to another instance, deleted
// when the lease is gone (a dead node cannot remove its own route).
//
// Removal grace. Lease watches lag from agent to agent: a route for a subnet
// that no lease known here names may be a joining node's, created by a quicker
// agent. It is deleted only once this agent's passes have seen it unwanted for
// `removal_grace` (default 30 s; agent/backend/removal_grace.h), else routes of
// joining nodes would flap. Every pass reads the tables, so a held route goes
// at the first pass after its grace. Replacements are not delayed, and held
// routes go at once when the table needs their room: the leases known here
// come first. Held routes are counted in weft_agent_awsvpc_routes_held.
//
// Which routes are ours. EC2 routes carry no description or tag, so a route is
// taken as Weft's when all of these hold:
//   - it was made by CreateRoute (origin), not by the table or VPN propagation;
//   - its destination is inside the cluster network with exactly the lease
//     prefix length (SubnetLen): a lease-shaped block of the cluster's range;
//   - its only target is an instance (no gateway, NAT, peering, transit
//     gateway...); a blackhole route left by a terminated instance counts;
//   - its destination is not the subnet of a lease published by an agent that
//     does not say its instance (flannel's aws-vpc: each such node keeps its own
//     route, so we leave it alone).
// Everything else — the local route, default routes, other destinations,
// gateway and NAT routes — is foreign and never touched.
//
// Route limit. A table holds RouteLimit routes (Backend config, default 50 as
// AWS's default quota). Foreign routes take their share first; the rest goes
// to leases sorted by subnet address, so every agent picks the same ones. The
// leases left out are counted (weft_agent_awsvpc_unrouted_peers), logged, and
// reported as a RESOURCE_EXHAUSTED error in the pass's stats: never a silent
// partial state.
//
// API use per pass: one DescribeRouteTables for all the tables, then one call
// per difference. Throttling is retried with jittered backoff.

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/backend/awsvpc/ec2_client.h"
#include "agent/backend/backend.h"
#include "agent/backend/removal_grace.h"
#include "agent/cloud/aws_credentials.h"
#include "agent/cloud/http_client.h"
#include "agent/cloud/imds.h"
#include "common/clock.h"
#include "common/metrics.h"

namespace weft::agent {

inline constexpr char kAwsVpcBackendType[] = "aws-vpc";

// The network config's Backend object for "aws-vpc" (keys match
// case-insensitively; unknown keys are ignored).
struct AwsVpcConfig {
  std::vector<std::string> route_table_ids;  // RouteTableID: a string or a list; empty: detect
  int route_limit = 50;                      // RouteLimit
};
absl::StatusOr<AwsVpcConfig> ParseAwsVpcConfig(absl::string_view json);

// A lease's BackendData for aws-vpc: {"InstanceID":"i-0123456789abcdef0"}.
// NOT_FOUND when the lease names no instance (flannel's aws-vpc publishes none).
absl::StatusOr<std::string> ParseAwsVpcLeaseInstance(absl::string_view json);
std::string AwsVpcLeaseDataJson(absl::string_view instance_id);

namespace awsvpc {

// What one table needs, computed from its current routes. Pure, for tests.
struct TablePlan {
  std::vector<std::pair<IPv4Net, std::string>> create;   // subnet -> instance
  std::vector<std::pair<IPv4Net, std::string>> replace;  // subnet -> instance
  std::vector<IPv4Net> remove;
  int unchanged = 0;
  int foreign = 0;                   // routes we leave alone
  std::vector<IPv4Net> over_limit;   // desired, but no room left in the table
  std::vector<IPv4Net> conflicts;    // desired, but a foreign route holds the destination
  int ours_after = 0;                // our routes once the plan is applied
};

// `desired`: subnet -> instance, for every lease that names its instance.
// `unmanaged`: subnets of leases that do not (never touched).
TablePlan PlanTable(const Ec2RouteTable& table, const std::map<IPv4Net, std::string>& desired,
                    const std::set<IPv4Net>& unmanaged, const IPv4Net& network, int subnet_len, int route_limit);

// True when `route` is one Weft manages (see the header comment).
bool IsOurRoute(const Ec2Route& route, const IPv4Net& network, int subnet_len, const std::set<IPv4Net>& unmanaged);

}  // namespace awsvpc

struct AwsVpcOptions {
  std::string ec2_endpoint;   // "": https://ec2.<region>.amazonaws.com
  std::string imds_endpoint = cloud::kDefaultImdsEndpoint;
  // null: environment, shared credentials file, then the instance role.
  std::unique_ptr<cloud::AwsCredentialsProvider> credentials;
  cloud::RetryPolicy retry;
  // How long a route of no known lease must stay unwanted before it is deleted.
  absl::Duration removal_grace = absl::Seconds(30);
};

class AwsVpcBackend : public Backend {
 public:
  // `http` is owned. `registry` (may be null) and `clock` outlive the backend.
  AwsVpcBackend(std::unique_ptr<cloud::HttpClient> http, AwsVpcOptions options, metrics::Registry* registry,
                Clock* clock = &RealClock::Get());
  ~AwsVpcBackend() override;

  absl::StatusOr<BackendInfo> Init(const LocalConfig& local, const OwnLease& lease,
                                   absl::string_view backend_config_json) override;
  absl::StatusOr<ReconcileStats> Reconcile(std::vector<Peer> peers) override;
  // Deletes this host's own route (only when it still points here), for a host
  // leaving for good; other hosts' routes stay, the other agents own them too.
  absl::Status Teardown() override;
  absl::StatusOr<std::string> LeaseData() override;
  std::string device_name() const override { return ""; }

  // The route tables in use (configured or detected), after Init.
  const std::vector<std::string>& route_tables() const { return tables_; }

 private:
  struct Metrics;
  absl::StatusOr<cloud::InstanceIdentity> Identity();
  absl::StatusOr<std::vector<std::string>> DetectRouteTables();
  void EnsureSourceDestCheckOff();
  // Takes out of each plan's removals the routes still within the removal
  // grace (`plans` in the order of tables_); returns how many it took out.
  int HoldRemovals(std::vector<awsvpc::TablePlan>* plans);

  std::unique_ptr<cloud::HttpClient> http_;
  AwsVpcOptions options_;
  Clock* const clock_;
  RemovalGrace removal_grace_;
  std::unique_ptr<metrics::Registry> own_registry_;
  std::unique_ptr<Metrics> metrics_;
  cloud::ImdsClient imds_;
  std::unique_ptr<cloud::AwsCredentialsProvider> creds_;
  std::unique_ptr<awsvpc::Ec2Client> ec2_;
  std::optional<cloud::InstanceIdentity> identity_;
  AwsVpcConfig config_;
  OwnLease lease_;
  std::vector<std::string> tables_;
  bool src_dst_check_off_ = false;
  std::set<IPv4Net> last_unrouted_;
};

}  // namespace weft::agent
