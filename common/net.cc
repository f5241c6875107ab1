#include "common/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <ostream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/check.h"
#include "common/quote.h"
#include "common/status_macros.h"

namespace weft {
namespace {

// Quotes user input for error messages: escaped, and only a short prefix of a long input.
std::string Quote(absl::string_view s) { return QuoteInput(s); }

absl::Status Invalid(absl::string_view what, absl::string_view input, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("invalid ", what, " ", Quote(input), ": ", why));
}

// A decimal number of 1-3 digits without a leading zero (a lone "0" is fine).
bool ParseSmallDecimal(absl::string_view s, int* out) {
  if (s.empty() || s.size() > 3) return false;
  if (s.size() > 1 && s[0] == '0') return false;
  int v = 0;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

int HexNibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  return absl::ascii_tolower(static_cast<unsigned char>(c)) - 'a' + 10;
}

template <typename Addr>
std::string HostBitsSet(Addr addr, int prefix_len) {
  absl::StatusOr<IPNet<Addr>> net = IPNet<Addr>::MakeLoose(addr, prefix_len);
  return absl::StrCat("host bits are set (the network address is ", net->network().ToString(), ")");
}

}  // namespace

absl::StatusOr<IPv4Addr> IPv4Addr::Parse(absl::string_view s) {
  std::vector<absl::string_view> parts = absl::StrSplit(s, '.');
  if (parts.size() != 4) {
    return Invalid("IPv4 address", s, "want four dot-separated decimal octets");
  }
  uint32_t v = 0;
  for (absl::string_view p : parts) {
    int octet;
    if (!ParseSmallDecimal(p, &octet)) {
      return Invalid("IPv4 address", s,
                     absl::StrCat("octet ", Quote(p), " is not a decimal number without leading zeros"));
    }
    if (octet > 255) {
      return Invalid("IPv4 address", s, absl::StrCat("octet ", p, " is greater than 255"));
    }
    v = (v << 8) | static_cast<uint32_t>(octet);
  }
  return IPv4Addr(v);
}

std::string IPv4Addr::ToString() const {
  return absl::StrFormat("%d.%d.%d.%d", value_ >> 24, (value_ >> 16) & 0xff, (value_ >> 8) & 0xff,
                         value_ & 0xff);
}

IPv6Addr IPv6Addr::FromBytes(const std::array<uint8_t, 16>& b) {
  uint64_t hi = 0, lo = 0;
  for (int i = 0; i < 8; ++i) hi = (hi << 8) | b[i];
  for (int i = 8; i < 16; ++i) lo = (lo << 8) | b[i];
  return IPv6Addr(absl::MakeUint128(hi, lo));
}

std::array<uint8_t, 16> IPv6Addr::ToBytes() const {
  std::array<uint8_t, 16> b;
  uint64_t hi = absl::Uint128High64(value()), lo = absl::Uint128Low64(value());
  for (int i = 7; i >= 0; --i, hi >>= 8) b[i] = hi & 0xff;
  for (int i = 15; i >= 8; --i, lo >>= 8) b[i] = lo & 0xff;
  return b;
}

absl::StatusOr<IPv6Addr> IPv6Addr::Parse(absl::string_view s) {
  // inet_pton wants a NUL-terminated string; a NUL inside `s` must not cut it short.
  if (s.empty() || s.size() >= INET6_ADDRSTRLEN || s.find('\0') != absl::string_view::npos) {
    return Invalid("IPv6 address", s, "not an IPv6 address");
  }
  const std::string z(s);
  std::array<uint8_t, 16> b;
  if (inet_pton(AF_INET6, z.c_str(), b.data()) != 1) {
    return Invalid("IPv6 address", s, "not an IPv6 address");
  }
  return FromBytes(b);
}

std::string IPv6Addr::ToString() const {
  const std::array<uint8_t, 16> b = ToBytes();
  char buf[INET6_ADDRSTRLEN];
  // Cannot fail: the buffer is large enough for any address.
  WEFT_CHECK(inet_ntop(AF_INET6, b.data(), buf, sizeof(buf)) != nullptr, "inet_ntop of an IPv6 address");
  return buf;
}

template <typename Addr>
absl::StatusOr<IPNet<Addr>> IPNet<Addr>::Make(Addr addr, int prefix_len) {
  if (prefix_len < 0 || prefix_len > Traits::kBits) {
    return absl::InvalidArgumentError(absl::StrCat("invalid ", Traits::kFamily, " prefix length ", prefix_len,
                                                   ": must be 0 to ", Traits::kBits));
  }
  if ((addr.value() & HostMask(prefix_len)) != 0) {
    return Invalid(absl::StrCat(Traits::kFamily, " network"), absl::StrCat(addr.ToString(), "/", prefix_len),
                   HostBitsSet(addr, prefix_len));
  }
  return IPNet(addr, prefix_len);
}

template <typename Addr>
absl::StatusOr<IPNet<Addr>> IPNet<Addr>::MakeLoose(Addr addr, int prefix_len) {
  if (prefix_len < 0 || prefix_len > Traits::kBits) return Make(addr, prefix_len);
  return IPNet(Traits::FromInt(addr.value() & ~HostMask(prefix_len)), prefix_len);
}

template <typename Addr>
absl::StatusOr<IPNet<Addr>> IPNet<Addr>::ParseWith(absl::string_view s, char sep, bool loose) {
  const std::string what = absl::StrCat(Traits::kFamily, sep == '/' ? " network" : " network key");
  const size_t pos = s.rfind(sep);
  if (pos == absl::string_view::npos) {
    return Invalid(what, s, absl::StrCat("want ADDRESS", std::string(1, sep), "PREFIX-LENGTH"));
  }
  absl::StatusOr<Addr> addr = Addr::Parse(s.substr(0, pos));
  if (!addr.ok()) return Invalid(what, s, addr.status().message());
  const absl::string_view len_str = s.substr(pos + 1);
  int len;
  if (!ParseSmallDecimal(len_str, &len)) {
    return Invalid(what, s, absl::StrCat("prefix length ", Quote(len_str), " is not a decimal number"));
  }
  if (len > Traits::kBits) {
    return Invalid(what, s, absl::StrCat("prefix length ", len, " is greater than ", Traits::kBits));
  }
  if (!loose && (addr->value() & HostMask(len)) != 0) return Invalid(what, s, HostBitsSet(*addr, len));
  return MakeLoose(*addr, len);
}

template <typename Addr>
absl::StatusOr<IPNet<Addr>> IPNet<Addr>::Parse(absl::string_view s) {
  return ParseWith(s, '/', /*loose=*/false);
}

template <typename Addr>
absl::StatusOr<IPNet<Addr>> IPNet<Addr>::ParseLoose(absl::string_view s) {
  return ParseWith(s, '/', /*loose=*/true);
}

template <typename Addr>
absl::StatusOr<IPNet<Addr>> IPNet<Addr>::ParseFlannelKey(absl::string_view s) {
  return ParseWith(s, '-', /*loose=*/false);
}

template <typename Addr>
typename IPNet<Addr>::Size IPNet<Addr>::size() const {
  const int host_bits = Traits::kBits - prefix_len_;
  if (host_bits >= 8 * static_cast<int>(sizeof(Size))) return ~Size(0);  // IPv6 /0
  return Size(1) << host_bits;
}

template <typename Addr>
absl::StatusOr<IPNet<Addr>> IPNet<Addr>::Next() const {
  using Int = typename Traits::Int;
  const Int last = broadcast().value();
  if (last == ~Int(0)) {
    return absl::OutOfRangeError(absl::StrCat("no ", Traits::kFamily, " network follows ", ToString(),
                                              ": it ends at the last address"));
  }
  return IPNet(Traits::FromInt(last + 1), prefix_len_);
}

template <typename Addr>
std::string IPNet<Addr>::ToString() const {
  return absl::StrCat(network_.ToString(), "/", prefix_len_);
}

template <typename Addr>
std::string IPNet<Addr>::FlannelKey() const {
  return absl::StrCat(network_.ToString(), "-", prefix_len_);
}

template class IPNet<IPv4Addr>;
template class IPNet<IPv6Addr>;

std::ostream& operator<<(std::ostream& os, IPv4Addr a) { return os << a.ToString(); }
std::ostream& operator<<(std::ostream& os, IPv6Addr a) { return os << a.ToString(); }
std::ostream& operator<<(std::ostream& os, const IPv4Net& n) { return os << n.ToString(); }
std::ostream& operator<<(std::ostream& os, const IPv6Net& n) { return os << n.ToString(); }
std::ostream& operator<<(std::ostream& os, const MacAddr& m) { return os << m.ToString(); }

absl::StatusOr<MacAddr> MacAddr::Parse(absl::string_view s) {
  std::vector<absl::string_view> parts = absl::StrSplit(s, ':');
  if (parts.size() != 6) {
    return Invalid("MAC address", s, "want six colon-separated pairs of hex digits");
  }
  std::array<uint8_t, 6> b;
  for (int i = 0; i < 6; ++i) {
    const absl::string_view p = parts[i];
    if (p.size() != 2 || !absl::ascii_isxdigit(static_cast<unsigned char>(p[0])) ||
        !absl::ascii_isxdigit(static_cast<unsigned char>(p[1]))) {
      return Invalid("MAC address", s, absl::StrCat("group ", Quote(p), " is not two hex digits"));
    }
    b[i] = static_cast<uint8_t>(HexNibble(p[0]) << 4 | HexNibble(p[1]));
  }
  return MacAddr(b);
}

std::string MacAddr::ToString() const {
  return absl::StrFormat("%02x:%02x:%02x:%02x:%02x:%02x", bytes_[0], bytes_[1], bytes_[2], bytes_[3],
                         bytes_[4], bytes_[5]);
}

bool MacAddr::IsZero() const {
  for (uint8_t b : bytes_) {
    if (b != 0) return false;
  }
  return true;
}

namespace {

// RFC 1123 host name, either case.
absl::Status ValidateHostName(absl::string_view host, absl::string_view input) {
  if (host.size() > 253) return Invalid("host:port", input, "host name is longer than 253 characters");
  for (absl::string_view label : absl::StrSplit(host, '.')) {
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-' ||
        !std::all_of(label.begin(), label.end(),
                     [](char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-'; })) {
      return Invalid("host:port", input,
                     absl::StrCat("host ", Quote(host), " is neither an IPv4 address nor a valid host name"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<HostPort> ParseHostPort(absl::string_view in) {
  absl::string_view s = in;
  HostPort hp;
  absl::string_view port;
  if (absl::ConsumePrefix(&s, "[")) {
    const size_t close = s.find(']');
    if (close == absl::string_view::npos) return Invalid("host:port", in, "missing ']' after an IPv6 address");
    absl::StatusOr<IPv6Addr> addr = IPv6Addr::Parse(s.substr(0, close));
    if (!addr.ok()) return Invalid("host:port", in, addr.status().message());
    hp.host = std::string(s.substr(0, close));
    port = s.substr(close + 1);
    if (!absl::ConsumePrefix(&port, ":")) return Invalid("host:port", in, "missing \":PORT\" after \"]\"");
  } else {
    const size_t colon = s.rfind(':');
    if (colon == absl::string_view::npos) return Invalid("host:port", in, "missing \":PORT\"");
    const absl::string_view host = s.substr(0, colon);
    port = s.substr(colon + 1);
    if (host.find(':') != absl::string_view::npos) {
      return Invalid("host:port", in, "an IPv6 address needs brackets: [ADDRESS]:PORT");
    }
    const bool looks_numeric =
        std::all_of(host.begin(), host.end(), [](char c) { return absl::ascii_isdigit(c) || c == '.'; });
    if (!host.empty() && looks_numeric) {
      absl::StatusOr<IPv4Addr> addr = IPv4Addr::Parse(host);
      if (!addr.ok()) return Invalid("host:port", in, addr.status().message());
    } else if (!host.empty()) {
      RETURN_IF_ERROR(ValidateHostName(host, in));
    }
    hp.host = std::string(host);
  }
  uint32_t p;
  if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(port, &p)) {
    return Invalid("host:port", in, absl::StrCat("port ", Quote(port), " is not a decimal number"));
  }
  if (p > 65535) return Invalid("host:port", in, absl::StrCat("port ", p, " is greater than 65535"));
  hp.port = static_cast<uint16_t>(p);
  return hp;
}

std::string HostPort::ToString() const {
  if (host.find(':') != std::string::npos) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

bool AbslParseFlag(absl::string_view text, HostPort* hp, std::string* error) {
  absl::StatusOr<HostPort> parsed = ParseHostPort(text);
  if (!parsed.ok()) {
    *error = std::string(parsed.status().message());
    return false;
  }
  *hp = *std::move(parsed);
  return true;
}

std::string AbslUnparseFlag(const HostPort& hp) { return hp.ToString(); }

std::ostream& operator<<(std::ostream& os, const HostPort& hp) { return os << hp.ToString(); }

absl::Status ValidateNodeName(absl::string_view name) {
  constexpr size_t kMaxName = 253, kMaxLabel = 63;
  if (name.empty()) return absl::InvalidArgumentError("invalid node name \"\": must not be empty");
  if (name.size() > kMaxName) {
    return Invalid("node name", name,
                   absl::StrCat("is ", name.size(), " characters long; at most ", kMaxName, " allowed"));
  }
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-' || c == '.')) {
      return Invalid("node name", name,
                     absl::StrCat("character ", Quote(name.substr(i, 1)), " at offset ", i,
                                  " is not allowed (only lower-case letters, digits, '-' and '.')"));
    }
  }
  for (absl::string_view label : absl::StrSplit(name, '.')) {
    if (label.empty()) {
      return Invalid("node name", name, "has an empty label (leading, trailing or doubled '.')");
    }
    if (label.size() > kMaxLabel) {
      return Invalid("node name", name,
                     absl::StrCat("label ", Quote(label), " is ", label.size(), " characters long; at most ",
                                  kMaxLabel, " allowed"));
    }
    if (label.front() == '-' || label.back() == '-') {
      return Invalid("node name", name,
                     absl::StrCat("label ", Quote(label), " must start and end with a letter or digit"));
    }
  }
  return absl::OkStatus();
}

bool IsValidNodeName(absl::string_view name) { return ValidateNodeName(name).ok(); }

}  // namespace weft
