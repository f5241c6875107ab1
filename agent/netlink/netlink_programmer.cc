#include "agent/netlink/netlink_programmer.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/nexthop.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace weft::netlink {
namespace {

uint32_t Be32(IPv4Addr a) { return htonl(a.value()); }

std::optional<IPv4Addr> AttrIPv4(const Attrs& attrs, uint16_t type) {
  std::optional<uint32_t> be = attrs.U32(type);
  if (!be) return std::nullopt;
  return IPv4Addr::FromUint32(ntohl(*be));
}

// An address attribute of either family: 4 or 16 bytes, network order.
std::optional<IPAddr> AttrIP(const Attrs& attrs, uint16_t type) {
  if (std::optional<IPv4Addr> v4 = AttrIPv4(attrs, type)) return IPAddr(*v4);
  if (auto v6 = attrs.Bytes<16>(type)) return IPAddr(IPv6Addr::FromBytes(*v6));
  return std::nullopt;
}

void PutIP(nlmsghdr* nlh, uint16_t type, const IPAddr& a) {
  if (a.is_v6()) {
    const std::array<uint8_t, 16> bytes = a.v6().ToBytes();
    mnl_attr_put(nlh, type, bytes.size(), bytes.data());
  } else {
    mnl_attr_put_u32(nlh, type, Be32(a.v4()));
  }
}

std::optional<MacAddr> AttrMac(const Attrs& attrs, uint16_t type) {
  auto bytes = attrs.Bytes<6>(type);
  if (!bytes) return std::nullopt;
  return MacAddr(*bytes);
}

Link ParseLink(const nlmsghdr* nlh) {
  const auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
  const Attrs attrs = Attrs::Of(nlh, sizeof(*ifi));
  Link link;
  link.index = ifi->ifi_index;
  link.up = (ifi->ifi_flags & IFF_UP) != 0;
  link.name = attrs.Str(IFLA_IFNAME).value_or("");
  link.mtu = attrs.U32(IFLA_MTU).value_or(0);
  link.mac = AttrMac(attrs, IFLA_ADDRESS).value_or(MacAddr());
  if (const nlattr* linkinfo = attrs.Get(IFLA_LINKINFO)) {
    const Attrs info = Attrs::Nested(linkinfo);
    link.kind = info.Str(IFLA_INFO_KIND).value_or("");
    const nlattr* data = info.Get(IFLA_INFO_DATA);
    if (link.kind == "vxlan" && data != nullptr) {
      const Attrs vx = Attrs::Nested(data);
      VxlanInfo v;
      v.vni = vx.U32(IFLA_VXLAN_ID).value_or(0);
      v.local = AttrIP(vx, IFLA_VXLAN_LOCAL6).value_or(AttrIP(vx, IFLA_VXLAN_LOCAL).value_or(IPAddr()));
      v.underlay_index = static_cast<int>(vx.U32(IFLA_VXLAN_LINK).value_or(0));
      v.port = ntohs(vx.U16(IFLA_VXLAN_PORT).value_or(htons(kDefaultVxlanPort)));
      v.learning = vx.U8(IFLA_VXLAN_LEARNING).value_or(1) != 0;
      v.gbp = vx.Has(IFLA_VXLAN_GBP);
      link.vxlan = v;
    }
  }
  return link;
}

std::optional<InterfaceAddress> ParseAddress(const nlmsghdr* m, int index) {
  const auto* a = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(m));
  if ((a->ifa_family != AF_INET && a->ifa_family != AF_INET6) || static_cast<int>(a->ifa_index) != index) {
    return std::nullopt;
  }
  const Attrs attrs = Attrs::Of(m, sizeof(*a));
  std::optional<IPAddr> local = AttrIP(attrs, IFA_LOCAL);
  if (!local) local = AttrIP(attrs, IFA_ADDRESS);
  if (!local) return std::nullopt;
  return InterfaceAddress{index, *local, a->ifa_prefixlen};
}

std::optional<Neighbour> ParseNeighbour(const nlmsghdr* m, int index) {
  const auto* n = static_cast<const ndmsg*>(mnl_nlmsg_get_payload(m));
  if ((n->ndm_family != AF_INET && n->ndm_family != AF_INET6) || n->ndm_ifindex != index) return std::nullopt;
  const Attrs attrs = Attrs::Of(m, sizeof(*n));
  std::optional<IPAddr> ip = AttrIP(attrs, NDA_DST);
  if (!ip) return std::nullopt;
  // The kernel's own entries for multicast addresses (IPv6 puts ff02::... on
  // every link that is up); nobody programs them.
  if (n->ndm_state == NUD_NOARP) return std::nullopt;
  return Neighbour{index, *ip, AttrMac(attrs, NDA_LLADDR).value_or(MacAddr()), n->ndm_state};
}

std::optional<FdbEntry> ParseFdb(const nlmsghdr* m, int index) {
  const auto* n = static_cast<const ndmsg*>(mnl_nlmsg_get_payload(m));
  if (n->ndm_family != AF_BRIDGE || n->ndm_ifindex != index) return std::nullopt;
  const Attrs attrs = Attrs::Of(m, sizeof(*n));
  std::optional<MacAddr> mac = AttrMac(attrs, NDA_LLADDR);
  std::optional<IPAddr> dst = AttrIP(attrs, NDA_DST);
  if (!mac || !dst) return std::nullopt;  // not a VXLAN remote
  return FdbEntry{index, *mac, *dst, n->ndm_state};
}

// Main-table IPv4 and IPv6 unicast routes of `protocol` on link `index` (0: any).
std::optional<Route> ParseRoute(const nlmsghdr* m, int index, uint8_t protocol) {
  const auto* r = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(m));
  if ((r->rtm_family != AF_INET && r->rtm_family != AF_INET6) || r->rtm_protocol != protocol ||
      r->rtm_type != RTN_UNICAST) {
    return std::nullopt;
  }
  const Attrs attrs = Attrs::Of(m, sizeof(*r));
  if (attrs.U32(RTA_TABLE).value_or(r->rtm_table) != RT_TABLE_MAIN) return std::nullopt;
  const int oif = static_cast<int>(attrs.U32(RTA_OIF).value_or(0));
  if (index != 0 && oif != index) return std::nullopt;
  const IPAddr unspecified = r->rtm_family == AF_INET6 ? IPAddr(IPv6Addr()) : IPAddr(IPv4Addr());
  std::optional<IPAddr> dst_addr = AttrIP(attrs, RTA_DST);
  std::optional<IPAddr> gateway = AttrIP(attrs, RTA_GATEWAY);
  if ((dst_addr && dst_addr->family() != r->rtm_family) || (gateway && gateway->family() != r->rtm_family)) {
    return std::nullopt;  // addresses of the wrong size for the family: malformed
  }
  absl::StatusOr<IPPrefix> dst = IPPrefix::Make(dst_addr.value_or(unspecified), r->rtm_dst_len);
  if (!dst.ok()) return std::nullopt;
  // For a route through a nexthop object, gateway, oif and onlink are the
  // nexthop's, present while net.ipv4.nexthop_compat_mode is 1 (the default).
  return Route{*dst,
               gateway.value_or(unspecified),
               oif,
               (r->rtm_flags & RTNH_F_ONLINK) != 0,
               r->rtm_protocol,
               attrs.U32(RTA_NH_ID).value_or(0)};
}

// IPv4 single nexthops of `protocol` (0: any); groups, blackholes and FDB
// nexthops are not ours.
std::optional<Nexthop> ParseNexthop(const nlmsghdr* m, uint8_t protocol) {
  const auto* nh = static_cast<const nhmsg*>(mnl_nlmsg_get_payload(m));
  if (nh->nh_family != AF_INET || (protocol != 0 && nh->nh_protocol != protocol)) return std::nullopt;
  const Attrs attrs = Attrs::Of(m, sizeof(*nh));
  if (attrs.Has(NHA_GROUP) || attrs.Has(NHA_BLACKHOLE) || attrs.Has(NHA_FDB)) return std::nullopt;
  std::optional<uint32_t> id = attrs.U32(NHA_ID);
  if (!id) return std::nullopt;
  return Nexthop{*id, AttrIPv4(attrs, NHA_GATEWAY).value_or(IPv4Addr()),
                 static_cast<int>(attrs.U32(NHA_OIF).value_or(0)), (nh->nh_flags & RTNH_F_ONLINK) != 0,
                 nh->nh_protocol};
}

std::string LinkDescription(int index, absl::string_view name) {
  return name.empty() ? absl::StrCat("link ", index) : absl::StrCat("link ", name);
}

void PutNeighbour(RequestBatch& batch, const Neighbour& n, bool del) {
  nlmsghdr* nlh = batch.Begin(del ? RTM_DELNEIGH : RTM_NEWNEIGH,
                              del ? 0 : NLM_F_CREATE | NLM_F_REPLACE);
  auto* ndm = static_cast<ndmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ndmsg)));
  ndm->ndm_family = static_cast<uint8_t>(n.ip.family());
  ndm->ndm_ifindex = n.ifindex;
  ndm->ndm_state = del ? 0 : NUD_PERMANENT;
  PutIP(nlh, NDA_DST, n.ip);
  if (!del) mnl_attr_put(nlh, NDA_LLADDR, 6, n.mac.bytes().data());
}

void PutFdb(RequestBatch& batch, const FdbEntry& f, bool del) {
  nlmsghdr* nlh = batch.Begin(del ? RTM_DELNEIGH : RTM_NEWNEIGH,
                              del ? 0 : NLM_F_CREATE | NLM_F_REPLACE);
  auto* ndm = static_cast<ndmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ndmsg)));
  ndm->ndm_family = AF_BRIDGE;
  ndm->ndm_ifindex = f.ifindex;
  ndm->ndm_flags = NTF_SELF;
  ndm->ndm_state = del ? 0 : NUD_PERMANENT;
  mnl_attr_put(nlh, NDA_LLADDR, 6, f.mac.bytes().data());
  // With a dst, a delete removes only that remote of the entry.
  PutIP(nlh, NDA_DST, f.dst);
}

void PutRoute(RequestBatch& batch, const Route& r, bool del) {
  nlmsghdr* nlh = batch.Begin(del ? RTM_DELROUTE : RTM_NEWROUTE,
                              del ? 0 : NLM_F_CREATE | NLM_F_REPLACE);
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = static_cast<uint8_t>(r.dst.family());
  rtm->rtm_dst_len = static_cast<uint8_t>(r.dst.prefix_len());
  rtm->rtm_table = RT_TABLE_MAIN;
  rtm->rtm_protocol = r.protocol;
  rtm->rtm_type = RTN_UNICAST;
  if (del) {
    // Matches by dst, table and protocol only: whatever its next hop, our route goes.
    rtm->rtm_scope = RT_SCOPE_NOWHERE;
    PutIP(nlh, RTA_DST, r.dst.network());
    return;
  }
  rtm->rtm_scope = RT_SCOPE_UNIVERSE;
  PutIP(nlh, RTA_DST, r.dst.network());
  if (r.nexthop_id != 0) {
    mnl_attr_put_u32(nlh, RTA_NH_ID, r.nexthop_id);
    return;
  }
  if (r.onlink) rtm->rtm_flags |= RTNH_F_ONLINK;
  if (!r.gateway.IsUnspecified()) PutIP(nlh, RTA_GATEWAY, r.gateway);
  if (r.ifindex != 0) mnl_attr_put_u32(nlh, RTA_OIF, static_cast<uint32_t>(r.ifindex));
}

void PutNexthop(RequestBatch& batch, const Nexthop& n, bool del) {
  nlmsghdr* nlh = batch.Begin(del ? RTM_DELNEXTHOP : RTM_NEWNEXTHOP,
                              del ? 0 : NLM_F_CREATE | NLM_F_REPLACE);
  auto* nh = static_cast<nhmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nhmsg)));
  nh->nh_family = AF_INET;
  mnl_attr_put_u32(nlh, NHA_ID, n.id);
  if (del) return;
  nh->nh_protocol = n.protocol;
  if (n.onlink) nh->nh_flags |= RTNH_F_ONLINK;
  mnl_attr_put_u32(nlh, NHA_OIF, static_cast<uint32_t>(n.ifindex));
  if (n.gateway != IPv4Addr()) mnl_attr_put_u32(nlh, NHA_GATEWAY, Be32(n.gateway));
}

// One request built on the stack, for a dump or a get.
template <typename FamilyHeader>
struct SingleRequest {
  explicit SingleRequest(uint16_t type) {
    nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = type;
    header = static_cast<FamilyHeader*>(mnl_nlmsg_put_extra_header(nlh, sizeof(FamilyHeader)));
  }
  alignas(nlmsghdr) char buf[RequestBatch::kMaxRequestSize] = {};
  nlmsghdr* nlh;
  FamilyHeader* header;
};

// Dumps and hands `visit` what `parse` makes of each answer (nullopt: skip it).
template <typename T, typename Parse>
absl::Status DumpEach(NetlinkSocket& socket, nlmsghdr* request, const KernelProgrammer::Restart& restart,
                      const KernelProgrammer::Visit<T>& visit, Parse parse) {
  return socket.DumpWithRetry(request, restart, [&](const nlmsghdr* m) {
    if (std::optional<T> v = parse(m)) visit(*v);
  });
}

// What `visit_all(restart, visit)` visits, as a list.
template <typename T, typename VisitAll>
absl::StatusOr<std::vector<T>> Collect(VisitAll visit_all) {
  std::vector<T> out;
  RETURN_IF_ERROR(visit_all([&] { out.clear(); }, [&](const T& v) { out.push_back(v); }));
  return out;
}

// Dumps and keeps what `parse` makes of each answer (nullopt: skip it).
template <typename T, typename Parse>
absl::StatusOr<std::vector<T>> DumpAll(NetlinkSocket& socket, nlmsghdr* request, Parse parse) {
  return Collect<T>([&](const KernelProgrammer::Restart& restart, const KernelProgrammer::Visit<T>& visit) {
    return DumpEach<T>(socket, request, restart, visit, parse);
  });
}

}  // namespace

absl::StatusOr<std::unique_ptr<NetlinkProgrammer>> NetlinkProgrammer::Create(bool nexthop_objects) {
  ASSIGN_OR_RETURN(std::unique_ptr<NetlinkSocket> socket, NetlinkSocket::Open());
  return std::make_unique<NetlinkProgrammer>(std::move(socket), nexthop_objects);
}

absl::Status NetlinkProgrammer::SendAll(RequestBatch& batch, absl::string_view what) {
  ASSIGN_OR_RETURN(auto results, socket_->Send(batch));
  for (const auto& r : results) {
    if (r) return ErrnoToStatus(r->error, absl::StrCat(what, ": ", r->ToString()));
  }
  return absl::OkStatus();
}

absl::StatusOr<Link> NetlinkProgrammer::GetLinkBy(int index, absl::string_view name) {
  SingleRequest<ifinfomsg> req(RTM_GETLINK);
  req.header->ifi_family = AF_UNSPEC;
  req.header->ifi_index = index;
  if (!name.empty()) {
    if (name.size() >= IFNAMSIZ) {
      return absl::InvalidArgumentError(absl::StrCat("link name \"", name, "\" is longer than ",
                                                     IFNAMSIZ - 1, " characters"));
    }
    mnl_attr_put_strz(req.nlh, IFLA_IFNAME, std::string(name).c_str());
  }
  mnl_attr_put_u32(req.nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  std::optional<Link> link;
  absl::Status s = socket_->Get(req.nlh, [&](const nlmsghdr* m) { link = ParseLink(m); });
  if (!s.ok()) {
    return absl::Status(s.code(), absl::StrCat("get ", LinkDescription(index, name), ": ",
                                               s.message()));
  }
  if (!link) return absl::NotFoundError(absl::StrCat(LinkDescription(index, name), " not found"));
  return *link;
}

absl::StatusOr<Link> NetlinkProgrammer::GetLink(absl::string_view name) {
  return GetLinkBy(0, name);
}

absl::StatusOr<Link> NetlinkProgrammer::GetLinkByIndex(int index) { return GetLinkBy(index, ""); }

absl::StatusOr<std::vector<Link>> NetlinkProgrammer::ListLinks() {
  SingleRequest<ifinfomsg> req(RTM_GETLINK);
  req.header->ifi_family = AF_UNSPEC;
  mnl_attr_put_u32(req.nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  return DumpAll<Link>(*socket_, req.nlh, [](const nlmsghdr* m) { return std::optional(ParseLink(m)); });
}

absl::StatusOr<Link> NetlinkProgrammer::EnsureVxlan(const VxlanLinkSpec& spec) {
  absl::StatusOr<Link> existing = GetLink(spec.name);
  if (existing.ok()) {
    if (existing->vxlan && *existing->vxlan == spec.info) {
      const bool mtu_differs = spec.mtu != 0 && existing->mtu != spec.mtu;
      const bool mac_differs = !spec.mac.IsZero() && existing->mac != spec.mac;
      if (!mtu_differs && !mac_differs) return existing;
      batch_.Clear();
      nlmsghdr* nlh = batch_.Begin(RTM_NEWLINK, 0);
      auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
      ifi->ifi_index = existing->index;
      if (mtu_differs) mnl_attr_put_u32(nlh, IFLA_MTU, spec.mtu);
      if (mac_differs) mnl_attr_put(nlh, IFLA_ADDRESS, 6, spec.mac.bytes().data());
      RETURN_IF_ERROR(SendAll(batch_, absl::StrCat("set mtu/address of link ", spec.name)));
      return GetLinkByIndex(existing->index);
    }
    // Not VXLAN, or VNI/local/port/underlay/learning/GBP differ: only a new device
    // can have the asked attributes.
    RETURN_IF_ERROR(DeleteLink(existing->index));
  } else if (!absl::IsNotFound(existing.status())) {
    return existing.status();
  }

  batch_.Clear();
  nlmsghdr* nlh = batch_.Begin(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, spec.name.c_str());
  if (spec.mtu != 0) mnl_attr_put_u32(nlh, IFLA_MTU, spec.mtu);
  if (!spec.mac.IsZero()) mnl_attr_put(nlh, IFLA_ADDRESS, 6, spec.mac.bytes().data());
  nlattr* linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "vxlan");
  nlattr* data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
  mnl_attr_put_u32(nlh, IFLA_VXLAN_ID, spec.info.vni);
  if (!spec.info.local.IsUnspecified()) {
    PutIP(nlh, spec.info.local.is_v6() ? IFLA_VXLAN_LOCAL6 : IFLA_VXLAN_LOCAL, spec.info.local);
  }
  if (spec.info.underlay_index != 0) {
    mnl_attr_put_u32(nlh, IFLA_VXLAN_LINK, static_cast<uint32_t>(spec.info.underlay_index));
  }
  mnl_attr_put_u16(nlh, IFLA_VXLAN_PORT, htons(spec.info.port));
  mnl_attr_put_u8(nlh, IFLA_VXLAN_LEARNING, spec.info.learning ? 1 : 0);
  if (spec.info.gbp) mnl_attr_put(nlh, IFLA_VXLAN_GBP, 0, nullptr);
  mnl_attr_nest_end(nlh, data);
  mnl_attr_nest_end(nlh, linkinfo);
  RETURN_IF_ERROR(SendAll(batch_, absl::StrCat("create vxlan link ", spec.name, " vni ",
                                               spec.info.vni)));
  return GetLink(spec.name);
}

absl::Status NetlinkProgrammer::DeleteLink(int index) {
  batch_.Clear();
  nlmsghdr* nlh = batch_.Begin(RTM_DELLINK, 0);
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_index = index;
  return SendAll(batch_, absl::StrCat("delete link ", index));
}

absl::Status NetlinkProgrammer::SetLinkUp(int index) {
  batch_.Clear();
  nlmsghdr* nlh = batch_.Begin(RTM_NEWLINK, 0);
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_index = index;
  ifi->ifi_flags = IFF_UP;
  ifi->ifi_change = IFF_UP;
  return SendAll(batch_, absl::StrCat("set link ", index, " up"));
}

absl::StatusOr<std::vector<InterfaceAddress>> NetlinkProgrammer::ListAddresses(int index) {
  SingleRequest<ifaddrmsg> req(RTM_GETADDR);
  req.header->ifa_family = AF_UNSPEC;
  return DumpAll<InterfaceAddress>(*socket_, req.nlh, [index](const nlmsghdr* m) {
    return ParseAddress(m, index);
  });
}

absl::Status NetlinkProgrammer::EnsureAddress(const InterfaceAddress& address) {
  ASSIGN_OR_RETURN(std::vector<InterfaceAddress> current, ListAddresses(address.ifindex));
  batch_.Clear();
  bool present = false;
  const int family = address.address.family();
  for (const InterfaceAddress& a : current) {
    if (a == address) {
      present = true;
      continue;
    }
    // The other family's addresses are another Ensure's business; the
    // link-local address is the kernel's (IPv6 needs it on every link).
    if (a.address.family() != family || a.address.IsLinkLocal()) continue;
    nlmsghdr* nlh = batch_.Begin(RTM_DELADDR, 0);
    auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
    ifa->ifa_family = static_cast<uint8_t>(family);
    ifa->ifa_index = static_cast<uint32_t>(a.ifindex);
    ifa->ifa_prefixlen = static_cast<uint8_t>(a.prefix_len);
    PutIP(nlh, IFA_LOCAL, a.address);
  }
  if (!present) {
    nlmsghdr* nlh = batch_.Begin(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE);
    auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
    ifa->ifa_family = static_cast<uint8_t>(family);
    ifa->ifa_index = static_cast<uint32_t>(address.ifindex);
    ifa->ifa_prefixlen = static_cast<uint8_t>(address.prefix_len);
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    // Without DAD the address is usable at once instead of "tentative" for a
    // second or more; the lease already makes it unique in the network.
    if (address.address.is_v6()) ifa->ifa_flags = IFA_F_NODAD;
    PutIP(nlh, IFA_LOCAL, address.address);
    PutIP(nlh, IFA_ADDRESS, address.address);
  }
  if (batch_.empty()) return absl::OkStatus();
  return SendAll(batch_, absl::StrCat("set address ", address.address.ToString(), "/",
                                      address.prefix_len, " on link ", address.ifindex));
}

absl::Status NetlinkProgrammer::VisitNeighbours(int index, const Restart& restart, const Visit<Neighbour>& visit) {
  SingleRequest<ndmsg> req(RTM_GETNEIGH);
  req.header->ndm_family = AF_UNSPEC;  // ARP and NDP
  // The kernel filters by NDA_IFINDEX; ParseNeighbour checks again.
  mnl_attr_put_u32(req.nlh, NDA_IFINDEX, static_cast<uint32_t>(index));
  return DumpEach<Neighbour>(*socket_, req.nlh, restart, visit,
                             [index](const nlmsghdr* m) { return ParseNeighbour(m, index); });
}

absl::Status NetlinkProgrammer::VisitFdb(int index, const Restart& restart, const Visit<FdbEntry>& visit) {
  // As `bridge fdb show dev X`: an ifinfomsg header whose ifi_index makes the
  // kernel dump that device only.
  SingleRequest<ifinfomsg> req(RTM_GETNEIGH);
  req.header->ifi_family = AF_BRIDGE;
  req.header->ifi_index = index;
  return DumpEach<FdbEntry>(*socket_, req.nlh, restart, visit,
                            [index](const nlmsghdr* m) { return ParseFdb(m, index); });
}

absl::Status NetlinkProgrammer::VisitRoutes(int index, uint8_t protocol, const Restart& restart,
                                            const Visit<Route>& visit) {
  SingleRequest<rtmsg> req(RTM_GETROUTE);
  req.header->rtm_family = AF_UNSPEC;  // IPv4 and IPv6 (ParseRoute drops the other families)
  return DumpEach<Route>(*socket_, req.nlh, restart, visit,
                         [index, protocol](const nlmsghdr* m) { return ParseRoute(m, index, protocol); });
}

absl::Status NetlinkProgrammer::VisitNexthops(uint8_t protocol, const Restart& restart,
                                              const Visit<Nexthop>& visit) {
  if (!nexthop_objects_) return absl::UnimplementedError("nexthop objects turned off (--nexthop-objects=false)");
  SingleRequest<nhmsg> req(RTM_GETNEXTHOP);
  req.header->nh_family = AF_INET;
  return DumpEach<Nexthop>(*socket_, req.nlh, restart, visit,
                           [protocol](const nlmsghdr* m) { return ParseNexthop(m, protocol); });
}

absl::StatusOr<std::vector<Neighbour>> NetlinkProgrammer::ListNeighbours(int index) {
  return Collect<Neighbour>([&](const Restart& r, const Visit<Neighbour>& v) { return VisitNeighbours(index, r, v); });
}

absl::StatusOr<std::vector<FdbEntry>> NetlinkProgrammer::ListFdb(int index) {
  return Collect<FdbEntry>([&](const Restart& r, const Visit<FdbEntry>& v) { return VisitFdb(index, r, v); });
}

absl::StatusOr<std::vector<Route>> NetlinkProgrammer::ListRoutes(int index, uint8_t protocol) {
  return Collect<Route>([&](const Restart& r, const Visit<Route>& v) { return VisitRoutes(index, protocol, r, v); });
}

absl::StatusOr<std::vector<Nexthop>> NetlinkProgrammer::ListNexthops(uint8_t protocol) {
  return Collect<Nexthop>([&](const Restart& r, const Visit<Nexthop>& v) { return VisitNexthops(protocol, r, v); });
}

absl::StatusOr<std::vector<absl::Status>> NetlinkProgrammer::Apply(
    const std::vector<Change>& changes) {
  batch_.Clear();
  for (const Change& c : changes) {
    const bool del = c.op == Change::Op::kDelete;
    std::visit(
        [&](const auto& o) {
          using T = std::decay_t<decltype(o)>;
          if constexpr (std::is_same_v<T, Neighbour>) {
            PutNeighbour(batch_, o, del);
          } else if constexpr (std::is_same_v<T, FdbEntry>) {
            PutFdb(batch_, o, del);
          } else if constexpr (std::is_same_v<T, Route>) {
            PutRoute(batch_, o, del);
          } else {
            PutNexthop(batch_, o, del);
          }
        },
        c.object);
  }
  ASSIGN_OR_RETURN(auto results, socket_->Send(batch_));
  std::vector<absl::Status> out(changes.size());
  for (size_t i = 0; i < changes.size(); ++i) {
    if (results[i]) {
      out[i] = ErrnoToStatus(results[i]->error,
                             absl::StrCat(changes[i].ToString(), ": ", results[i]->ToString()));
    }
  }
  return out;
}

}  // namespace weft::netlink
