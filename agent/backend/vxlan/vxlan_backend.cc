#include "agent/backend/vxlan/vxlan_backend.h"

#include <algorithm>
#include <array>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/netlink/reconciler.h"
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
// Over IPv6, 70: the outer IPv6 header is 40 bytes.
constexpr uint32_t kVxlanV6Overhead = 70;
// Below it the kernel turns IPv6 off on a device (RFC 8200's minimum link MTU).
constexpr uint32_t kIPv6MinMtu = 1280;
constexpr uint32_t kMaxVni = (1u << 24) - 1;

std::string V6DeviceName(uint32_t vni) { return absl::StrCat("flannel-v6.", vni); }

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

absl::StatusOr<VxlanLeaseData> ParseVxlanLeaseData(absl::string_view json, absl::string_view what) {
  ASSIGN_OR_RETURN(Json obj, ParseObject(json, what));
  VxlanLeaseData d;
  ASSIGN_OR_RETURN(std::optional<uint64_t> vni, UintField(obj, what, "VNI", kMaxVni));
  if (vni) d.vni = static_cast<uint32_t>(*vni);
  const Json* mac = FindFolded(obj, "VtepMAC");
  if (mac == nullptr || !mac->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " has no VtepMAC string"));
  }
  absl::StatusOr<MacAddr> parsed = MacAddr::Parse(mac->get<std::string>());
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ".VtepMAC: ", parsed.status().message()));
  }
  if (parsed->IsMulticast() || parsed->IsZero()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ".VtepMAC: ", parsed->ToString(), " is not a unicast MAC"));
  }
  d.vtep_mac = *parsed;
  return d;
}

std::string VxlanLeaseDataJson(uint32_t vni, const MacAddr& vtep_mac) {
  return absl::StrCat("{\"VNI\":", vni, ",\"VtepMAC\":\"", vtep_mac.ToString(), "\"}");
}

MacAddr V6VtepMac(const MacAddr& vtep_mac) {
  std::array<uint8_t, 6> b = vtep_mac.bytes();
  b[0] ^= 0x04;
  return MacAddr(b);
}

namespace {

// How one family of a peer is reached.
struct Tunnel {
  netlink::IPPrefix subnet;
  netlink::IPAddr public_ip;
  absl::string_view data_json;  // BackendData or BackendV6Data
  absl::string_view data_what;  // which of them, for errors
  int device_index;             // flannel.<VNI> or flannel-v6.<VNI>
  bool on_link;                 // public_ip is on the external interface's network
};

// A reachable tunnel, its BackendData read: all that its objects need of a peer.
// Every peer is read into one before any object is made, so that the peer list
// (~170 bytes a peer) is freed before the objects (~140 bytes) exist.
struct Hop {
  netlink::IPPrefix subnet;
  netlink::IPAddr public_ip;
  MacAddr vtep_mac;
  bool direct;  // DirectRouting to a peer on the external network: a plain route
  int device_index;
};

// Reads `t` into `hops`; returns why it cannot be reached, or "".
std::string ReadTunnel(const VxlanSetup& setup, const Tunnel& t, std::vector<Hop>& hops) {
  absl::StatusOr<VxlanLeaseData> data = ParseVxlanLeaseData(t.data_json, t.data_what);
  if (!data.ok()) return std::string(data.status().message());
  if (data->vni && *data->vni != setup.config.vni) {
    return absl::StrCat("VNI ", *data->vni, " differs from this host's ", setup.config.vni);
  }
  // Same L2 network with DirectRouting: no need to encapsulate.
  hops.push_back({t.subnet, t.public_ip, data->vtep_mac, setup.config.direct_routing && t.on_link, t.device_index});
  return "";
}

bool ThroughNexthop(const VxlanSetup& setup, const Hop& h) {
  return setup.use_nexthops && !h.subnet.is_v6();  // nexthop objects are IPv4-only
}

// Adds what reaching `h` takes to `d`.
void AddHop(const VxlanSetup& setup, const Hop& h, DesiredState& d) {
  if (h.direct) {
    d.routes.push_back(Route{h.subnet, h.public_ip, setup.local.iface_index, false});
    return;
  }
  const netlink::IPAddr gw = h.subnet.network();
  d.neighbours.push_back(Neighbour{h.device_index, gw, h.vtep_mac});
  d.fdb.push_back(FdbEntry{h.device_index, h.vtep_mac, h.public_ip});
  Route route{h.subnet, gw, h.device_index, true};
  if (ThroughNexthop(setup, h)) {
    route.nexthop_id = gw.v4().value();
    d.nexthops.push_back(Nexthop{route.nexthop_id, gw.v4(), h.device_index, true});
  }
  d.routes.push_back(route);
}

}  // namespace

DesiredState VxlanDesiredState(const VxlanSetup& setup, std::vector<Peer> peers,
                               std::vector<SkippedPeer>* skipped) {
  std::vector<Hop> hops;
  hops.reserve(peers.size() * (setup.v6 ? 2 : 1));  // grown, it would be held twice while copied
  for (const Peer& p : peers) {
    if (IsOwnLease(p, setup.lease)) continue;
    if (!p.ipv4 && !p.ipv6_subnet) continue;  // names nothing to reach
    auto skip = [&](netlink::IPPrefix subnet, std::string reason) {
      if (!reason.empty()) skipped->push_back({subnet, std::move(reason)});
    };
    if (!absl::EqualsIgnoreCase(p.backend_type, kVxlanBackendType)) {
      skip(p.ipv4 ? netlink::IPPrefix(p.subnet) : netlink::IPPrefix(*p.ipv6_subnet),
           absl::StrCat("backend type is \"", p.backend_type, "\", not \"vxlan\""));
      continue;
    }
    if (setup.lease.ipv4 && p.ipv4) {  // not in an IPv6-only network
      if (p.subnet.Overlaps(setup.lease.subnet)) {
        skip(p.subnet, absl::StrCat("subnet overlaps this host's ", setup.lease.subnet.ToString()));
      } else if (p.public_ip == setup.local.public_ip) {
        skip(p.subnet, absl::StrCat("PublicIP ", p.public_ip.ToString(), " is this host's own"));
      } else {
        skip(p.subnet, ReadTunnel(setup, {p.subnet, p.public_ip, p.backend_data_json, "BackendData",
                                          setup.device_index, setup.local.iface_network.Contains(p.public_ip)},
                                  hops));
      }
    }
    if (!setup.v6 || !p.ipv6_subnet) continue;
    if (std::string problem = PeerV6Problem(p, *setup.v6); !problem.empty()) {
      skip(*p.ipv6_subnet, std::move(problem));
      continue;
    }
    skip(*p.ipv6_subnet,
         ReadTunnel(setup, {*p.ipv6_subnet, *p.public_ipv6, p.backend_v6_data_json, "BackendV6Data",
                            setup.v6_device_index, setup.v6->iface_network.Contains(*p.public_ipv6)},
                    hops));
  }
  std::vector<Peer>().swap(peers);

  DesiredState d;
  size_t tunnels = 0, nexthops = 0;
  for (const Hop& h : hops) {
    tunnels += h.direct ? 0 : 1;
    nexthops += !h.direct && ThroughNexthop(setup, h) ? 1 : 0;
  }
  d.neighbours.reserve(tunnels);
  d.fdb.reserve(tunnels);
  d.nexthops.reserve(nexthops);
  d.routes.reserve(hops.size());
  for (const Hop& h : hops) AddHop(setup, h, d);
  return d;
}

std::string VxlanBackend::device_name() const { return absl::StrCat("flannel.", config_.vni); }

std::string VxlanBackend::v6_device_name() const { return V6DeviceName(config_.vni); }

absl::StatusOr<BackendInfo> VxlanBackend::Init(const LocalConfig& local, const OwnLease& lease,
                                               absl::string_view backend_config_json) {
  ASSIGN_OR_RETURN(VxlanConfig config, ParseVxlanConfig(backend_config_json));
  if (local.iface_index == 0) return absl::InvalidArgumentError("vxlan: the external interface has no index");
  if (lease.ipv4 && local.iface_ip == IPv4Addr()) {
    return absl::InvalidArgumentError("vxlan: the external interface has no IPv4 address");
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

  ASSIGN_OR_RETURN(std::optional<LocalV6> v6, LocalV6Of(local, lease, "vxlan"));
  std::optional<netlink::VxlanLinkSpec> spec6;
  if (v6) {
    spec6 = spec;
    spec6->name = V6DeviceName(config.vni);
    spec6->info.local = v6->iface_ip;
    spec6->mtu = config.mtu != 0 ? config.mtu : local.iface_mtu - kVxlanV6Overhead;
    spec6->mac = v6_mac_;
    if (spec6->mtu < kIPv6MinMtu) {
      return absl::InvalidArgumentError(absl::StrCat("vxlan: the IPv6 device's MTU would be ", spec6->mtu,
                                                     ", below IPv6's minimum ", kIPv6MinMtu));
    }
  }

  // A new VNI means a new device name: the old device must go.
  if (initialized_ && spec.name != spec_.name) RETURN_IF_ERROR(DeleteLinkIfPresent(spec_.name));
  if (initialized_ && spec6_ && (!spec6 || spec6->name != spec6_->name)) {
    RETURN_IF_ERROR(DeleteLinkIfPresent(spec6_->name));
  }
  // An IPv4-only network has no IPv6 device, not even one left by an earlier run,
  // and an IPv6-only network no IPv4 device.
  if (!v6) RETURN_IF_ERROR(DeleteLinkIfPresent(V6DeviceName(config.vni)));
  if (!lease.ipv4) RETURN_IF_ERROR(DeleteLinkIfPresent(spec.name));
  spec_ = spec;
  spec6_ = spec6;
  // Nexthop objects where the kernel has them (a dump of them works).
  const bool use_nexthops = kernel_->ListNexthops(netlink::kWeftRouteProtocol).ok();
  setup_ = VxlanSetup{config, local, lease, 0, use_nexthops, v6};
  config_ = config;
  if (setup_.local.public_ip == IPv4Addr()) setup_.local.public_ip = local.iface_ip;
  RETURN_IF_ERROR(EnsureDevice());
  initialized_ = true;
  BackendInfo info{kVxlanBackendType, "", mtu};
  if (lease.ipv4) {
    WEFT_LOG(INFO, "vxlan device ready")
        .With("dev", spec_.name)
        .With("vni", config.vni)
        .With("port", config.port)
        .With("mtu", mtu)
        .With("vtep_mac", vtep_mac_)
        .With("address", lease.subnet.network())
        .With("nexthop_objects", use_nexthops)
        .With("tx_checksum_offload", TxChecksumOffloadName(config.tx_checksum_offload));
    info.data_json = VxlanLeaseDataJson(config.vni, vtep_mac_);
  }
  if (spec6) {
    WEFT_LOG(INFO, "vxlan IPv6 device ready")
        .With("dev", spec6->name)
        .With("local", v6->iface_ip)
        .With("mtu", spec6->mtu)
        .With("vtep_mac", v6_mac_)
        .With("address", v6->subnet.network());
    info.v6_data_json = VxlanLeaseDataJson(config.vni, v6_mac_);
    // One container MTU must fit both tunnels (the IPv6 one alone in an IPv6-only network).
    info.mtu = lease.ipv4 ? std::min(mtu, spec6->mtu) : spec6->mtu;
  }
  return info;
}

absl::StatusOr<netlink::Link> VxlanBackend::CreateOrRepair(const netlink::VxlanLinkSpec& spec, int* index) {
  ASSIGN_OR_RETURN(netlink::Link link, kernel_->EnsureVxlan(spec));
  if (*index != 0 && *index != link.index) {
    WEFT_LOG(WARN, "vxlan device was missing or changed; recreated it").With("dev", spec.name);
  }
  *index = link.index;
  return link;
}

absl::Status VxlanBackend::UpWithAddress(const netlink::Link& link, const netlink::IPAddr& address,
                                         int prefix_len) {
  if (!link.up) RETURN_IF_ERROR(kernel_->SetLinkUp(link.index));
  return kernel_->EnsureAddress(netlink::InterfaceAddress{link.index, address, prefix_len});
}

absl::Status VxlanBackend::EnsureDevice() {
  if (setup_.lease.ipv4) {
    ASSIGN_OR_RETURN(netlink::Link link, CreateOrRepair(spec_, &setup_.device_index));
    ApplyTxChecksum(link.index);
    RETURN_IF_ERROR(UpWithAddress(link, setup_.lease.subnet.network(), 32));
  }
  if (!spec6_) return absl::OkStatus();
  // Flannel's layout: the lease's IPv6 network address as /128.
  ASSIGN_OR_RETURN(netlink::Link link6, CreateOrRepair(*spec6_, &setup_.v6_device_index));
  return UpWithAddress(link6, setup_.v6->subnet.network(), 128);
}

absl::Status VxlanBackend::DeleteLinkIfPresent(const std::string& name) {
  absl::StatusOr<netlink::Link> link = kernel_->GetLink(name);
  if (absl::IsNotFound(link.status())) return absl::OkStatus();
  if (!link.ok()) return link.status();
  return kernel_->DeleteLink(link->index);
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
  absl::flat_hash_map<netlink::IPPrefix, std::string> now;
  for (const SkippedPeer& s : skipped) {
    auto it = logged_skips_.find(s.subnet);
    if (it == logged_skips_.end() || it->second != s.reason) {
      WEFT_LOG(WARN, "skipping peer").With("subnet", s.subnet).With("reason", s.reason);
    }
    now[s.subnet] = s.reason;
  }
  logged_skips_ = std::move(now);
}

absl::StatusOr<ReconcileStats> VxlanBackend::Reconcile(std::vector<Peer> peers) {
  if (!initialized_) return absl::FailedPreconditionError("vxlan: Reconcile before Init");
  RETURN_IF_ERROR(EnsureDevice());
  std::vector<SkippedPeer> skipped;
  // The list goes before the objects are made, and so before the kernel is read.
  const DesiredState desired = VxlanDesiredState(setup_, std::move(peers), &skipped);
  LogSkipped(skipped);
  ASSIGN_OR_RETURN(ReconcileStats stats,
                   agent::Reconcile(*kernel_, Ownership{{setup_.device_index, setup_.v6_device_index},
                                                        netlink::kWeftRouteProtocol,
                                                        setup_.use_nexthops},
                                    desired));
  stats.skipped_peers = static_cast<int>(skipped.size());
  return stats;
}

absl::Status VxlanBackend::Teardown() {
  if (!initialized_) return absl::OkStatus();
  // Deleting the devices takes their neighbours, FDB entries and routes with
  // them; direct routes on the external interface are removed by an empty pass.
  RETURN_IF_ERROR(DeleteLinkIfPresent(spec_.name));
  if (spec6_) RETURN_IF_ERROR(DeleteLinkIfPresent(spec6_->name));
  ASSIGN_OR_RETURN(ReconcileStats stats,
                   agent::Reconcile(*kernel_,
                                    Ownership{{}, netlink::kWeftRouteProtocol, setup_.use_nexthops}, {}));
  initialized_ = false;
  setup_.device_index = 0;
  setup_.v6_device_index = 0;
  if (stats.errors > 0) return stats.first_errors.front();
  return absl::OkStatus();
}

}  // namespace weft::agent
