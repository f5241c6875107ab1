#include "agent/netlink/fake_programmer.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace weft::netlink {
namespace {

// C++17 has no std::erase_if.
template <typename C, typename P>
void EraseIf(C& c, P pred) {
  if constexpr (std::is_same_v<C, std::vector<typename C::value_type>>) {
    c.erase(std::remove_if(c.begin(), c.end(), pred), c.end());
  } else {
    for (auto it = c.begin(); it != c.end();) it = pred(*it) ? c.erase(it) : std::next(it);
  }
}

}  // namespace

int FakeProgrammer::AddLink(const std::string& name, uint32_t mtu) {
  Link l;
  l.index = next_index_++;
  l.name = name;
  l.mtu = mtu;
  links[l.index] = l;
  return l.index;
}

absl::StatusOr<Link> FakeProgrammer::GetLink(absl::string_view name) {
  if (!fail_all.ok()) return fail_all;
  for (const auto& [index, l] : links) {
    if (l.name == name) return l;
  }
  return absl::NotFoundError(absl::StrCat("link ", name, " not found"));
}

absl::StatusOr<Link> FakeProgrammer::GetLinkByIndex(int index) {
  if (!fail_all.ok()) return fail_all;
  auto it = links.find(index);
  if (it == links.end()) return absl::NotFoundError(absl::StrCat("link ", index, " not found"));
  return it->second;
}

absl::StatusOr<Link> FakeProgrammer::EnsureVxlan(const VxlanLinkSpec& spec) {
  if (!fail_all.ok()) return fail_all;
  absl::StatusOr<Link> existing = GetLink(spec.name);
  if (existing.ok() && (!existing->vxlan || *existing->vxlan != spec.info)) {
    if (absl::Status s = DeleteLink(existing->index); !s.ok()) return s;
    existing = absl::NotFoundError("recreated");
  }
  Link l = existing.ok() ? *existing : Link{};
  if (!existing.ok()) {
    l.index = next_index_++;
    l.name = spec.name;
    l.kind = "vxlan";
    l.vxlan = spec.info;
  }
  if (spec.mtu != 0) l.mtu = spec.mtu;
  if (!spec.mac.IsZero()) l.mac = spec.mac;
  links[l.index] = l;
  return l;
}

absl::Status FakeProgrammer::DeleteLink(int index) {
  if (!fail_all.ok()) return fail_all;
  if (links.erase(index) == 0) return absl::NotFoundError(absl::StrCat("link ", index));
  // The kernel drops everything that hangs off a deleted link.
  EraseIf(addresses, [&](const InterfaceAddress& a) { return a.ifindex == index; });
  EraseIf(neighbours, [&](const auto& kv) { return kv.second.ifindex == index; });
  EraseIf(fdb, [&](const auto& kv) { return kv.second.ifindex == index; });
  EraseIf(routes, [&](const auto& kv) { return kv.second.ifindex == index; });
  EraseIf(nexthops, [&](const auto& kv) { return kv.second.ifindex == index; });
  return absl::OkStatus();
}

absl::Status FakeProgrammer::SetLinkUp(int index) {
  if (!fail_all.ok()) return fail_all;
  auto it = links.find(index);
  if (it == links.end()) return absl::NotFoundError(absl::StrCat("link ", index));
  it->second.up = true;
  return absl::OkStatus();
}

absl::Status FakeProgrammer::EnsureAddress(const InterfaceAddress& address) {
  if (!fail_all.ok()) return fail_all;
  if (!links.count(address.ifindex)) return absl::NotFoundError("no such link");
  // Only this address of its family; the IPv6 link-local one stays, as in the kernel.
  EraseIf(addresses, [&](const InterfaceAddress& a) {
    return a.ifindex == address.ifindex && a.address.family() == address.address.family() &&
           !a.address.IsLinkLocal();
  });
  addresses.push_back(address);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<InterfaceAddress>> FakeProgrammer::ListAddresses(int index) {
  if (!fail_all.ok()) return fail_all;
  std::vector<InterfaceAddress> out;
  for (const auto& a : addresses) {
    if (a.ifindex == index) out.push_back(a);
  }
  return out;
}

absl::StatusOr<std::vector<Neighbour>> FakeProgrammer::ListNeighbours(int index) {
  if (!fail_all.ok()) return fail_all;
  ++list_calls;
  std::vector<Neighbour> out;
  for (const auto& [key, n] : neighbours) {
    if (n.ifindex == index) out.push_back(n);
  }
  return out;
}

absl::StatusOr<std::vector<FdbEntry>> FakeProgrammer::ListFdb(int index) {
  if (!fail_all.ok()) return fail_all;
  ++list_calls;
  std::vector<FdbEntry> out;
  for (const auto& [key, f] : fdb) {
    if (f.ifindex == index) out.push_back(f);
  }
  return out;
}

absl::StatusOr<std::vector<Route>> FakeProgrammer::ListRoutes(int index, uint8_t protocol) {
  if (!fail_all.ok()) return fail_all;
  ++list_calls;
  std::vector<Route> out;
  for (const auto& [dst, r] : routes) {
    if (r.protocol == protocol && (index == 0 || r.ifindex == index)) out.push_back(r);
  }
  return out;
}

absl::StatusOr<std::vector<Nexthop>> FakeProgrammer::ListNexthops(uint8_t protocol) {
  if (!fail_all.ok()) return fail_all;
  if (!supports_nexthops) return absl::UnimplementedError("nexthop objects: Operation not supported");
  ++list_calls;
  std::vector<Nexthop> out;
  for (const auto& [id, n] : nexthops) {
    if (protocol == 0 || n.protocol == protocol) out.push_back(n);
  }
  return out;
}

absl::Status FakeProgrammer::ApplyOne(const Change& c) {
  if (fail_change) {
    if (absl::Status s = fail_change(c); !s.ok()) return s;
  }
  const bool del = c.op == Change::Op::kDelete;
  auto not_found = [&] { return absl::NotFoundError(absl::StrCat(c.ToString(), ": No such file or directory")); };
  if (const auto* n = std::get_if<Neighbour>(&c.object)) {
    if (!links.count(n->ifindex)) return absl::NotFoundError(absl::StrCat(c.ToString(), ": No such device"));
    const auto key = std::make_pair(n->ifindex, n->ip);
    if (del) return neighbours.erase(key) ? absl::OkStatus() : not_found();
    neighbours[key] = *n;
  } else if (const auto* f = std::get_if<FdbEntry>(&c.object)) {
    if (!links.count(f->ifindex)) return absl::NotFoundError(absl::StrCat(c.ToString(), ": No such device"));
    if (del) return fdb.erase(std::make_tuple(f->ifindex, f->mac, f->dst)) ? absl::OkStatus() : not_found();
    // Replace rewrites the remote of an existing MAC, as the VXLAN driver does.
    EraseIf(fdb, [&](const auto& kv) {
      return kv.second.ifindex == f->ifindex && kv.second.mac == f->mac;
    });
    fdb[std::make_tuple(f->ifindex, f->mac, f->dst)] = *f;
  } else if (const auto* r = std::get_if<Route>(&c.object)) {
    if (del) {
      auto it = routes.find(r->dst);
      if (it == routes.end() || it->second.protocol != r->protocol) return not_found();
      routes.erase(it);
      return absl::OkStatus();
    }
    Route stored = *r;
    if (r->nexthop_id != 0 && r->dst.is_v6()) {
      return absl::InvalidArgumentError(absl::StrCat(c.ToString(), ": IPv6 routes can not use an IPv4 nexthop"));
    }
    if (r->nexthop_id == 0 && r->gateway.family() != r->dst.family()) {
      return absl::InvalidArgumentError(absl::StrCat(c.ToString(), ": gateway of the other family"));
    }
    if (r->nexthop_id != 0) {
      auto nh = nexthops.find(r->nexthop_id);
      if (nh == nexthops.end()) return absl::InvalidArgumentError(absl::StrCat(c.ToString(), ": Nexthop id does not exist"));
      // As the kernel dumps it (nexthop_compat_mode): the nexthop's own hop.
      stored.gateway = nh->second.gateway;
      stored.ifindex = nh->second.ifindex;
      stored.onlink = nh->second.onlink;
    } else if (!links.count(r->ifindex)) {
      return absl::NotFoundError(absl::StrCat(c.ToString(), ": No such device"));
    }
    routes[r->dst] = stored;
  } else {
    const Nexthop& n = std::get<Nexthop>(c.object);
    if (!supports_nexthops) return absl::UnimplementedError(absl::StrCat(c.ToString(), ": Operation not supported"));
    if (del) {
      if (nexthops.erase(n.id) == 0) return not_found();
      EraseIf(routes, [&](const auto& kv) { return kv.second.nexthop_id == n.id; });
      return absl::OkStatus();
    }
    if (!links.count(n.ifindex)) return absl::NotFoundError(absl::StrCat(c.ToString(), ": No such device"));
    nexthops[n.id] = n;
    for (auto& [dst, route] : routes) {
      if (route.nexthop_id == n.id) {
        route.gateway = n.gateway;
        route.ifindex = n.ifindex;
        route.onlink = n.onlink;
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<absl::Status>> FakeProgrammer::Apply(const std::vector<Change>& changes) {
  if (!fail_all.ok()) return fail_all;
  ++apply_calls;
  std::vector<absl::Status> out;
  out.reserve(changes.size());
  for (const Change& c : changes) {
    applied.push_back(c.ToString());
    out.push_back(ApplyOne(c));
  }
  return out;
}

}  // namespace weft::netlink
