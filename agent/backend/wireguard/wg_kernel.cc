// The kernel driver: a link of kind "wireguard" (rtnetlink) configured through
// the generic netlink family "wireguard" (include/uapi/linux/wireguard.h).
// Set sends one message per peer, so no message outgrows the batch's request
// size whatever the peer count; Get merges the peers a dump split over several
// messages (the kernel repeats a peer's public key when its allowed IPs
// continue in the next message).

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/rtnetlink.h>
#include <linux/time_types.h>
#include <linux/wireguard.h>
#include <net/if.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/backend/wireguard/wg_driver.h"
#include "agent/backend/wireguard/wg_netlink.h"
#include "agent/netlink/socket.h"
#include "common/status_macros.h"

namespace weft::agent::wg {
namespace {

using netlink::NetlinkSocket;
using netlink::RequestBatch;

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

// The family's id, from the generic netlink controller. NOT_FOUND when the
// kernel has no such family (no module loaded).
absl::StatusOr<uint16_t> ResolveFamily(NetlinkSocket& genl) {
  std::vector<uint32_t> buf(MNL_SOCKET_BUFFER_SIZE / 4);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = GENL_ID_CTRL;
  nlh->nlmsg_flags = NLM_F_REQUEST;
  auto* g = static_cast<genlmsghdr*>(mnl_nlmsg_put_extra_header(nlh, sizeof(genlmsghdr)));
  g->cmd = CTRL_CMD_GETFAMILY;
  g->version = 1;
  mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, WG_GENL_NAME);
  std::optional<uint16_t> id;
  RETURN_IF_ERROR(genl.Get(nlh, [&](const nlmsghdr* answer) {
    ForEachGenlAttr(answer, [&](const nlattr* a) {
      if (mnl_attr_get_type(a) == CTRL_ATTR_FAMILY_ID && mnl_attr_get_payload_len(a) == sizeof(uint16_t)) {
        id = mnl_attr_get_u16(a);
      }
    });
  }));
  if (!id) return absl::NotFoundError("generic netlink: no family id in the answer");
  return *id;
}

absl::Status CreateLink(const std::string& name) {
  ASSIGN_OR_RETURN(std::unique_ptr<NetlinkSocket> route, NetlinkSocket::Open());
  RequestBatch batch;
  nlmsghdr* nlh = batch.Begin(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
  nlattr* linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "wireguard");
  mnl_attr_nest_end(nlh, linkinfo);
  return SendOne(*route, batch, absl::StrCat("create wireguard link ", name));
}

template <size_t N>
bool CopyPayload(const nlattr* a, std::array<uint8_t, N>* out) {
  if (mnl_attr_get_payload_len(a) != N) return false;
  std::memcpy(out->data(), mnl_attr_get_payload(a), N);
  return true;
}

void ParseAllowedIps(const nlattr* list, Peer* p) {
  ForEachNested(list, [&](const nlattr* entry) {
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
    if (family != AF_INET || addr == nullptr || mnl_attr_get_payload_len(addr) != 4 || cidr > 32) return;
    uint32_t be;
    std::memcpy(&be, mnl_attr_get_payload(addr), 4);
    absl::StatusOr<IPv4Net> n = IPv4Net::MakeLoose(IPv4Addr::FromUint32(ntohl(be)), cidr);
    if (n.ok()) p->allowed_ips.push_back(*n);
  });
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
        if (mnl_attr_get_payload_len(a) == sizeof(sockaddr_in)) {
          sockaddr_in sin;
          std::memcpy(&sin, mnl_attr_get_payload(a), sizeof(sin));
          if (sin.sin_family == AF_INET) {
            p.endpoint_ip = IPv4Addr::FromUint32(ntohl(sin.sin_addr.s_addr));
            p.endpoint_port = ntohs(sin.sin_port);
          }
        }
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

class KernelDriver : public Driver {
 public:
  KernelDriver(const DriverOptions& o, std::unique_ptr<NetlinkSocket> genl, uint16_t family)
      : Driver(o.device), genl_(std::move(genl)), family_(family) {}

  const char* kind() const override { return kKernelDriver; }

  absl::Status EnsureDevice() override {
    if (if_nametoindex(device_.c_str()) != 0) {
      absl::StatusOr<Device> d = Get();
      if (d.ok()) return absl::OkStatus();
      // Not a WireGuard link (a TUN left by wireguard-go...): make ours.
      RETURN_IF_ERROR(DeleteDevice());
    }
    return CreateLink(device_);
  }

  absl::StatusOr<Device> Get() override {
    std::vector<uint32_t> buf(MNL_SOCKET_BUFFER_SIZE / 4);
    nlmsghdr* nlh = Header(buf.data(), WG_CMD_GET_DEVICE);
    nlh->nlmsg_flags = NLM_F_REQUEST;
    Device d;
    RETURN_IF_ERROR(genl_->DumpWithRetry(
        nlh, [&d] { d = Device(); },
        [&d](const nlmsghdr* m) {
          ForEachGenlAttr(m, [&d](const nlattr* a) {
            switch (mnl_attr_get_type(a)) {
              case WGDEVICE_A_PRIVATE_KEY:
                CopyPayload(a, &d.private_key);
                break;
              case WGDEVICE_A_LISTEN_PORT:
                if (mnl_attr_get_payload_len(a) == 2) d.listen_port = mnl_attr_get_u16(a);
                break;
              case WGDEVICE_A_PEERS: {
                ForEachNested(a, [&d](const nlattr* peer) {
                  Peer p = ParsePeer(peer);
                  if (!d.peers.empty() && d.peers.back().public_key == p.public_key) {
                    // The same peer, continued from the previous message.
                    std::vector<IPv4Net>& ips = d.peers.back().allowed_ips;
                    ips.insert(ips.end(), p.allowed_ips.begin(), p.allowed_ips.end());
                  } else {
                    d.peers.push_back(std::move(p));
                  }
                });
                break;
              }
            }
          });
        }));
    for (Peer& p : d.peers) std::sort(p.allowed_ips.begin(), p.allowed_ips.end());
    return d;
  }

  absl::Status Set(const DeviceChange& change) override {
    if (change.empty()) return absl::OkStatus();
    RequestBatch batch;
    if (change.private_key || change.listen_port) {
      nlmsghdr* nlh = Begin(batch);
      if (change.private_key) mnl_attr_put(nlh, WGDEVICE_A_PRIVATE_KEY, 32, change.private_key->data());
      if (change.listen_port) mnl_attr_put_u16(nlh, WGDEVICE_A_LISTEN_PORT, *change.listen_port);
    }
    for (const PeerChange& pc : change.peers) {
      nlmsghdr* nlh = Begin(batch);
      nlattr* peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
      nlattr* peer = mnl_attr_nest_start(nlh, 0);
      const Peer& p = pc.peer;
      mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, 32, p.public_key.data());
      if (pc.remove) {
        mnl_attr_put_u32(nlh, WGPEER_A_FLAGS, WGPEER_F_REMOVE_ME);
      } else {
        mnl_attr_put_u32(nlh, WGPEER_A_FLAGS, WGPEER_F_REPLACE_ALLOWEDIPS);
        mnl_attr_put(nlh, WGPEER_A_PRESHARED_KEY, 32, p.preshared_key.data());
        if (p.endpoint_port != 0) {
          sockaddr_in sin{};
          sin.sin_family = AF_INET;
          sin.sin_port = htons(p.endpoint_port);
          sin.sin_addr.s_addr = htonl(p.endpoint_ip.value());
          mnl_attr_put(nlh, WGPEER_A_ENDPOINT, sizeof(sin), &sin);
        }
        mnl_attr_put_u16(nlh, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, p.keepalive_seconds);
        nlattr* ips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
        // At most a few fit in one request; more than a peer's subnet is never asked.
        for (size_t i = 0; i < p.allowed_ips.size() && i < 16; ++i) {
          nlattr* ip = mnl_attr_nest_start(nlh, 0);
          mnl_attr_put_u16(nlh, WGALLOWEDIP_A_FAMILY, AF_INET);
          const uint32_t be = htonl(p.allowed_ips[i].network().value());
          mnl_attr_put(nlh, WGALLOWEDIP_A_IPADDR, 4, &be);
          mnl_attr_put_u8(nlh, WGALLOWEDIP_A_CIDR_MASK, static_cast<uint8_t>(p.allowed_ips[i].prefix_len()));
          mnl_attr_nest_end(nlh, ip);
        }
        mnl_attr_nest_end(nlh, ips);
      }
      mnl_attr_nest_end(nlh, peer);
      mnl_attr_nest_end(nlh, peers);
    }
    ASSIGN_OR_RETURN(auto results, genl_->Send(batch));
    for (const auto& r : results) {
      if (r) return netlink::ErrnoToStatus(r->error, absl::StrCat("wireguard set ", device_, ": ", r->ToString()));
    }
    return absl::OkStatus();
  }

 private:
  nlmsghdr* Header(void* buf, uint8_t cmd) {
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = family_;
    auto* g = static_cast<genlmsghdr*>(mnl_nlmsg_put_extra_header(nlh, sizeof(genlmsghdr)));
    g->cmd = cmd;
    g->version = WG_GENL_VERSION;
    mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, device_.c_str());
    return nlh;
  }
  nlmsghdr* Begin(RequestBatch& batch) {
    nlmsghdr* nlh = batch.Begin(family_, 0);
    auto* g = static_cast<genlmsghdr*>(mnl_nlmsg_put_extra_header(nlh, sizeof(genlmsghdr)));
    g->cmd = WG_CMD_SET_DEVICE;
    g->version = WG_GENL_VERSION;
    mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, device_.c_str());
    return nlh;
  }

  std::unique_ptr<NetlinkSocket> genl_;
  const uint16_t family_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Driver>> NewKernelDriver(const DriverOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<NetlinkSocket> genl, NetlinkSocket::Open(NETLINK_GENERIC));
  absl::StatusOr<uint16_t> family = ResolveFamily(*genl);
  if (absl::IsNotFound(family.status()) && if_nametoindex(options.device.c_str()) == 0) {
    // The module may be there but not loaded: making a link of its kind loads it.
    if (CreateLink(options.device).ok()) family = ResolveFamily(*genl);
  }
  if (!family.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the kernel has no WireGuard (generic netlink family \"", WG_GENL_NAME,
                     "\": ", family.status().message(), ")"));
  }
  return std::unique_ptr<Driver>(new KernelDriver(options, std::move(genl), *family));
}

}  // namespace weft::agent::wg
