#pragma once
// The gce backend: no tunnel, no encapsulation; Compute Engine's VPC carries the
// packets, steered by one route per lease ("destRange = the lease's subnet,
// nextHopInstance = the VM holding it").
//
// GCE routes are global to a project and shared by every agent of the cluster,
// so every agent computes the same desired route set from the same lease set
// (this host's own lease included) and converges the project towards it:
// missing routes inserted, routes of departed leases deleted, routes pointing
// at another instance replaced (routes are immutable: delete, then insert).
// Lease watches lag from agent to agent, so a route for a subnet that no lease
// known here names may be a joining node's, inserted by a quicker agent: it is
// deleted only once this agent has seen it unwanted for `removal_grace`
// (default 30 s; agent/backend/removal_grace.h), else routes of joining nodes
// would flap (held routes are counted in weft_agent_gce_routes_held).
// Replacements are not delayed, and held routes go at once when the quota
// needs their room: the leases known here come first.
// Agents racing on the same change meet 409/404 answers, which count as done;
// the next check verifies. Only routes carrying our mark (description
// "weft: <cluster network>", on this VPC network) are ever changed; routes of
// anyone else are left alone.
//
// Route names are deterministic: "weft-<h>-<subnet with dashes>", where <h> is a
// short hash of the VPC network and the cluster network, so two clusters in one
// project never share a name (flannel used "flannel-<subnet>"; different names
// let a flannel cluster and a Weft cluster coexist while migrating).
//
// Each agent publishes its instance in its lease's BackendData:
// {"Instance":"projects/<project>/zones/<zone>/instances/<name>"}.
//
// Quota: at most Backend.RouteQuota routes (default 100, GCE's default project
// quota). Above it, the subnets routed are the first ones by address, the same
// on every agent, and the pass fails with RESOURCE_EXHAUSTED naming how many
// subnets have no route (also in weft_agent_gce_unrouted_subnets): never a
// silent partial state. An insert the API refuses for quota counts the same.
//
// The lease set is compared with the last one applied; when it did not change,
// the API is listed again only every `check_interval` (default 1 min) to repair
// drift, so a resync every few seconds on hundreds of agents does not spend the
// project's API rate quota. Over quota likewise: the pass keeps failing with the
// same error, but refused inserts are only retried at the next check. Routes
// held for the removal grace bring the next check forward to when they are due.

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "agent/backend/backend.h"
#include "agent/backend/gce/gce_api.h"
#include "agent/backend/removal_grace.h"
#include "agent/cloud/http_client.h"
#include "common/metrics.h"
#include "common/net.h"

namespace weft::agent::gce {

inline constexpr char kGceBackendType[] = "gce";
inline constexpr int64_t kRoutePriority = 1000;

// The network config's Backend object for "gce". Keys match case-insensitively.
struct GceConfig {
  int route_quota = 100;  // RouteQuota: most routes this cluster may hold, >= 1
};
absl::StatusOr<GceConfig> ParseGceConfig(absl::string_view json);

// BackendData: {"Instance":"projects/p/zones/z/instances/n"}. Parsing accepts a
// full URL too and returns the canonical partial one.
std::string GceLeaseDataJson(absl::string_view instance_url);
absl::StatusOr<std::string> ParseGceLeaseData(absl::string_view json);

// "weft: 10.1.0.0/16": the mark on every route of this cluster.
std::string RouteDescription(const IPv4Net& cluster_network);
// "weft-1a2b3c4d-10-1-19-0-24". Valid as a GCE resource name (< 64 chars,
// [a-z]([-a-z0-9]*[a-z0-9])?).
std::string RouteName(absl::string_view network_url, const IPv4Net& cluster_network, const IPv4Net& subnet);

// What the desired route set depends on.
struct RouteSetup {
  std::string network_url;   // this VM's VPC network, canonical
  IPv4Net cluster_network;   // the lease's network
  IPv4Net own_subnet;
  std::string own_instance;  // canonical instance URL
  int route_quota = 100;
};

struct SkippedPeer {
  IPv4Net subnet;
  std::string reason;
};

struct RoutePlan {
  std::vector<Route> routes;     // desired, sorted by subnet, at most route_quota
  std::vector<IPv4Net> unrouted;  // leases above the quota, sorted
  std::vector<SkippedPeer> skipped;  // peers of another type or with bad data
};

// One route per lease (own included; a subnet listed twice: the first wins).
// Pure, for tests.
RoutePlan PlanRoutes(const RouteSetup& setup, const std::vector<Peer>& peers);

struct RouteDiff {
  std::vector<std::string> deletes;  // ours, not desired or differing (replace)
  std::vector<Route> inserts;        // desired, missing or differing (replace)
  int replaced = 0;                  // names both deleted and inserted
  int unchanged = 0;
};
// `actual` must hold only our routes. Deletes are in name order.
RouteDiff DiffRoutes(const std::vector<Route>& actual, const std::vector<Route>& desired);

struct GceBackendOptions {
  ApiOptions api;  // endpoints, retry policy, clock, sleep
  absl::Duration check_interval = absl::Minutes(1);
  // How long a route of no known lease must stay unwanted before it is deleted.
  absl::Duration removal_grace = absl::Seconds(30);
};

class GceBackend : public Backend {
 public:
  // `registry` (may be null: metrics kept privately) must outlive the backend.
  GceBackend(std::unique_ptr<cloud::HttpClient> http, GceConfig config, GceBackendOptions options,
             metrics::Registry* registry);
  ~GceBackend() override;

  absl::StatusOr<BackendInfo> Init(const LocalConfig& local, const OwnLease& lease,
                                   absl::string_view backend_config_json) override;
  absl::StatusOr<ReconcileStats> Reconcile(std::vector<Peer> peers) override;
  // Deletes this host's own route (the one pointing here). The routes to the
  // other hosts are theirs as much as ours: their agents keep them.
  absl::Status Teardown() override;
  // Asks the metadata server for the instance.
  absl::StatusOr<std::string> LeaseData() override;
  std::string device_name() const override { return ""; }

 private:
  struct Metrics;
  // Our routes (mark and network checked again client-side).
  absl::StatusOr<std::vector<Route>> ListOurRoutes();
  // Starts every operation, then waits for them all: one slow operation's
  // latency, not the sum of them.
  struct Applied {
    absl::flat_hash_set<std::string> deleted;   // route names whose delete completed
    absl::flat_hash_set<std::string> inserted;  // and whose insert completed
    absl::flat_hash_set<std::string> conflicts;  // inserts answered 409: another agent was first
  };
  Applied Apply(const RouteDiff& diff, ReconcileStats* stats, std::vector<IPv4Net>* quota_refused);
  // Takes out of diff->deletes the routes no lease asks for that are still
  // within the removal grace; returns how many it took out.
  int HoldRemovals(const std::vector<Route>& actual, const RoutePlan& plan, absl::Time now, RouteDiff* diff);
  void RecordError(const absl::Status& s, ReconcileStats* stats);
  // RESOURCE_EXHAUSTED naming the subnets without a route.
  absl::Status QuotaError(const RoutePlan& plan, const std::vector<IPv4Net>& refused) const;

  std::unique_ptr<cloud::HttpClient> http_;
  GceConfig config_;
  const GceBackendOptions options_;
  std::unique_ptr<metrics::Registry> own_registry_;
  std::unique_ptr<ApiMetrics> api_metrics_;
  std::unique_ptr<Metrics> metrics_;
  GceApi api_;
  bool initialized_ = false;
  RouteSetup setup_;
  RemovalGrace removal_grace_;
  // The desired routes of the last pass that fully succeeded, and when the API
  // must be listed again even if they stay the same (at the latest when a held
  // removal is due: until then the project holds more than applied_).
  std::vector<Route> applied_;
  std::vector<IPv4Net> refused_;  // inserts of applied_ the project's quota refused
  absl::Time next_check_ = absl::InfinitePast();
};

}  // namespace weft::agent::gce
