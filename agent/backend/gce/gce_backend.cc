#include "agent/backend/gce/gce_backend.h"

#include <algorithm>
#include <map>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/json.h"
#include "common/log.h"
#include "common/quote.h"
#include "common/status_macros.h"

namespace weft::agent::gce {
namespace {

using ::weft::json::Dump;
using ::weft::json::Excerpt;
using Json = ::weft::json::Json;

constexpr size_t kMaxLoggedErrors = 5;

using ::weft::json::ParseObject;
// Go's encoding/json matching, as flanneld decodes: exact key, else any case.
const Json* FieldIgnoringCase(const Json& obj, absl::string_view key) { return ::weft::json::FindFolded(obj, key); }

// 32-bit FNV-1a: stable across builds and machines, unlike absl::Hash, because
// every agent of a cluster must derive the same route names.
uint32_t Fnv1a(absl::string_view s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

bool IsInstanceUrl(absl::string_view url) {
  std::vector<absl::string_view> parts = absl::StrSplit(url, '/');
  return parts.size() == 6 && parts[0] == "projects" && parts[2] == "zones" && parts[4] == "instances" &&
         !parts[1].empty() && !parts[3].empty() && !parts[5].empty();
}

std::string JoinNets(const std::vector<IPv4Net>& nets, size_t max) {
  std::vector<std::string> s;
  for (size_t i = 0; i < nets.size() && i < max; ++i) s.push_back(nets[i].ToString());
  if (nets.size() > max) s.push_back(absl::StrCat("and ", nets.size() - max, " more"));
  return absl::StrJoin(s, ", ");
}

}  // namespace

struct GceBackend::Metrics {
  explicit Metrics(metrics::Registry& r)
      : routes(r.AddGauge("weft_agent_gce_routes",
                          "GCE routes of this cluster in place after the last pass that reached the API.")
                   .Get()),
        unrouted(r.AddGauge("weft_agent_gce_unrouted_subnets",
                            "Leased subnets with no GCE route because the route quota is reached.")
                     .Get()),
        held(r.AddGauge("weft_agent_gce_routes_held",
                        "GCE routes of no known lease kept until their removal grace ends, after the last pass "
                        "that reached the API.")
                 .Get()) {}
  metrics::Gauge& routes;
  metrics::Gauge& unrouted;
  metrics::Gauge& held;
};

absl::StatusOr<GceConfig> ParseGceConfig(absl::string_view json) {
  ASSIGN_OR_RETURN(Json obj, ParseObject(json.empty() ? "{}" : json, "Backend"));
  GceConfig c;
  if (const Json* type = FieldIgnoringCase(obj, "Type"); type != nullptr && !type->is_null()) {
    if (!type->is_string() || !absl::EqualsIgnoreCase(type->get<std::string>(), kGceBackendType)) {
      return absl::InvalidArgumentError(absl::StrCat("Backend.Type is ", Excerpt(*type), ", not \"gce\""));
    }
  }
  if (const Json* q = FieldIgnoringCase(obj, "RouteQuota"); q != nullptr && !q->is_null()) {
    if (!q->is_number_integer() || q->get<int64_t>() < 1 || q->get<int64_t>() > 1000000) {
      return absl::InvalidArgumentError(
          absl::StrCat("Backend.RouteQuota: ", Excerpt(*q), " is not an integer from 1 to 1000000"));
    }
    c.route_quota = static_cast<int>(q->get<int64_t>());
  }
  return c;
}

std::string GceLeaseDataJson(absl::string_view instance_url) {
  return Dump(Json{{"Instance", std::string(instance_url)}});
}

absl::StatusOr<std::string> ParseGceLeaseData(absl::string_view json) {
  ASSIGN_OR_RETURN(Json obj, ParseObject(json, "BackendData"));
  const Json* inst = FieldIgnoringCase(obj, "Instance");
  if (inst == nullptr || !inst->is_string()) return absl::InvalidArgumentError("BackendData has no Instance string");
  std::string url = CanonicalResourceUrl(inst->get<std::string>());
  if (!IsInstanceUrl(url)) {
    return absl::InvalidArgumentError(
        absl::StrCat("BackendData.Instance: ", QuoteInput(url), " is not projects/<project>/zones/<zone>/instances/<name>"));
  }
  return url;
}

std::string RouteDescription(const IPv4Net& cluster_network) {
  return absl::StrCat("weft: ", cluster_network.ToString());
}

std::string RouteName(absl::string_view network_url, const IPv4Net& cluster_network, const IPv4Net& subnet) {
  const uint32_t h = Fnv1a(absl::StrCat(CanonicalResourceUrl(network_url), "|", cluster_network.ToString()));
  return absl::StrFormat("weft-%08x-%s", h, absl::StrReplaceAll(subnet.ToString(), {{".", "-"}, {"/", "-"}}));
}

RoutePlan PlanRoutes(const RouteSetup& setup, const std::vector<Peer>& peers) {
  RoutePlan plan;
  std::map<IPv4Net, std::string> next_hop;  // sorted by subnet: the quota's order
  if (!setup.own_instance.empty()) next_hop.emplace(setup.own_subnet, setup.own_instance);
  for (const Peer& p : peers) {
    if (p.subnet == setup.own_subnet) continue;
    if (p.backend_type != kGceBackendType) {
      plan.skipped.push_back({p.subnet, absl::StrCat("backend type \"", p.backend_type, "\", not gce")});
      continue;
    }
    absl::StatusOr<std::string> instance = ParseGceLeaseData(p.backend_data_json);
    if (!instance.ok()) {
      plan.skipped.push_back({p.subnet, std::string(instance.status().message())});
      continue;
    }
    next_hop.emplace(p.subnet, *std::move(instance));
  }
  const std::string description = RouteDescription(setup.cluster_network);
  for (const auto& [subnet, instance] : next_hop) {
    if (static_cast<int>(plan.routes.size()) >= setup.route_quota) {
      plan.unrouted.push_back(subnet);
      continue;
    }
    Route r;
    r.name = RouteName(setup.network_url, setup.cluster_network, subnet);
    r.network = setup.network_url;
    r.dest_range = subnet.ToString();
    r.next_hop_instance = instance;
    r.priority = kRoutePriority;
    r.description = description;
    plan.routes.push_back(std::move(r));
  }
  return plan;
}

RouteDiff DiffRoutes(const std::vector<Route>& actual, const std::vector<Route>& desired) {
  RouteDiff diff;
  absl::flat_hash_map<std::string, const Route*> wanted;
  for (const Route& r : desired) wanted.emplace(r.name, &r);
  absl::flat_hash_map<std::string, const Route*> have;
  for (const Route& r : actual) {
    auto w = wanted.find(r.name);
    if (w == wanted.end()) {
      diff.deletes.push_back(r.name);
    } else if (!(*w->second == r)) {
      diff.deletes.push_back(r.name);
      ++diff.replaced;
    }
    have.emplace(r.name, &r);
  }
  for (const Route& r : desired) {
    auto h = have.find(r.name);
    if (h == have.end() || !(*h->second == r)) {
      diff.inserts.push_back(r);
    } else {
      ++diff.unchanged;
    }
  }
  std::sort(diff.deletes.begin(), diff.deletes.end());
  diff.deletes.erase(std::unique(diff.deletes.begin(), diff.deletes.end()), diff.deletes.end());
  return diff;
}

GceBackend::GceBackend(std::unique_ptr<cloud::HttpClient> http, GceConfig config, GceBackendOptions options,
                       metrics::Registry* registry)
    : http_(std::move(http)),
      config_(config),
      options_(std::move(options)),
      own_registry_(registry == nullptr ? std::make_unique<metrics::Registry>() : nullptr),
      api_metrics_(std::make_unique<ApiMetrics>(registry != nullptr ? *registry : *own_registry_)),
      metrics_(std::make_unique<Metrics>(registry != nullptr ? *registry : *own_registry_)),
      api_(http_.get(), options_.api, api_metrics_.get()),
      removal_grace_(options_.removal_grace) {}

GceBackend::~GceBackend() = default;

absl::StatusOr<std::string> GceBackend::LeaseData() {
  ASSIGN_OR_RETURN(InstanceInfo self, api_.Instance());
  return GceLeaseDataJson(self.InstanceUrl());
}

absl::StatusOr<BackendInfo> GceBackend::Init(const LocalConfig& local, const OwnLease& lease,
                                             absl::string_view backend_config_json) {
  ASSIGN_OR_RETURN(config_, ParseGceConfig(backend_config_json));
  ASSIGN_OR_RETURN(InstanceInfo self, api_.Instance());
  RouteSetup setup;
  setup.network_url = self.NetworkUrl();
  setup.cluster_network = lease.network;
  setup.own_subnet = lease.subnet;
  setup.own_instance = self.InstanceUrl();
  setup.route_quota = config_.route_quota;
  if (initialized_ && (setup.own_subnet != setup_.own_subnet || setup.cluster_network != setup_.cluster_network ||
                       setup.route_quota != setup_.route_quota)) {
    next_check_ = absl::InfinitePast();  // a new lease: list the routes again at the next pass
  }
  setup_ = std::move(setup);
  initialized_ = true;
  BackendInfo info;
  info.type = kGceBackendType;
  info.data_json = GceLeaseDataJson(setup_.own_instance);
  // No encapsulation: containers get the full MTU of the VPC (1460 by default).
  info.mtu = local.iface_mtu;
  WEFT_LOG(INFO, "gce backend ready")
      .With("instance", setup_.own_instance)
      .With("network", setup_.network_url)
      .With("route_quota", setup_.route_quota);
  return info;
}

absl::StatusOr<std::vector<Route>> GceBackend::ListOurRoutes() {
  const std::string mark = RouteDescription(setup_.cluster_network);
  // The filter keeps the pages short; the check below is what we rely on.
  ASSIGN_OR_RETURN(std::vector<Route> listed, api_.ListRoutes(absl::StrCat("description = \"", mark, "\"")));
  std::vector<Route> ours;
  for (Route& r : listed) {
    if (r.description == mark && r.network == setup_.network_url) ours.push_back(std::move(r));
  }
  return ours;
}

int GceBackend::HoldRemovals(const std::vector<Route>& actual, const RoutePlan& plan, absl::Time now,
                             RouteDiff* diff) {
  absl::flat_hash_set<std::string> desired;
  for (const Route& r : plan.routes) desired.insert(r.name);
  std::vector<std::string> unwanted;
  absl::flat_hash_map<std::string, std::string> dest_range;
  for (const Route& r : actual) {
    if (desired.contains(r.name)) continue;
    unwanted.push_back(r.name);
    dest_range.emplace(r.name, r.dest_range);
  }
  std::vector<RemovalGrace::Held> newly_held;
  absl::flat_hash_set<std::string> held(unwanted.begin(), unwanted.end());
  for (const std::string& name : removal_grace_.Due(unwanted, now, &newly_held)) held.erase(name);
  if (held.empty()) return 0;
  if (plan.routes.size() + held.size() > static_cast<size_t>(setup_.route_quota)) {
    // Held routes count against the quota like any other: the leases known
    // here come first (this also deletes at once the route of a known lease
    // that a lower subnet pushed out of the quota).
    WEFT_LOG(INFO, "deleting GCE routes before their removal grace ends: the route quota needs room")
        .With("routes", static_cast<int64_t>(held.size()))
        .With("route_quota", setup_.route_quota);
    return 0;
  }
  for (const RemovalGrace::Held& h : newly_held) {
    WEFT_LOG(INFO, "GCE route that no known lease asks for kept until its removal grace ends "
                   "(the lease may not have reached this agent yet)")
        .With("route", h.key)
        .With("subnet", dest_range[h.key])
        .With("until", absl::FormatTime(absl::RFC3339_sec, h.until, absl::UTCTimeZone()));
  }
  diff->deletes.erase(std::remove_if(diff->deletes.begin(), diff->deletes.end(),
                                     [&](const std::string& name) { return held.contains(name); }),
                      diff->deletes.end());
  return static_cast<int>(held.size());
}

void GceBackend::RecordError(const absl::Status& s, ReconcileStats* stats) {
  ++stats->errors;
  if (stats->first_errors.size() < kMaxLoggedErrors) stats->first_errors.push_back(s);
  WEFT_LOG(WARN, "GCE route change failed").Err(s);
}

GceBackend::Applied GceBackend::Apply(const RouteDiff& diff, ReconcileStats* stats,
                                          std::vector<IPv4Net>* quota_refused) {
  Applied done;
  // Deletes first and to completion: a replaced route's name must be free before
  // its insert, and a deleted route frees quota for the inserts.
  std::vector<Operation> ops;
  for (const std::string& name : diff.deletes) {
    absl::StatusOr<Operation> op = api_.DeleteRoute(name);
    if (op.ok()) {
      ops.push_back(*std::move(op));
    } else if (!absl::IsNotFound(op.status())) {  // gone already: another agent was faster
      RecordError(op.status(), stats);
    }
  }
  for (const Operation& op : ops) {
    absl::Status s = api_.Wait(op);
    if (s.ok()) {
      done.deleted.insert(op.target);
    } else if (!absl::IsNotFound(s)) {
      RecordError(s, stats);
    }
  }
  ops.clear();
  std::vector<const Route*> started;
  for (const Route& r : diff.inserts) {
    absl::StatusOr<Operation> op = api_.InsertRoute(r);
    if (op.ok()) {
      ops.push_back(*std::move(op));
      started.push_back(&r);
    } else if (absl::IsResourceExhausted(op.status())) {
      quota_refused->push_back(*IPv4Net::Parse(r.dest_range));
      WEFT_LOG(ERROR, "GCE refused a route for quota").With("subnet", r.dest_range).Err(op.status());
    } else if (absl::IsAlreadyExists(op.status())) {
      done.conflicts.insert(r.name);  // inserted meanwhile by another agent
    } else {
      RecordError(op.status(), stats);
    }
  }
  for (size_t i = 0; i < ops.size(); ++i) {
    absl::Status s = api_.Wait(ops[i]);
    if (absl::IsResourceExhausted(s)) {
      quota_refused->push_back(*IPv4Net::Parse(started[i]->dest_range));
      WEFT_LOG(ERROR, "GCE refused a route for quota").With("subnet", started[i]->dest_range).Err(s);
    } else if (s.ok()) {
      done.inserted.insert(started[i]->name);
    } else if (absl::IsAlreadyExists(s)) {
      done.conflicts.insert(started[i]->name);
    } else {
      RecordError(s, stats);
    }
  }
  return done;
}

absl::StatusOr<ReconcileStats> GceBackend::Reconcile(std::vector<Peer> peers) {
  if (!initialized_) return absl::FailedPreconditionError("gce backend: Reconcile before Init");
  RoutePlan plan = PlanRoutes(setup_, peers);
  ReconcileStats stats;
  stats.skipped_peers = static_cast<int>(plan.skipped.size());
  for (const SkippedPeer& s : plan.skipped) {
    WEFT_LOG(DEBUG, "peer skipped").With("subnet", s.subnet).With("reason", s.reason);
  }
  const absl::Time now = options_.api.clock->Now();
  if (plan.routes == applied_ && now < next_check_) {
    // Nothing changed since the last complete pass. Over quota, that pass's
    // verdict still holds: retrying refused inserts every resync on every agent
    // would only spend the project's API quota.
    stats.unchanged = static_cast<int>(plan.routes.size()) - static_cast<int>(refused_.size());
    if (!plan.unrouted.empty() || !refused_.empty()) return QuotaError(plan, refused_);
    return stats;
  }

  ASSIGN_OR_RETURN(std::vector<Route> actual, ListOurRoutes());
  RouteDiff diff = DiffRoutes(actual, plan.routes);
  const int held = HoldRemovals(actual, plan, now, &diff);
  stats.unchanged = diff.unchanged;
  std::vector<IPv4Net> quota_refused;
  const Applied done = Apply(diff, &stats, &quota_refused);
  // Only changes that completed count; a replacement is a delete and an insert.
  for (const std::string& name : done.inserted) {
    if (done.deleted.contains(name)) {
      ++stats.updated;
    } else {
      ++stats.added;
    }
  }
  for (const std::string& name : done.deleted) {
    if (!done.inserted.contains(name)) ++stats.removed;
  }

  metrics_->unrouted.Set(static_cast<double>(plan.unrouted.size() + quota_refused.size()));
  // A conflict is a route another agent inserted under the same name: most
  // likely the same route, counted as in place and verified at the next pass.
  // Routes held for the removal grace are still in place, and counted.
  metrics_->routes.Set(static_cast<double>(actual.size() - done.deleted.size() + done.inserted.size() +
                                           done.conflicts.size()));
  metrics_->held.Set(held);

  const absl::Status quota = plan.unrouted.empty() && quota_refused.empty() ? absl::OkStatus()
                                                                             : QuotaError(plan, quota_refused);
  if (stats.errors == 0 && done.conflicts.empty()) {
    applied_ = plan.routes;
    refused_ = std::move(quota_refused);
    // The routes held for the removal grace are not converged yet: look again
    // when the first is due, even if the leases stay the same.
    next_check_ = std::min(now + options_.check_interval, removal_grace_.NextDue());
  } else {
    applied_.clear();  // check again at the next pass
    refused_.clear();
  }
  if (!quota.ok()) return quota;
  return stats;
}

absl::Status GceBackend::QuotaError(const RoutePlan& plan, const std::vector<IPv4Net>& refused) const {
  std::vector<IPv4Net> unrouted = plan.unrouted;
  unrouted.insert(unrouted.end(), refused.begin(), refused.end());
  std::sort(unrouted.begin(), unrouted.end());
  const size_t leases = plan.routes.size() + plan.unrouted.size();
  return absl::ResourceExhaustedError(absl::StrCat(
      "gce: route quota reached: ", unrouted.size(), " of ", leases,
      " leased subnets have no route, so hosts cannot reach their containers (Backend.RouteQuota is ",
      setup_.route_quota, refused.empty() ? "" : "; the project's ROUTES quota refused some inserts",
      "; routed are the lowest subnets). Unrouted: ", JoinNets(unrouted, 10),
      ". Raise the quota (GCE console and Backend.RouteQuota) or use fewer, larger subnets."));
}

absl::Status GceBackend::Teardown() {
  if (!initialized_) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::vector<Route> ours, ListOurRoutes());
  const std::string name = RouteName(setup_.network_url, setup_.cluster_network, setup_.own_subnet);
  for (const Route& r : ours) {
    if (r.name != name || r.next_hop_instance != setup_.own_instance) continue;
    absl::StatusOr<Operation> op = api_.DeleteRoute(name);
    if (absl::IsNotFound(op.status())) break;
    RETURN_IF_ERROR(op.status());
    absl::Status s = api_.Wait(*op);
    if (!s.ok() && !absl::IsNotFound(s)) return s;
  }
  applied_.clear();
  next_check_ = absl::InfinitePast();
  return absl::OkStatus();
}

}  // namespace weft::agent::gce
