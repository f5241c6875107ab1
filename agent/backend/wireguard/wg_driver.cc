#include "agent/backend/wireguard/wg_driver.h"

#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <net/if.h>

#include "absl/strings/str_cat.h"
#include "agent/backend/wireguard/wg_netlink.h"
#include "agent/netlink/socket.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace weft::agent::wg {

absl::Status Driver::SetMtu(int ifindex, uint32_t mtu) {
  ASSIGN_OR_RETURN(std::unique_ptr<netlink::NetlinkSocket> sock, netlink::NetlinkSocket::Open());
  netlink::RequestBatch batch;
  nlmsghdr* nlh = batch.Begin(RTM_NEWLINK, 0);
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_index = ifindex;
  mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
  return SendOne(*sock, batch, absl::StrCat("set MTU ", mtu, " on ", device_));
}

absl::Status Driver::DeleteDevice() {
  const unsigned index = if_nametoindex(device_.c_str());
  if (index == 0) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::unique_ptr<netlink::NetlinkSocket> sock, netlink::NetlinkSocket::Open());
  netlink::RequestBatch batch;
  nlmsghdr* nlh = batch.Begin(RTM_DELLINK, 0);
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_index = static_cast<int>(index);
  absl::Status s = SendOne(*sock, batch, absl::StrCat("delete link ", device_));
  return absl::IsNotFound(s) ? absl::OkStatus() : s;
}

absl::StatusOr<std::unique_ptr<Driver>> NewDriver(const DriverOptions& options) {
  const std::string& impl = options.implementation;
  if (impl == kUserspaceDriver) return NewUserspaceDriver(options);
  if (impl == kKernelDriver) return NewKernelDriver(options);
  if (impl != "auto") {
    return absl::InvalidArgumentError(
        absl::StrCat("WireGuard implementation \"", impl, "\": want auto, kernel or userspace"));
  }
  absl::StatusOr<std::unique_ptr<Driver>> kernel = NewKernelDriver(options);
  if (kernel.ok()) {
    WEFT_LOG(INFO, "WireGuard: using the kernel's implementation").With("device", options.device);
    return kernel;
  }
  WEFT_LOG(INFO, "WireGuard: the kernel has none; using wireguard-go (userspace)")
      .With("device", options.device)
      .With("wireguard_go", options.wireguard_go)
      .With("kernel", kernel.status().message());
  return NewUserspaceDriver(options);
}

}  // namespace weft::agent::wg
