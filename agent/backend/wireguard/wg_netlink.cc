#include "agent/backend/wireguard/wg_netlink.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace weft::agent::wg {

absl::Status SendOne(netlink::NetlinkSocket& sock, netlink::RequestBatch& batch, absl::string_view what) {
  ASSIGN_OR_RETURN(auto results, sock.Send(batch));
  for (const auto& r : results) {
    if (r) return netlink::ErrnoToStatus(r->error, absl::StrCat(what, ": ", r->ToString()));
  }
  return absl::OkStatus();
}

}  // namespace weft::agent::wg
