#pragma once
// weft-cni's commands (ADD, DEL, CHECK), independent of how the delegate runs.
//
//  - ADD reads subnet.env, renders the delegate config (delegate_config.h), saves
//    it for the container, runs the delegate's ADD and returns its result. When
//    the delegate fails, its DEL runs on the same config (so nothing it half made,
//    such as an IPAM reservation, stays behind) and the saved config is removed.
//  - DEL runs the delegate's DEL on the saved config, then removes the file. No
//    saved config means nothing to undo: success (DEL is idempotent). When the
//    delegate's DEL fails the file stays, so the runtime's retry can finish.
//  - CHECK runs the delegate's CHECK on the saved config (with the runtime's
//    prevResult), after checking that the container's subnet is still the node's.
//
// DEL and CHECK never need subnet.env to exist: they use what ADD used.

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cni/cni_args.h"
#include "cni/delegate.h"

namespace weft::cni {

// Runs `args.command` (not VERSION) with the network config `stdin_config`.
// Returns what to print on stdout: the result for ADD, nothing for DEL and CHECK.
// Errors carry their CNI code (cni_error.h).
absl::StatusOr<std::string> RunPluginCommand(const CniArgs& args, absl::string_view stdin_config,
                                             DelegateRunner& delegate);

// The whole plugin process: reads the environment through `env`, answers VERSION,
// runs the command. Returns the exit code and sets `*out` to what goes on stdout
// (a result, the version info, or a CNI error object).
int PluginMain(const EnvLookup& env, absl::string_view stdin_config, std::string* out);

}  // namespace weft::cni
