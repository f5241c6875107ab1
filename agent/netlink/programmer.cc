#include "agent/netlink/programmer.h"

#include <ostream>

#include "absl/strings/str_cat.h"

namespace weft::netlink {
namespace {

std::string StateSuffix(uint16_t state) {
  return state == NUD_PERMANENT ? " permanent" : absl::StrCat(" state 0x", absl::Hex(state));
}

std::string NextHop(const IPAddr& gateway, int ifindex, bool onlink) {
  std::string s;
  if (!gateway.IsUnspecified()) absl::StrAppend(&s, " via ", gateway.ToString());
  absl::StrAppend(&s, " dev ", ifindex);
  if (onlink) absl::StrAppend(&s, " onlink");
  return s;
}

template <typename T>
absl::Status VisitList(absl::StatusOr<std::vector<T>> list, const KernelProgrammer::Restart& restart,
                       const KernelProgrammer::Visit<T>& visit) {
  if (!list.ok()) return list.status();
  restart();
  for (const T& o : *list) visit(o);
  return absl::OkStatus();
}

}  // namespace

absl::Status KernelProgrammer::VisitNeighbours(int index, const Restart& restart, const Visit<Neighbour>& visit) {
  return VisitList(ListNeighbours(index), restart, visit);
}
absl::Status KernelProgrammer::VisitFdb(int index, const Restart& restart, const Visit<FdbEntry>& visit) {
  return VisitList(ListFdb(index), restart, visit);
}
absl::Status KernelProgrammer::VisitRoutes(int index, uint8_t protocol, const Restart& restart,
                                           const Visit<Route>& visit) {
  return VisitList(ListRoutes(index, protocol), restart, visit);
}
absl::Status KernelProgrammer::VisitNexthops(uint8_t protocol, const Restart& restart, const Visit<Nexthop>& visit) {
  return VisitList(ListNexthops(protocol), restart, visit);
}

std::string ToString(const Neighbour& n) {
  return absl::StrCat("neighbour ", n.ip.ToString(), " lladdr ", n.mac.ToString(), " dev ",
                      n.ifindex, StateSuffix(n.state));
}

std::string ToString(const FdbEntry& f) {
  return absl::StrCat("fdb ", f.mac.ToString(), " dst ", f.dst.ToString(), " dev ", f.ifindex,
                      StateSuffix(f.state));
}

std::string ToString(const Route& r) {
  std::string s = absl::StrCat("route ", r.dst.ToString());
  if (r.nexthop_id != 0) absl::StrAppend(&s, " nhid ", r.nexthop_id);
  absl::StrAppend(&s, NextHop(r.gateway, r.ifindex, r.onlink), " proto ", r.protocol);
  return s;
}

std::string ToString(const Nexthop& n) {
  return absl::StrCat("nexthop id ", n.id, NextHop(n.gateway, n.ifindex, n.onlink), " proto ",
                      n.protocol);
}

std::string Change::ToString() const {
  const char* verb = op == Op::kReplace ? "replace " : "delete ";
  return std::visit([verb](const auto& o) { return absl::StrCat(verb, netlink::ToString(o)); },
                    object);
}

std::ostream& operator<<(std::ostream& os, const Neighbour& n) { return os << ToString(n); }
std::ostream& operator<<(std::ostream& os, const FdbEntry& f) { return os << ToString(f); }
std::ostream& operator<<(std::ostream& os, const Route& r) { return os << ToString(r); }
std::ostream& operator<<(std::ostream& os, const Nexthop& n) { return os << ToString(n); }

}  // namespace weft::netlink
