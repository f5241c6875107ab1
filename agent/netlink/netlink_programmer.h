#pragma once
// KernelProgrammer over rtnetlink (libmnl), in the network namespace where it
// was created (see NetlinkSocket).

#include <memory>

#include "agent/netlink/programmer.h"
#include "agent/netlink/socket.h"

namespace weft::netlink {

class NetlinkProgrammer : public KernelProgrammer {
 public:
  // Opens its socket in the calling thread's network namespace.
  // `nexthop_objects` false hides the kernel's nexthop objects (ListNexthops
  // answers UNIMPLEMENTED, as on kernels before 5.3), so backends program
  // flannel's classic layout of plain routes.
  static absl::StatusOr<std::unique_ptr<NetlinkProgrammer>> Create(bool nexthop_objects = true);
  explicit NetlinkProgrammer(std::unique_ptr<NetlinkSocket> socket, bool nexthop_objects = true)
      : socket_(std::move(socket)), nexthop_objects_(nexthop_objects) {}

  absl::StatusOr<Link> GetLink(absl::string_view name) override;
  absl::StatusOr<Link> GetLinkByIndex(int index) override;
  absl::StatusOr<std::vector<Link>> ListLinks();
  absl::StatusOr<Link> EnsureVxlan(const VxlanLinkSpec& spec) override;
  absl::Status DeleteLink(int index) override;
  absl::Status SetLinkUp(int index) override;
  absl::Status EnsureAddress(const InterfaceAddress& address) override;
  absl::StatusOr<std::vector<InterfaceAddress>> ListAddresses(int index) override;
  absl::StatusOr<std::vector<Neighbour>> ListNeighbours(int index) override;
  absl::StatusOr<std::vector<FdbEntry>> ListFdb(int index) override;
  absl::StatusOr<std::vector<Route>> ListRoutes(int index, uint8_t protocol) override;
  absl::StatusOr<std::vector<Nexthop>> ListNexthops(uint8_t protocol) override;
  // Parsed and handed on message by message, with no list in between.
  absl::Status VisitNeighbours(int index, const Restart& restart, const Visit<Neighbour>& visit) override;
  absl::Status VisitFdb(int index, const Restart& restart, const Visit<FdbEntry>& visit) override;
  absl::Status VisitRoutes(int index, uint8_t protocol, const Restart& restart, const Visit<Route>& visit) override;
  absl::Status VisitNexthops(uint8_t protocol, const Restart& restart, const Visit<Nexthop>& visit) override;
  absl::StatusOr<std::vector<absl::Status>> Apply(const std::vector<Change>& changes) override;

 private:
  absl::StatusOr<Link> GetLinkBy(int index, absl::string_view name);
  // Sends a batch and folds its results: OK, or the first error prefixed with `what`.
  absl::Status SendAll(RequestBatch& batch, absl::string_view what);

  std::unique_ptr<NetlinkSocket> socket_;
  const bool nexthop_objects_;
  RequestBatch batch_;  // reused: keeps its buffer between calls
};

}  // namespace weft::netlink
