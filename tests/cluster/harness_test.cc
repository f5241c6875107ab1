// The cluster harness itself: namespaces made and always removed, the controller
// started and restarted on its data dir, commands run inside namespaces, leftovers
// swept. Uses the real controller and weftctl; no agent (see vxlan_e2e_test).

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirent.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/cluster/harness.h"

namespace weft::testing {
namespace {

std::vector<std::string> NamespacesWithPrefix(const std::string& prefix) {
  std::vector<std::string> found;
  if (DIR* d = opendir("/run/netns")) {
    while (dirent* e = readdir(d)) {
      if (absl::StartsWith(e->d_name, prefix)) found.push_back(e->d_name);
    }
    closedir(d);
  }
  return found;
}

TEST(ClusterTest, ControllerOnlyClusterStartsRestartsAndCleansUp) {
  ClusterOptions o;
  o.name = "controller_only";
  o.hosts = 0;
  std::vector<std::string> names;
  {
    absl::StatusOr<std::unique_ptr<Cluster>> started = Cluster::Start(o);
    ASSERT_TRUE(started.ok()) << started.status();
    Cluster& c = **started;
    names = c.namespaces();
    ASSERT_EQ(names.size(), 2u) << "switch and controller";
    for (const std::string& n : names) {
      EXPECT_TRUE(absl::StartsWith(n, Cluster::RunPrefix())) << n;
      EXPECT_EQ(NamespacesWithPrefix(n).size(), 1u) << n;
    }

    // The controller sits on the underlay at 192.0.2.2, and only in its namespace.
    absl::StatusOr<std::string> addr = c.Sh(c.controller_ns(), "ip -4 -o addr show dev eth0");
    ASSERT_TRUE(addr.ok()) << addr.status();
    EXPECT_TRUE(absl::StrContains(*addr, "192.0.2.2/24")) << *addr;
    absl::StatusOr<int> ready = Cluster::HttpGetStatus(c.controller_ns(), Cluster::kControllerIp,
                                                       Cluster::kControllerMetricsPort, "/readyz");
    ASSERT_TRUE(ready.ok()) << ready.status();
    EXPECT_EQ(*ready, 200) << "config set, so the controller is ready";

    absl::StatusOr<ExecResult> config = c.Weftctl({"config", "get"});
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(config->exit_code, 0) << config->ToString();
    EXPECT_TRUE(absl::StrContains(config->out, "10.1.0.0/16")) << config->ToString();

    // Restart on the same data dir: the config is still there.
    ASSERT_TRUE(c.StopController().ok());
    EXPECT_FALSE(c.ControllerRunning());
    absl::StatusOr<ExecResult> down = c.Weftctl({"--timeout", "1s", "config", "get"});
    ASSERT_TRUE(down.ok()) << down.status();
    EXPECT_NE(down->exit_code, 0) << "controller stopped, yet weftctl succeeded";
    ASSERT_TRUE(c.StartController().ok());
    config = c.Weftctl({"config", "get"});
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_TRUE(absl::StrContains(config->out, "10.1.0.0/16")) << config->ToString();

    // A killed controller comes back too.
    ASSERT_TRUE(c.KillController().ok());
    ASSERT_TRUE(c.StartController().ok());
    EXPECT_TRUE(c.ControllerRunning());

    // A log file per process, in the outputs.
    struct stat st;
    EXPECT_EQ(stat(c.controller_log().c_str(), &st), 0) << c.controller_log();
    EXPECT_GT(st.st_size, 0);

    // A process started in a namespace dies with the cluster.
    absl::StatusOr<ExecResult> r = c.Exec(c.switch_ns(), {"true"});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->exit_code, 0);
  }
  for (const std::string& n : names) EXPECT_TRUE(NamespacesWithPrefix(n).empty()) << n << " left behind";
}

TEST(ClusterTest, ExecRunsInsideTheNamespaceAndTimesOut) {
  ClusterOptions o;
  o.name = "exec";
  o.hosts = 0;
  absl::StatusOr<std::unique_ptr<Cluster>> started = Cluster::Start(o);
  ASSERT_TRUE(started.ok()) << started.status();
  Cluster& c = **started;

  absl::StatusOr<ExecResult> links = c.Exec(c.switch_ns(), {"ip", "-o", "link", "show"});
  ASSERT_TRUE(links.ok()) << links.status();
  EXPECT_TRUE(absl::StrContains(links->out, "br0")) << links->out;
  EXPECT_TRUE(absl::StrContains(links->out, "ctl@")) << "the controller's port is on the switch";

  absl::StatusOr<ExecResult> both = c.Exec(c.switch_ns(), {"sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_EQ(both->exit_code, 3);
  EXPECT_EQ(both->out, "out\n");
  EXPECT_EQ(both->err, "err\n");

  const absl::Time start = absl::Now();
  absl::StatusOr<ExecResult> slow = c.Exec(c.switch_ns(), {"sleep", "30"}, absl::Milliseconds(300));
  EXPECT_EQ(slow.status().code(), absl::StatusCode::kDeadlineExceeded) << slow.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));

  EXPECT_FALSE(c.Exec("", {"true"}).ok()) << "Exec must never run in the machine's namespace";
  EXPECT_FALSE(c.Sh(c.switch_ns(), "exit 1").ok());
}

TEST(ClusterTest, WaitForReportsTheLastReason) {
  int calls = 0;
  absl::Status s = Cluster::WaitForOk(
      [&] {
        ++calls;
        return absl::UnavailableError("still booting");
      },
      absl::Milliseconds(300), absl::Milliseconds(50));
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(absl::StrContains(s.message(), "still booting")) << s;
  EXPECT_GT(calls, 2);
  EXPECT_TRUE(Cluster::WaitFor([&] { return ++calls > 5; }, absl::Seconds(5), "five calls").ok());
}

TEST(ClusterTest, SweepsRemoveTheirPrefixOnlyAndKillWhatRunsInside) {
  const std::string mine = Cluster::RunPrefix() + "990-a";
  const std::string other = Cluster::RunPrefix() + "991-b";
  ASSERT_EQ(system(("ip netns add " + mine).c_str()), 0);
  ASSERT_EQ(system(("ip netns add " + other).c_str()), 0);
  // Something running inside, as a crashed test would leave behind.
  const pid_t sleeper = fork();
  if (sleeper == 0) {
    execlp("ip", "ip", "netns", "exec", mine.c_str(), "sleep", "300", static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_GT(sleeper, 0);
  ASSERT_TRUE(Cluster::WaitFor(
                  [&] {
                    char buf[256];
                    const ssize_t n =
                        readlink(absl::StrCat("/proc/", sleeper, "/exe").c_str(), buf, sizeof(buf));
                    return n > 0 && absl::StrContains(std::string(buf, n), "sleep");
                  },
                  absl::Seconds(5), "sleep started")
                  .ok());

  EXPECT_EQ(Cluster::SweepNamespaces(Cluster::RunPrefix() + "990-"), 1);
  int status = 0;
  EXPECT_EQ(waitpid(sleeper, &status, 0), sleeper);
  EXPECT_TRUE(WIFSIGNALED(status)) << "the process inside was not killed";
  EXPECT_TRUE(NamespacesWithPrefix(mine).empty());
  EXPECT_EQ(NamespacesWithPrefix(other).size(), 1u) << "another prefix was swept";
  EXPECT_EQ(Cluster::SweepNamespaces(other), 1);
  EXPECT_EQ(Cluster::SweepNamespaces(""), 0) << "an empty prefix must sweep nothing";
}

}  // namespace
}  // namespace weft::testing
