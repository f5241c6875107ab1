#pragma once
// WireGuard's configuration model, shared by both ways of driving it (the
// kernel's generic netlink family "wireguard" and wireguard-go's UAPI socket):
// keys, a peer as the device reports it, and the changes a reconcile pass sends.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent/netlink/ip.h"
#include "common/net.h"

namespace weft::agent::wg {

// A Curve25519 key or a preshared key: 32 bytes. All zero means "none" for a
// preshared key, as in WireGuard's own interfaces.
using Key = std::array<uint8_t, 32>;

bool IsZero(const Key& k);
std::string ToBase64(const Key& k);  // 44 characters, the form `wg` and leases use
std::string ToHex(const Key& k);     // 64 lower-case hex digits, the UAPI form
// Strict: exactly the canonical 44-character standard base64 of 32 bytes.
// INVALID_ARGUMENT naming `what` (quoting at most a short prefix of `s`).
absl::StatusOr<Key> ParseBase64Key(absl::string_view s, absl::string_view what);
absl::StatusOr<Key> ParseHexKey(absl::string_view s, absl::string_view what);

// The most allowed IPs a reader accepts for one peer (Weft sets at most two;
// more than this is not a device Weft configured, and memory stays bounded).
inline constexpr size_t kMaxAllowedIpsPerPeer = 4096;

// A peer of the device. The configuration part is what Weft sets; the counters
// are read only.
struct Peer {
  Key public_key{};
  Key preshared_key{};  // zero: none
  netlink::IPAddr endpoint_ip;  // IPv4 or IPv6
  uint16_t endpoint_port = 0;   // 0 (and endpoint_ip 0.0.0.0): no endpoint
  uint16_t keepalive_seconds = 0;
  // Both families; sorted (IPv4 first) by the readers, and so by the backend.
  std::vector<netlink::IPPrefix> allowed_ips;
  // Counters (Get only).
  absl::Time last_handshake = absl::UnixEpoch();  // the epoch: never
  uint64_t rx_bytes = 0;
  uint64_t tx_bytes = 0;
};

struct Device {
  Key private_key{};  // zero: none set
  uint16_t listen_port = 0;
  std::vector<Peer> peers;
};

// One change of a Set: add or update a peer (its whole configuration: preshared
// key, endpoint, keepalive and allowed IPs replaced), or remove it.
struct PeerChange {
  Peer peer;  // for a removal only public_key matters
  bool remove = false;
};

struct DeviceChange {
  std::optional<Key> private_key;
  std::optional<uint16_t> listen_port;
  std::vector<PeerChange> peers;
  bool empty() const { return !private_key && !listen_port && peers.empty(); }
};

}  // namespace weft::agent::wg
