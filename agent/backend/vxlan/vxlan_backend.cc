#include "agent/backend/vxlan/vxlan_backend.h"


#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/json.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace weft::agent {
namespace {

using ::weft::json::Dump;
using ::weft::json::Excerpt;
using Json = ::weft::json::Json;
using netlink::FdbEntry;
using netlink::Neighbour;
using netlink::Nexthop;
using netlink::Route;

// VXLAN adds 50 bytes: outer Ethernet 14, IPv4 20, UDP 8, VXLAN 8.
constexpr uint32_t kVxlanOverhead = 50;
constexpr uint32_t kMaxVni = (1u << 24) - 1;

using ::weft::json::FindFolded;
using ::weft::json::ParseObject;

absl::StatusOr<std::optional<uint64_t>> UintField(const Json& obj, absl::string_view what,
                                                  absl::string_view key, uint64_t max) {
  const Json* v = FindFolded(obj, key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number_integer() || (!v->is_number_unsigned() && v->get<int64_t>() < 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ".", key, ": ", Excerpt(*v), " is not an integer from 0 to ", max));
  }
  const uint64_t n = v->get<uint64_t>();
  if (n > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ".", key, ": ", n, " is out of range (0 to ", max, ")"));
  }
  return n;
}

absl::StatusOr<bool> BoolField(const Json& obj, absl::string_view what, absl::string_view key) {
  const Json* v = FindFolded(obj, key);
  if (v == nullptr) return false;
  if (!v->is_boolean()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ".", key, ": ", Excerpt(*v), " is not true or false"));
  }
  return v->get<bool>();
}

absl::StatusOr<TxChecksumOffload> ChecksumField(const Json& obj, absl::string_view what) {
  const Json* v = FindFolded(obj, "TxChecksumOffload");
  if (v == nullptr) return TxChecksumOffload::kAuto;
  if (v->is_boolean()) return v->get<bool>() ? TxChecksumOffload::kOn : TxChecksumOffload::kOff;
  if (v->is_string()) {
    const std::string s = v->get<std::string>();
    if (absl::EqualsIgnoreCase(s, "auto")) return TxChecksumOffload::kAuto;
    if (absl::EqualsIgnoreCase(s, "on")) return TxChecksumOffload::kOn;
    if (absl::EqualsIgnoreCase(s, "off")) return TxChecksumOffload::kOff;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(what, ".TxChecksumOffload: ", Excerpt(*v), " is not \"auto\", \"on\" or \"off\""));
}

}  // namespace

const char* TxChecksumOffloadName(TxChecksumOffload mode) {
  switch (mode) {
    case TxChecksumOffload::kAuto: return "auto";
    case TxChecksumOffload::kOn: return "on";
    case TxChecksumOffload::kOff: return "off";
  }
  return "?";
}

std::optional<bool> WantTxChecksum(TxChecksumOffload mode, std::optional<std::pair<int, int>> kernel) {
  switch (mode) {
    case TxChecksumOffload::kOn: return true;
    case TxChecksumOffload::kOff: return false;
    case TxChecksumOffload::kAuto:
      if (!kernel || *kernel < std::make_pair(5, 7)) return false;
      return std::nullopt;
  }
  return std::nullopt;
}

absl::StatusOr<VxlanConfig> ParseVxlanConfig(absl::string_view json) {
  constexpr absl::string_view kWhat = "Backend";
  ASSIGN_OR_RETURN(Json obj, ParseObject(json.empty() ? "{}" : json, kWhat));
  VxlanConfig c;
  if (const Json* type = FindFolded(obj, "Type"); type != nullptr) {
    if (!type->is_string() || !absl::EqualsIgnoreCase(type->get<std::string>(), kVxlanBackendType)) {
      return absl::InvalidArgumentError(
          absl::StrCat("Backend.Type is ", Excerpt(*type), ", not \"vxlan\""));
    }
  }
  ASSIGN_OR_RETURN(std::optional<uint64_t> vni, UintField(obj, kWhat, "VNI", kMaxVni));
  ASSIGN_OR_RETURN(std::optional<uint64_t> port, UintField(obj, kWhat, "Port", 65535));
  ASSIGN_OR_RETURN(std::optional<uint64_t> mtu, UintField(obj, kWhat, "MTU", 65535));
  ASSIGN_OR_RETURN(c.gbp, BoolField(obj, kWhat, "GBP"));
  ASSIGN_OR_RETURN(c.learning, BoolField(obj, kWhat, "Learning"));
  ASSIGN_OR_RETURN(c.direct_routing, BoolField(obj, kWhat, "DirectRouting"));
  ASSIGN_OR_RETURN(c.tx_checksum_offload, ChecksumField(obj, kWhat));
  if (vni) c.vni = static_cast<uint32_t>(*vni);
  if (port && *port != 0) c.port = static_cast<uint16_t>(*port);
  if (mtu && *mtu != 0) {
    if (*mtu < 68) {
      return absl::InvalidArgumentError(absl::StrCat("Backend.MTU: ", *mtu, " is below 68, IPv4's minimum"));
    }
    c.mtu = static_cast<uint32_t>(*mtu);
  }
  return c;
}

absl::StatusOr<VxlanLeaseData> ParseVxlanLeaseData(absl::string_view json) {
  constexpr absl::string_view kWhat = "BackendData";
  ASSIGN_OR_RETURN(Json obj, ParseObject(json, kWhat));
  VxlanLeaseData d;
  ASSIGN_OR_RETURN(std::optional<uint64_t> vni, UintField(obj, kWhat, "VNI", kMaxVni));
  if (vni) d.vni = static_cast<uint32_t>(*vni);
  const Json* mac = FindFolded(obj, "VtepMAC");
  if (mac == nullptr || !mac->is_string()) {
    return absl::InvalidArgumentError("BackendData has no VtepMAC string");
  }
  absl::StatusOr<MacAddr> parsed = MacAddr::Parse(mac->get<std::string>());
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("BackendData.VtepMAC: ", parsed.status().message()));
  }
  if (parsed->IsMulticast() || parsed->IsZero()) {
    return absl::InvalidArgumentError(
        absl::StrCat("BackendData.VtepMAC: ", parsed->ToString(), " is not a unicast MAC"));
  }
  d.vtep_mac = *parsed;
  return d;
}

std::string VxlanLeaseDataJson(uint32_t vni, const MacAddr& vtep_mac) {
  return absl::StrCat("{\"VNI\":", vni, ",\"VtepMAC\":\"", vtep_mac.ToString(), "\"}");
}

DesiredState VxlanDesiredState(const VxlanSetup& setup, const std::vector<Peer>& peers,
                               std::vector<SkippedPeer>* skipped) {
  DesiredState d;
  const int vx = setup.device_index;
  for (const Peer& p : peers) {
    if (p.subnet == setup.lease.subnet) continue;  // our own lease
    auto skip = [&](std::string reason) { skipped->push_back({p.subnet, std::move(reason)}); };
    if (!absl::EqualsIgnoreCase(p.backend_type, kVxlanBackendType)) {
      skip(absl::StrCat("backend type is \"", p.backend_type, "\", not \"vxlan\""));
      continue;
    }
    if (p.subnet.Overlaps(setup.lease.subnet)) {
      skip(absl::StrCat("subnet overlaps this host's ", setup.lease.subnet.ToString()));
      continue;
    }
    if (p.public_ip == setup.local.public_ip) {
      skip(absl::StrCat("PublicIP ", p.public_ip.ToString(), " is this host's own"));
      continue;
    }
    absl::StatusOr<VxlanLeaseData> data = ParseVxlanLeaseData(p.backend_data_json);
    if (!data.ok()) {
      skip(std::string(data.status().message()));
      continue;
    }
    if (data->vni && *data->vni != setup.config.vni) {
      skip(absl::StrCat("VNI ", *data->vni, " differs from this host's ", setup.config.vni));
      continue;
    }
    if (setup.config.direct_routing && setup.local.iface_network.Contains(p.public_ip)) {
      // Same L2 network: no need to encapsulate.
      d.routes.push_back(Route{p.subnet, p.public_ip, setup.local.iface_index, false});
      continue;
    }
    const IPv4Addr gw = p.subnet.network();
    d.neighbours.push_back(Neighbour{vx, gw, data->vtep_mac});
    d.fdb.push_back(FdbEntry{vx, data->vtep_mac, p.public_ip});
    Route route{p.subnet, gw, vx, true};
    if (setup.use_nexthops) {
      route.nexthop_id = gw.value();
      d.nexthops.push_back(Nexthop{route.nexthop_id, gw, vx, true});
    }
    d.routes.push_back(route);
  }
  return d;
}

std::string VxlanBackend::device_name() const { return absl::StrCat("flannel.", config_.vni); }

absl::StatusOr<BackendInfo> VxlanBackend::Init(const LocalConfig& local, const OwnLease& lease,
                                               absl::string_view backend_config_json) {
  ASSIGN_OR_RETURN(VxlanConfig config, ParseVxlanConfig(backend_config_json));
  if (local.iface_index == 0 || local.iface_ip == IPv4Addr()) {
    return absl::InvalidArgumentError("vxlan: the external interface has no index or no IPv4 address");
  }
  const uint32_t mtu = config.mtu != 0 ? config.mtu : local.iface_mtu - kVxlanOverhead;
  netlink::VxlanLinkSpec spec;
  spec.name = absl::StrCat("flannel.", config.vni);
  spec.info.vni = config.vni;
  spec.info.local = local.iface_ip;
  spec.info.underlay_index = local.iface_index;
  spec.info.port = config.port;
  spec.info.learning = config.learning;
  spec.info.gbp = config.gbp;
  spec.mtu = mtu;
  spec.mac = vtep_mac_;

  // A new VNI means a new device name: the old device must go.
  if (initialized_ && spec.name != spec_.name) {
    absl::StatusOr<netlink::Link> old = kernel_->GetLink(spec_.name);
    if (old.ok()) RETURN_IF_ERROR(kernel_->DeleteLink(old->index));
  }
  spec_ = spec;
  // Nexthop objects where the kernel has them (a dump of them works).
  const bool use_nexthops = kernel_->ListNexthops(netlink::kWeftRouteProtocol).ok();
  setup_ = VxlanSetup{config, local, lease, 0, use_nexthops};
  config_ = config;
  if (setup_.local.public_ip == IPv4Addr()) setup_.local.public_ip = local.iface_ip;
  RETURN_IF_ERROR(EnsureDevice());
  initialized_ = true;
  WEFT_LOG(INFO, "vxlan device ready")
      .With("dev", spec_.name)
      .With("vni", config.vni)
      .With("port", config.port)
      .With("mtu", mtu)
      .With("vtep_mac", vtep_mac_)
      .With("address", lease.subnet.network())
      .With("nexthop_objects", use_nexthops)
      .With("tx_checksum_offload", TxChecksumOffloadName(config.tx_checksum_offload));
  return BackendInfo{kVxlanBackendType, VxlanLeaseDataJson(config.vni, vtep_mac_), mtu};
}

absl::Status VxlanBackend::EnsureDevice() {
  ASSIGN_OR_RETURN(netlink::Link link, kernel_->EnsureVxlan(spec_));
  if (setup_.device_index != 0 && setup_.device_index != link.index) {
    WEFT_LOG(WARN, "vxlan device was missing or changed; recreated it").With("dev", spec_.name);
  }
  setup_.device_index = link.index;
  ApplyTxChecksum(link.index);
  if (!link.up) RETURN_IF_ERROR(kernel_->SetLinkUp(link.index));
  return kernel_->EnsureAddress(
      netlink::InterfaceAddress{link.index, setup_.lease.subnet.network(), 32});
}

void VxlanBackend::ApplyTxChecksum(int device_index) {
  const std::optional<std::pair<int, int>> kernel = netlink::ParseKernelRelease(kernel_release_);
  const std::optional<bool> want = WantTxChecksum(config_.tx_checksum_offload, kernel);
  std::string outcome;
  bool error = false;
  if (!want) {
    outcome = "kernel default";
  } else {
    if (features_ == nullptr) {
      absl::StatusOr<std::unique_ptr<netlink::EthtoolLinkFeatures>> opened = netlink::EthtoolLinkFeatures::Open();
      if (opened.ok()) {
        own_features_ = *std::move(opened);
        features_ = own_features_.get();
      } else {
        outcome = std::string(opened.status().message());
        error = true;
      }
    }
    if (features_ != nullptr) {
      absl::StatusOr<bool> now = features_->TxChecksum(spec_.name);
      if (!now.ok()) {
        outcome = std::string(now.status().message());
        error = true;
      } else if (*now == *want) {
        outcome = *want ? "on" : "off";
      } else if (absl::Status s = features_->SetTxChecksum(spec_.name, *want); !s.ok()) {
        outcome = std::string(s.message());
        error = true;
      } else {
        outcome = *want ? "on" : "off";
      }
    }
  }
  if (device_index == checksum_logged_index_ && outcome == checksum_logged_) return;
  checksum_logged_index_ = device_index;
  checksum_logged_ = outcome;
  if (error) {
    WEFT_LOG(WARN, "vxlan: cannot set the device's tx checksum offload (the data path works without; NAT may "
                   "corrupt checksums on kernels before 5.7)")
        .With("dev", spec_.name)
        .With("mode", TxChecksumOffloadName(config_.tx_checksum_offload))
        .With("err", outcome);
    return;
  }
  WEFT_LOG(INFO, "vxlan tx checksum offload")
      .With("dev", spec_.name)
      .With("mode", TxChecksumOffloadName(config_.tx_checksum_offload))
      .With("kernel", kernel_release_)
      .With("state", outcome);
}

void VxlanBackend::LogSkipped(const std::vector<SkippedPeer>& skipped) {
  absl::flat_hash_map<IPv4Net, std::string> now;
  for (const SkippedPeer& s : skipped) {
    auto it = logged_skips_.find(s.subnet);
    if (it == logged_skips_.end() || it->second != s.reason) {
      WEFT_LOG(WARN, "skipping peer").With("subnet", s.subnet).With("reason", s.reason);
    }
    now[s.subnet] = s.reason;
  }
  logged_skips_ = std::move(now);
}

absl::StatusOr<ReconcileStats> VxlanBackend::Reconcile(const std::vector<Peer>& peers) {
  if (!initialized_) return absl::FailedPreconditionError("vxlan: Reconcile before Init");
  RETURN_IF_ERROR(EnsureDevice());
  std::vector<SkippedPeer> skipped;
  const DesiredState desired = VxlanDesiredState(setup_, peers, &skipped);
  LogSkipped(skipped);
  ASSIGN_OR_RETURN(ReconcileStats stats,
                   agent::Reconcile(*kernel_, Ownership{{setup_.device_index}, netlink::kWeftRouteProtocol,
                                                        setup_.use_nexthops},
                                    desired));
  stats.skipped_peers = static_cast<int>(skipped.size());
  return stats;
}

absl::Status VxlanBackend::Teardown() {
  if (!initialized_) return absl::OkStatus();
  // Deleting the device takes its neighbours, FDB entries and routes with it;
  // direct routes on the external interface are removed by an empty pass.
  absl::StatusOr<netlink::Link> link = kernel_->GetLink(spec_.name);
  if (link.ok()) {
    RETURN_IF_ERROR(kernel_->DeleteLink(link->index));
  } else if (!absl::IsNotFound(link.status())) {
    return link.status();
  }
  ASSIGN_OR_RETURN(ReconcileStats stats,
                   agent::Reconcile(*kernel_,
                                    Ownership{{}, netlink::kWeftRouteProtocol, setup_.use_nexthops}, {}));
  initialized_ = false;
  setup_.device_index = 0;
  if (stats.errors > 0) return stats.first_errors.front();
  return absl::OkStatus();
}

}  // namespace weft::agent
