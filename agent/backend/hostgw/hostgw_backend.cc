#include "agent/backend/hostgw/hostgw_backend.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/netlink/reconciler.h"
#include "common/json.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace weft::agent {

absl::Status ValidateHostgwConfig(absl::string_view json) {
  if (json.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(const ::weft::json::Json j, ::weft::json::ParseObject(json, "Backend"));
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!absl::EqualsIgnoreCase(it.key(), "Type") || it->is_null()) continue;
    if (!it->is_string() || !absl::EqualsIgnoreCase(it->get<std::string>(), kHostgwBackendType)) {
      return absl::InvalidArgumentError(absl::StrCat("Backend.Type is ", ::weft::json::Excerpt(*it), ", not \"host-gw\""));
    }
  }
  return absl::OkStatus();
}

namespace {

std::string OffLinkReason(absl::string_view what, const std::string& ip, const LocalConfig& local,
                          const std::string& network) {
  return absl::StrCat(what, " ", ip, " is outside ", local.iface_name, "'s network ", network,
                      ": host-gw needs every host on one L2 segment (use vxlan across subnets)");
}

void AddRouteV4(const HostgwSetup& setup, const Peer& p, DesiredState& d, std::vector<HostgwSkip>* skipped) {
  const LocalConfig& local = setup.local;
  auto skip = [&](bool unroutable, std::string reason) {
    skipped->push_back(HostgwSkip{p.subnet, p.public_ip, unroutable, std::move(reason)});
  };
  if (p.subnet.Overlaps(setup.lease.subnet)) {
    return skip(false, absl::StrCat("subnet overlaps this host's ", setup.lease.subnet.ToString()));
  }
  if (p.public_ip == local.public_ip) {
    return skip(false, absl::StrCat("PublicIP ", p.public_ip.ToString(), " is this host's own"));
  }
  if (!local.iface_network.Contains(p.public_ip)) {
    return skip(true, OffLinkReason("PublicIP", p.public_ip.ToString(), local, local.iface_network.ToString()));
  }
  netlink::Route route{p.subnet, p.public_ip, local.iface_index, false};
  if (setup.use_nexthops) {
    route.nexthop_id = p.subnet.network().value();
    d.nexthops.push_back(netlink::Nexthop{route.nexthop_id, p.public_ip, local.iface_index, false});
  }
  d.routes.push_back(route);
}

void AddRouteV6(const HostgwSetup& setup, const LocalV6& own, const Peer& p, DesiredState& d,
                std::vector<HostgwSkip>* skipped) {
  const LocalConfig& local = setup.local;
  if (std::string problem = PeerV6Problem(p, own); !problem.empty()) {
    skipped->push_back(HostgwSkip{*p.ipv6_subnet, p.public_ipv6.value_or(IPv6Addr()), false, std::move(problem)});
    return;
  }
  if (!own.iface_network.Contains(*p.public_ipv6)) {
    skipped->push_back(HostgwSkip{
        *p.ipv6_subnet, *p.public_ipv6, true,
        OffLinkReason("PublicIPv6", p.public_ipv6->ToString(), local, own.iface_network.ToString())});
    return;
  }
  d.routes.push_back(netlink::Route{*p.ipv6_subnet, *p.public_ipv6, local.iface_index, false});
}

}  // namespace

DesiredState HostgwDesiredState(const HostgwSetup& setup, const std::vector<Peer>& peers,
                                std::vector<HostgwSkip>* skipped) {
  DesiredState d;
  for (const Peer& p : peers) {
    if (IsOwnLease(p, setup.lease)) continue;
    if (!p.ipv4 && !p.ipv6_subnet) continue;  // names nothing to route
    if (!absl::EqualsIgnoreCase(p.backend_type, kHostgwBackendType)) {
      std::string why = absl::StrCat("backend type is \"", p.backend_type, "\", not \"host-gw\"");
      skipped->push_back(p.ipv4 ? HostgwSkip{p.subnet, p.public_ip, false, std::move(why)}
                                : HostgwSkip{*p.ipv6_subnet, p.public_ipv6.value_or(IPv6Addr()), false, std::move(why)});
      continue;
    }
    if (setup.lease.ipv4 && p.ipv4) AddRouteV4(setup, p, d, skipped);
    if (setup.v6 && p.ipv6_subnet) AddRouteV6(setup, *setup.v6, p, d, skipped);
  }
  return d;
}

HostgwBackend::HostgwBackend(netlink::KernelProgrammer* kernel, metrics::Registry* registry) : kernel_(kernel) {
  if (registry != nullptr) {
    unroutable_gauge_ = &registry
                             ->AddGauge("weft_agent_hostgw_unroutable_peers",
                                        "host-gw peers whose PublicIP is off the external interface's network, "
                                        "so no route to them is installed.")
                             .Get();
  }
}

absl::StatusOr<BackendInfo> HostgwBackend::Init(const LocalConfig& local, const OwnLease& lease,
                                                absl::string_view backend_config_json) {
  RETURN_IF_ERROR(ValidateHostgwConfig(backend_config_json));
  if (local.iface_index == 0) return absl::InvalidArgumentError("host-gw: the external interface has no index");
  if (lease.ipv4 && local.iface_ip == IPv4Addr()) {
    return absl::InvalidArgumentError("host-gw: the external interface has no IPv4 address");
  }
  const IPv4Addr public_ip = local.public_ip == IPv4Addr() ? local.iface_ip : local.public_ip;
  if (lease.ipv4 && public_ip != local.iface_ip) {
    // Peers route to our subnet via the PublicIP, so it must be this interface's.
    return absl::InvalidArgumentError(absl::StrCat(
        "host-gw: the public IP ", public_ip.ToString(), " differs from ", local.iface_name, "'s address ",
        local.iface_ip.ToString(), " (behind a NAT?); host-gw needs peers to reach this host directly"));
  }
  ASSIGN_OR_RETURN(std::optional<LocalV6> v6, LocalV6Of(local, lease, "host-gw"));
  if (v6 && v6->public_ip != v6->iface_ip) {
    return absl::InvalidArgumentError(absl::StrCat(
        "host-gw: the public IPv6 ", v6->public_ip.ToString(), " differs from ", local.iface_name, "'s address ",
        v6->iface_ip.ToString(), "; host-gw needs peers to reach this host directly"));
  }
  // A new external interface leaves routes on the old one: they go at the next pass,
  // since they carry our protocol but are no longer desired.
  const bool use_nexthops = kernel_->ListNexthops(netlink::kWeftRouteProtocol).ok();
  setup_ = HostgwSetup{local, lease, use_nexthops, v6};
  setup_.local.public_ip = public_ip;
  initialized_ = true;
  WEFT_LOG(INFO, "host-gw ready")
      .With("iface", local.iface_name)
      .WithIf(lease.ipv4, "network", local.iface_network)
      .With("mtu", local.iface_mtu)
      .With("nexthop_objects", use_nexthops);
  if (v6) {
    WEFT_LOG(INFO, "host-gw IPv6 ready").With("network", v6->iface_network).With("subnet", v6->subnet);
  }
  return BackendInfo{kHostgwBackendType, "", local.iface_mtu};
}

void HostgwBackend::LogSkips(const std::vector<HostgwSkip>& skipped) {
  absl::flat_hash_map<netlink::IPPrefix, std::string> now;
  for (const HostgwSkip& s : skipped) {
    auto [it, fresh] = now.emplace(s.subnet, s.reason);
    if (!fresh) continue;
    auto before = logged_.find(s.subnet);
    if (before != logged_.end() && before->second == s.reason) continue;
    WEFT_LOG(WARN, s.unroutable ? "host-gw peer not routable; no route installed" : "skipping peer")
        .With("subnet", s.subnet)
        .With("public_ip", s.public_ip)
        .With("reason", s.reason);
  }
  logged_ = std::move(now);
}

absl::StatusOr<ReconcileStats> HostgwBackend::Reconcile(std::vector<Peer> peers) {
  if (!initialized_) return absl::FailedPreconditionError("host-gw: Reconcile before Init");
  std::vector<HostgwSkip> skipped;
  const DesiredState desired = HostgwDesiredState(setup_, peers, &skipped);
  std::vector<Peer>().swap(peers);  // not needed past here: freed before the kernel is read
  LogSkips(skipped);
  int unroutable = 0;
  for (const HostgwSkip& s : skipped) unroutable += s.unroutable ? 1 : 0;
  unroutable_peers_ = unroutable;
  if (unroutable_gauge_ != nullptr) unroutable_gauge_->Set(unroutable);
  // No device: device_index 0 leaves neighbours and FDB entries alone.
  ASSIGN_OR_RETURN(ReconcileStats stats,
                   agent::Reconcile(*kernel_, Ownership{{}, netlink::kWeftRouteProtocol, setup_.use_nexthops},
                                    desired));
  stats.skipped_peers = static_cast<int>(skipped.size());
  return stats;
}

absl::Status HostgwBackend::Teardown() {
  if (!initialized_) return absl::OkStatus();
  ASSIGN_OR_RETURN(ReconcileStats stats,
                   agent::Reconcile(*kernel_, Ownership{{}, netlink::kWeftRouteProtocol, setup_.use_nexthops}, {}));
  initialized_ = false;
  if (stats.errors > 0) return stats.first_errors.front();
  return absl::OkStatus();
}

}  // namespace weft::agent
