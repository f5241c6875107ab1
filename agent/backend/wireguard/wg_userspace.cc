// The userspace driver: wireguard-go, configured over its UAPI socket.

#include <net/if.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/backend/wireguard/uapi.h"
#include "agent/backend/wireguard/wg_driver.h"
#include "agent/subprocess.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace weft::agent::wg {
namespace {

constexpr char kGetRequest[] = "get=1\n\n";

class UserspaceDriver : public Driver {
 public:
  explicit UserspaceDriver(const DriverOptions& o)
      : Driver(o.device), options_(o), socket_path_(absl::StrCat(o.uapi_dir, "/", o.device, ".sock")) {}

  const char* kind() const override { return kUserspaceDriver; }

  absl::Status EnsureDevice() override {
    absl::StatusOr<std::string> probe = UapiExchange(socket_path_, kGetRequest);
    if (probe.ok()) return absl::OkStatus();
    // No daemon answers. A link of that name without one (a kernel device left
    // by an earlier run, a stale TUN) would keep wireguard-go from starting.
    if (if_nametoindex(device_.c_str()) != 0) {
      WEFT_LOG(WARN, "WireGuard device exists but no wireguard-go answers on its socket; replacing it")
          .With("device", device_)
          .With("socket", socket_path_)
          .Err(probe.status());
      RETURN_IF_ERROR(DeleteDevice());
    }
    // wireguard-go makes the TUN device and the socket, then goes to the
    // background (stdio on /dev/null: LOG_LEVEL unset) and this first process
    // exits. In a session of its own, the daemon outlives the agent (and a
    // signal to the agent's process group), as a kernel device would.
    const std::vector<std::string> argv = {"setsid", "--wait", options_.wireguard_go, device_};
    absl::StatusOr<CommandResult> run = RunCommand(argv, "", options_.start_timeout);
    if (!run.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat(run.status().message(), " (install wireguard-go, or point --wireguard-go at it)"));
    }
    const CommandResult& r = *run;
    if (r.exit_code != 0) {
      return absl::FailedPreconditionError(absl::StrCat(CommandLine(argv), " exited with ", r.exit_code, ": ",
                                                        r.output.substr(0, 2000)));
    }
    const absl::Time deadline = absl::Now() + options_.start_timeout;
    absl::StatusOr<std::string> answer;
    for (absl::Duration wait = absl::Milliseconds(5);; wait = std::min(wait * 2, absl::Milliseconds(200))) {
      answer = UapiExchange(socket_path_, kGetRequest);
      if (answer.ok() || absl::Now() > deadline) break;
      absl::SleepFor(wait);
    }
    if (!answer.ok()) {
      return absl::UnavailableError(absl::StrCat("wireguard-go started but its socket ", socket_path_,
                                                 " does not answer: ", answer.status().message()));
    }
    WEFT_LOG(INFO, "wireguard-go started").With("device", device_).With("socket", socket_path_);
    return absl::OkStatus();
  }

  absl::StatusOr<Device> Get() override {
    ASSIGN_OR_RETURN(std::string answer, UapiExchange(socket_path_, kGetRequest));
    return DecodeGet(answer);
  }

  absl::Status Set(const DeviceChange& change) override {
    if (change.empty()) return absl::OkStatus();
    ASSIGN_OR_RETURN(std::string answer, UapiExchange(socket_path_, EncodeSet(change)));
    return DecodeSetAnswer(answer);
  }

 private:
  const DriverOptions options_;
  const std::string socket_path_;
};

}  // namespace

std::unique_ptr<Driver> NewUserspaceDriver(const DriverOptions& options) {
  return std::make_unique<UserspaceDriver>(options);
}

}  // namespace weft::agent::wg
