#include "agent/backend/wireguard/wg_netlink.h"

#include <arpa/inet.h>
#include <linux/time_types.h>
#include <linux/wireguard.h>
#include <netinet/in.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace weft::agent::wg {
namespace {

void ParseAllowedIps(const nlattr* list, Peer* p) {
  ForEachNested(list, [&](const nlattr* entry) {
    if (p->allowed_ips.size() >= kMaxAllowedIpsPerPeer) return;
    uint16_t family = 0;
    uint8_t cidr = 0;
    const nlattr* addr = nullptr;
    ForEachNested(entry, [&](const nlattr* a) {
      switch (mnl_attr_get_type(a)) {
        case WGALLOWEDIP_A_FAMILY:
          if (mnl_attr_get_payload_len(a) == 2) family = mnl_attr_get_u16(a);
          break;
        case WGALLOWEDIP_A_CIDR_MASK:
          if (mnl_attr_get_payload_len(a) == 1) cidr = mnl_attr_get_u8(a);
          break;
        case WGALLOWEDIP_A_IPADDR:
          addr = a;
          break;
      }
    });
    if (addr == nullptr) return;
    const size_t len = mnl_attr_get_payload_len(addr);
    if (family == AF_INET && len == 4 && cidr <= 32) {
      uint32_t be;
      std::memcpy(&be, mnl_attr_get_payload(addr), 4);
      absl::StatusOr<IPv4Net> n = IPv4Net::MakeLoose(IPv4Addr::FromUint32(ntohl(be)), cidr);
      if (n.ok()) p->allowed_ips.push_back(*n);
    } else if (family == AF_INET6 && len == 16 && cidr <= 128) {
      std::array<uint8_t, 16> bytes;
      std::memcpy(bytes.data(), mnl_attr_get_payload(addr), 16);
      absl::StatusOr<IPv6Net> n = IPv6Net::MakeLoose(IPv6Addr::FromBytes(bytes), cidr);
      if (n.ok()) p->allowed_ips.push_back(*n);
    }
  });
}

// A sockaddr_in or sockaddr_in6, told apart by its size and family.
void ParseEndpoint(const nlattr* a, Peer* p) {
  const size_t len = mnl_attr_get_payload_len(a);
  if (len == sizeof(sockaddr_in)) {
    sockaddr_in sin;
    std::memcpy(&sin, mnl_attr_get_payload(a), sizeof(sin));
    if (sin.sin_family != AF_INET) return;
    p->endpoint_ip = IPv4Addr::FromUint32(ntohl(sin.sin_addr.s_addr));
    p->endpoint_port = ntohs(sin.sin_port);
  } else if (len == sizeof(sockaddr_in6)) {
    sockaddr_in6 sin6;
    std::memcpy(&sin6, mnl_attr_get_payload(a), sizeof(sin6));
    if (sin6.sin6_family != AF_INET6) return;
    std::array<uint8_t, 16> bytes;
    std::memcpy(bytes.data(), &sin6.sin6_addr, 16);
    p->endpoint_ip = IPv6Addr::FromBytes(bytes);
    p->endpoint_port = ntohs(sin6.sin6_port);
  }
}

void PutEndpoint(nlmsghdr* nlh, const Peer& p) {
  if (p.endpoint_ip.is_v6()) {
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(p.endpoint_port);
    const std::array<uint8_t, 16> bytes = p.endpoint_ip.v6().ToBytes();
    std::memcpy(&sin6.sin6_addr, bytes.data(), 16);
    mnl_attr_put(nlh, WGPEER_A_ENDPOINT, sizeof(sin6), &sin6);
    return;
  }
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(p.endpoint_port);
  sin.sin_addr.s_addr = htonl(p.endpoint_ip.v4().value());
  mnl_attr_put(nlh, WGPEER_A_ENDPOINT, sizeof(sin), &sin);
}

void PutAllowedIp(nlmsghdr* nlh, const netlink::IPPrefix& n) {
  nlattr* ip = mnl_attr_nest_start(nlh, 0);
  if (n.is_v6()) {
    mnl_attr_put_u16(nlh, WGALLOWEDIP_A_FAMILY, AF_INET6);
    const std::array<uint8_t, 16> bytes = n.v6().network().ToBytes();
    mnl_attr_put(nlh, WGALLOWEDIP_A_IPADDR, 16, bytes.data());
  } else {
    mnl_attr_put_u16(nlh, WGALLOWEDIP_A_FAMILY, AF_INET);
    const uint32_t be = htonl(n.v4().network().value());
    mnl_attr_put(nlh, WGALLOWEDIP_A_IPADDR, 4, &be);
  }
  mnl_attr_put_u8(nlh, WGALLOWEDIP_A_CIDR_MASK, static_cast<uint8_t>(n.prefix_len()));
  mnl_attr_nest_end(nlh, ip);
}


}  // namespace

absl::Status SendOne(netlink::NetlinkSocket& sock, netlink::RequestBatch& batch, absl::string_view what) {
  ASSIGN_OR_RETURN(auto results, sock.Send(batch));
  for (const auto& r : results) {
    if (r) return netlink::ErrnoToStatus(r->error, absl::StrCat(what, ": ", r->ToString()));
  }
  return absl::OkStatus();
}

void PutPeer(nlmsghdr* nlh, const PeerChange& change) {
  nlattr* peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
  nlattr* peer = mnl_attr_nest_start(nlh, 0);
  const Peer& p = change.peer;
  mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, 32, p.public_key.data());
  if (change.remove) {
    mnl_attr_put_u32(nlh, WGPEER_A_FLAGS, WGPEER_F_REMOVE_ME);
  } else {
    mnl_attr_put_u32(nlh, WGPEER_A_FLAGS, WGPEER_F_REPLACE_ALLOWEDIPS);
    mnl_attr_put(nlh, WGPEER_A_PRESHARED_KEY, 32, p.preshared_key.data());
    if (p.endpoint_port != 0) PutEndpoint(nlh, p);
    mnl_attr_put_u16(nlh, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, p.keepalive_seconds);
    nlattr* ips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
    for (size_t i = 0; i < p.allowed_ips.size() && i < kMaxAllowedIpsPerRequest; ++i) {
      PutAllowedIp(nlh, p.allowed_ips[i]);
    }
    mnl_attr_nest_end(nlh, ips);
  }
  mnl_attr_nest_end(nlh, peer);
  mnl_attr_nest_end(nlh, peers);
}

Peer ParsePeer(const nlattr* nest) {
  Peer p;
  ForEachNested(nest, [&p](const nlattr* a) {
    switch (mnl_attr_get_type(a)) {
      case WGPEER_A_PUBLIC_KEY:
        CopyPayload(a, &p.public_key);
        break;
      case WGPEER_A_PRESHARED_KEY:
        CopyPayload(a, &p.preshared_key);
        break;
      case WGPEER_A_ENDPOINT:
        ParseEndpoint(a, &p);
        break;
      case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
        if (mnl_attr_get_payload_len(a) == 2) p.keepalive_seconds = mnl_attr_get_u16(a);
        break;
      case WGPEER_A_LAST_HANDSHAKE_TIME:
        if (mnl_attr_get_payload_len(a) == sizeof(__kernel_timespec)) {
          __kernel_timespec ts;
          std::memcpy(&ts, mnl_attr_get_payload(a), sizeof(ts));
          if (ts.tv_sec != 0 || ts.tv_nsec != 0) {
            p.last_handshake = absl::FromUnixSeconds(ts.tv_sec) + absl::Nanoseconds(ts.tv_nsec);
          }
        }
        break;
      case WGPEER_A_RX_BYTES:
        if (mnl_attr_get_payload_len(a) == 8) p.rx_bytes = mnl_attr_get_u64(a);
        break;
      case WGPEER_A_TX_BYTES:
        if (mnl_attr_get_payload_len(a) == 8) p.tx_bytes = mnl_attr_get_u64(a);
        break;
      case WGPEER_A_ALLOWEDIPS:
        ParseAllowedIps(a, &p);
        break;
    }
  });
  return p;
}

}  // namespace weft::agent::wg
