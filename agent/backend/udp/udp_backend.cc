#include "agent/backend/udp/udp_backend.h"

#include <algorithm>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/netlink/reconciler.h"
#include "common/json.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace weft::agent {
namespace {

using Json = ::weft::json::Json;

using udp::DatapathStats;
using udp::DropReason;
using udp::PeerRoute;

int ResolveWorkers(int asked) {
  if (asked > 0) return asked;
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  return std::clamp(cores, 1, 4);
}

UdpOptions Resolved(UdpOptions o) {
  o.workers = ResolveWorkers(o.workers);
  return o;
}

}  // namespace

absl::StatusOr<UdpConfig> ParseUdpConfig(absl::string_view json) {
  UdpConfig c;
  if (json.empty()) return c;
  ASSIGN_OR_RETURN(const Json j, ::weft::json::ParseObject(json, "Backend"));
  // Go's decoder: the exact key, else the first one equal but for case.
  auto field = [&j](const char* key) { return ::weft::json::FindFolded(j, key); };
  if (const Json* type = field("Type"); type != nullptr) {
    if (!type->is_string() || !absl::EqualsIgnoreCase(type->get<std::string>(), kUdpBackendType)) {
      return absl::InvalidArgumentError(absl::StrCat("Backend.Type is ", ::weft::json::Excerpt(*type), ", not \"udp\""));
    }
  }
  if (const Json* port = field("Port"); port != nullptr) {
    if (!port->is_number_integer() || (!port->is_number_unsigned() && port->get<int64_t>() < 0) ||
        port->get<uint64_t>() > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("Backend.Port: ", ::weft::json::Excerpt(*port), " is not an integer from 0 to 65535"));
    }
    if (port->get<uint64_t>() != 0) c.port = static_cast<uint16_t>(port->get<uint64_t>());
  }
  return c;
}

std::vector<PeerRoute> UdpPeerRoutes(const OwnLease& own, IPv4Addr own_public_ip, const std::vector<Peer>& peers,
                                     std::vector<UdpSkippedPeer>* skipped) {
  std::vector<PeerRoute> routes;
  for (const Peer& p : peers) {
    if (p.subnet == own.subnet) continue;
    std::string why;
    if (!absl::EqualsIgnoreCase(p.backend_type, kUdpBackendType)) {
      why = absl::StrCat("backend type is \"", p.backend_type, "\", not \"udp\"");
    } else if (p.subnet.Overlaps(own.subnet)) {
      why = absl::StrCat("subnet overlaps this host's ", own.subnet.ToString());
    } else if (p.public_ip == own_public_ip) {
      why = absl::StrCat("PublicIP ", p.public_ip.ToString(), " is this host's own");
    } else if (p.public_ip == IPv4Addr()) {
      why = "no PublicIP";
    }
    if (!why.empty()) {
      skipped->push_back({p.subnet, std::move(why)});
      continue;
    }
    routes.push_back({p.subnet, p.public_ip});
  }
  std::sort(routes.begin(), routes.end(), [](const PeerRoute& a, const PeerRoute& b) { return a.subnet < b.subnet; });
  return routes;
}

void RegisterUdpMetrics(metrics::Registry& r, std::shared_ptr<DatapathStats> stats) {
  using metrics::MetricType;
  using metrics::Sample;
  r.AddCallbackFamily(MetricType::kCounter, "weft_agent_udp_packets_total",
                      "Inner IP packets carried by the UDP backend: tx to peers, rx from peers.", {"direction"},
                      [stats] {
                        const DatapathStats::Totals t = stats->Sum();
                        return std::vector<Sample>{{{"rx"}, static_cast<double>(t.rx_packets)},
                                                   {{"tx"}, static_cast<double>(t.tx_packets)}};
                      });
  r.AddCallbackFamily(MetricType::kCounter, "weft_agent_udp_bytes_total",
                      "Bytes of inner IP packets carried by the UDP backend.", {"direction"}, [stats] {
                        const DatapathStats::Totals t = stats->Sum();
                        return std::vector<Sample>{{{"rx"}, static_cast<double>(t.rx_bytes)},
                                                   {{"tx"}, static_cast<double>(t.tx_bytes)}};
                      });
  r.AddCallbackFamily(MetricType::kCounter, "weft_agent_udp_drops_total", "Packets the UDP backend dropped, by reason.",
                      {"reason"}, [stats] {
                        const DatapathStats::Totals t = stats->Sum();
                        std::vector<Sample> out;
                        for (size_t i = 1; i < static_cast<size_t>(DropReason::kCount); ++i) {
                          out.push_back({{udp::DropReasonName(static_cast<DropReason>(i))},
                                         static_cast<double>(t.drops[i])});
                        }
                        return out;
                      });
  r.AddCallbackFamily(MetricType::kCounter, "weft_agent_udp_syscalls_total",
                      "System calls of the UDP data path; packets per call shows the batching.", {"call"}, [stats] {
                        const DatapathStats::Totals t = stats->Sum();
                        using C = udp::ThreadCounters;
                        return std::vector<Sample>{
                            {{"recvmmsg"}, static_cast<double>(t.calls[C::kRecvmmsg])},
                            {{"sendmmsg"}, static_cast<double>(t.calls[C::kSendmmsg])},
                            {{"tun_read"}, static_cast<double>(t.calls[C::kTunRead])},
                            {{"tun_write"}, static_cast<double>(t.calls[C::kTunWrite])},
                        };
                      });
  r.AddCallbackGauge("weft_agent_udp_peers", "Peers in the UDP backend's subnet table.",
                     [stats] { return static_cast<double>(stats->peers.load()); });
  r.AddCallbackGauge("weft_agent_udp_workers", "Worker pairs of threads (one TUN queue and one UDP socket each).",
                     [stats] { return static_cast<double>(stats->workers()); });
  r.AddCallbackFamily(MetricType::kGauge, "weft_agent_udp_offload_enabled",
                      "1 when the kernel took the offload: tun_tso, tun_uso, udp_gso, udp_gro, rx_steering.",
                      {"offload"}, [stats] {
                        return std::vector<Sample>{{{"rx_steering"}, stats->rx_steering.load() ? 1.0 : 0.0},
                                                   {{"tun_tso"}, stats->tun_tso.load() ? 1.0 : 0.0},
                                                   {{"tun_uso"}, stats->tun_uso.load() ? 1.0 : 0.0},
                                                   {{"udp_gro"}, stats->udp_gro.load() ? 1.0 : 0.0},
                                                   {{"udp_gso"}, stats->udp_gso.load() ? 1.0 : 0.0}};
                      });
}

UdpBackend::UdpBackend(netlink::KernelProgrammer* kernel, metrics::Registry* registry, UdpOptions options,
                       UdpConfig config)
    : kernel_(kernel),
      options_(Resolved(std::move(options))),
      config_(config),
      stats_(std::make_shared<DatapathStats>(options_.workers)) {
  if (registry != nullptr) RegisterUdpMetrics(*registry, stats_);
}

UdpBackend::~UdpBackend() = default;  // the data path stops in its destructor

absl::StatusOr<BackendInfo> UdpBackend::Init(const LocalConfig& local, const OwnLease& lease,
                                             absl::string_view backend_config_json) {
  ASSIGN_OR_RETURN(UdpConfig config, ParseUdpConfig(backend_config_json));
  if (local.iface_ip == IPv4Addr()) {
    return absl::InvalidArgumentError("udp: the external interface has no IPv4 address");
  }
  if (local.iface_mtu < 68 + kUdpOverhead) {
    return absl::InvalidArgumentError(absl::StrCat("udp: external MTU ", local.iface_mtu, " is too small"));
  }
  config_ = config;
  local_ = local;
  if (local_.public_ip == IPv4Addr()) local_.public_ip = local.iface_ip;
  lease_ = lease;
  mtu_ = local.iface_mtu - kUdpOverhead;
  if (datapath_) {
    const udp::DatapathConfig& now = datapath_->config();
    if (now.port != config_.port || now.mtu != mtu_ || now.bind_ip != local_.iface_ip) {
      WEFT_LOG(INFO, "udp setup changed; restarting the data path");
      datapath_.reset();
    }
  }
  initialized_ = true;
  RETURN_IF_ERROR(EnsureDevice().status());
  WEFT_LOG(INFO, "udp device ready")
      .With("dev", options_.device)
      .With("port", config_.port)
      .With("mtu", mtu_)
      .With("address", absl::StrCat(lease_.subnet.network().ToString(), "/", lease_.network.prefix_len()))
      .With("workers", options_.workers);
  return BackendInfo{kUdpBackendType, "", mtu_};
}

absl::StatusOr<ReconcileStats> UdpBackend::EnsureDevice() {
  for (int attempt = 0;; ++attempt) {
    if (!datapath_) {
      udp::DatapathConfig dc;
      dc.device = options_.device;
      dc.mtu = mtu_;
      dc.port = config_.port;
      dc.bind_ip = local_.iface_ip;
      dc.workers = options_.workers;
      dc.offloads = options_.offloads;
      ASSIGN_OR_RETURN(datapath_, udp::Datapath::Start(dc, stats_));
      datapath_->SetPeers(routes_);
    }
    absl::StatusOr<netlink::Link> link = kernel_->GetLink(options_.device);
    if (link.ok()) {
      device_index_ = link->index;
      if (link->mtu != mtu_) {
        WEFT_LOG(WARN, "udp device MTU was changed; restoring it").With("mtu", link->mtu).With("want", mtu_);
        RETURN_IF_ERROR(udp::SetTunMtu(options_.device, mtu_));
      }
      if (!link->up) RETURN_IF_ERROR(kernel_->SetLinkUp(link->index));
      break;
    }
    if (!absl::IsNotFound(link.status()) || attempt > 0) return link.status();
    // Deleted behind our back: the queues are dead; make the device again.
    WEFT_LOG(WARN, "udp device was deleted; recreating it").With("dev", options_.device);
    datapath_.reset();
  }
  // Flannel's address: the lease's network address with the cluster network's
  // prefix, so that host-originated packets leave with a source in our subnet.
  RETURN_IF_ERROR(kernel_->EnsureAddress(
      netlink::InterfaceAddress{device_index_, lease_.subnet.network(), lease_.network.prefix_len()}));
  DesiredState desired;
  desired.routes.push_back(netlink::Route{lease_.network, IPv4Addr(), device_index_, false});
  return agent::Reconcile(*kernel_, Ownership{{device_index_}, netlink::kWeftRouteProtocol, false}, desired);
}

void UdpBackend::LogSkipped(const std::vector<UdpSkippedPeer>& skipped) {
  absl::flat_hash_map<IPv4Net, std::string> now;
  for (const UdpSkippedPeer& s : skipped) now.emplace(s.subnet, s.reason);
  if (now == logged_skips_) return;
  for (const auto& [subnet, reason] : now) {
    auto it = logged_skips_.find(subnet);
    if (it != logged_skips_.end() && it->second == reason) continue;
    WEFT_LOG(WARN, "skipping peer").With("subnet", subnet).With("reason", reason);
  }
  logged_skips_ = std::move(now);
}

absl::StatusOr<ReconcileStats> UdpBackend::Reconcile(std::vector<Peer> peers) {
  if (!initialized_) return absl::FailedPreconditionError("udp: Reconcile before Init");
  ASSIGN_OR_RETURN(ReconcileStats stats, EnsureDevice());
  std::vector<UdpSkippedPeer> skipped;
  std::vector<PeerRoute> routes = UdpPeerRoutes(lease_, local_.public_ip, peers, &skipped);
  LogSkipped(skipped);
  stats.skipped_peers = static_cast<int>(skipped.size());
  auto same = [](const PeerRoute& a, const PeerRoute& b) {
    return a.subnet == b.subnet && a.public_ip == b.public_ip;
  };
  // Both lists are sorted by subnet: count what the table gains, loses, changes.
  size_t i = 0, j = 0;
  while (i < routes_.size() || j < routes.size()) {
    if (j == routes.size() || (i < routes_.size() && routes_[i].subnet < routes[j].subnet)) {
      ++stats.removed, ++i;
    } else if (i == routes_.size() || routes[j].subnet < routes_[i].subnet) {
      ++stats.added, ++j;
    } else {
      same(routes_[i], routes[j]) ? ++stats.unchanged : ++stats.updated;
      ++i, ++j;
    }
  }
  if (routes.size() != routes_.size() || !std::equal(routes.begin(), routes.end(), routes_.begin(), same)) {
    routes_ = std::move(routes);
    datapath_->SetPeers(routes_);
  }
  return stats;
}

absl::Status UdpBackend::Teardown() {
  if (!initialized_) return absl::OkStatus();
  absl::Status status;
  if (device_index_ != 0 && kernel_->GetLinkByIndex(device_index_).ok()) {
    absl::StatusOr<ReconcileStats> s =
        agent::Reconcile(*kernel_, Ownership{{device_index_}, netlink::kWeftRouteProtocol, false}, {});
    if (!s.ok()) {
      status = s.status();
    } else if (s->errors > 0) {
      status = s->first_errors.front();
    }
  }
  datapath_.reset();  // the last queue closed takes flannel0 (and its routes) away
  routes_.clear();
  initialized_ = false;
  device_index_ = 0;
  return status;
}

}  // namespace weft::agent
