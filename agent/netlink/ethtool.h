#pragma once
// A network device's transmit checksum offload, read and set through the
// kernel's ethtool ioctl (SIOCETHTOOL, ETHTOOL_GTXCSUM / ETHTOOL_STXCSUM): the
// same switch as `ethtool -K DEV tx on|off`, which for a VXLAN device is its
// only checksum feature, tx-checksum-ip-generic. The ioctl is the kernel's
// long-kept interface (ethtool's netlink family is newer, not a replacement
// that removes it) and needs no generic-netlink family lookup.
//
// Thread-safe. The socket is opened by Open(), in the calling thread's network
// namespace, and every call acts on devices of that namespace.

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace weft::netlink {

// The seam the VXLAN backend uses (tests may fake it).
class LinkFeatures {
 public:
  virtual ~LinkFeatures() = default;
  // Whether `dev` checksums what it sends in "hardware" (offloaded). NOT_FOUND
  // when there is no such device.
  virtual absl::StatusOr<bool> TxChecksum(const std::string& dev) = 0;
  virtual absl::Status SetTxChecksum(const std::string& dev, bool on) = 0;
};

class EthtoolLinkFeatures final : public LinkFeatures {
 public:
  static absl::StatusOr<std::unique_ptr<EthtoolLinkFeatures>> Open();
  ~EthtoolLinkFeatures() override;

  absl::StatusOr<bool> TxChecksum(const std::string& dev) override;
  absl::Status SetTxChecksum(const std::string& dev, bool on) override;

 private:
  explicit EthtoolLinkFeatures(int fd) : fd_(fd) {}
  const int fd_;
};

// The (major, minor) of a kernel release string, "6.1.0-18-amd64" -> (6, 1);
// nullopt when it does not start with two numbers.
std::optional<std::pair<int, int>> ParseKernelRelease(absl::string_view release);

// The running kernel's release (uname -r).
std::string KernelRelease();

}  // namespace weft::netlink
