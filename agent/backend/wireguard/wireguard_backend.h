#pragma once
// Flannel's WireGuard backend, interoperable with flanneld's: a WireGuard
// device `flannel-wg` holding this lease's network address (/32) and a route
// of the whole cluster network; one WireGuard peer per other lease, with the
// peer's subnet as its allowed IPs and its PublicIP and port as its endpoint.
// The lease's BackendData is {"PublicKey":"<base64>","Port":<listen port>};
// a peer publishing Port 0 (older flanneld) is reached on our own listen port.
//
// The private key is made once and kept in a file (--wireguard-key-file,
// default <state dir>/wireguard-key, mode 0600), so a restart keeps the public
// key; a peer's new key (a reinstalled node) arrives with its lease and
// replaces the old peer. Each pass diffs the device's peers (as WireGuard
// reports them) against the leases and sends only the difference: peers added,
// changed (endpoint, keepalive, preshared key, allowed IPs) or removed, so a
// peer changed by hand is repaired at the next resync.
//
// WireGuard itself is driven by the kernel when it has it, else by wireguard-go
// (wg_driver.h); weft_agent_wireguard_implementation says which.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "agent/backend/backend.h"
#include "agent/backend/wireguard/wg_driver.h"
#include "agent/backend/wireguard/wg_types.h"
#include "agent/netlink/programmer.h"
#include "common/metrics.h"

namespace weft::agent {

inline constexpr char kWireguardBackendType[] = "wireguard";
inline constexpr char kWireguardDevice[] = "flannel-wg";
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
  uint16_t listen_port_v6 = kDefaultWireguardPortV6;  // ListenPortV6 (for flanneld's IPv6 device)
  uint32_t mtu = 0;                                   // MTU; 0: underlay MTU - 80
  uint16_t keepalive_seconds = 0;                     // PersistentKeepaliveInterval; 0: off
  std::optional<wg::Key> psk;                         // PSK (base64), shared by all nodes
};
// INVALID_ARGUMENT naming the field (never quoting the PSK). Mode "ipv6" is
// refused: Weft's data path is IPv4.
absl::StatusOr<WireguardConfig> ParseWireguardConfig(absl::string_view json);

// The lease's BackendData.
struct WireguardLeaseData {
  wg::Key public_key{};
  uint16_t port = 0;  // 0: older flanneld, reached on our own listen port
};
std::string EncodeWireguardLeaseData(const WireguardLeaseData& d);
absl::StatusOr<WireguardLeaseData> ParseWireguardLeaseData(absl::string_view json);

// The device's peers that `peers` call for (this host's own lease, peers of
// other types, with unreadable data, overlapping subnets, our own public key or
// a public key another lease already has are skipped, with the reason). Sorted
// by public key. Pure.
struct WireguardSkippedPeer {
  IPv4Net subnet;
  std::string reason;
};
struct WireguardSetup {
  OwnLease lease;
  IPv4Addr public_ip;
  wg::Key public_key{};
  WireguardConfig config;
};
std::vector<wg::Peer> WireguardDesiredPeers(const WireguardSetup& setup, const std::vector<Peer>& peers,
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
  // `kernel` (routes, addresses) must outlive the backend; `registry` may be
  // null (no metrics).
  WireguardBackend(netlink::KernelProgrammer* kernel, std::unique_ptr<wg::Driver> driver, WireguardConfig config,
                   WireguardOptions options, metrics::Registry* registry);

  absl::StatusOr<BackendInfo> Init(const LocalConfig& local, const OwnLease& lease,
                                   absl::string_view backend_config_json) override;
  absl::StatusOr<ReconcileStats> Reconcile(const std::vector<Peer>& peers) override;
  absl::Status Teardown() override;
  // {"PublicKey":...,"Port":...}; loads (or makes) the key file first. A key
  // file that cannot be used is INVALID_ARGUMENT: the agent stops and says why.
  absl::StatusOr<std::string> LeaseData() override;
  std::string device_name() const override { return driver_->device(); }

  // For the metrics: what the last pass read from the device.
  struct Snapshot {
    std::vector<wg::Peer> peers;                   // with counters
    absl::flat_hash_map<std::string, IPv4Net> subnet_by_key;  // base64 public key -> lease subnet
  };

 private:
  absl::Status EnsureKey();
  // Device, link (MTU, up, address), route, private key and port.
  absl::StatusOr<ReconcileStats> EnsureDevice(wg::Device* device);
  void LogSkipped(const std::vector<WireguardSkippedPeer>& skipped);

  netlink::KernelProgrammer* kernel_;
  std::unique_ptr<wg::Driver> driver_;
  WireguardConfig config_;
  const WireguardOptions options_;
  std::optional<wg::Key> private_key_;
  wg::Key public_key_{};
  bool initialized_ = false;
  LocalConfig local_;
  OwnLease lease_;
  uint32_t mtu_ = 0;
  int device_index_ = 0;
  absl::flat_hash_map<IPv4Net, std::string> logged_skips_;
  struct Shared {
    absl::Mutex mu;
    Snapshot snapshot ABSL_GUARDED_BY(mu);
  };
  std::shared_ptr<Shared> shared_;
};

}  // namespace weft::agent
