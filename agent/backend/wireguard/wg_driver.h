#pragma once
// The seam between the WireGuard backend and WireGuard itself. Two drivers:
// the kernel's (generic netlink family "wireguard", device made by rtnetlink)
// and the userspace one (wireguard-go, started by the agent, configured through
// its UAPI socket <uapi_dir>/<device>.sock). Both keep the device when the
// agent exits, so traffic flows across agent restarts; Teardown deletes it.
//
// Not thread-safe: one caller at a time. A driver belongs to the network
// namespace of the thread that made it (its sockets, the processes it starts).

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/backend/wireguard/wg_types.h"

namespace weft::agent::wg {

inline constexpr char kKernelDriver[] = "kernel";
inline constexpr char kUserspaceDriver[] = "userspace";

struct DriverOptions {
  std::string device = "flannel-wg";
  // "auto": the kernel's when it has WireGuard, else userspace; or one of
  // kKernelDriver / kUserspaceDriver to insist.
  std::string implementation = "auto";
  std::string wireguard_go = "wireguard-go";  // looked up on PATH
  std::string uapi_dir = "/var/run/wireguard";  // wireguard-go's fixed directory
  absl::Duration start_timeout = absl::Seconds(10);  // for wireguard-go's socket
};

class Driver {
 public:
  virtual ~Driver() = default;
  virtual const char* kind() const = 0;  // kKernelDriver or kUserspaceDriver
  const std::string& device() const { return device_; }

  // Makes the device exist (created when missing: a kernel link, or a
  // wireguard-go process; one that died is started again). It is not brought
  // up nor addressed here.
  virtual absl::Status EnsureDevice() = 0;
  // The device's configuration and counters. NOT_FOUND / UNAVAILABLE when it
  // is gone.
  virtual absl::StatusOr<Device> Get() = 0;
  virtual absl::Status Set(const DeviceChange& change) = 0;
  // Sets the link's MTU (rtnetlink; the same for both).
  absl::Status SetMtu(int ifindex, uint32_t mtu);
  // Deletes the device (and, for userspace, thereby ends wireguard-go). OK when
  // it does not exist.
  absl::Status DeleteDevice();

 protected:
  explicit Driver(std::string device) : device_(std::move(device)) {}
  std::string device_;
};

// The driver `options.implementation` asks for. "auto" probes the kernel (its
// generic netlink family, else whether it can make a wireguard link, which
// loads the module where there is one) and logs which it picked.
// FAILED_PRECONDITION when the asked one cannot be used (no kernel support; no
// wireguard-go binary).
absl::StatusOr<std::unique_ptr<Driver>> NewDriver(const DriverOptions& options);

// The two, without probing (tests).
absl::StatusOr<std::unique_ptr<Driver>> NewKernelDriver(const DriverOptions& options);
std::unique_ptr<Driver> NewUserspaceDriver(const DriverOptions& options);

}  // namespace weft::agent::wg
