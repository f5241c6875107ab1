#pragma once
// What the cluster harness must undo if the process is interrupted: the pids it
// started and the namespaces it made, kept in fixed arrays a signal handler can
// walk without allocating or locking. Thread-safe and async-signal-safe.

#include <sys/types.h>

#include <string>

namespace weft::testing {

// The directory of named network namespaces ("ip netns").
inline constexpr char kNetnsRunDir[] = "/run/netns";

// A started process (the leader of its process group) until it is reaped.
void TrackPid(pid_t pid);
void UntrackPid(pid_t pid);
// A namespace by name, until it is deleted.
void TrackNamespace(const std::string& ns);
void UntrackNamespace(const std::string& ns);

// SIGINT/SIGTERM handlers: the first signal makes InterruptReceived() true (waits and
// commands give up, RAII cleanup runs); a second kills every tracked process
// group, removes every tracked namespace and exits 130.
void InstallInterruptHandlers();
bool InterruptReceived();

}  // namespace weft::testing
