#pragma once
// An in-memory KernelProgrammer for unit tests: links, addresses, neighbours, FDB
// entries and routes kept in maps, with the kernel's replace/delete semantics
// (deleting what is absent is NOT_FOUND) and hooks to inject failures.

#include <functional>
#include <map>
#include <tuple>

#include "agent/netlink/programmer.h"

namespace weft::netlink {

class FakeProgrammer : public KernelProgrammer {
 public:
  absl::StatusOr<Link> GetLink(absl::string_view name) override;
  absl::StatusOr<Link> GetLinkByIndex(int index) override;
  absl::StatusOr<Link> EnsureVxlan(const VxlanLinkSpec& spec) override;
  absl::Status DeleteLink(int index) override;
  absl::Status SetLinkUp(int index) override;
  absl::Status EnsureAddress(const InterfaceAddress& address) override;
  absl::StatusOr<std::vector<InterfaceAddress>> ListAddresses(int index) override;
  absl::StatusOr<std::vector<Neighbour>> ListNeighbours(int index) override;
  absl::StatusOr<std::vector<FdbEntry>> ListFdb(int index) override;
  absl::StatusOr<std::vector<Route>> ListRoutes(int index, uint8_t protocol) override;
  absl::StatusOr<std::vector<Nexthop>> ListNexthops(uint8_t protocol) override;
  absl::StatusOr<std::vector<absl::Status>> Apply(const std::vector<Change>& changes) override;

  // Adds a plain link (e.g. the external interface); returns its index.
  int AddLink(const std::string& name, uint32_t mtu = 1500);

  // State as the kernel would hold it; tests may edit it to simulate drift.
  std::map<int, Link> links;
  std::vector<InterfaceAddress> addresses;
  std::map<std::pair<int, IPAddr>, Neighbour> neighbours;
  std::map<std::tuple<int, MacAddr, IPAddr>, FdbEntry> fdb;
  std::map<IPPrefix, Route> routes;  // main table: one route per prefix
  std::map<uint32_t, Nexthop> nexthops;
  // False: a kernel before 5.3, without nexthop objects.
  bool supports_nexthops = true;

  // When set, a change for which it returns non-OK fails with that status.
  std::function<absl::Status(const Change&)> fail_change;
  // When set, every call fails with it (the channel to the kernel is down).
  absl::Status fail_all = absl::OkStatus();

  // Counters for tests.
  int apply_calls = 0;
  std::vector<std::string> applied;  // Change::ToString() of every attempted change, in order
  int list_calls = 0;

 private:
  absl::Status ApplyOne(const Change& c);
  int next_index_ = 1;
};

}  // namespace weft::netlink
