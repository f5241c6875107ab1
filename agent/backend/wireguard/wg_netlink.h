#pragma once
// Small netlink helpers of the WireGuard drivers.

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "agent/netlink/socket.h"

namespace weft::agent::wg {

// Sends the one request of `batch` and turns the kernel's answer into a status
// ("<what>: <reason>").
absl::Status SendOne(netlink::NetlinkSocket& sock, netlink::RequestBatch& batch, absl::string_view what);

}  // namespace weft::agent::wg
