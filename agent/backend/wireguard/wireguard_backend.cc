#include "agent/backend/wireguard/wireguard_backend.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/backend/wireguard/wg_key.h"
#include "agent/netlink/reconciler.h"
#include "common/json.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace weft::agent {
namespace {

using Json = ::weft::json::Json;

absl::StatusOr<uint64_t> UInt(const Json& j, absl::string_view field, uint64_t max) {
  if (!j.is_number_integer() || (!j.is_number_unsigned() && j.get<int64_t>() < 0) || j.get<uint64_t>() > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", ::weft::json::Excerpt(j), " is not an integer from 0 to ", max));
  }
  return j.get<uint64_t>();
}

bool SamePeerConfig(const wg::Peer& a, const wg::Peer& b) {
  return a.public_key == b.public_key && a.preshared_key == b.preshared_key && a.endpoint_ip == b.endpoint_ip &&
         a.endpoint_port == b.endpoint_port && a.keepalive_seconds == b.keepalive_seconds &&
         a.allowed_ips == b.allowed_ips;
}

bool ByKey(const wg::Peer& a, const wg::Peer& b) { return a.public_key < b.public_key; }

void RegisterWireguardMetrics(metrics::Registry& r, const std::string& implementation, bool per_peer,
                              std::function<WireguardBackend::Snapshot()> snapshot) {
  using metrics::MetricType;
  using metrics::Sample;
  r.AddCallbackFamily(MetricType::kGauge, "weft_agent_wireguard_implementation",
                      "1 for the WireGuard implementation the agent drives: kernel or userspace (wireguard-go).",
                      {"implementation"}, [implementation] {
                        return std::vector<Sample>{{{wg::kKernelDriver}, implementation == wg::kKernelDriver ? 1.0 : 0.0},
                                                   {{wg::kUserspaceDriver}, implementation == wg::kUserspaceDriver ? 1.0 : 0.0}};
                      });
  r.AddCallbackGauge("weft_agent_wireguard_peers", "Peers configured on the WireGuard devices, flannel-wg and flannel-wg-v6 summed (a dual-stack "
                     "peer in Mode separate counts once per device; at the last resync).",
                     [snapshot] { return static_cast<double>(snapshot().peers.size()); });
  r.AddCallbackGauge("weft_agent_wireguard_peers_without_handshake",
                     "Peers (on either device) WireGuard has never completed a handshake with (at the last resync).", [snapshot] {
                       const WireguardBackend::Snapshot s = snapshot();
                       return static_cast<double>(std::count_if(s.peers.begin(), s.peers.end(), [](const wg::Peer& p) {
                         return p.last_handshake == absl::UnixEpoch();
                       }));
                     });
  r.AddCallbackGauge("weft_agent_wireguard_oldest_handshake_age_seconds",
                     "Seconds since the last handshake of the peer that has gone longest without one (among peers "
                     "with a handshake); WireGuard renews a session every 2 minutes while traffic flows.",
                     [snapshot] {
                       const WireguardBackend::Snapshot s = snapshot();
                       const absl::Time now = absl::Now();
                       double oldest = 0;
                       for (const wg::Peer& p : s.peers) {
                         if (p.last_handshake == absl::UnixEpoch()) continue;
                         oldest = std::max(oldest, absl::ToDoubleSeconds(now - p.last_handshake));
                       }
                       return oldest;
                     });
  r.AddCallbackFamily(MetricType::kCounter, "weft_agent_wireguard_bytes_total",
                      "Bytes WireGuard received from (rx) and sent to (tx) the configured peers, summed (at the last "
                      "resync).",
                      {"direction"}, [snapshot] {
                        const WireguardBackend::Snapshot s = snapshot();
                        double rx = 0, tx = 0;
                        for (const wg::Peer& p : s.peers) rx += static_cast<double>(p.rx_bytes), tx += static_cast<double>(p.tx_bytes);
                        return std::vector<Sample>{{{"rx"}, rx}, {{"tx"}, tx}};
                      });
  if (!per_peer) return;
  auto label = [](const WireguardBackend::Snapshot& s, size_t i) {
    return i < s.peer_subnets.size() ? s.peer_subnets[i] : std::string("unknown");
  };
  r.AddCallbackFamily(MetricType::kGauge, "weft_agent_wireguard_peer_handshake_age_seconds",
                      "Seconds since the last WireGuard handshake with each peer (by its lease's subnet); absent "
                      "before the first one.",
                      {"peer_subnet"}, [snapshot, label] {
                        const WireguardBackend::Snapshot s = snapshot();
                        const absl::Time now = absl::Now();
                        std::vector<Sample> out;
                        for (size_t i = 0; i < s.peers.size(); ++i) {
                          const wg::Peer& p = s.peers[i];
                          if (p.last_handshake == absl::UnixEpoch()) continue;
                          out.push_back({{label(s, i)}, std::max(0.0, absl::ToDoubleSeconds(now - p.last_handshake))});
                        }
                        return out;
                      });
  r.AddCallbackFamily(MetricType::kCounter, "weft_agent_wireguard_peer_bytes_total",
                      "Bytes WireGuard received from (rx) and sent to (tx) each peer, by the peer's lease subnet "
                      "(at the last resync).",
                      {"peer_subnet", "direction"}, [snapshot, label] {
                        const WireguardBackend::Snapshot s = snapshot();
                        std::vector<Sample> out;
                        for (size_t i = 0; i < s.peers.size(); ++i) {
                          const std::string subnet = label(s, i);
                          out.push_back({{subnet, "rx"}, static_cast<double>(s.peers[i].rx_bytes)});
                          out.push_back({{subnet, "tx"}, static_cast<double>(s.peers[i].tx_bytes)});
                        }
                        return out;
                      });
}

}  // namespace

absl::StatusOr<WireguardConfig> ParseWireguardConfig(absl::string_view json) {
  WireguardConfig c;
  if (json.empty()) return c;
  ASSIGN_OR_RETURN(const Json j, ::weft::json::ParseObject(json, "Backend"));
  auto field = [&j](const char* key) {
    const Json* v = ::weft::json::FindFolded(j, key);
    return v != nullptr && !v->is_null() ? v : nullptr;
  };
  if (const Json* type = field("Type"); type != nullptr) {
    if (!type->is_string() || !absl::EqualsIgnoreCase(type->get<std::string>(), kWireguardBackendType)) {
      return absl::InvalidArgumentError(
          absl::StrCat("Backend.Type is ", ::weft::json::Excerpt(*type), ", not \"wireguard\""));
    }
  }
  if (const Json* v = field("ListenPort"); v != nullptr) {
    ASSIGN_OR_RETURN(uint64_t port, UInt(*v, "Backend.ListenPort", 65535));
    if (port != 0) c.listen_port = static_cast<uint16_t>(port);
  }
  if (const Json* v = field("ListenPortV6"); v != nullptr) {
    ASSIGN_OR_RETURN(uint64_t port, UInt(*v, "Backend.ListenPortV6", 65535));
    if (port != 0) c.listen_port_v6 = static_cast<uint16_t>(port);
  }
  if (const Json* v = field("MTU"); v != nullptr) {
    ASSIGN_OR_RETURN(uint64_t mtu, UInt(*v, "Backend.MTU", 65535));
    if (mtu != 0 && mtu < 576) {
      return absl::InvalidArgumentError(absl::StrCat("Backend.MTU: ", mtu, " is below 576"));
    }
    c.mtu = static_cast<uint32_t>(mtu);
  }
  if (const Json* v = field("PersistentKeepaliveInterval"); v != nullptr) {
    ASSIGN_OR_RETURN(uint64_t k, UInt(*v, "Backend.PersistentKeepaliveInterval", 65535));
    c.keepalive_seconds = static_cast<uint16_t>(k);
  }
  if (const Json* v = field("Mode"); v != nullptr) {
    const std::string mode = v->is_string() ? absl::AsciiStrToLower(v->get<std::string>()) : "";
    if (mode != "separate" && mode != "auto" && mode != "ipv4" && mode != "ipv6") {
      return absl::InvalidArgumentError(absl::StrCat("Backend.Mode: ", ::weft::json::Excerpt(*v),
                                                     " is not one of separate, auto, ipv4, ipv6"));
    }
    c.mode = mode;
  }
  if (const Json* v = field("PSK"); v != nullptr) {
    if (!v->is_string()) return absl::InvalidArgumentError("Backend.PSK: not a string");
    const std::string psk = v->get<std::string>();
    if (!psk.empty()) { ASSIGN_OR_RETURN(c.psk, wg::ParseBase64Key(psk, "Backend.PSK")); }
  }
  return c;
}

std::string EncodeWireguardLeaseData(const WireguardLeaseData& d) {
  return absl::StrCat(R"({"PublicKey":")", wg::ToBase64(d.public_key), R"(","Port":)", d.port, "}");
}

absl::StatusOr<WireguardLeaseData> ParseWireguardLeaseData(absl::string_view json) {
  ASSIGN_OR_RETURN(const Json j, ::weft::json::ParseObject(json, "BackendData"));
  WireguardLeaseData d;
  const Json* key = ::weft::json::FindFolded(j, "PublicKey");
  if (key == nullptr || !key->is_string()) return absl::InvalidArgumentError("BackendData: no PublicKey string");
  ASSIGN_OR_RETURN(d.public_key, wg::ParseBase64Key(key->get<std::string>(), "BackendData.PublicKey"));
  if (const Json* port = ::weft::json::FindFolded(j, "Port"); port != nullptr && !port->is_null()) {
    ASSIGN_OR_RETURN(uint64_t p, UInt(*port, "BackendData.Port", 65535));
    d.port = static_cast<uint16_t>(p);
  }
  return d;
}

namespace {

// flannel's ip.IP4.IsPrivate (RFC 1918) and ip.IP6.IsPrivate (fc00::/7).
bool IsPrivate(IPv4Addr a) {
  const uint32_t v = a.value();
  return (v >> 24) == 10 || (v >> 20) == ((172u << 4) | 1u) || (v >> 16) == ((192u << 8) | 168u);
}
bool IsPrivate(IPv6Addr a) { return (a.ToBytes()[0] & 0xfe) == 0xfc; }

// One family's side of a peer: its lease data, checked.
struct Side {
  WireguardLeaseData data;
  std::string problem;  // empty: usable
};

Side V4Side(const WireguardSetup& setup, const Peer& p) {
  Side s;
  if (p.subnet.Overlaps(setup.lease.subnet)) {
    s.problem = absl::StrCat("subnet overlaps this host's ", setup.lease.subnet.ToString());
    return s;
  }
  absl::StatusOr<WireguardLeaseData> d = ParseWireguardLeaseData(p.backend_data_json);
  if (!d.ok()) {
    s.problem = std::string(d.status().message());
    return s;
  }
  s.data = *d;
  return s;
}

Side V6Side(const WireguardSetup& setup, const Peer& p) {
  Side s;
  if (std::string problem = PeerV6Problem(p, *setup.v6); !problem.empty()) {
    s.problem = std::move(problem);
    return s;
  }
  if (p.backend_v6_data_json.empty()) {
    s.problem = "no BackendV6Data";
    return s;
  }
  absl::StatusOr<WireguardLeaseData> d = ParseWireguardLeaseData(p.backend_v6_data_json);
  if (!d.ok()) {
    s.problem = absl::StrCat("BackendV6Data: ", d.status().message());
    return s;
  }
  s.data = *d;
  return s;
}

// Adds `w` to `out` unless its key is ours or already there; else says why not.
std::string AddPeer(const WireguardSetup& setup, wg::Peer w, absl::flat_hash_set<wg::Key>& keys,
                    std::vector<wg::Peer>& out) {
  if (w.public_key == setup.public_key) return "its PublicKey is this host's own (a copied key file?)";
  if (!keys.insert(w.public_key).second) {
    return "its PublicKey is another lease's too (a copied key file?); the first lease keeps it";
  }
  if (setup.config.psk) w.preshared_key = *setup.config.psk;
  w.keepalive_seconds = setup.config.keepalive_seconds;
  std::sort(w.allowed_ips.begin(), w.allowed_ips.end());
  out.push_back(std::move(w));
  return "";
}

// Mode auto's endpoint: true for the peer's PublicIPv6 (both present).
bool PreferIPv6Endpoint(const WireguardSetup& setup, IPv4Addr ip4, IPv6Addr ip6) {
  if (!IsPrivate(ip4) && setup.public_ip != IPv4Addr()) return false;
  return !IsPrivate(ip6) && setup.v6.has_value() && !IsPrivate(setup.v6->iface_ip);
}

}  // namespace

WireguardDesired WireguardDesiredPeers(const WireguardSetup& setup, const std::vector<Peer>& peers,
                                       std::vector<WireguardSkippedPeer>* skipped) {
  WireguardDesired out;
  absl::flat_hash_set<wg::Key> keys, v6_keys;
  const bool net_v4 = setup.lease.ipv4, net_v6 = setup.v6.has_value();
  const WireguardConfig& cfg = setup.config;
  for (const Peer& p : peers) {
    if (IsOwnLease(p, setup.lease)) continue;
    const bool use_v4 = net_v4 && p.ipv4;
    const bool use_v6 = net_v6 && p.ipv6_subnet.has_value();
    auto skip = [&](bool v6, std::string why) {
      skipped->push_back({v6 ? netlink::IPPrefix(p.ipv6_subnet.value_or(IPv6Net())) : netlink::IPPrefix(p.subnet),
                          std::move(why)});
    };
    if (!absl::EqualsIgnoreCase(p.backend_type, kWireguardBackendType)) {
      skip(!p.ipv4, absl::StrCat("backend type is \"", p.backend_type, "\", not \"wireguard\""));
      continue;
    }
    if (!use_v4 && !use_v6) {
      skip(!p.ipv4, "no subnet of this network's families");
      continue;
    }
    const Side v4 = use_v4 ? V4Side(setup, p) : Side();
    const Side v6 = use_v6 ? V6Side(setup, p) : Side();
    if (cfg.separate()) {
      if (use_v4 && v4.problem.empty() && p.public_ip == IPv4Addr()) {
        skip(false, "no PublicIP");
      } else if (use_v4 && !v4.problem.empty()) {
        skip(false, v4.problem);
      } else if (use_v4) {
        wg::Peer w;
        w.public_key = v4.data.public_key;
        w.endpoint_ip = p.public_ip;
        w.endpoint_port = v4.data.port != 0 ? v4.data.port : cfg.listen_port;
        w.allowed_ips = {p.subnet};
        if (std::string why = AddPeer(setup, std::move(w), keys, out.peers); !why.empty()) skip(false, why);
      }
      if (use_v6 && !v6.problem.empty()) {
        skip(true, v6.problem);
      } else if (use_v6) {
        wg::Peer w;
        w.public_key = v6.data.public_key;
        w.endpoint_ip = *p.public_ipv6;
        w.endpoint_port = v6.data.port != 0 ? v6.data.port : cfg.listen_port_v6;
        w.allowed_ips = {*p.ipv6_subnet};
        if (std::string why = AddPeer(setup, std::move(w), v6_keys, out.v6_peers); !why.empty()) skip(true, why);
      }
      continue;
    }
    // One device: the peer once, with every usable subnet, or not at all.
    if (!v4.problem.empty()) {
      skip(false, v4.problem);
      continue;
    }
    if (!v6.problem.empty()) {
      skip(true, v6.problem);
      continue;
    }
    const bool has_ip4 = use_v4 && p.public_ip != IPv4Addr();
    const bool has_ip6 = use_v6 && p.public_ipv6.has_value();
    bool endpoint_v6;
    if (cfg.mode == "ipv4") {
      endpoint_v6 = false;
    } else if (cfg.mode == "ipv6") {
      endpoint_v6 = true;
    } else {
      endpoint_v6 = has_ip4 && has_ip6 ? PreferIPv6Endpoint(setup, p.public_ip, *p.public_ipv6) : has_ip6;
    }
    if (endpoint_v6 ? !has_ip6 : !has_ip4) {
      skip(!use_v4, absl::StrCat("no ", endpoint_v6 ? "PublicIPv6" : "PublicIP", " (Mode ", cfg.mode, ")"));
      continue;
    }
    wg::Peer w;
    // flanneld takes the key of BackendV6Data when the network has IPv6.
    w.public_key = use_v6 ? v6.data.public_key : v4.data.public_key;
    if (endpoint_v6) {
      w.endpoint_ip = *p.public_ipv6;
      w.endpoint_port = v6.data.port;
    } else {
      w.endpoint_ip = p.public_ip;
      w.endpoint_port = v4.data.port;
    }
    if (w.endpoint_port == 0) w.endpoint_port = cfg.listen_port;
    if (use_v4) w.allowed_ips.push_back(p.subnet);
    if (use_v6) w.allowed_ips.push_back(*p.ipv6_subnet);
    if (std::string why = AddPeer(setup, std::move(w), keys, out.peers); !why.empty()) skip(!use_v4, why);
  }
  std::sort(out.peers.begin(), out.peers.end(), ByKey);
  std::sort(out.v6_peers.begin(), out.v6_peers.end(), ByKey);
  return out;
}

std::vector<wg::PeerChange> WireguardPeerDiff(const std::vector<wg::Peer>& actual_in,
                                              const std::vector<wg::Peer>& desired_in, ReconcileStats* stats) {
  std::vector<wg::Peer> actual = actual_in, desired = desired_in;
  std::sort(actual.begin(), actual.end(), ByKey);
  std::sort(desired.begin(), desired.end(), ByKey);
  std::vector<wg::PeerChange> removals, puts;
  size_t i = 0, j = 0;
  while (i < actual.size() || j < desired.size()) {
    if (j == desired.size() || (i < actual.size() && actual[i].public_key < desired[j].public_key)) {
      removals.push_back({actual[i], true});
      ++stats->removed, ++i;
    } else if (i == actual.size() || desired[j].public_key < actual[i].public_key) {
      puts.push_back({desired[j], false});
      ++stats->added, ++j;
    } else {
      if (SamePeerConfig(actual[i], desired[j])) {
        ++stats->unchanged;
      } else {
        puts.push_back({desired[j], false});
        ++stats->updated;
      }
      ++i, ++j;
    }
  }
  removals.insert(removals.end(), puts.begin(), puts.end());
  return removals;
}

WireguardBackend::WireguardBackend(netlink::KernelProgrammer* kernel, std::unique_ptr<wg::Driver> driver,
                                   std::unique_ptr<wg::Driver> v6_driver, WireguardConfig config,
                                   WireguardOptions options, metrics::Registry* registry)
    : kernel_(kernel),
      driver_(std::move(driver)),
      v6_driver_(std::move(v6_driver)),
      config_(std::move(config)),
      options_(std::move(options)),
      shared_(std::make_shared<Shared>()) {
  main_.driver = driver_.get();
  v6_.driver = v6_driver_.get();
  if (registry != nullptr) {
    RegisterWireguardMetrics(*registry, driver_->kind(), options_.peer_metrics, [shared = shared_] {
      absl::MutexLock l(&shared->mu);
      return shared->snapshot;
    });
  }
}

absl::Status WireguardBackend::EnsureKey() {
  if (private_key_) return absl::OkStatus();
  absl::StatusOr<wg::Key> key = wg::LoadOrCreatePrivateKey(options_.key_file);
  if (!key.ok()) return absl::InvalidArgumentError(key.status().message());
  ASSIGN_OR_RETURN(public_key_, wg::PublicKeyOf(*key));
  private_key_ = *key;
  WEFT_LOG(INFO, "WireGuard key").With("file", options_.key_file).With("public_key", wg::ToBase64(public_key_));
  return absl::OkStatus();
}

absl::StatusOr<std::string> WireguardBackend::LeaseData() {
  RETURN_IF_ERROR(EnsureKey());
  return EncodeWireguardLeaseData({public_key_, config_.listen_port});
}

absl::StatusOr<std::string> WireguardBackend::LeaseV6Data() {
  RETURN_IF_ERROR(EnsureKey());
  return EncodeWireguardLeaseData({public_key_, config_.v6_port()});
}

absl::StatusOr<BackendInfo> WireguardBackend::Init(const LocalConfig& local, const OwnLease& lease,
                                                   absl::string_view backend_config_json) {
  ASSIGN_OR_RETURN(WireguardConfig config, ParseWireguardConfig(backend_config_json));
  const uint32_t mtu = config.mtu != 0 ? config.mtu : local.iface_mtu - kWireguardOverhead;
  if (config.mtu == 0 && local.iface_mtu < 576 + kWireguardOverhead) {
    return absl::InvalidArgumentError(absl::StrCat("wireguard: external MTU ", local.iface_mtu, " is too small"));
  }
  ASSIGN_OR_RETURN(std::optional<LocalV6> v6, LocalV6Of(local, lease, "wireguard"));
  RETURN_IF_ERROR(EnsureKey());
  config_ = config;
  local_ = local;
  if (local_.public_ip == IPv4Addr()) local_.public_ip = local.iface_ip;
  local_v6_ = v6;
  lease_ = lease;
  mtu_ = mtu;
  initialized_ = true;
  const bool has_v4 = lease.ipv4, has_v6 = v6.has_value();
  main_.port = config_.listen_port;
  v6_.port = config_.listen_port_v6;
  if (config_.separate()) {
    main_.ipv4 = has_v4, main_.ipv6 = false;
    v6_.ipv4 = false, v6_.ipv6 = has_v6;
  } else {
    main_.ipv4 = has_v4, main_.ipv6 = has_v6;
    v6_.ipv4 = v6_.ipv6 = false;
  }
  std::vector<wg::Device> devices;
  ReconcileStats stats;
  RETURN_IF_ERROR(EnsureDevices(&devices, &stats));
  for (const DeviceSetup* d : {&main_, &v6_}) {
    if (!d->ipv4 && !d->ipv6) continue;
    WEFT_LOG(INFO, "wireguard device ready")
        .With("dev", d->driver->device())
        .With("implementation", d->driver->kind())
        .With("mode", config_.mode)
        .With("ipv4", d->ipv4)
        .With("ipv6", d->ipv6)
        .With("port", d->port)
        .With("mtu", mtu_)
        .With("psk", config_.psk.has_value())
        .With("public_key", wg::ToBase64(public_key_));
  }
  BackendInfo info{kWireguardBackendType, "", mtu_};
  if (has_v4) info.data_json = EncodeWireguardLeaseData({public_key_, config_.listen_port});
  if (has_v6) info.v6_data_json = EncodeWireguardLeaseData({public_key_, config_.v6_port()});
  return info;
}

absl::Status WireguardBackend::EnsureDevice(DeviceSetup& d, wg::Device* device) {
  RETURN_IF_ERROR(d.driver->EnsureDevice());
  ASSIGN_OR_RETURN(netlink::Link link, kernel_->GetLink(d.driver->device()));
  d.index = link.index;
  if (link.mtu != mtu_) {
    WEFT_LOG(DEBUG, "setting the wireguard MTU").With("dev", link.name).With("mtu", link.mtu).With("want", mtu_);
    RETURN_IF_ERROR(d.driver->SetMtu(link.index, mtu_));
  }
  if (!link.up) RETURN_IF_ERROR(kernel_->SetLinkUp(link.index));
  // flannel's: the lease's network address of each family as a host address.
  if (d.ipv4) RETURN_IF_ERROR(kernel_->EnsureAddress(netlink::InterfaceAddress{d.index, lease_.subnet.network(), 32}));
  if (d.ipv6) {
    RETURN_IF_ERROR(
        kernel_->EnsureAddress(netlink::InterfaceAddress{d.index, lease_.ipv6_subnet->network(), 128}));
  }
  ASSIGN_OR_RETURN(*device, d.driver->Get());
  wg::DeviceChange change;
  if (device->private_key != *private_key_) change.private_key = *private_key_;
  if (device->listen_port != d.port) change.listen_port = d.port;
  if (!change.empty()) {
    RETURN_IF_ERROR(d.driver->Set(change));
    device->private_key = *private_key_;
    device->listen_port = d.port;
  }
  return absl::OkStatus();
}

absl::Status WireguardBackend::EnsureDevices(std::vector<wg::Device>* devices, ReconcileStats* stats) {
  devices->assign(2, wg::Device());
  DesiredState desired;
  std::vector<int> owned;
  DeviceSetup* setups[] = {&main_, &v6_};
  for (size_t i = 0; i < 2; ++i) {
    DeviceSetup& d = *setups[i];
    if (!d.ipv4 && !d.ipv6) {
      // Not called for (any more): gone, with its addresses and routes.
      d.index = 0;
      absl::StatusOr<netlink::Link> stale = kernel_->GetLink(d.driver->device());
      if (absl::IsNotFound(stale.status())) continue;
      RETURN_IF_ERROR(stale.status());
      WEFT_LOG(INFO, "removing a wireguard device the mode and families no longer call for")
          .With("dev", d.driver->device())
          .With("mode", config_.mode);
      RETURN_IF_ERROR(kernel_->DeleteLink(stale->index));  // wireguard-go exits with its device
      continue;
    }
    RETURN_IF_ERROR(EnsureDevice(d, &(*devices)[i]));
    owned.push_back(d.index);
    // The cluster network of each family the device carries.
    if (d.ipv4) desired.routes.push_back(netlink::Route{lease_.network, IPv4Addr(), d.index, false});
    if (d.ipv6 && lease_.ipv6_network) {
      desired.routes.push_back(netlink::Route{*lease_.ipv6_network, IPv6Addr(), d.index, false});
    }
  }
  ASSIGN_OR_RETURN(*stats, agent::Reconcile(*kernel_, Ownership{owned, netlink::kWeftRouteProtocol, false}, desired));
  return absl::OkStatus();
}

void WireguardBackend::LogSkipped(const std::vector<WireguardSkippedPeer>& skipped) {
  absl::flat_hash_map<netlink::IPPrefix, std::string> now;
  for (const WireguardSkippedPeer& s : skipped) now.emplace(s.subnet, s.reason);
  for (const auto& [subnet, reason] : now) {
    auto it = logged_skips_.find(subnet);
    if (it != logged_skips_.end() && it->second == reason) continue;
    WEFT_LOG(WARN, "skipping peer").With("subnet", subnet.ToString()).With("reason", reason);
  }
  logged_skips_ = std::move(now);
}

absl::Status WireguardBackend::SetPeers(DeviceSetup& d, wg::Device* actual, const std::vector<wg::Peer>& desired,
                                        ReconcileStats* stats) {
  std::vector<wg::PeerChange> changes = WireguardPeerDiff(actual->peers, desired, stats);
  if (changes.empty()) return absl::OkStatus();
  wg::DeviceChange change;
  change.peers = std::move(changes);
  if (absl::Status s = d.driver->Set(change); !s.ok()) {
    // Retried at the next pass, from what the device then reports.
    ++stats->errors;
    stats->first_errors.push_back(s);
    WEFT_LOG(ERROR, "wireguard peers not set").With("dev", d.driver->device()).Err(s);
  }
  ASSIGN_OR_RETURN(*actual, d.driver->Get());
  return absl::OkStatus();
}

absl::StatusOr<ReconcileStats> WireguardBackend::Reconcile(std::vector<Peer> peers) {
  if (!initialized_) return absl::FailedPreconditionError("wireguard: Reconcile before Init");
  std::vector<wg::Device> devices;
  ReconcileStats stats;
  RETURN_IF_ERROR(EnsureDevices(&devices, &stats));
  std::vector<WireguardSkippedPeer> skipped;
  const WireguardSetup setup{lease_, local_.public_ip, local_v6_, public_key_, config_};
  WireguardDesired desired = WireguardDesiredPeers(setup, peers, &skipped);
  LogSkipped(skipped);
  stats.skipped_peers = static_cast<int>(skipped.size());
  Snapshot snap;
  DeviceSetup* setups[] = {&main_, &v6_};
  const std::vector<wg::Peer>* wanted[] = {&desired.peers, &desired.v6_peers};
  for (size_t i = 0; i < 2; ++i) {
    if (!setups[i]->ipv4 && !setups[i]->ipv6) continue;
    RETURN_IF_ERROR(SetPeers(*setups[i], &devices[i], *wanted[i], &stats));
    absl::flat_hash_map<wg::Key, std::string> subnet_of;
    for (const wg::Peer& w : *wanted[i]) subnet_of.emplace(w.public_key, w.allowed_ips.front().ToString());
    for (wg::Peer& p : devices[i].peers) {
      auto it = subnet_of.find(p.public_key);
      snap.peer_subnets.push_back(it == subnet_of.end() ? "unknown" : it->second);
      snap.peers.push_back(std::move(p));
    }
  }
  absl::MutexLock l(&shared_->mu);
  shared_->snapshot = std::move(snap);
  return stats;
}

absl::Status WireguardBackend::Teardown() {
  if (!initialized_) return absl::OkStatus();
  // Their addresses and routes go with them.
  absl::Status s = driver_->DeleteDevice();
  s.Update(v6_driver_->DeleteDevice());
  initialized_ = false;
  main_.index = v6_.index = 0;
  absl::MutexLock l(&shared_->mu);
  shared_->snapshot = Snapshot();
  return s;
}

}  // namespace weft::agent
