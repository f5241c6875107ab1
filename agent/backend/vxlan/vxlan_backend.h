#pragma once
// Flannel's VXLAN backend, wire-compatible with flanneld: device flannel.<VNI>
// (UDP port 8472 unless configured), the lease's network address as /32 on it, and
// for each remote lease a permanent neighbour (its network address -> its VTEP
// MAC), an FDB entry (its VTEP MAC -> its PublicIP) and an onlink route (its subnet
// via its network address). With DirectRouting, a peer on the external interface's
// own network gets a plain route via its PublicIP instead.
//
// Where the kernel has nexthop objects (5.3+), each onlink route goes through a
// nexthop object of its own (`ip route` shows "nhid N via ... dev flannel.1
// onlink"): the same forwarding, but a route insert no longer costs time
// proportional to the number of routes already there (10,000 peers: ~0.1 s
// instead of ~1 s, see tests/bench/netlink_bench.cc). Its id is the peer subnet's
// network address as a 32-bit number.
//
// Transmit checksum offload of the device (the config's "TxChecksumOffload":
// "auto", "on" or "off"): some kernels before 5.7 send VXLAN packets whose
// inner checksum NAT broke (iptables MASQUERADE --random-fully, flannel#1279:
// connections stall ~63 s); flannel's documented cure is
// `ethtool -K flannel.1 tx-checksum-ip-generic off`. "auto" turns it off on
// kernels older than 5.7 and leaves the kernel's default (on) elsewhere; "on"
// and "off" force it. It is checked at every resync, so a re-created device
// gets it again, and each change is logged.
//
// Dual-stack (the lease has an IPv6 subnet), flannel's design: a second device
// flannel-v6.<VNI> over the IPv6 underlay (local = the interface's IPv6
// address; same VNI and port), MTU = external MTU - 70 (or the config's MTU),
// its own MAC (V6VtepMac), the lease's IPv6 network address as /128, published
// as BackendV6Data {"VNI":n,"VtepMAC":"..."}. Each remote lease with an IPv6
// subnet, a PublicIPv6 and BackendV6Data gets the same three objects as over
// IPv4, on flannel-v6.<VNI>, or with DirectRouting a plain route via its
// PublicIPv6 when that is on the interface's IPv6 network. IPv6 routes carry
// their own gateway (no nexthop objects). The families are independent: a peer
// whose IPv6 side is unusable keeps its IPv4 routes. Containers get the smaller
// of the two devices' MTUs, so one MTU fits both tunnels. Without an IPv6
// subnet no IPv6 device is made and a stale one is deleted. The checksum
// setting above applies to the IPv4 device only (the bug it works around is an
// IPv4 NAT's).

#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "agent/backend/backend.h"
#include "agent/netlink/reconciler.h"
#include "agent/backend/dual_stack.h"
#include "agent/netlink/ethtool.h"
#include "agent/netlink/programmer.h"

namespace weft::agent {

inline constexpr char kVxlanBackendType[] = "vxlan";

// The network config's Backend object for "vxlan". Keys match case-insensitively,
// as flanneld's (Go) decoder does; unknown keys are ignored.
enum class TxChecksumOffload { kAuto, kOn, kOff };
const char* TxChecksumOffloadName(TxChecksumOffload mode);

// What a mode asks for on a kernel (major, minor): true on, false off, nullopt
// the kernel's default. auto: off before 5.7 (and on an unreadable release).
std::optional<bool> WantTxChecksum(TxChecksumOffload mode, std::optional<std::pair<int, int>> kernel);

struct VxlanConfig {
  uint32_t vni = 1;                             // VNI
  uint16_t port = netlink::kDefaultVxlanPort;   // Port; 0 means the default
  bool gbp = false;                             // GBP
  bool learning = false;                        // Learning
  bool direct_routing = false;                  // DirectRouting
  uint32_t mtu = 0;                             // MTU; 0: external MTU - 50
  TxChecksumOffload tx_checksum_offload = TxChecksumOffload::kAuto;  // TxChecksumOffload
};
absl::StatusOr<VxlanConfig> ParseVxlanConfig(absl::string_view json);

// A lease's BackendData for vxlan: {"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}.
struct VxlanLeaseData {
  std::optional<uint32_t> vni;  // absent in some old leases
  MacAddr vtep_mac;
};
// `what` names the field in errors: "BackendData" or "BackendV6Data".
absl::StatusOr<VxlanLeaseData> ParseVxlanLeaseData(absl::string_view json,
                                                   absl::string_view what = "BackendData");
std::string VxlanLeaseDataJson(uint32_t vni, const MacAddr& vtep_mac);

// The IPv6 device's MAC, derived from the IPv4 device's (persistent) one: the
// same with bit 0x04 of the first byte flipped. So it is as stable as that one,
// still a locally administered unicast MAC, never the host's IPv4 VTEP MAC, and
// hosts with distinct IPv4 VTEP MACs have distinct IPv6 ones.
MacAddr V6VtepMac(const MacAddr& vtep_mac);

// The bits of this host's setup that the desired state depends on.
struct VxlanSetup {
  VxlanConfig config;
  LocalConfig local;
  OwnLease lease;
  int device_index = 0;
  bool use_nexthops = false;  // route through nexthop objects
  std::optional<LocalV6> v6;  // set when the network is dual-stack
  int v6_device_index = 0;    // flannel-v6.<VNI>
};

// A peer's subnet left out of the desired state (its IPv6 subnet when only its
// IPv6 side is), and why.
struct SkippedPeer {
  netlink::IPPrefix subnet;
  std::string reason;
};

// The neighbours, FDB entries and routes `peers` call for. Pure, for tests.
// Frees `peers` once each is read, before the objects are made: with 20,000
// peers the list and the objects together were the peak of a resync.
DesiredState VxlanDesiredState(const VxlanSetup& setup, std::vector<Peer> peers,
                               std::vector<SkippedPeer>* skipped);

class VxlanBackend : public Backend {
 public:
  // `kernel` must outlive the backend. `vtep_mac` is this host's VTEP MAC (kept in
  // the state dir, see state.h). `config` is what LeaseData and device_name go by
  // until Init parses the network config's Backend object.
  VxlanBackend(netlink::KernelProgrammer* kernel, MacAddr vtep_mac, VxlanConfig config = {})
      : kernel_(kernel), vtep_mac_(vtep_mac), v6_mac_(V6VtepMac(vtep_mac)), config_(config) {}

  absl::StatusOr<BackendInfo> Init(const LocalConfig& local, const OwnLease& lease,
                                   absl::string_view backend_config_json) override;
  absl::StatusOr<ReconcileStats> Reconcile(std::vector<Peer> peers) override;
  absl::Status Teardown() override;
  absl::StatusOr<std::string> LeaseData() override { return VxlanLeaseDataJson(config_.vni, vtep_mac_); }
  absl::StatusOr<std::string> LeaseV6Data() override { return VxlanLeaseDataJson(config_.vni, v6_mac_); }
  // "flannel.<VNI>".
  std::string device_name() const override;
  // "flannel-v6.<VNI>", the IPv6 device of a dual-stack network.
  std::string v6_device_name() const override;

  // Where the device's checksum offload is read and set (not owned); default:
  // the ethtool ioctl in the agent's own network namespace.
  void SetLinkFeatures(netlink::LinkFeatures* features) { features_ = features; }
  // The kernel release "auto" goes by (default: the running kernel's).
  void SetKernelRelease(std::string release) { kernel_release_ = std::move(release); }

 private:
  // Creates or repairs the device(s), brings them up, sets their addresses.
  absl::Status EnsureDevice();
  // Creates or repairs the device `spec`; *index is where its index is kept.
  absl::StatusOr<netlink::Link> CreateOrRepair(const netlink::VxlanLinkSpec& spec, int* index);
  absl::Status UpWithAddress(const netlink::Link& link, const netlink::IPAddr& address, int prefix_len);
  // Deletes link `name` if there is one.
  absl::Status DeleteLinkIfPresent(const std::string& name);
  void LogSkipped(const std::vector<SkippedPeer>& skipped);
  // Applies the config's TxChecksumOffload to the device; failures are logged
  // (once per device and error), not fatal: the data path works without it.
  void ApplyTxChecksum(int device_index);

  netlink::KernelProgrammer* kernel_;
  const MacAddr vtep_mac_;
  const MacAddr v6_mac_;
  VxlanConfig config_;
  bool initialized_ = false;
  VxlanSetup setup_;
  netlink::VxlanLinkSpec spec_;
  std::optional<netlink::VxlanLinkSpec> spec6_;  // dual-stack only
  // Why each skipped peer was skipped when last logged, so a resync does not
  // repeat the same line every few seconds.
  absl::flat_hash_map<netlink::IPPrefix, std::string> logged_skips_;
  netlink::LinkFeatures* features_ = nullptr;
  std::unique_ptr<netlink::LinkFeatures> own_features_;
  std::string kernel_release_ = netlink::KernelRelease();
  // The device index and outcome last logged, so resyncs stay quiet.
  int checksum_logged_index_ = 0;
  std::string checksum_logged_;
};

}  // namespace weft::agent
