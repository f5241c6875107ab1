#include "agent/backend/wireguard/uapi.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/netlink/socket.h"
#include "common/quote.h"
#include "common/status_macros.h"

namespace weft::agent::wg {
namespace {

absl::Status Malformed(absl::string_view what, absl::string_view line) {
  return absl::InvalidArgumentError(absl::StrCat("WireGuard UAPI answer: ", what, " in line ", QuoteInput(line)));
}

// errno=N: 0 is success; wireguard-go answers with a positive or (older
// releases) negative errno.
absl::Status ErrnoStatus(int64_t e) {
  if (e == 0) return absl::OkStatus();
  const int err = static_cast<int>(e < 0 ? -e : e);
  return netlink::ErrnoToStatus(
      err, absl::StrCat("WireGuard device refused the request: errno ", err, " (", std::strerror(err), ")"));
}

// "1.2.3.4:51820" or "[fd77:2::11]:51820" (a zone, "[fe80::1%eth0]:1", is
// dropped: Weft never sets a link-local endpoint).
absl::Status ParseEndpoint(absl::string_view v, netlink::IPAddr* ip, uint16_t* port) {
  const size_t colon = v.rfind(':');
  uint32_t p = 0;
  if (colon == absl::string_view::npos || !absl::SimpleAtoi(v.substr(colon + 1), &p) || p > 65535) {
    return absl::InvalidArgumentError("bad endpoint");
  }
  absl::string_view host = v.substr(0, colon);
  if (absl::ConsumePrefix(&host, "[")) {
    if (!absl::ConsumeSuffix(&host, "]")) return absl::InvalidArgumentError("bad endpoint");
    host = host.substr(0, host.find('%'));
    ASSIGN_OR_RETURN(*ip, IPv6Addr::Parse(host));
  } else {
    ASSIGN_OR_RETURN(*ip, IPv4Addr::Parse(host));
  }
  *port = static_cast<uint16_t>(p);
  return absl::OkStatus();
}

absl::StatusOr<netlink::IPPrefix> ParseAllowedIp(absl::string_view v) {
  if (v.find(':') != absl::string_view::npos) {
    ASSIGN_OR_RETURN(IPv6Net n, IPv6Net::Parse(v));
    return netlink::IPPrefix(n);
  }
  ASSIGN_OR_RETURN(IPv4Net n, IPv4Net::Parse(v));
  return netlink::IPPrefix(n);
}

}  // namespace

std::string EncodeSet(const DeviceChange& change) {
  std::string out = "set=1\n";
  if (change.private_key) absl::StrAppend(&out, "private_key=", ToHex(*change.private_key), "\n");
  if (change.listen_port) absl::StrAppend(&out, "listen_port=", *change.listen_port, "\n");
  for (const PeerChange& pc : change.peers) {
    const Peer& p = pc.peer;
    absl::StrAppend(&out, "public_key=", ToHex(p.public_key), "\n");
    if (pc.remove) {
      out += "remove=true\n";
      continue;
    }
    absl::StrAppend(&out, "preshared_key=", ToHex(p.preshared_key), "\n");
    if (p.endpoint_port != 0) {
      if (p.endpoint_ip.is_v6()) {
        absl::StrAppend(&out, "endpoint=[", p.endpoint_ip.ToString(), "]:", p.endpoint_port, "\n");
      } else {
        absl::StrAppend(&out, "endpoint=", p.endpoint_ip.ToString(), ":", p.endpoint_port, "\n");
      }
    }
    absl::StrAppend(&out, "persistent_keepalive_interval=", p.keepalive_seconds, "\n");
    out += "replace_allowed_ips=true\n";
    for (const netlink::IPPrefix& n : p.allowed_ips) absl::StrAppend(&out, "allowed_ip=", n.ToString(), "\n");
  }
  out += "\n";
  return out;
}

absl::StatusOr<Device> DecodeGet(absl::string_view answer) {
  if (answer.size() > kMaxUapiAnswer) return absl::InvalidArgumentError("WireGuard UAPI answer too long");
  Device d;
  Peer* peer = nullptr;
  int64_t handshake_sec = 0, handshake_nsec = 0;
  auto finish_peer = [&] {
    if (peer == nullptr) return;
    if (handshake_sec != 0 || handshake_nsec != 0) {
      peer->last_handshake = absl::FromUnixSeconds(handshake_sec) + absl::Nanoseconds(handshake_nsec);
    }
    std::sort(peer->allowed_ips.begin(), peer->allowed_ips.end());
    handshake_sec = handshake_nsec = 0;
  };
  std::optional<int64_t> errno_value;
  for (absl::string_view line : absl::StrSplit(answer, '\n')) {
    if (line.empty()) continue;
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos) return Malformed("no '='", line);
    const absl::string_view key = line.substr(0, eq), value = line.substr(eq + 1);
    auto number = [&](uint64_t max) -> absl::StatusOr<uint64_t> {
      uint64_t n = 0;
      if (!absl::SimpleAtoi(value, &n) || n > max) return Malformed("bad number", line);
      return n;
    };
    if (key == "errno") {
      int64_t e = 0;
      if (!absl::SimpleAtoi(value, &e)) return Malformed("bad errno", line);
      errno_value = e;
      break;
    }
    if (key == "private_key") {
      ASSIGN_OR_RETURN(d.private_key, ParseHexKey(value, "private_key"));
    } else if (key == "listen_port") {
      ASSIGN_OR_RETURN(uint64_t port, number(65535));
      d.listen_port = static_cast<uint16_t>(port);
    } else if (key == "public_key") {
      finish_peer();
      d.peers.emplace_back();
      peer = &d.peers.back();
      ASSIGN_OR_RETURN(peer->public_key, ParseHexKey(value, "public_key"));
    } else if (peer == nullptr) {
      continue;  // a device-level key Weft does not use (fwmark...)
    } else if (key == "preshared_key") {
      ASSIGN_OR_RETURN(peer->preshared_key, ParseHexKey(value, "preshared_key"));
    } else if (key == "endpoint") {
      if (!ParseEndpoint(value, &peer->endpoint_ip, &peer->endpoint_port).ok()) {
        return Malformed("bad endpoint", line);
      }
    } else if (key == "allowed_ip") {
      absl::StatusOr<netlink::IPPrefix> n = ParseAllowedIp(value);
      if (!n.ok()) return Malformed("bad allowed_ip", line);
      if (peer->allowed_ips.size() >= kMaxAllowedIpsPerPeer) return Malformed("too many allowed IPs", line);
      peer->allowed_ips.push_back(*n);
    } else if (key == "persistent_keepalive_interval") {
      ASSIGN_OR_RETURN(uint64_t k, number(65535));
      peer->keepalive_seconds = static_cast<uint16_t>(k);
    } else if (key == "last_handshake_time_sec") {
      ASSIGN_OR_RETURN(uint64_t s, number(uint64_t{1} << 40));
      handshake_sec = static_cast<int64_t>(s);
    } else if (key == "last_handshake_time_nsec") {
      ASSIGN_OR_RETURN(uint64_t ns, number(999999999));
      handshake_nsec = static_cast<int64_t>(ns);
    } else if (key == "rx_bytes") {
      ASSIGN_OR_RETURN(peer->rx_bytes, number(UINT64_MAX));
    } else if (key == "tx_bytes") {
      ASSIGN_OR_RETURN(peer->tx_bytes, number(UINT64_MAX));
    }
  }
  finish_peer();
  if (!errno_value) return absl::InvalidArgumentError("WireGuard UAPI answer: no errno line (truncated?)");
  RETURN_IF_ERROR(ErrnoStatus(*errno_value));
  return d;
}

absl::Status DecodeSetAnswer(absl::string_view answer) {
  for (absl::string_view line : absl::StrSplit(answer, '\n', absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&line, "errno=")) {
      int64_t e = 0;
      if (!absl::SimpleAtoi(line, &e)) return Malformed("bad errno", line);
      return ErrnoStatus(e);
    }
  }
  return absl::InvalidArgumentError("WireGuard UAPI answer: no errno line (truncated?)");
}

absl::StatusOr<std::string> UapiExchange(const std::string& socket_path, absl::string_view request,
                                         absl::Duration timeout) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("UAPI socket path too long: ", socket_path));
  }
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return absl::UnavailableError(absl::StrCat("connect ", socket_path, ": ", std::strerror(errno)));
  }
  const absl::Time deadline = absl::Now() + timeout;
  auto wait = [&](short events) -> absl::Status {
    while (true) {
      const int ms = static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now())));
      pollfd p{fd, events, 0};
      const int r = poll(&p, 1, ms);
      if (r > 0) return absl::OkStatus();
      if (r == 0) return absl::DeadlineExceededError(absl::StrCat("no answer from ", socket_path, " in time"));
      if (errno != EINTR) return absl::InternalError(absl::StrCat("poll: ", std::strerror(errno)));
    }
  };
  size_t sent = 0;
  while (sent < request.size()) {
    RETURN_IF_ERROR(wait(POLLOUT));
    const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::UnavailableError(absl::StrCat("send to ", socket_path, ": ", std::strerror(errno)));
    sent += static_cast<size_t>(n);
  }
  std::string answer;
  char buf[16384];
  // The answer ends with the line "errno=N" and an empty line.
  auto complete = [&answer] {
    if (answer.size() < 3 || answer.compare(answer.size() - 2, 2, "\n\n") != 0) return false;
    const size_t nl = answer.rfind('\n', answer.size() - 3);
    return answer.compare(nl == std::string::npos ? 0 : nl + 1, 6, "errno=") == 0;
  };
  while (!complete()) {
    RETURN_IF_ERROR(wait(POLLIN));
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::UnavailableError(absl::StrCat("recv from ", socket_path, ": ", std::strerror(errno)));
    if (n == 0) break;  // closed early: the decoder reports the missing errno
    if (answer.size() + static_cast<size_t>(n) > kMaxUapiAnswer) {
      return absl::ResourceExhaustedError(absl::StrCat("answer from ", socket_path, " exceeds ", kMaxUapiAnswer, " bytes"));
    }
    answer.append(buf, static_cast<size_t>(n));
  }
  return answer;
}

}  // namespace weft::agent::wg
