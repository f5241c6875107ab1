#include "agent/external_iface.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace weft::agent {
namespace {

struct Candidate {
  std::string name;
  IPv4Addr addr;
  int prefix = 32;
  bool up = false;
  bool loopback = false;
};

std::vector<Candidate> ListIPv4() {
  std::vector<Candidate> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    Candidate c;
    c.name = i->ifa_name;
    c.addr = IPv4Addr::FromUint32(ntohl(reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr));
    if (i->ifa_netmask) {
      uint32_t m = ntohl(reinterpret_cast<sockaddr_in*>(i->ifa_netmask)->sin_addr.s_addr);
      c.prefix = __builtin_popcount(m);
    }
    c.up = (i->ifa_flags & IFF_UP) != 0;
    c.loopback = (i->ifa_flags & IFF_LOOPBACK) != 0;
    out.push_back(c);
  }
  freeifaddrs(list);
  return out;
}

std::string DefaultRouteInterface() {
  std::ifstream f("/proc/net/route");
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

int ReadMtu(const std::string& name) {
  std::ifstream f("/sys/class/net/" + name + "/mtu");
  int mtu = 0;
  f >> mtu;
  return mtu > 0 ? mtu : 1500;
}

absl::StatusOr<ExternalInterface> Make(const Candidate& c, const std::string& public_ip) {
  ExternalInterface e;
  e.name = c.name;
  e.index = static_cast<int>(if_nametoindex(c.name.c_str()));
  e.mtu = ReadMtu(c.name);
  e.address = c.addr;
  auto net = IPv4Net::MakeLoose(c.addr, c.prefix);
  if (net.ok()) e.network = *net;
  e.public_ip = c.addr;
  if (!public_ip.empty()) {
    auto ip = IPv4Addr::Parse(public_ip);
    if (!ip.ok()) return absl::InvalidArgumentError(absl::StrCat("--public-ip: ", ip.status().message()));
    e.public_ip = *ip;
  }
  return e;
}

}  // namespace

absl::StatusOr<ExternalInterface> FindExternalInterface(const InterfaceSelector& sel) {
  const std::vector<Candidate> all = ListIPv4();
  for (const std::string& want : sel.ifaces) {
    for (const Candidate& c : all) {
      if (c.name == want || c.addr.ToString() == want) return Make(c, sel.public_ip);
    }
  }
  for (const std::string& re : sel.iface_regexes) {
    std::regex r;
    try {
      r = std::regex(re);
    } catch (const std::regex_error&) {
      return absl::InvalidArgumentError(absl::StrCat("--iface-regex: \"", re, "\" is not a valid regex"));
    }
    for (const Candidate& c : all) {
      if (c.loopback) continue;
      if (std::regex_search(c.name, r) || std::regex_search(c.addr.ToString(), r)) return Make(c, sel.public_ip);
    }
  }
  if (!sel.ifaces.empty() || !sel.iface_regexes.empty()) {
    return absl::NotFoundError(absl::StrCat("no interface with an IPv4 address matches --iface ",
                                            absl::StrJoin(sel.ifaces, ","), " / --iface-regex ",
                                            absl::StrJoin(sel.iface_regexes, ",")));
  }
  const std::string def = DefaultRouteInterface();
  for (const Candidate& c : all) {
    if (!def.empty() && c.name == def) return Make(c, sel.public_ip);
  }
  for (const Candidate& c : all) {
    if (c.up && !c.loopback) return Make(c, sel.public_ip);
  }
  return absl::NotFoundError("no up, non-loopback interface with an IPv4 address (use --iface)");
}

}  // namespace weft::agent
