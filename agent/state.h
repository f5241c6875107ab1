#pragma once
// What the agent keeps across restarts in its state directory (--state-dir).
// Today: the VTEP MAC, so that peers need not relearn it after every restart
// (flannel picks a new random one at every start).

#include <string>

#include "absl/status/statusor.h"
#include "common/net.h"

namespace weft::agent {

inline constexpr char kVtepMacFile[] = "vtep-mac";

// The MAC in <state_dir>/vtep-mac, or, when the file does not exist, a new random
// locally administered unicast MAC written there atomically (the directory is
// created when missing). A file that holds anything but such a MAC is an error
// (FAILED_PRECONDITION) that names it: it was edited by hand, and silently
// replacing it would change this node's identity.
absl::StatusOr<MacAddr> LoadOrCreateVtepMac(const std::string& state_dir);

// A random MAC with the locally administered bit set and the multicast bit clear.
MacAddr RandomLocalUnicastMac();

}  // namespace weft::agent
