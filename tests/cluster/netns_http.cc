#include "tests/cluster/netns_http.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>

#include <httplib.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/net.h"
#include "tests/cluster/cleanup_registry.h"

namespace weft::testing {

absl::StatusOr<int> HttpGetStatusInNamespace(absl::string_view ns, absl::string_view ip, int port,
                                             absl::string_view path, absl::Duration timeout) {
  if (!IPv4Addr::Parse(ip).ok()) return absl::InvalidArgumentError(absl::StrCat("bad IPv4 address ", ip));
  const std::string ns_path = absl::StrCat(kNetnsRunDir, "/", ns);
  absl::StatusOr<int> result = absl::InternalError("not run");
  // setns() moves only the calling thread and a socket belongs to the namespace
  // of the thread that made it: the client runs on a short-lived thread that
  // entered the namespace (an httplib::Client makes its socket on the thread
  // that calls Get).
  std::thread t([&] {
    result = [&]() -> absl::StatusOr<int> {
      const int ns_fd = open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
      if (ns_fd < 0) return absl::InternalError(absl::StrCat("open ", ns_path, ": ", std::strerror(errno)));
      const int entered = setns(ns_fd, CLONE_NEWNET);
      const int setns_errno = errno;
      close(ns_fd);
      if (entered != 0) {
        return absl::InternalError(absl::StrCat("setns ", ns_path, ": ", std::strerror(setns_errno)));
      }
      httplib::Client client(std::string(ip), port);
      const auto limit = absl::ToChronoMicroseconds(timeout);
      client.set_connection_timeout(limit);
      client.set_read_timeout(limit);
      client.set_write_timeout(limit);
      httplib::Result r = client.Get(std::string(path).c_str());
      if (!r) {
        return absl::UnavailableError(absl::StrCat("GET http://", ip, ":", port, path, ": ",
                                                   httplib::to_string(r.error())));
      }
      return r->status;
    }();
  });
  t.join();
  return result;
}

}  // namespace weft::testing
