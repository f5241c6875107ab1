#pragma once
// Value types for addresses and networks: IPv4/IPv6 addresses and CIDR networks,
// MAC addresses, and node-name validation. All types are small, copyable,
// immutable values; every function is thread-safe. Parsing is strict (errors are
// INVALID_ARGUMENT with a message that quotes the input and says what is wrong).

#include <array>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <utility>

#include "absl/numeric/int128.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace weft {
namespace net_internal {
// Comparisons and hashing for an address type, by its integer value().
template <typename T>
struct OrderedByValue {
  friend bool operator==(const T& a, const T& b) { return a.value() == b.value(); }
  friend bool operator!=(const T& a, const T& b) { return a.value() != b.value(); }
  friend bool operator<(const T& a, const T& b) { return a.value() < b.value(); }
  friend bool operator<=(const T& a, const T& b) { return a.value() <= b.value(); }
  friend bool operator>(const T& a, const T& b) { return a.value() > b.value(); }
  friend bool operator>=(const T& a, const T& b) { return a.value() >= b.value(); }
  template <typename H>
  friend H AbslHashValue(H h, const T& a) {
    return H::combine(std::move(h), a.value());
  }
};
}  // namespace net_internal

// An IPv4 address, held as a host-order integer.
class IPv4Addr : public net_internal::OrderedByValue<IPv4Addr> {
 public:
  constexpr IPv4Addr() = default;  // 0.0.0.0
  static constexpr IPv4Addr FromUint32(uint32_t host_order) { return IPv4Addr(host_order); }
  // Strict dotted quad: four decimal octets 0-255, no leading zeros ("010" is
  // ambiguous: octal to inet_aton), no whitespace.
  static absl::StatusOr<IPv4Addr> Parse(absl::string_view s);

  constexpr uint32_t value() const { return value_; }
  std::string ToString() const;

 private:
  explicit constexpr IPv4Addr(uint32_t v) : value_(v) {}
  uint32_t value_ = 0;
};

// An IPv6 address, a host-order 128-bit integer (the first byte of the address
// is the most significant byte), held as four 32-bit words: 4-byte alignment
// keeps the types that hold an IPv4 or an IPv6 address small (netlink::IPAddr
// 20 bytes instead of 32, a netlink::Route 56 instead of 96; the agent holds
// 60,000 of them with 20,000 peers, docs/benchmarks.md).
class IPv6Addr : public net_internal::OrderedByValue<IPv6Addr> {
 public:
  constexpr IPv6Addr() = default;  // ::
  static constexpr IPv6Addr FromUint128(absl::uint128 host_order) { return IPv6Addr(host_order); }
  static IPv6Addr FromBytes(const std::array<uint8_t, 16>& network_order);
  // Any form inet_pton(AF_INET6) accepts ("fd00::1", "::ffff:10.0.0.1"); no zone
  // ("%eth0"), no brackets, no whitespace.
  static absl::StatusOr<IPv6Addr> Parse(absl::string_view s);

  constexpr absl::uint128 value() const {
    return absl::MakeUint128((uint64_t{words_[0]} << 32) | words_[1], (uint64_t{words_[2]} << 32) | words_[3]);
  }
  std::array<uint8_t, 16> ToBytes() const;  // network order
  std::string ToString() const;             // RFC 5952 (inet_ntop): "fd00:12:13::1"

 private:
  explicit constexpr IPv6Addr(absl::uint128 v)
      : words_{static_cast<uint32_t>(absl::Uint128High64(v) >> 32), static_cast<uint32_t>(absl::Uint128High64(v)),
               static_cast<uint32_t>(absl::Uint128Low64(v) >> 32), static_cast<uint32_t>(absl::Uint128Low64(v))} {}
  std::array<uint32_t, 4> words_ = {};  // most significant first
};

namespace net_internal {
template <typename Addr>
struct AddrTraits;
template <>
struct AddrTraits<IPv4Addr> {
  using Int = uint32_t;
  using Size = uint64_t;  // a /0 holds 2^32 addresses
  static constexpr int kBits = 32;
  static constexpr const char* kFamily = "IPv4";
  static constexpr IPv4Addr FromInt(Int v) { return IPv4Addr::FromUint32(v); }
};
template <>
struct AddrTraits<IPv6Addr> {
  using Int = absl::uint128;
  using Size = absl::uint128;  // saturates at 2^128 - 1 for a /0
  static constexpr int kBits = 128;
  static constexpr const char* kFamily = "IPv6";
  static constexpr IPv6Addr FromInt(Int v) { return IPv6Addr::FromUint128(v); }
};
}  // namespace net_internal

// A CIDR network: a network address with no host bits set, and a prefix length.
// Use through the aliases IPv4Net and IPv6Net below.
template <typename Addr>
class IPNet {
  using Traits = net_internal::AddrTraits<Addr>;

 public:
  using Size = typename Traits::Size;
  static constexpr int kMaxPrefixLen = Traits::kBits;

  constexpr IPNet() = default;  // 0.0.0.0/0 or ::/0

  // Strict: `addr` must have no bits set beyond `prefix_len`.
  static absl::StatusOr<IPNet> Make(Addr addr, int prefix_len);
  // Clears host bits: (10.1.19.7, 24) -> 10.1.19.0/24.
  static absl::StatusOr<IPNet> MakeLoose(Addr addr, int prefix_len);
  // "10.1.19.0/24". Errors: bad syntax, prefix out of range, host bits set.
  static absl::StatusOr<IPNet> Parse(absl::string_view s);
  // "10.1.19.7/24" -> 10.1.19.0/24 (host bits are cleared, e.g. for an interface
  // address given with its prefix).
  static absl::StatusOr<IPNet> ParseLoose(absl::string_view s);
  // Flannel's etcd key form, "/" written as "-": "10.1.19.0-24", "fd00:12:13::-56".
  // Strict like Parse.
  static absl::StatusOr<IPNet> ParseFlannelKey(absl::string_view s);

  constexpr Addr network() const { return network_; }
  constexpr int prefix_len() const { return prefix_len_; }
  // The last address of the network (for IPv6 simply the last address; IPv6 has
  // no broadcast).
  Addr broadcast() const { return Traits::FromInt(network_.value() | HostMask(prefix_len_)); }
  // Number of addresses, 2^(bits - prefix_len) (an IPv6 /0 saturates, see Size).
  Size size() const;

  bool Contains(Addr a) const { return (a.value() & ~HostMask(prefix_len_)) == network_.value(); }
  // True when `other` lies wholly inside this network (a network contains itself).
  bool Contains(const IPNet& other) const {
    return other.prefix_len_ >= prefix_len_ && Contains(other.network_);
  }
  bool Overlaps(const IPNet& other) const { return Contains(other.network_) || other.Contains(network_); }
  // The adjacent network of the same size: 10.1.19.0/24 -> 10.1.20.0/24.
  // OUT_OF_RANGE past the end of the address space.
  absl::StatusOr<IPNet> Next() const;

  std::string ToString() const;     // "10.1.19.0/24"
  std::string FlannelKey() const;   // "10.1.19.0-24"

  // Ordered by network address, then prefix length.
  friend bool operator==(const IPNet& a, const IPNet& b) {
    return a.network_ == b.network_ && a.prefix_len_ == b.prefix_len_;
  }
  friend bool operator!=(const IPNet& a, const IPNet& b) { return !(a == b); }
  friend bool operator<(const IPNet& a, const IPNet& b) {
    return a.network_ != b.network_ ? a.network_ < b.network_ : a.prefix_len_ < b.prefix_len_;
  }
  friend bool operator>(const IPNet& a, const IPNet& b) { return b < a; }
  friend bool operator<=(const IPNet& a, const IPNet& b) { return !(b < a); }
  friend bool operator>=(const IPNet& a, const IPNet& b) { return !(a < b); }
  template <typename H>
  friend H AbslHashValue(H h, const IPNet& n) {
    return H::combine(std::move(h), n.network_, n.prefix_len_);
  }

 private:
  constexpr IPNet(Addr network, int prefix_len) : network_(network), prefix_len_(prefix_len) {}
  static typename Traits::Int HostMask(int prefix_len) {
    using Int = typename Traits::Int;
    return prefix_len == 0 ? ~Int(0) : (Int(1) << (Traits::kBits - prefix_len)) - 1;
  }
  static absl::StatusOr<IPNet> ParseWith(absl::string_view s, char sep, bool loose);

  Addr network_;
  int prefix_len_ = 0;
};

using IPv4Net = IPNet<IPv4Addr>;
using IPv6Net = IPNet<IPv6Addr>;
extern template class IPNet<IPv4Addr>;
extern template class IPNet<IPv6Addr>;

// For test failure messages and logs.
std::ostream& operator<<(std::ostream& os, IPv4Addr a);
std::ostream& operator<<(std::ostream& os, IPv6Addr a);
std::ostream& operator<<(std::ostream& os, const IPv4Net& n);
std::ostream& operator<<(std::ostream& os, const IPv6Net& n);

// An Ethernet MAC address (e.g. a VXLAN VTEP's).
class MacAddr {
 public:
  constexpr MacAddr() = default;  // 00:00:00:00:00:00
  explicit constexpr MacAddr(const std::array<uint8_t, 6>& bytes) : bytes_(bytes) {}
  // Six colon-separated pairs of hex digits, either case: "c6:d2:32:6f:8f:44".
  static absl::StatusOr<MacAddr> Parse(absl::string_view s);

  const std::array<uint8_t, 6>& bytes() const { return bytes_; }
  std::string ToString() const;  // lower case
  bool IsZero() const;
  bool IsMulticast() const { return (bytes_[0] & 0x01) != 0; }  // includes broadcast

  friend bool operator==(const MacAddr& a, const MacAddr& b) { return a.bytes_ == b.bytes_; }
  friend bool operator!=(const MacAddr& a, const MacAddr& b) { return a.bytes_ != b.bytes_; }
  friend bool operator<(const MacAddr& a, const MacAddr& b) { return a.bytes_ < b.bytes_; }
  template <typename H>
  friend H AbslHashValue(H h, const MacAddr& m) {
    return H::combine(std::move(h), m.bytes_);
  }

 private:
  std::array<uint8_t, 6> bytes_{};
};

std::ostream& operator<<(std::ostream& os, const MacAddr& m);

// A "host:port" endpoint to listen on or dial: "127.0.0.1:8080", "[fd00::1]:8080",
// "localhost:8080", or ":8080" (empty host: every local address).
struct HostPort {
  std::string host;  // IPv4 address, IPv6 address (no brackets), host name, or empty
  uint16_t port = 0;

  std::string ToString() const;  // brackets around an IPv6 host
  friend bool operator==(const HostPort& a, const HostPort& b) { return a.host == b.host && a.port == b.port; }
  friend bool operator!=(const HostPort& a, const HostPort& b) { return !(a == b); }
};
// Errors name what is wrong: missing port, port out of range, unbracketed IPv6,
// a malformed address or host name.
absl::StatusOr<HostPort> ParseHostPort(absl::string_view s);
// For ABSL_FLAG(weft::HostPort, ...).
bool AbslParseFlag(absl::string_view text, HostPort* hp, std::string* error);
std::string AbslUnparseFlag(const HostPort& hp);
std::ostream& operator<<(std::ostream& os, const HostPort& hp);

// Node names are RFC 1123 DNS subdomains (as Kubernetes node names): at most 253
// characters of dot-separated labels; each label 1-63 characters of lower-case
// letters, digits and '-', starting and ending with a letter or digit.
bool IsValidNodeName(absl::string_view name);
// OK, or INVALID_ARGUMENT saying what is wrong and where.
absl::Status ValidateNodeName(absl::string_view name);

}  // namespace weft
