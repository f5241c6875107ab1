#pragma once
// wireguard-go's configuration protocol (https://www.wireguard.com/xplatform/):
// over the unix socket /var/run/wireguard/<iface>.sock, a request is
// "get=1\n\n" or "set=1\n" followed by key=value lines and an empty line; the
// answer to get is the device's key=value lines, and every answer ends with
// "errno=N\n\n". Keys travel in hex; `endpoint` is IP:port for IPv4 and
// [IP]:port for IPv6; each `allowed_ip` is IP/cidr of either family.
//
// The codec is pure (tested against the documented protocol); UapiExchange does
// one request over a fresh connection.

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent/backend/wireguard/wg_types.h"

namespace weft::agent::wg {

// An answer longer than this is refused (a device with thousands of peers is
// well below: each peer takes about 400 bytes).
inline constexpr size_t kMaxUapiAnswer = 32 << 20;

// "set=1\n...\n\n" for `change`. A peer update sends its whole configuration:
// replace_allowed_ips=true, the preshared key (zeros remove it), the endpoint
// when it has one, the keepalive.
std::string EncodeSet(const DeviceChange& change);

// The device described by the answer to "get=1". Errors: INVALID_ARGUMENT for a
// malformed answer (a bad key, number or address; a line without '='; no
// errno line), or the errno the device answered (see ErrnoStatus). Unknown keys
// are ignored; an IPv6 endpoint's zone ("%eth0") is dropped.
absl::StatusOr<Device> DecodeGet(absl::string_view answer);

// The answer to a set: OK for errno=0, else the error the device reported.
absl::Status DecodeSetAnswer(absl::string_view answer);

// Connects to `socket_path`, sends `request`, reads the answer up to its final
// empty line (at most kMaxUapiAnswer bytes, within `timeout`). UNAVAILABLE when
// the socket is missing or refuses the connection.
absl::StatusOr<std::string> UapiExchange(const std::string& socket_path, absl::string_view request,
                                         absl::Duration timeout = absl::Seconds(5));

}  // namespace weft::agent::wg
