#include "tests/cluster/topology.h"

#include <dirent.h>
#include <sys/mount.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "tests/cluster/cleanup_registry.h"
#include "tests/cluster/processes.h"

namespace weft::testing {

absl::Status Ip(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<ExecResult> r = RunCaptured(argv, absl::Seconds(30));
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    return absl::InternalError(
        absl::StrCat("`", absl::StrJoin(argv, " "), "` exited ", r->exit_code, ": ", r->err));
  }
  return absl::OkStatus();
}

absl::Status SysctlInNamespace(absl::string_view ns, absl::string_view setting) {
  return ShInNamespace(ns, absl::StrCat("sysctl -qw ", setting)).status();
}

absl::Status AddBridge(const std::string& ns, const std::string& name) {
  if (absl::Status s = Ip({"-n", ns, "link", "add", name, "type", "bridge"}); !s.ok()) return s;
  return Ip({"-n", ns, "link", "set", name, "up"});
}

absl::Status ConnectToSwitch(const std::string& switch_ns, const std::string& ns, const std::string& port,
                             const std::string& ipv4, const std::string& ipv6) {
  for (const std::vector<std::string>& cmd : std::vector<std::vector<std::string>>{
           {"-n", switch_ns, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns},
           {"-n", switch_ns, "link", "set", port, "master", "br0", "up"},
           {"-n", ns, "link", "set", "eth0", "mtu", "1500", "up"},
           {"-n", ns, "addr", "add", ipv4 + "/24", "dev", "eth0"}}) {
    if (absl::Status s = Ip(cmd); !s.ok()) return s;
  }
  if (ipv6.empty()) return absl::OkStatus();
  return Ip({"-n", ns, "addr", "add", ipv6 + "/64", "dev", "eth0", "nodad"});
}

absl::Status EnsureDocker0(const std::string& ns, const SubnetEnv& env) {
  absl::StatusOr<ExecResult> exists = ExecInNamespace(ns, {"ip", "link", "show", "docker0"}, absl::Seconds(30));
  if (!exists.ok()) return exists.status();
  if (exists->exit_code == 0) return absl::OkStatus();
  if (absl::Status s = Ip({"-n", ns, "link", "add", "docker0", "type", "bridge"}); !s.ok()) return s;
  if (!env.subnet.empty()) {
    if (absl::Status s = Ip({"-n", ns, "addr", "add", env.subnet, "dev", "docker0"}); !s.ok()) return s;
  }
  if (!env.ipv6_subnet.empty()) {
    if (absl::Status s = Ip({"-n", ns, "addr", "add", env.ipv6_subnet, "dev", "docker0", "nodad"}); !s.ok()) {
      return s;
    }
  }
  return Ip({"-n", ns, "link", "set", "docker0", "mtu", absl::StrCat(env.mtu), "up"});
}

absl::Status WireContainer(const ContainerLink& link) {
  const std::string mtu = absl::StrCat(link.mtu);
  std::vector<std::vector<std::string>> cmds = {
      {"-n", link.host_ns, "link", "add", link.veth, "type", "veth", "peer", "name", "eth0", "netns",
       link.container_ns},
      {"-n", link.host_ns, "link", "set", link.veth, "mtu", mtu, "master", "docker0", "up"},
      {"-n", link.container_ns, "link", "set", "eth0", "mtu", mtu, "up"}};
  if (!link.ipv4_cidr.empty()) {
    cmds.push_back({"-n", link.container_ns, "addr", "add", link.ipv4_cidr, "dev", "eth0"});
    cmds.push_back({"-n", link.container_ns, "route", "add", "default", "via", link.ipv4_gateway});
  }
  if (!link.ipv6_cidr.empty()) {
    cmds.push_back({"-n", link.container_ns, "addr", "add", link.ipv6_cidr, "dev", "eth0", "nodad"});
    cmds.push_back({"-n", link.container_ns, "-6", "route", "add", "default", "via", link.ipv6_gateway});
  }
  for (const std::vector<std::string>& cmd : cmds) {
    if (absl::Status s = Ip(cmd); !s.ok()) return s;
  }
  return absl::OkStatus();
}

void DeleteNamespace(const std::string& ns) {
  KillProcessesIn(ns);
  absl::StatusOr<ExecResult> del = RunCaptured({"ip", "netns", "del", ns}, absl::Seconds(10));
  if (!del.ok() || del->exit_code != 0) {
    const std::string path = absl::StrCat(kNetnsRunDir, "/", ns);
    umount2(path.c_str(), MNT_DETACH);
    unlink(path.c_str());
  }
  UntrackNamespace(ns);
}

int SweepNamespaces(absl::string_view prefix) {
  if (prefix.empty()) return 0;
  std::vector<std::string> names;
  if (DIR* dir = opendir(kNetnsRunDir)) {
    while (dirent* e = readdir(dir)) {
      if (absl::StartsWith(e->d_name, prefix)) names.push_back(e->d_name);
    }
    closedir(dir);
  }
  for (const std::string& ns : names) DeleteNamespace(ns);
  return static_cast<int>(names.size());
}

}  // namespace weft::testing
