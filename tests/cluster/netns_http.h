#pragma once
// HTTP from inside a network namespace, for the cluster harness's health and
// readiness checks (the controller's and agents' metrics endpoints listen on
// addresses only their namespace has).

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace weft::testing {

// GET http://ip:port/path from inside namespace `ns` (a name under /run/netns);
// the status code. `timeout` bounds the connect, and each send and receive.
// Thread-safe; the calling thread's namespace is untouched.
absl::StatusOr<int> HttpGetStatusInNamespace(absl::string_view ns, absl::string_view ip, int port,
                                             absl::string_view path, absl::Duration timeout);

}  // namespace weft::testing
