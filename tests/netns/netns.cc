#include "tests/netns/netns.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace weft::testing {
namespace {

constexpr char kRunDir[] = "/run/netns";
constexpr char kPrefix[] = "wft";

absl::Status ErrnoError(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// As iproute2 does, so that namespaces made here and by `ip netns add` behave the
// same: /run/netns is a shared mount point, and mounts under it propagate.
absl::Status PrepareRunDir() {
  if (mkdir(kRunDir, 0755) != 0 && errno != EEXIST) return ErrnoError("mkdir /run/netns");
  if (mount("", kRunDir, "none", MS_SHARED | MS_REC, nullptr) == 0) return absl::OkStatus();
  if (errno != EINVAL) return ErrnoError("make /run/netns shared");
  if (mount(kRunDir, kRunDir, "none", MS_BIND | MS_REC, nullptr) != 0) {
    return ErrnoError("bind /run/netns");
  }
  if (mount("", kRunDir, "none", MS_SHARED | MS_REC, nullptr) != 0) {
    return ErrnoError("make /run/netns shared");
  }
  return absl::OkStatus();
}

void RemoveNamespaceFile(const std::string& path) {
  umount2(path.c_str(), MNT_DETACH);
  unlink(path.c_str());
}

}  // namespace

void NetNs::RemoveStale() {
  DIR* dir = opendir(kRunDir);
  if (dir == nullptr) return;
  while (dirent* e = readdir(dir)) {
    absl::string_view name = e->d_name;
    if (!absl::ConsumePrefix(&name, kPrefix)) continue;
    const size_t dash = name.find('-');
    int pid;
    if (dash == absl::string_view::npos || !absl::SimpleAtoi(name.substr(0, dash), &pid)) continue;
    if (pid <= 0 || kill(pid, 0) == 0 || errno != ESRCH) continue;
    RemoveNamespaceFile(absl::StrCat(kRunDir, "/", e->d_name));
  }
  closedir(dir);
}

absl::StatusOr<std::unique_ptr<NetNs>> NetNs::Create(absl::string_view tag) {
  static std::atomic<int> counter{0};
  RemoveStale();
  if (absl::Status s = PrepareRunDir(); !s.ok()) return s;
  std::string name = absl::StrCat(kPrefix, getpid(), "-", counter++, "-", tag);
  std::string path = absl::StrCat(kRunDir, "/", name);
  const int fd = open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
  if (fd < 0) return ErrnoError(absl::StrCat("create ", path));
  close(fd);
  // From here on the destructor cleans up, whatever fails next.
  std::unique_ptr<NetNs> ns(new NetNs(std::move(name), std::move(path)));

  // unshare() moves only the calling thread, so a short-lived thread makes the
  // namespace and pins it with a bind mount before it exits.
  absl::Status made;
  std::thread t([&] {
    if (unshare(CLONE_NEWNET) != 0) {
      made = ErrnoError("unshare(CLONE_NEWNET)");
      return;
    }
    if (mount("/proc/thread-self/ns/net", ns->path_.c_str(), "none", MS_BIND, nullptr) != 0) {
      made = ErrnoError(absl::StrCat("bind-mount netns to ", ns->path_));
    }
  });
  t.join();
  if (!made.ok()) return made;
  absl::StatusOr<std::string> lo = ns->Sh("ip link set lo up");
  if (!lo.ok()) return lo.status();
  return ns;
}

NetNs::~NetNs() { RemoveNamespaceFile(path_); }

absl::Status NetNs::Enter() {
  const int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(absl::StrCat("open ", path_));
  const int r = setns(fd, CLONE_NEWNET);
  close(fd);
  if (r != 0) return ErrnoError(absl::StrCat("setns ", path_));
  return absl::OkStatus();
}

void NetNs::CheckEntered(const absl::Status& s) {
  if (s.ok()) return;
  // Running test code in the wrong namespace could change the host: never go on.
  std::fprintf(stderr, "NetNs: cannot enter namespace: %s\n", s.ToString().c_str());
  std::abort();
}

absl::StatusOr<CommandResult> NetNs::Exec(const std::vector<std::string>& argv,
                                          absl::string_view input) {
  return Run([&] { return RunCommand(argv, input); });
}

absl::StatusOr<std::string> NetNs::Sh(absl::string_view command) {
  // Bazel's strict test environment leaves the sbin directories (bridge,
  // iptables) out of PATH.
  absl::StatusOr<CommandResult> r =
      Exec({"sh", "-c", absl::StrCat("PATH=\"$PATH:/usr/sbin:/sbin\"; ", command)});
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    return absl::InternalError(absl::StrCat("in netns ", name_, ": `", command, "` exited ",
                                            r->exit_code, ": ", r->output));
  }
  return r->output;
}

absl::Status ConnectVeth(NetNs& a, absl::string_view a_if, absl::string_view a_cidr, NetNs& b,
                         absl::string_view b_if, absl::string_view b_cidr) {
  absl::StatusOr<std::string> r =
      a.Sh(absl::StrCat("ip link add ", a_if, " type veth peer name ", b_if, " netns ", b.name(),
                        " && ip addr add ", a_cidr, " dev ", a_if, " && ip link set ", a_if, " up"));
  if (!r.ok()) return r.status();
  r = b.Sh(absl::StrCat("ip addr add ", b_cidr, " dev ", b_if, " && ip link set ", b_if, " up"));
  return r.status();
}

}  // namespace weft::testing
