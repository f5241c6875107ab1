#include "agent/backend/awsvpc/awsvpc_backend.h"

#include <algorithm>


#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/json.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace weft::agent {
namespace {

using Json = ::weft::json::Json;
using awsvpc::Ec2Route;
using awsvpc::Ec2RouteTable;

// AWS's default quota of routes per table.
constexpr int kDefaultRouteLimit = 50;
constexpr int kMaxRouteLimit = 1000;
// Statuses kept in ReconcileStats::first_errors.
constexpr size_t kMaxFirstErrors = 5;

// Go's encoding/json matching, as flanneld decodes the config: the exact key,
// else the first key equal to it ignoring case.
const Json* Key(const Json& obj, absl::string_view key) { return ::weft::json::FindFolded(obj, key); }

absl::StatusOr<Json> JsonObject(absl::string_view text, absl::string_view what) {
  return ::weft::json::ParseObject(text, what);
}

std::string JoinNets(const std::vector<IPv4Net>& nets, size_t max = 5) {
  std::vector<std::string> s;
  for (size_t i = 0; i < nets.size() && i < max; ++i) s.push_back(nets[i].ToString());
  if (nets.size() > max) s.push_back("...");
  return absl::StrJoin(s, ",");
}

void AddError(ReconcileStats* stats, absl::Status s) {
  ++stats->errors;
  if (stats->first_errors.size() < kMaxFirstErrors) stats->first_errors.push_back(std::move(s));
}

}  // namespace

absl::StatusOr<AwsVpcConfig> ParseAwsVpcConfig(absl::string_view json) {
  ASSIGN_OR_RETURN(Json obj, JsonObject(json.empty() ? "{}" : json, "Backend"));
  AwsVpcConfig c;
  if (const Json* t = Key(obj, "RouteTableID"); t != nullptr && !t->is_null()) {
    if (t->is_string()) {
      c.route_table_ids.push_back(t->get<std::string>());
    } else if (t->is_array()) {
      for (const Json& one : *t) {
        if (!one.is_string()) {
          return absl::InvalidArgumentError(
              absl::StrCat("Backend.RouteTableID: ", ::weft::json::Excerpt(one), " is not a string (expected \"rtb-...\")"));
        }
        c.route_table_ids.push_back(one.get<std::string>());
      }
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("Backend.RouteTableID: ", t->dump(), " is neither a string nor a list of strings"));
    }
    for (const std::string& id : c.route_table_ids) {
      if (!absl::StartsWith(id, "rtb-")) {
        return absl::InvalidArgumentError(absl::StrCat("Backend.RouteTableID: \"", id, "\" is not a route table ID"));
      }
    }
    std::sort(c.route_table_ids.begin(), c.route_table_ids.end());
    c.route_table_ids.erase(std::unique(c.route_table_ids.begin(), c.route_table_ids.end()), c.route_table_ids.end());
  }
  c.route_limit = kDefaultRouteLimit;
  if (const Json* l = Key(obj, "RouteLimit"); l != nullptr && !l->is_null()) {
    if (!l->is_number_integer() || l->get<int64_t>() < 1 || l->get<int64_t>() > kMaxRouteLimit) {
      return absl::InvalidArgumentError(
          absl::StrCat("Backend.RouteLimit: ", l->dump(), " is not an integer from 1 to ", kMaxRouteLimit));
    }
    c.route_limit = l->get<int>();
  }
  return c;
}

absl::StatusOr<std::string> ParseAwsVpcLeaseInstance(absl::string_view json) {
  if (absl::StripAsciiWhitespace(json).empty() || absl::StripAsciiWhitespace(json) == "null") {
    return absl::NotFoundError("the lease names no instance (BackendData is empty)");
  }
  ASSIGN_OR_RETURN(Json obj, JsonObject(json, "BackendData"));
  const Json* id = Key(obj, "InstanceID");
  if (id == nullptr || id->is_null()) return absl::NotFoundError("the lease names no instance (no InstanceID)");
  if (!id->is_string() || !absl::StartsWith(id->get<std::string>(), "i-")) {
    return absl::InvalidArgumentError(absl::StrCat("BackendData.InstanceID: ", id->dump(), " is not an instance ID"));
  }
  return id->get<std::string>();
}

std::string AwsVpcLeaseDataJson(absl::string_view instance_id) {
  return ::weft::json::Dump(Json{{"InstanceID", std::string(instance_id)}});
}

namespace awsvpc {

bool IsOurRoute(const Ec2Route& route, const IPv4Net& network, int subnet_len, const std::set<IPv4Net>& unmanaged) {
  if (route.origin != "CreateRoute" || route.instance_id.empty() || !route.other_target.empty()) return false;
  absl::StatusOr<IPv4Net> dst = IPv4Net::Parse(route.destination);
  return dst.ok() && dst->prefix_len() == subnet_len && network.Contains(*dst) && unmanaged.count(*dst) == 0;
}

TablePlan PlanTable(const Ec2RouteTable& table, const std::map<IPv4Net, std::string>& desired,
                    const std::set<IPv4Net>& unmanaged, const IPv4Net& network, int subnet_len, int route_limit) {
  TablePlan plan;
  std::map<IPv4Net, const Ec2Route*> ours;
  std::set<std::string> foreign_destinations;
  for (const Ec2Route& r : table.routes) {
    if (IsOurRoute(r, network, subnet_len, unmanaged)) {
      ours.emplace(*IPv4Net::Parse(r.destination), &r);
      continue;
    }
    // Propagated (VPN) routes do not count against the table's quota.
    if (r.origin != "EnableVgwRoutePropagation") ++plan.foreign;
    if (!r.destination.empty()) foreign_destinations.insert(r.destination);
  }
  // Leases in subnet order take what the foreign routes leave.
  const int room = std::max(0, route_limit - plan.foreign);
  std::map<IPv4Net, std::string> chosen;
  for (const auto& [subnet, instance] : desired) {
    if (foreign_destinations.count(subnet.ToString()) > 0) {
      plan.conflicts.push_back(subnet);
    } else if (static_cast<int>(chosen.size()) < room) {
      chosen.emplace(subnet, instance);
    } else {
      plan.over_limit.push_back(subnet);
    }
  }
  for (const auto& [subnet, route] : ours) {
    if (chosen.count(subnet) == 0) plan.remove.push_back(subnet);
  }
  for (const auto& [subnet, instance] : chosen) {
    auto it = ours.find(subnet);
    if (it == ours.end()) {
      plan.create.emplace_back(subnet, instance);
    } else if (it->second->instance_id != instance || it->second->state != "active") {
      plan.replace.emplace_back(subnet, instance);
    } else {
      ++plan.unchanged;
    }
  }
  plan.ours_after = static_cast<int>(chosen.size());
  return plan;
}

}  // namespace awsvpc

struct AwsVpcBackend::Metrics {
  explicit Metrics(metrics::Registry& r)
      : routes(r.AddGauge("weft_agent_awsvpc_routes",
                          "Routes this agent keeps for leases in the VPC route tables, summed over the tables.")
                   .Get()),
        unrouted(r.AddGauge("weft_agent_awsvpc_unrouted_peers",
                            "Leases without a route in at least one VPC route table (table full, or the "
                            "destination held by a route Weft does not own).")
                     .Get()),
        held(r.AddGauge("weft_agent_awsvpc_routes_held",
                        "VPC routes of no known lease kept until their removal grace ends, summed over the tables.")
                 .Get()),
        calls(r.AddCounter("weft_agent_awsvpc_api_calls_total", "EC2 API calls by action and result.",
                           {"action", "result"})),
        retries(r.AddCounter("weft_agent_awsvpc_api_retries_total",
                             "EC2 API attempts repeated after throttling or an unreachable endpoint.", {"action"})) {}
  metrics::Gauge& routes;
  metrics::Gauge& unrouted;
  metrics::Gauge& held;
  metrics::Family<metrics::Counter>& calls;
  metrics::Family<metrics::Counter>& retries;
};

AwsVpcBackend::AwsVpcBackend(std::unique_ptr<cloud::HttpClient> http, AwsVpcOptions options,
                             metrics::Registry* registry, Clock* clock)
    : http_(std::move(http)),
      options_(std::move(options)),
      clock_(clock),
      removal_grace_(options_.removal_grace),
      own_registry_(registry == nullptr ? std::make_unique<metrics::Registry>() : nullptr),
      metrics_(std::make_unique<Metrics>(registry != nullptr ? *registry : *own_registry_)),
      imds_(http_.get(), options_.imds_endpoint, clock) {
  creds_ = options_.credentials ? std::move(options_.credentials)
                                : cloud::DefaultAwsCredentialsChain(&imds_, clock);
}

AwsVpcBackend::~AwsVpcBackend() = default;

absl::StatusOr<cloud::InstanceIdentity> AwsVpcBackend::Identity() {
  if (!identity_) {
    ASSIGN_OR_RETURN(cloud::InstanceIdentity id, imds_.Identity());
    identity_ = std::move(id);
  }
  return *identity_;
}

absl::StatusOr<std::string> AwsVpcBackend::LeaseData() {
  ASSIGN_OR_RETURN(cloud::InstanceIdentity id, Identity());
  return AwsVpcLeaseDataJson(id.instance_id);
}

absl::StatusOr<std::vector<std::string>> AwsVpcBackend::DetectRouteTables() {
  // The table of the subnet of this instance's primary interface, else the VPC's main table.
  ASSIGN_OR_RETURN(std::string mac, imds_.Get("meta-data/mac"));
  mac = std::string(absl::StripAsciiWhitespace(mac));
  ASSIGN_OR_RETURN(std::string subnet_id, imds_.Get(absl::StrCat("meta-data/network/interfaces/macs/", mac, "/subnet-id")));
  ASSIGN_OR_RETURN(std::string vpc_id, imds_.Get(absl::StrCat("meta-data/network/interfaces/macs/", mac, "/vpc-id")));
  ASSIGN_OR_RETURN(std::vector<Ec2RouteTable> by_subnet,
                   ec2_->DescribeRouteTables({}, {{"association.subnet-id", {subnet_id}}}));
  if (!by_subnet.empty()) return std::vector<std::string>{by_subnet.front().id};
  ASSIGN_OR_RETURN(std::vector<Ec2RouteTable> main,
                   ec2_->DescribeRouteTables({}, {{"association.main", {"true"}}, {"vpc-id", {vpc_id}}}));
  if (main.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("no route table for subnet ", subnet_id, " and no main route table in ", vpc_id));
  }
  return std::vector<std::string>{main.front().id};
}

void AwsVpcBackend::EnsureSourceDestCheckOff() {
  if (src_dst_check_off_) return;
  absl::Status s = ec2_->DisableSourceDestCheck(identity_->instance_id);
  if (!s.ok()) {
    // Routes still go in; traffic forwarded through this host is dropped until this works.
    WEFT_LOG(WARN, "cannot disable the instance's source/destination check; retrying next pass")
        .With("instance", identity_->instance_id)
        .Err(s);
    return;
  }
  src_dst_check_off_ = true;
  WEFT_LOG(INFO, "source/destination check disabled").With("instance", identity_->instance_id);
}

absl::StatusOr<BackendInfo> AwsVpcBackend::Init(const LocalConfig& local, const OwnLease& lease,
                                                absl::string_view backend_config_json) {
  ASSIGN_OR_RETURN(config_, ParseAwsVpcConfig(backend_config_json));
  ASSIGN_OR_RETURN(cloud::InstanceIdentity id, Identity());
  lease_ = lease;
  if (!ec2_) {
    std::string endpoint = options_.ec2_endpoint.empty() ? awsvpc::DefaultEc2Endpoint(id.region) : options_.ec2_endpoint;
    while (absl::EndsWith(endpoint, "/")) endpoint.pop_back();
    ec2_ = std::make_unique<awsvpc::Ec2Client>(http_.get(), creds_.get(), endpoint, id.region, clock_, options_.retry);
    ec2_->set_observer([m = metrics_.get()](absl::string_view action, const absl::Status& s, int retries) {
      m->calls.WithLabels({std::string(action), s.ok() ? "ok" : "error"}).Inc();
      if (retries > 0) m->retries.WithLabels({std::string(action)}).Inc(retries);
    });
  }
  if (config_.route_table_ids.empty()) {
    ASSIGN_OR_RETURN(tables_, DetectRouteTables());
    WEFT_LOG(INFO, "route table detected").With("table", tables_.front());
  } else {
    tables_ = config_.route_table_ids;
  }
  EnsureSourceDestCheckOff();
  WEFT_LOG(INFO, "aws-vpc backend ready")
      .With("instance", id.instance_id)
      .With("region", id.region)
      .With("tables", absl::StrJoin(tables_, ","))
      .With("route_limit", config_.route_limit);
  // No encapsulation: containers get the interface's full MTU.
  return BackendInfo{kAwsVpcBackendType, AwsVpcLeaseDataJson(id.instance_id), local.iface_mtu};
}

absl::StatusOr<ReconcileStats> AwsVpcBackend::Reconcile(std::vector<Peer> peers) {
  if (!ec2_ || !identity_) return absl::FailedPreconditionError("aws-vpc: Reconcile before Init");
  EnsureSourceDestCheckOff();
  ReconcileStats stats;
  const IPv4Net& network = lease_.network;
  const int subnet_len = lease_.subnet.prefix_len();
  std::map<IPv4Net, std::string> desired{{lease_.subnet, identity_->instance_id}};
  std::set<IPv4Net> unmanaged;
  for (const Peer& p : peers) {
    if (p.subnet == lease_.subnet) continue;
    if (p.backend_type != kAwsVpcBackendType || !network.Contains(p.subnet) || p.subnet.prefix_len() != subnet_len) {
      ++stats.skipped_peers;
      continue;
    }
    absl::StatusOr<std::string> instance = ParseAwsVpcLeaseInstance(p.backend_data_json);
    if (instance.ok()) {
      desired.emplace(p.subnet, *std::move(instance));
      continue;
    }
    ++stats.skipped_peers;
    // A lease that names no instance routes itself (flannel's aws-vpc): keep off its route.
    if (absl::IsNotFound(instance.status())) unmanaged.insert(p.subnet);
    WEFT_LOG(DEBUG, "peer without a usable instance").With("subnet", p.subnet).Err(instance.status());
  }

  ASSIGN_OR_RETURN(std::vector<Ec2RouteTable> tables, ec2_->DescribeRouteTables(tables_));
  std::vector<awsvpc::TablePlan> plans;
  for (const std::string& id : tables_) {
    auto table = std::find_if(tables.begin(), tables.end(), [&](const Ec2RouteTable& t) { return t.id == id; });
    if (table == tables.end()) {
      return absl::NotFoundError(absl::StrCat("EC2 DescribeRouteTables did not return route table ", id));
    }
    plans.push_back(awsvpc::PlanTable(*table, desired, unmanaged, network, subnet_len, config_.route_limit));
  }
  const int held = HoldRemovals(&plans);

  int routes = 0;
  std::set<IPv4Net> unrouted;
  for (size_t t = 0; t < tables_.size(); ++t) {
    const std::string& id = tables_[t];
    const awsvpc::TablePlan& plan = plans[t];
    // Deletions first: they make room for the creations. `kept` counts the
    // routes that point where they should once the calls are done.
    int kept = plan.unchanged;
    for (const IPv4Net& subnet : plan.remove) {
      absl::Status s = ec2_->DeleteRoute(id, subnet.ToString());
      if (s.ok() || absl::IsNotFound(s)) {
        ++stats.removed;
      } else {
        AddError(&stats, s);
      }
    }
    for (const auto& [subnet, instance] : plan.replace) {
      absl::Status s = ec2_->ReplaceRoute(id, subnet.ToString(), instance);
      if (s.ok()) {
        ++stats.updated;
        ++kept;
      } else {
        AddError(&stats, s);
      }
    }
    for (const auto& [subnet, instance] : plan.create) {
      absl::Status s = ec2_->CreateRoute(id, subnet.ToString(), instance);
      if (s.ok()) {
        ++stats.added;
        ++kept;
      } else if (absl::IsAlreadyExists(s)) {
        // Another agent created it a moment ago; the next pass checks its target.
        ++stats.unchanged;
      } else {
        AddError(&stats, s);
      }
    }
    stats.unchanged += plan.unchanged;
    routes += kept;
    unrouted.insert(plan.over_limit.begin(), plan.over_limit.end());
    unrouted.insert(plan.conflicts.begin(), plan.conflicts.end());
    if (!plan.over_limit.empty()) {
      AddError(&stats, absl::ResourceExhaustedError(absl::StrCat(
                           "route table ", id, " is full: RouteLimit ", config_.route_limit, ", ", plan.foreign,
                           " routes not Weft's, ", plan.over_limit.size(), " of ", desired.size(),
                           " leases without a route (", JoinNets(plan.over_limit), ")")));
    }
    if (!plan.conflicts.empty()) {
      AddError(&stats, absl::AlreadyExistsError(absl::StrCat("route table ", id,
                                                             ": routes Weft does not own hold lease subnets (",
                                                             JoinNets(plan.conflicts), ")")));
    }
  }
  metrics_->routes.Set(routes);
  metrics_->unrouted.Set(static_cast<double>(unrouted.size()));
  metrics_->held.Set(held);
  if (unrouted != last_unrouted_) {
    if (!unrouted.empty()) {
      WEFT_LOG(ERROR, "leases without a VPC route")
          .With("unrouted", static_cast<int64_t>(unrouted.size()))
          .With("route_limit", config_.route_limit)
          .With("subnets", JoinNets({unrouted.begin(), unrouted.end()}, 20));
    } else {
      WEFT_LOG(INFO, "every lease has its VPC route again");
    }
    last_unrouted_ = unrouted;
  }
  return stats;
}

int AwsVpcBackend::HoldRemovals(std::vector<awsvpc::TablePlan>* plans) {
  auto key = [](const std::string& table, const IPv4Net& subnet) { return absl::StrCat(table, " ", subnet.ToString()); };
  std::vector<std::string> unwanted;
  for (size_t t = 0; t < tables_.size(); ++t) {
    for (const IPv4Net& subnet : (*plans)[t].remove) unwanted.push_back(key(tables_[t], subnet));
  }
  std::vector<RemovalGrace::Held> newly_held;
  std::set<std::string> held(unwanted.begin(), unwanted.end());
  for (const std::string& k : removal_grace_.Due(unwanted, clock_->Now(), &newly_held)) held.erase(k);
  std::map<std::string, absl::Time> first_held_until;
  for (const RemovalGrace::Held& h : newly_held) first_held_until.emplace(h.key, h.until);

  int waiting = 0;
  for (size_t t = 0; t < tables_.size(); ++t) {
    const std::string& id = tables_[t];
    awsvpc::TablePlan& plan = (*plans)[t];
    std::vector<IPv4Net> remove_now;
    std::vector<IPv4Net> wait;
    for (const IPv4Net& subnet : plan.remove) {
      (held.count(key(id, subnet)) > 0 ? wait : remove_now).push_back(subnet);
    }
    if (wait.empty()) continue;
    // Held routes take room in the table like any other: the leases known here
    // come first (this also deletes at once the route of a known lease that a
    // lower subnet pushed out of the table).
    if (plan.foreign + plan.ours_after + static_cast<int>(wait.size()) > config_.route_limit) {
      WEFT_LOG(INFO, "deleting VPC routes before their removal grace ends: the table needs room")
          .With("table", id)
          .With("subnets", JoinNets(wait))
          .With("route_limit", config_.route_limit);
      continue;
    }
    for (const IPv4Net& subnet : wait) {
      auto first = first_held_until.find(key(id, subnet));
      if (first == first_held_until.end()) continue;  // logged when first held
      WEFT_LOG(INFO, "VPC route that no known lease asks for kept until its removal grace ends "
                     "(the lease may not have reached this agent yet)")
          .With("table", id)
          .With("subnet", subnet)
          .With("until", absl::FormatTime(absl::RFC3339_sec, first->second, absl::UTCTimeZone()));
    }
    plan.remove = std::move(remove_now);
    waiting += static_cast<int>(wait.size());
  }
  return waiting;
}

absl::Status AwsVpcBackend::Teardown() {
  if (!ec2_ || !identity_) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::vector<Ec2RouteTable> tables, ec2_->DescribeRouteTables(tables_));
  const std::string own = lease_.subnet.ToString();
  for (const Ec2RouteTable& t : tables) {
    for (const Ec2Route& r : t.routes) {
      if (r.destination == own && r.instance_id == identity_->instance_id &&
          awsvpc::IsOurRoute(r, lease_.network, lease_.subnet.prefix_len(), {})) {
        absl::Status s = ec2_->DeleteRoute(t.id, own);
        if (!s.ok() && !absl::IsNotFound(s)) return s;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace weft::agent
