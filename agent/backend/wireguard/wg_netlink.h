#pragma once
// Netlink pieces of the WireGuard kernel driver: the generic netlink family's
// peer attributes (include/uapi/linux/wireguard.h) both ways, pure so that they
// are tested without a kernel that has WireGuard, and small request helpers.

#include <libmnl/libmnl.h>
#include <linux/genetlink.h>

#include <array>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "agent/backend/wireguard/wg_types.h"
#include "agent/netlink/socket.h"

namespace weft::agent::wg {

// Sends the one request of `batch` and turns the kernel's answer into a status
// ("<what>: <reason>").
absl::Status SendOne(netlink::NetlinkSocket& sock, netlink::RequestBatch& batch, absl::string_view what);

// libmnl's iteration macros do not compile as C++ (void* to nlattr*).
template <typename F>
void ForEachAttr(const void* start, size_t len, F&& f) {
  auto* a = static_cast<const nlattr*>(start);
  int left = static_cast<int>(len);
  while (mnl_attr_ok(a, left)) {
    f(a);
    left -= static_cast<int>(MNL_ALIGN(a->nla_len));
    a = mnl_attr_next(a);
  }
}
template <typename F>
void ForEachNested(const nlattr* nest, F&& f) {
  ForEachAttr(mnl_attr_get_payload(nest), mnl_attr_get_payload_len(nest), f);
}
template <typename F>
void ForEachGenlAttr(const nlmsghdr* nlh, F&& f) {
  const size_t hdr = MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(genlmsghdr));
  if (nlh->nlmsg_len < hdr) return;
  ForEachAttr(mnl_nlmsg_get_payload_offset(nlh, sizeof(genlmsghdr)), nlh->nlmsg_len - hdr, f);
}


template <size_t N>
bool CopyPayload(const nlattr* a, std::array<uint8_t, N>* out) {
  if (mnl_attr_get_payload_len(a) != N) return false;
  std::memcpy(out->data(), mnl_attr_get_payload(a), N);
  return true;
}

// The most allowed IPs one peer's request carries (a message has room for a few
// dozen; Weft asks for at most two per peer, its subnets).
inline constexpr size_t kMaxAllowedIpsPerRequest = 16;

// Appends one WGDEVICE_A_PEERS nest holding `change`'s peer to `nlh`: its
// public key and either WGPEER_F_REMOVE_ME, or its whole configuration
// (WGPEER_F_REPLACE_ALLOWEDIPS, preshared key, endpoint as a sockaddr_in or
// sockaddr_in6, keepalive, allowed IPs of both families).
void PutPeer(nlmsghdr* nlh, const PeerChange& change);

// A peer nest of a WG_CMD_GET_DEVICE answer. Attributes of the wrong size or an
// unknown family are skipped (the kernel never sends them; they are not
// trusted either).
Peer ParsePeer(const nlattr* nest);

}  // namespace weft::agent::wg
