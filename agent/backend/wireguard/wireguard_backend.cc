#include "agent/backend/wireguard/wireguard_backend.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/backend/wireguard/wg_key.h"
#include "agent/reconciler.h"
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
  r.AddCallbackGauge("weft_agent_wireguard_peers", "Peers configured on the WireGuard device (at the last resync).",
                     [snapshot] { return static_cast<double>(snapshot().peers.size()); });
  r.AddCallbackGauge("weft_agent_wireguard_peers_without_handshake",
                     "Peers WireGuard has never completed a handshake with (at the last resync).", [snapshot] {
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
  auto label = [](const WireguardBackend::Snapshot& s, const wg::Peer& p) {
    auto it = s.subnet_by_key.find(wg::ToBase64(p.public_key));
    return it == s.subnet_by_key.end() ? std::string("unknown") : it->second.ToString();
  };
  r.AddCallbackFamily(MetricType::kGauge, "weft_agent_wireguard_peer_handshake_age_seconds",
                      "Seconds since the last WireGuard handshake with each peer (by its lease's subnet); absent "
                      "before the first one.",
                      {"peer_subnet"}, [snapshot, label] {
                        const WireguardBackend::Snapshot s = snapshot();
                        const absl::Time now = absl::Now();
                        std::vector<Sample> out;
                        for (const wg::Peer& p : s.peers) {
                          if (p.last_handshake == absl::UnixEpoch()) continue;
                          out.push_back({{label(s, p)}, std::max(0.0, absl::ToDoubleSeconds(now - p.last_handshake))});
                        }
                        return out;
                      });
  r.AddCallbackFamily(MetricType::kCounter, "weft_agent_wireguard_peer_bytes_total",
                      "Bytes WireGuard received from (rx) and sent to (tx) each peer, by the peer's lease subnet "
                      "(at the last resync).",
                      {"peer_subnet", "direction"}, [snapshot, label] {
                        const WireguardBackend::Snapshot s = snapshot();
                        std::vector<Sample> out;
                        for (const wg::Peer& p : s.peers) {
                          const std::string subnet = label(s, p);
                          out.push_back({{subnet, "rx"}, static_cast<double>(p.rx_bytes)});
                          out.push_back({{subnet, "tx"}, static_cast<double>(p.tx_bytes)});
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
    if (mode == "ipv6") {
      return absl::InvalidArgumentError("Backend.Mode: ipv6 needs an IPv6 data path, which Weft's agent does not have");
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

std::vector<wg::Peer> WireguardDesiredPeers(const WireguardSetup& setup, const std::vector<Peer>& peers,
                                            std::vector<WireguardSkippedPeer>* skipped) {
  std::vector<wg::Peer> out;
  absl::flat_hash_set<wg::Key> keys;
  for (const Peer& p : peers) {
    if (p.subnet == setup.lease.subnet) continue;
    auto skip = [&](std::string why) { skipped->push_back({p.subnet, std::move(why)}); };
    if (!absl::EqualsIgnoreCase(p.backend_type, kWireguardBackendType)) {
      skip(absl::StrCat("backend type is \"", p.backend_type, "\", not \"wireguard\""));
      continue;
    }
    if (p.subnet.Overlaps(setup.lease.subnet)) {
      skip(absl::StrCat("subnet overlaps this host's ", setup.lease.subnet.ToString()));
      continue;
    }
    if (p.public_ip == IPv4Addr()) {
      skip("no PublicIP");
      continue;
    }
    absl::StatusOr<WireguardLeaseData> data = ParseWireguardLeaseData(p.backend_data_json);
    if (!data.ok()) {
      skip(std::string(data.status().message()));
      continue;
    }
    if (data->public_key == setup.public_key) {
      skip("its PublicKey is this host's own (a copied key file?)");
      continue;
    }
    if (!keys.insert(data->public_key).second) {
      skip("its PublicKey is another lease's too (a copied key file?); the first lease keeps it");
      continue;
    }
    wg::Peer w;
    w.public_key = data->public_key;
    if (setup.config.psk) w.preshared_key = *setup.config.psk;
    w.endpoint_ip = p.public_ip;
    w.endpoint_port = data->port != 0 ? data->port : setup.config.listen_port;
    w.keepalive_seconds = setup.config.keepalive_seconds;
    w.allowed_ips = {p.subnet};
    out.push_back(std::move(w));
  }
  std::sort(out.begin(), out.end(), ByKey);
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
                                   WireguardConfig config, WireguardOptions options, metrics::Registry* registry)
    : kernel_(kernel),
      driver_(std::move(driver)),
      config_(std::move(config)),
      options_(std::move(options)),
      shared_(std::make_shared<Shared>()) {
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

absl::StatusOr<BackendInfo> WireguardBackend::Init(const LocalConfig& local, const OwnLease& lease,
                                                   absl::string_view backend_config_json) {
  ASSIGN_OR_RETURN(WireguardConfig config, ParseWireguardConfig(backend_config_json));
  const uint32_t mtu = config.mtu != 0 ? config.mtu : local.iface_mtu - kWireguardOverhead;
  if (config.mtu == 0 && local.iface_mtu < 576 + kWireguardOverhead) {
    return absl::InvalidArgumentError(absl::StrCat("wireguard: external MTU ", local.iface_mtu, " is too small"));
  }
  RETURN_IF_ERROR(EnsureKey());
  config_ = config;
  local_ = local;
  if (local_.public_ip == IPv4Addr()) local_.public_ip = local.iface_ip;
  lease_ = lease;
  mtu_ = mtu;
  initialized_ = true;
  wg::Device device;
  RETURN_IF_ERROR(EnsureDevice(&device).status());
  WEFT_LOG(INFO, "wireguard device ready")
      .With("dev", driver_->device())
      .With("implementation", driver_->kind())
      .With("port", config_.listen_port)
      .With("mtu", mtu_)
      .With("psk", config_.psk.has_value())
      .With("public_key", wg::ToBase64(public_key_));
  return BackendInfo{kWireguardBackendType, EncodeWireguardLeaseData({public_key_, config_.listen_port}), mtu_};
}

absl::StatusOr<ReconcileStats> WireguardBackend::EnsureDevice(wg::Device* device) {
  RETURN_IF_ERROR(driver_->EnsureDevice());
  ASSIGN_OR_RETURN(netlink::Link link, kernel_->GetLink(driver_->device()));
  device_index_ = link.index;
  if (link.mtu != mtu_) {
    WEFT_LOG(DEBUG, "setting the wireguard MTU").With("mtu", link.mtu).With("want", mtu_);
    RETURN_IF_ERROR(driver_->SetMtu(link.index, mtu_));
  }
  if (!link.up) RETURN_IF_ERROR(kernel_->SetLinkUp(link.index));
  // flannel's: the lease's network address as a /32, the cluster network routed in.
  RETURN_IF_ERROR(kernel_->EnsureAddress(netlink::InterfaceAddress{device_index_, lease_.subnet.network(), 32}));
  DesiredState desired;
  desired.routes.push_back(netlink::Route{lease_.network, IPv4Addr(), device_index_, false});
  ASSIGN_OR_RETURN(ReconcileStats stats,
                   agent::Reconcile(*kernel_, Ownership{{device_index_}, netlink::kWeftRouteProtocol, false}, desired));
  ASSIGN_OR_RETURN(*device, driver_->Get());
  wg::DeviceChange change;
  if (device->private_key != *private_key_) change.private_key = *private_key_;
  if (device->listen_port != config_.listen_port) change.listen_port = config_.listen_port;
  if (!change.empty()) {
    RETURN_IF_ERROR(driver_->Set(change));
    device->private_key = *private_key_;
    device->listen_port = config_.listen_port;
  }
  return stats;
}

void WireguardBackend::LogSkipped(const std::vector<WireguardSkippedPeer>& skipped) {
  absl::flat_hash_map<IPv4Net, std::string> now;
  for (const WireguardSkippedPeer& s : skipped) now.emplace(s.subnet, s.reason);
  for (const auto& [subnet, reason] : now) {
    auto it = logged_skips_.find(subnet);
    if (it != logged_skips_.end() && it->second == reason) continue;
    WEFT_LOG(WARN, "skipping peer").With("subnet", subnet).With("reason", reason);
  }
  logged_skips_ = std::move(now);
}

absl::StatusOr<ReconcileStats> WireguardBackend::Reconcile(const std::vector<Peer>& peers) {
  if (!initialized_) return absl::FailedPreconditionError("wireguard: Reconcile before Init");
  wg::Device device;
  ASSIGN_OR_RETURN(ReconcileStats stats, EnsureDevice(&device));
  std::vector<WireguardSkippedPeer> skipped;
  const WireguardSetup setup{lease_, local_.public_ip, public_key_, config_};
  std::vector<wg::Peer> desired = WireguardDesiredPeers(setup, peers, &skipped);
  LogSkipped(skipped);
  stats.skipped_peers = static_cast<int>(skipped.size());
  std::vector<wg::PeerChange> changes = WireguardPeerDiff(device.peers, desired, &stats);
  if (!changes.empty()) {
    wg::DeviceChange change;
    change.peers = std::move(changes);
    if (absl::Status s = driver_->Set(change); !s.ok()) {
      // Retried at the next pass, from what the device then reports.
      ++stats.errors;
      stats.first_errors.push_back(s);
      WEFT_LOG(ERROR, "wireguard peers not set").Err(s);
    }
    ASSIGN_OR_RETURN(device, driver_->Get());
  }
  Snapshot snap;
  snap.peers = std::move(device.peers);
  for (const Peer& p : peers) {
    absl::StatusOr<WireguardLeaseData> d = ParseWireguardLeaseData(p.backend_data_json);
    if (d.ok()) snap.subnet_by_key.emplace(wg::ToBase64(d->public_key), p.subnet);
  }
  absl::MutexLock l(&shared_->mu);
  shared_->snapshot = std::move(snap);
  return stats;
}

absl::Status WireguardBackend::Teardown() {
  if (!initialized_) return absl::OkStatus();
  absl::Status s = driver_->DeleteDevice();  // its address and routes go with it
  initialized_ = false;
  device_index_ = 0;
  absl::MutexLock l(&shared_->mu);
  shared_->snapshot = Snapshot();
  return s;
}

}  // namespace weft::agent
