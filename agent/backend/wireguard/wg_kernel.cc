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
                    std::vector<netlink::IPPrefix>& ips = d.peers.back().allowed_ips;
                    const size_t room = kMaxAllowedIpsPerPeer - std::min(ips.size(), kMaxAllowedIpsPerPeer);
                    ips.insert(ips.end(), p.allowed_ips.begin(),
                               p.allowed_ips.begin() + std::min(room, p.allowed_ips.size()));
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
      PutPeer(nlh, pc);
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
