#pragma once
// Addresses of either family for the kernel objects of programmer.h. A
// neighbour, an FDB remote, a route or an interface address is IPv4 or IPv6;
// holding either in one type keeps one diff for both (a dual-stack host simply
// has more objects). Both convert implicitly from the family types of
// common/net.h, so code that deals in one family reads as it did.

#include <iosfwd>
#include <string>
#include <utility>
#include <variant>

#include "absl/status/statusor.h"
#include "common/net.h"

namespace weft::netlink {

// An IPv4 or an IPv6 address; ordered IPv4 first. IPAddr() is 0.0.0.0.
class IPAddr {
 public:
  IPAddr() = default;
  IPAddr(IPv4Addr a) : addr_(a) {}  // NOLINT(google-explicit-constructor): on purpose
  IPAddr(IPv6Addr a) : addr_(a) {}  // NOLINT(google-explicit-constructor)

  bool is_v6() const { return std::holds_alternative<IPv6Addr>(addr_); }
  int family() const;  // AF_INET or AF_INET6
  // The address as its own family; asking for the other one is a bug (crash).
  IPv4Addr v4() const;
  IPv6Addr v6() const;
  // 0.0.0.0 or ::.
  bool IsUnspecified() const;
  // fe80::/10, the kernel's own address on every IPv6 link.
  bool IsLinkLocal() const;
  std::string ToString() const;

  friend bool operator==(const IPAddr& a, const IPAddr& b) { return a.addr_ == b.addr_; }
  friend bool operator!=(const IPAddr& a, const IPAddr& b) { return a.addr_ != b.addr_; }
  friend bool operator<(const IPAddr& a, const IPAddr& b) { return a.addr_ < b.addr_; }
  template <typename H>
  friend H AbslHashValue(H h, const IPAddr& a) {
    return std::visit([&h, &a](const auto& v) { return H::combine(std::move(h), a.addr_.index(), v); },
                      a.addr_);
  }

 private:
  std::variant<IPv4Addr, IPv6Addr> addr_;
};

// An IPv4 or an IPv6 network (a route's destination); ordered IPv4 first.
// IPPrefix() is 0.0.0.0/0.
class IPPrefix {
 public:
  IPPrefix() = default;
  IPPrefix(const IPv4Net& n) : net_(n) {}  // NOLINT(google-explicit-constructor)
  IPPrefix(const IPv6Net& n) : net_(n) {}  // NOLINT(google-explicit-constructor)
  // INVALID_ARGUMENT for a prefix length out of range or host bits set.
  static absl::StatusOr<IPPrefix> Make(const IPAddr& network, int prefix_len);

  bool is_v6() const { return std::holds_alternative<IPv6Net>(net_); }
  int family() const;  // AF_INET or AF_INET6
  IPAddr network() const;
  int prefix_len() const;
  // The network as its own family; asking for the other one is a bug (crash).
  const IPv4Net& v4() const;
  const IPv6Net& v6() const;
  std::string ToString() const;

  friend bool operator==(const IPPrefix& a, const IPPrefix& b) { return a.net_ == b.net_; }
  friend bool operator!=(const IPPrefix& a, const IPPrefix& b) { return a.net_ != b.net_; }
  friend bool operator<(const IPPrefix& a, const IPPrefix& b) { return a.net_ < b.net_; }
  template <typename H>
  friend H AbslHashValue(H h, const IPPrefix& p) {
    return std::visit([&h, &p](const auto& v) { return H::combine(std::move(h), p.net_.index(), v); },
                      p.net_);
  }

 private:
  std::variant<IPv4Net, IPv6Net> net_;
};

// The agent holds three or four of these per peer (60,000 with 20,000 peers):
// IPv6Addr's 4-byte alignment keeps them at this size.
static_assert(sizeof(IPAddr) <= 20, "IPAddr grew");
static_assert(sizeof(IPPrefix) <= 24, "IPPrefix grew");

std::ostream& operator<<(std::ostream& os, const IPAddr& a);
std::ostream& operator<<(std::ostream& os, const IPPrefix& p);

}  // namespace weft::netlink
