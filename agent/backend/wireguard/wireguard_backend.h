#pragma once
// Flannel's WireGuard backend, interoperable with flanneld's, for IPv4-only,
// dual-stack and IPv6-only networks. Config `Mode` picks the devices, as
// flanneld does:
//   separate (default): `flannel-wg` (ListenPort) carries IPv4 and
//     `flannel-wg-v6` (ListenPortV6) carries IPv6, each made only when the
//     network has that family. A peer is on flannel-wg with its PublicIP as
//     endpoint and its IPv4 subnet as allowed IPs, and on flannel-wg-v6 with
//     [PublicIPv6] and its IPv6 subnet.
//   auto, ipv4, ipv6: one device `flannel-wg` (ListenPort) for both families,
//     each peer once with both its subnets as allowed IPs; its endpoint is its
//     PublicIP (ipv4), its [PublicIPv6] (ipv6), or flannel's choice (auto, see
//     WireguardDesiredPeers).
// A device holds this lease's network address of its families (/32, /128) and
// a route of each cluster network. The lease's BackendData and BackendV6Data are
// {"PublicKey":"<base64>","Port":<listen port>} with the same key (one key
// file for every device); a peer publishing Port 0 (older flanneld) is reached
// on our own listen port of that family.
//
// The private key is made once and kept in a file (--wireguard-key-file,
// default <state dir>/wireguard-key, mode 0600), so a restart keeps the public
// key; a peer's new key (a reinstalled node) arrives with its lease and
// replaces the old peer. Each pass diffs each device's peers (as WireGuard
// reports them) against the leases and sends only the difference: peers added,
// changed (endpoint, keepalive, preshared key, allowed IPs) or removed, so a
// peer changed by hand is repaired at the next resync. A device the mode and
// families no longer call for (flannel-wg-v6 after a switch to auto, flannel-wg
// in an IPv6-only network in separate mode) is deleted at Init.
//
// WireGuard itself is driven by the kernel when it has it, else by wireguard-go
// (wg_driver.h; one process per device); weft_agent_wireguard_implementation
// says which.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "agent/backend/backend.h"
#include "agent/backend/dual_stack.h"
#include "agent/backend/wireguard/wg_driver.h"
#include "agent/backend/wireguard/wg_types.h"
#include "agent/netlink/programmer.h"
#include "common/metrics.h"

namespace weft::agent {

inline constexpr char kWireguardBackendType[] = "wireguard";
inline constexpr char kWireguardDevice[] = "flannel-wg";
inline constexpr char kWireguardV6Device[] = "flannel-wg-v6";  // separate mode
inline constexpr uint16_t kDefaultWireguardPort = 51820;
inline constexpr uint16_t kDefaultWireguardPortV6 = 51821;
// flannel's: room for an IPv6 outer header (40) + UDP (8) + WireGuard (32).
inline constexpr uint32_t kWireguardOverhead = 80;

// The network config's Backend object for "wireguard", with flannel's keys and
// defaults. Keys match case-insensitively (Go's decoder); unknown ones are
// ignored.
struct WireguardConfig {
  std::string mode = "separate";  // Mode: separate | auto | ipv4 | ipv6
  uint16_t listen_port = kDefaultWireguardPort;       // ListenPort
  uint16_t listen_port_v6 = kDefaultWireguardPortV6;  // ListenPortV6 (flannel-wg-v6, separate mode)
  uint32_t mtu = 0;                                   // MTU; 0: underlay MTU - 80
  uint16_t keepalive_seconds = 0;                     // PersistentKeepaliveInterval; 0: off
  std::optional<wg::Key> psk;                         // PSK (base64), shared by all nodes

  // Two devices, one per family (flannel-wg, flannel-wg-v6).
  bool separate() const { return mode == "separate"; }
  // The port the IPv6 side listens on (published as BackendV6Data's Port).
  uint16_t v6_port() const { return separate() ? listen_port_v6 : listen_port; }
};
// INVALID_ARGUMENT naming the field (never quoting the PSK).
absl::StatusOr<WireguardConfig> ParseWireguardConfig(absl::string_view json);

// The lease's BackendData or BackendV6Data.
struct WireguardLeaseData {
  wg::Key public_key{};
  uint16_t port = 0;  // 0: older flanneld, reached on our own listen port
};
std::string EncodeWireguardLeaseData(const WireguardLeaseData& d);
absl::StatusOr<WireguardLeaseData> ParseWireguardLeaseData(absl::string_view json);

// The devices' peers that `peers` call for. Skipped, with the reason, keyed
// by the subnet of the family at fault: peers of other types, with unreadable
// data, overlapping subnets, no public address of the family used, our own
// public key or a public key another lease already has on that device. This
// host's own lease (IsOwnLease) is ignored. Each list sorted by public key.
// Pure.
//
// Mode auto picks each peer's endpoint as flanneld's selectPublicEndpoint: the
// only public address it has; with both, its PublicIP unless that is private
// (RFC 1918) or this host has no IPv4 address; then its PublicIPv6 if neither
// it nor this host's IPv6 address is private (fc00::/7); else its PublicIP.
struct WireguardSkippedPeer {
  netlink::IPPrefix subnet;
  std::string reason;
};
struct WireguardSetup {
  OwnLease lease;
  IPv4Addr public_ip;          // unset in an IPv6-only network
  std::optional<LocalV6> v6;   // when the lease has an IPv6 subnet
  wg::Key public_key{};
  WireguardConfig config;
};
struct WireguardDesired {
  std::vector<wg::Peer> peers;     // flannel-wg
  std::vector<wg::Peer> v6_peers;  // flannel-wg-v6 (separate mode); empty otherwise
};
WireguardDesired WireguardDesiredPeers(const WireguardSetup& setup, const std::vector<Peer>& peers,
                                       std::vector<WireguardSkippedPeer>* skipped);

// The peer changes that turn `actual` into `desired` (removals first), counted
// into `stats` (added/updated/removed/unchanged). Only configuration is
// compared (public key, preshared key, endpoint, keepalive, allowed IPs), not
// counters. Pure.
std::vector<wg::PeerChange> WireguardPeerDiff(const std::vector<wg::Peer>& actual,
                                              const std::vector<wg::Peer>& desired, ReconcileStats* stats);

struct WireguardOptions {
  std::string key_file;  // the private key's file
  wg::DriverOptions driver;
  // Also export per-peer series (labelled by the peer's subnet: one series per
  // node, against the metrics conventions, hence off by default).
  bool peer_metrics = false;
};

class WireguardBackend : public Backend {
 public:
  // `kernel` (routes, addresses) must outlive the backend; `driver` drives
  // flannel-wg, `v6_driver` flannel-wg-v6 (made, or deleted when stale, as the
  // mode and the lease's families say); `registry` may be null (no metrics).
  WireguardBackend(netlink::KernelProgrammer* kernel, std::unique_ptr<wg::Driver> driver,
                   std::unique_ptr<wg::Driver> v6_driver, WireguardConfig config, WireguardOptions options,
                   metrics::Registry* registry);

  absl::StatusOr<BackendInfo> Init(const LocalConfig& local, const OwnLease& lease,
                                   absl::string_view backend_config_json) override;
  absl::StatusOr<ReconcileStats> Reconcile(std::vector<Peer> peers) override;
  absl::Status Teardown() override;
  // {"PublicKey":...,"Port":...}; loads (or makes) the key file first. A key
  // file that cannot be used is INVALID_ARGUMENT: the agent stops and says why.
  absl::StatusOr<std::string> LeaseData() override;
  // The same key; Port is the port the IPv6 side listens on.
  absl::StatusOr<std::string> LeaseV6Data() override;
  std::string device_name() const override { return driver_->device(); }
  // flannel-wg-v6 in separate mode. In the single-device modes the IPv6 side is
  // flannel-wg, already named by device_name() (asked before Init, so an
  // IPv6-only network in those modes exports no tunnel counters: the agent
  // names its devices by family).
  std::string v6_device_name() const override { return config_.separate() ? v6_driver_->device() : ""; }

  // For the metrics: what the last pass read from the devices (both).
  struct Snapshot {
    std::vector<wg::Peer> peers;             // with counters
    std::vector<std::string> peer_subnets;   // each peer's lease subnet on its device ("unknown")
  };

 private:
  // One device's part: which driver, which families, which port.
  struct DeviceSetup {
    wg::Driver* driver = nullptr;
    uint16_t port = 0;
    bool ipv4 = false, ipv6 = false;
    int index = 0;  // its link, once made
  };
  absl::Status EnsureKey();
  // The devices the mode and the lease call for (made), and the others (deleted).
  absl::Status EnsureDevices(std::vector<wg::Device>* devices, ReconcileStats* stats);
  // One device and its link (MTU, up, addresses) and WireGuard key and port.
  absl::Status EnsureDevice(DeviceSetup& d, wg::Device* device);
  // Sets `desired` on `d`'s device (a diff against `actual`), then reads it back.
  absl::Status SetPeers(DeviceSetup& d, wg::Device* actual, const std::vector<wg::Peer>& desired,
                        ReconcileStats* stats);
  void LogSkipped(const std::vector<WireguardSkippedPeer>& skipped);

  netlink::KernelProgrammer* kernel_;
  std::unique_ptr<wg::Driver> driver_;
  std::unique_ptr<wg::Driver> v6_driver_;
  DeviceSetup main_, v6_;
  WireguardConfig config_;
  const WireguardOptions options_;
  std::optional<wg::Key> private_key_;
  wg::Key public_key_{};
  bool initialized_ = false;
  LocalConfig local_;
  OwnLease lease_;
  std::optional<LocalV6> local_v6_;
  uint32_t mtu_ = 0;
  absl::flat_hash_map<netlink::IPPrefix, std::string> logged_skips_;
  struct Shared {
    absl::Mutex mu;
    Snapshot snapshot ABSL_GUARDED_BY(mu);
  };
  std::shared_ptr<Shared> shared_;
};

}  // namespace weft::agent
