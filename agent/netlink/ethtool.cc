#include "agent/netlink/ethtool.h"

#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace weft::netlink {
namespace {

absl::Status Errno(int err, absl::string_view what, const std::string& dev) {
  const std::string msg = absl::StrCat(what, " ", dev, ": ", std::strerror(err));
  if (err == ENODEV) return absl::NotFoundError(msg);
  if (err == EPERM || err == EACCES) return absl::PermissionDeniedError(msg);
  if (err == EOPNOTSUPP) return absl::UnimplementedError(msg);
  return absl::InternalError(msg);
}

absl::Status Ethtool(int fd, const std::string& dev, ethtool_value* value, absl::string_view what) {
  if (dev.empty() || dev.size() >= IFNAMSIZ) return absl::InvalidArgumentError(absl::StrCat("bad device name ", dev));
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, dev.data(), dev.size());
  ifr.ifr_data = reinterpret_cast<char*>(value);
  if (ioctl(fd, SIOCETHTOOL, &ifr) != 0) return Errno(errno, what, dev);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<EthtoolLinkFeatures>> EthtoolLinkFeatures::Open() {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket for ethtool: ", std::strerror(errno)));
  return std::unique_ptr<EthtoolLinkFeatures>(new EthtoolLinkFeatures(fd));
}

EthtoolLinkFeatures::~EthtoolLinkFeatures() { close(fd_); }

absl::StatusOr<bool> EthtoolLinkFeatures::TxChecksum(const std::string& dev) {
  ethtool_value v{};
  v.cmd = ETHTOOL_GTXCSUM;
  if (absl::Status s = Ethtool(fd_, dev, &v, "ethtool get tx checksum of"); !s.ok()) return s;
  return v.data != 0;
}

absl::Status EthtoolLinkFeatures::SetTxChecksum(const std::string& dev, bool on) {
  ethtool_value v{};
  v.cmd = ETHTOOL_STXCSUM;
  v.data = on ? 1 : 0;
  return Ethtool(fd_, dev, &v, on ? "ethtool tx checksum on for" : "ethtool tx checksum off for");
}

std::optional<std::pair<int, int>> ParseKernelRelease(absl::string_view release) {
  std::vector<absl::string_view> parts = absl::StrSplit(release, absl::MaxSplits('.', 2));
  if (parts.size() < 2) return std::nullopt;
  // The minor number ends at the first non-digit ("7-rc1", "18-amd64").
  absl::string_view minor = parts[1];
  size_t digits = 0;
  while (digits < minor.size() && minor[digits] >= '0' && minor[digits] <= '9') ++digits;
  int major = 0, min = 0;
  if (digits == 0 || !absl::SimpleAtoi(parts[0], &major) || !absl::SimpleAtoi(minor.substr(0, digits), &min)) {
    return std::nullopt;
  }
  return std::make_pair(major, min);
}

std::string KernelRelease() {
  utsname u{};
  if (uname(&u) != 0) return "";
  return u.release;
}

}  // namespace weft::netlink
