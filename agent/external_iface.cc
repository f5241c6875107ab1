#include "agent/external_iface.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/if_addr.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/quote.h"
#include "common/status_macros.h"

namespace weft::agent {
namespace {

using V4 = HostAddresses::IPv4;
using V6 = HostAddresses::IPv6;

// The calling thread's namespace's view (/proc/net is the process leader's).
std::string ProcNet(const char* file) {
  const std::string own = absl::StrCat("/proc/thread-self/net/", file);
  if (access(own.c_str(), R_OK) == 0) return own;
  return absl::StrCat("/proc/net/", file);  // kernels before 3.17
}

// The IPv4 addresses, and every interface's flags (IFF_*) by name.
std::vector<V4> ListIPv4(absl::flat_hash_map<std::string, unsigned>* iface_flags) {
  std::vector<V4> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    (*iface_flags)[i->ifa_name] = i->ifa_flags;
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    V4 c;
    c.iface = i->ifa_name;
    c.addr = IPv4Addr::FromUint32(ntohl(reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr));
    if (i->ifa_netmask) {
      uint32_t m = ntohl(reinterpret_cast<sockaddr_in*>(i->ifa_netmask)->sin_addr.s_addr);
      c.prefix_len = __builtin_popcount(m);
    }
    c.up = (i->ifa_flags & IFF_UP) != 0;
    c.loopback = (i->ifa_flags & IFF_LOOPBACK) != 0;
    out.push_back(c);
  }
  freeifaddrs(list);
  return out;
}

// The file's text; "" when it is not there (e.g. IPv6 disabled in the kernel).
std::string ReadProcNet(const char* file) {
  std::ifstream f(ProcNet(file));
  std::stringstream text;
  text << f.rdbuf();
  return text.str();
}

// getifaddrs has no IPv6 address flags (tentative, temporary, ...); this file has.
std::vector<V6> ListIPv6() { return ParseIfInet6(ReadProcNet("if_inet6")); }

std::string DefaultRouteInterface() {
  std::ifstream f(ProcNet("route"));
  std::string line;
  std::getline(f, line);  // header
  while (std::getline(f, line)) {
    std::istringstream s(line);
    std::string iface, dest;
    s >> iface >> dest;
    if (dest == "00000000") return iface;
  }
  return "";
}

// Asked through a socket, so it is the calling thread's namespace's interface.
int ReadMtu(const std::string& name) {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 1500;
  ifreq req{};
  std::strncpy(req.ifr_name, name.c_str(), IFNAMSIZ - 1);
  const int rc = ioctl(fd, SIOCGIFMTU, &req);
  close(fd);
  return rc == 0 && req.ifr_mtu > 0 ? req.ifr_mtu : 1500;
}

// An address peers can use as this host's: global, settled, still preferred.
bool Usable(const V6& a) {
  return a.scope == 0 && (a.flags & (IFA_F_TENTATIVE | IFA_F_DEPRECATED | IFA_F_DADFAILED)) == 0;
}

// Lower is better: a configured address outlives a SLAAC one, which outlives a
// privacy (temporary) one that the kernel rotates away within a day.
int Rank(const V6& a) {
  if (a.flags & IFA_F_PERMANENT) return 0;
  if (a.flags & IFA_F_TEMPORARY) return 2;
  return 1;
}

const V6* BestIPv6(const HostAddresses& host, const std::string& iface) {
  const V6* best = nullptr;
  for (const V6& a : host.ipv6) {
    if (a.iface != iface || !Usable(a)) continue;
    if (best == nullptr || Rank(a) < Rank(*best)) best = &a;
  }
  return best;
}

const V4* FirstIPv4(const HostAddresses& host, const std::string& iface) {
  for (const V4& c : host.ipv4) {
    if (c.iface == iface) return &c;
  }
  return nullptr;
}

absl::StatusOr<std::regex> CompileIfaceRegex(const std::string& re) {
  try {
    return std::regex(re);
  } catch (const std::regex_error&) {
    return absl::InvalidArgumentError(absl::StrCat("--iface-regex: \"", re, "\" is not a valid regex"));
  }
}

// `e`'s IPv6 side: `v6` (when there is one) as its address and on-link network,
// and --public-ipv6 over it.
absl::Status SetIPv6(const V6* v6, const InterfaceSelector& sel, ExternalInterface& e) {
  if (v6 != nullptr) {
    e.ipv6_address = v6->addr;
    auto net6 = IPv6Net::MakeLoose(v6->addr, v6->prefix_len);
    if (net6.ok()) e.ipv6_network = *net6;
    e.public_ipv6 = v6->addr;
  }
  if (!sel.public_ipv6.empty()) {
    ASSIGN_OR_RETURN(e.public_ipv6, ParsePublicIPv6(sel.public_ipv6));
  }
  return absl::OkStatus();
}

// For IPv6-only networks: the interface of `a`, with `a` as its address.
absl::StatusOr<ExternalInterface> MakeV6(const V6& a, const InterfaceSelector& sel) {
  ExternalInterface e;
  e.name = a.iface;
  e.ipv4 = false;
  RETURN_IF_ERROR(SetIPv6(&a, sel, e));
  return e;
}

// ChooseExternalInterface for IPv6-only networks: the same order of choices,
// among interfaces with a usable global IPv6 address.
absl::StatusOr<ExternalInterface> ChooseIPv6Only(const HostAddresses& host, const InterfaceSelector& sel) {
  auto best_on = [&](const std::string& iface) -> const V6* {
    const V6* b = BestIPv6(host, iface);
    return b != nullptr && b->up && !b->loopback ? b : nullptr;
  };
  for (const std::string& want : sel.ifaces) {
    if (const V6* a = BestIPv6(host, want)) return MakeV6(*a, sel);  // by name
    if (auto want6 = IPv6Addr::Parse(want); want6.ok()) {
      for (const V6& a : host.ipv6) {
        if (a.addr == *want6 && Usable(a)) return MakeV6(a, sel);
      }
    }
    for (const V4& c : host.ipv4) {  // an IPv4 address names its interface
      if (c.addr.ToString() != want) continue;
      if (const V6* a = BestIPv6(host, c.iface)) return MakeV6(*a, sel);
    }
  }
  for (const std::string& re : sel.iface_regexes) {
    ASSIGN_OR_RETURN(const std::regex r, CompileIfaceRegex(re));
    for (const V6& a : host.ipv6) {
      if (!Usable(a) || a.loopback) continue;
      if (std::regex_search(a.addr.ToString(), r)) return MakeV6(a, sel);
      if (std::regex_search(a.iface, r)) return MakeV6(*BestIPv6(host, a.iface), sel);
    }
  }
  if (!sel.ifaces.empty() || !sel.iface_regexes.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "no interface with a usable global IPv6 address (an IPv6-only network) matches --iface ",
        absl::StrJoin(sel.ifaces, ","), " / --iface-regex ", absl::StrJoin(sel.iface_regexes, ",")));
  }
  if (!host.default_route6_iface.empty()) {
    if (const V6* a = best_on(host.default_route6_iface)) return MakeV6(*a, sel);
  }
  for (const V6& a : host.ipv6) {
    if (const V6* b = Usable(a) ? best_on(a.iface) : nullptr) return MakeV6(*b, sel);
  }
  return absl::NotFoundError(
      "no up, non-loopback interface with a usable global IPv6 address (the network is IPv6-only; use --iface)");
}

// `v6`: the IPv6 address --iface or --iface-regex named, else the best one.
absl::StatusOr<ExternalInterface> Make(const HostAddresses& host, const V4& c, const V6* v6,
                                       const InterfaceSelector& sel) {
  ExternalInterface e;
  e.name = c.iface;
  e.address = c.addr;
  auto net = IPv4Net::MakeLoose(c.addr, c.prefix_len);
  if (net.ok()) e.network = *net;
  e.public_ip = c.addr;
  if (!sel.public_ip.empty()) {
    auto ip = IPv4Addr::Parse(sel.public_ip);
    if (!ip.ok()) return absl::InvalidArgumentError(absl::StrCat("--public-ip: ", ip.status().message()));
    e.public_ip = *ip;
  }
  RETURN_IF_ERROR(SetIPv6(v6 != nullptr ? v6 : BestIPv6(host, c.iface), sel, e));
  return e;
}

}  // namespace

std::vector<HostAddresses::IPv6> ParseIfInet6(absl::string_view text) {
  std::vector<V6> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.size() != 6 || f[0].size() != 32) continue;
    std::array<uint8_t, 16> bytes{};
    bool ok = true;
    for (int i = 0; i < 16 && ok; ++i) {
      uint32_t b = 0;
      ok = absl::SimpleHexAtoi(f[0].substr(2 * i, 2), &b);
      bytes[i] = static_cast<uint8_t>(b);
    }
    uint32_t index = 0, prefix = 0, scope = 0, flags = 0;
    if (!ok || !absl::SimpleHexAtoi(f[1], &index) || !absl::SimpleHexAtoi(f[2], &prefix) ||
        !absl::SimpleHexAtoi(f[3], &scope) || !absl::SimpleHexAtoi(f[4], &flags) || prefix > 128) {
      continue;
    }
    V6 a;
    a.iface = std::string(f[5]);
    a.addr = IPv6Addr::FromBytes(bytes);
    a.prefix_len = static_cast<int>(prefix);
    a.scope = static_cast<int>(scope);
    a.flags = flags;
    out.push_back(std::move(a));
  }
  return out;
}

std::string ParseIPv6DefaultRouteIface(absl::string_view text) {
  // "<dest 32 hex> <dest len> <src 32 hex> <src len> <next hop> <metric> <refcnt> <use> <flags> <iface>"
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.size() != 10 || f[0] != std::string(32, '0') || f[1] != "00" || f[9] == "lo") continue;
    return std::string(f[9]);
  }
  return "";
}

absl::StatusOr<IPv6Addr> ParsePublicIPv6(absl::string_view s) {
  absl::StatusOr<IPv6Addr> ip = IPv6Addr::Parse(s);
  if (!ip.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--public-ipv6: ", ip.status().message()));
  }
  const absl::uint128 v = ip->value();
  const char* what = nullptr;
  if (v == 0) {
    what = "the unspecified address";
  } else if (v == 1) {
    what = "the loopback address";
  } else if ((v >> 120) == 0xff) {
    what = "a multicast address";
  } else if ((v >> 118) == (0xfe80 >> 6)) {
    what = "a link-local address";
  } else if ((v >> 32) == 0xffff) {
    what = "an IPv4-mapped address (give IPv4 addresses to --public-ip)";
  }
  if (what != nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("--public-ipv6: ", QuoteInput(s), " is ", what, "; other hosts need a global one"));
  }
  return *ip;
}

absl::Status RequireIPv6(const ExternalInterface& ext) {
  if (ext.public_ipv6) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "the network config enables IPv6 (dual-stack) but interface ", ext.name,
      " has no usable global IPv6 address (link-local, tentative, deprecated and dadfailed ones do not "
      "count); give it one, choose another with --iface, or publish one with --public-ipv6"));
}

absl::StatusOr<ExternalInterface> ChooseExternalInterface(const HostAddresses& host,
                                                          const InterfaceSelector& sel) {
  if (sel.ipv6_only) return ChooseIPv6Only(host, sel);
  for (const std::string& want : sel.ifaces) {
    for (const V4& c : host.ipv4) {
      if (c.iface == want || c.addr.ToString() == want) return Make(host, c, nullptr, sel);
    }
    if (auto want6 = IPv6Addr::Parse(want); want6.ok()) {
      for (const V6& a : host.ipv6) {
        if (a.addr != *want6 || !Usable(a)) continue;
        if (const V4* c = FirstIPv4(host, a.iface)) return Make(host, *c, &a, sel);
      }
    }
  }
  for (const std::string& re : sel.iface_regexes) {
    ASSIGN_OR_RETURN(const std::regex r, CompileIfaceRegex(re));
    for (const V4& c : host.ipv4) {
      if (c.loopback) continue;
      if (std::regex_search(c.iface, r) || std::regex_search(c.addr.ToString(), r)) {
        return Make(host, c, nullptr, sel);
      }
    }
    for (const V6& a : host.ipv6) {
      if (!Usable(a) || !std::regex_search(a.addr.ToString(), r)) continue;
      const V4* c = FirstIPv4(host, a.iface);
      if (c != nullptr && !c->loopback) return Make(host, *c, &a, sel);
    }
  }
  if (!sel.ifaces.empty() || !sel.iface_regexes.empty()) {
    const bool v6_named =
        std::any_of(sel.ifaces.begin(), sel.ifaces.end(), [](const std::string& s) { return IPv6Addr::Parse(s).ok(); });
    return absl::NotFoundError(absl::StrCat(
        "no interface with an IPv4 address matches --iface ", absl::StrJoin(sel.ifaces, ","), " / --iface-regex ",
        absl::StrJoin(sel.iface_regexes, ","),
        v6_named ? " (an IPv6 address matches only when global and not tentative, deprecated or dadfailed)" : ""));
  }
  for (const V4& c : host.ipv4) {
    if (!host.default_route_iface.empty() && c.iface == host.default_route_iface) {
      return Make(host, c, nullptr, sel);
    }
  }
  for (const V4& c : host.ipv4) {
    if (c.up && !c.loopback) return Make(host, c, nullptr, sel);
  }
  return absl::NotFoundError("no up, non-loopback interface with an IPv4 address (use --iface)");
}

absl::StatusOr<std::string> SourceAddressFor(absl::string_view target) {
  sockaddr_storage dst{};
  socklen_t len = 0;
  const std::string t(target);
  if (auto* in = reinterpret_cast<sockaddr_in*>(&dst); inet_pton(AF_INET, t.c_str(), &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons(9);  // any non-zero port: connect() needs one; nothing is sent
    len = sizeof(sockaddr_in);
  } else if (auto* in6 = reinterpret_cast<sockaddr_in6*>(&dst); inet_pton(AF_INET6, t.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(9);
    len = sizeof(sockaddr_in6);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--iface-can-reach: ", QuoteInput(target), " is not an IPv4 or IPv6 address"));
  }
  const int fd = socket(dst.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("--iface-can-reach: socket: ", std::strerror(errno)));
  sockaddr_storage src{};
  socklen_t src_len = sizeof(src);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&dst), len) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&src), &src_len) == 0;
  const int err = errno;
  close(fd);
  if (!ok) {
    return absl::UnavailableError(
        absl::StrCat("--iface-can-reach: no route to ", t, ": ", std::strerror(err)));
  }
  char text[INET6_ADDRSTRLEN] = {};
  const void* addr = src.ss_family == AF_INET ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&src)->sin_addr)
                                              : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&src)->sin6_addr);
  if (inet_ntop(src.ss_family, addr, text, sizeof(text)) == nullptr) {
    return absl::InternalError("--iface-can-reach: cannot print the source address");
  }
  return std::string(text);
}

absl::StatusOr<ExternalInterface> FindExternalInterface(const InterfaceSelector& in) {
  InterfaceSelector sel = in;
  if (sel.ifaces.empty() && sel.iface_regexes.empty() && !sel.can_reach.empty()) {
    // The route's source address names the interface, as an --iface would.
    ASSIGN_OR_RETURN(std::string source, SourceAddressFor(sel.can_reach));
    sel.ifaces = {std::move(source)};
  }
  HostAddresses host;
  absl::flat_hash_map<std::string, unsigned> iface_flags;
  host.ipv4 = ListIPv4(&iface_flags);
  host.ipv6 = ListIPv6();
  for (V6& a : host.ipv6) {
    auto it = iface_flags.find(a.iface);
    a.up = it != iface_flags.end() && (it->second & IFF_UP) != 0;
    a.loopback = it != iface_flags.end() && (it->second & IFF_LOOPBACK) != 0;
  }
  host.default_route_iface = DefaultRouteInterface();
  host.default_route6_iface = ParseIPv6DefaultRouteIface(ReadProcNet("ipv6_route"));
  absl::StatusOr<ExternalInterface> e = ChooseExternalInterface(host, sel);
  if (e.ok()) {
    e->index = static_cast<int>(if_nametoindex(e->name.c_str()));
    e->mtu = ReadMtu(e->name);
  }
  return e;
}

}  // namespace weft::agent
