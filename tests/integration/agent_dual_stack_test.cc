// The real weft-agent binary against the real controller with a dual-stack
// network config: its exit codes for the start-up checks for IPv6 with the real
// backend factory (agent/agent_test.cc covers the rest with fakes), and the
// alloc backend taking a dual-stack lease. Nothing here changes the host: the
// agents stop before they touch the kernel, or (alloc) program nothing.

#include <sys/wait.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/controller_fixture.h"

namespace weft::testing {
namespace {

using ::testing::HasSubstr;

class AgentDualStackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    controller_ = std::make_unique<Controller>(DataDir("controller"));
    ASSERT_NO_FATAL_FAILURE(controller_->Start());
    SetBackend("udp");
  }
  void SetBackend(const std::string& type) {
    weft::v1::SetNetworkConfigRequest req;
    req.set_config(absl::StrCat(R"({"Network":"10.7.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:7::/48",)",
                                R"("Backend":{"Type":")", type, R"("}})"));
    req.set_force(true);
    weft::v1::SetNetworkConfigResponse resp;
    grpc::Status s = controller_->network()->SetNetworkConfig(Ctx().get(), req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  void TearDown() override { controller_->Stop(); }

  // The agent's command line on lo, its files under DataDir(name).
  std::vector<std::string> AgentArgv(const std::string& name, const std::vector<std::string>& flags) {
    const std::string dir = DataDir(name.c_str());
    std::filesystem::create_directories(dir);
    log_ = dir + "/agent.log";
    std::vector<std::string> argv = {Runfile("agent/weft-agent"), "--controller", controller_->addr(), "--iface", "lo",
                                     "--node-name", name, "--subnet-file", dir + "/subnet.env", "--docker-opts-file",
                                     dir + "/docker_opts.env", "--state-dir", dir + "/state", "--metrics-listen", ""};
    argv.insert(argv.end(), flags.begin(), flags.end());
    return argv;
  }

  // Runs an agent on lo with `flags` until it exits (at most 30 s); its exit code.
  int RunAgent(const std::string& name, const std::vector<std::string>& flags) {
    Process p;
    EXPECT_TRUE(p.Start(AgentArgv(name, flags), log_));
    const bool exited = Eventually([&] {
      // WNOWAIT: Process::Wait reaps it.
      siginfo_t info{};
      return waitid(P_PID, p.pid(), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == p.pid();
    }, absl::Seconds(30));
    if (exited) {
      const int status = p.Wait();
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    ADD_FAILURE() << "agent still running; " << Log();
    return -1;  // Process's destructor kills it
  }
  std::string Log() const { return Controller::ReadFile(log_); }

  std::unique_ptr<Controller> controller_;
  std::string log_;
};

TEST_F(AgentDualStackTest, BackendWithoutIPv6DataPathIsNamed) {
  EXPECT_EQ(RunAgent("udp", {"--public-ipv6", "2001:db8::7"}), 1) << Log();
  EXPECT_THAT(Log(), HasSubstr("backend udp has no IPv6 data path; dual-stack networks need vxlan, host-gw, wireguard or alloc"));
  EXPECT_FALSE(std::filesystem::exists(DataDir("udp") + "/subnet.env")) << "no lease was taken";
}

// alloc programs nothing, so it serves dual-stack networks: the agent takes a
// dual-stack lease and writes flannel's IPv6 lines.
TEST_F(AgentDualStackTest, AllocTakesADualStackLease) {
  SetBackend("alloc");
  Process p;
  ASSERT_TRUE(p.Start(AgentArgv("alloc", {"--public-ipv6", "2001:db8::7"}), log_));
  const std::string env_file = DataDir("alloc") + "/subnet.env";
  std::string env;
  Eventually(
      [&] {
        env = Controller::ReadFile(env_file);
        return env.find("FLANNEL_IPV6_SUBNET=fd00:7:") != std::string::npos;
      },
      absl::Seconds(30));
  EXPECT_THAT(env, HasSubstr("FLANNEL_IPV6_NETWORK=fd00:7::/48")) << Log();
  EXPECT_THAT(env, HasSubstr("FLANNEL_IPV6_SUBNET=fd00:7:")) << Log();
  EXPECT_THAT(env, HasSubstr("FLANNEL_SUBNET=10.7.")) << Log();
  const std::vector<weft::v1::Lease> leases = ListAll(controller_->leases());
  ASSERT_EQ(leases.size(), 1u);
  EXPECT_EQ(leases[0].public_ipv6(), "2001:db8::7");
  EXPECT_EQ(leases[0].backend_type(), "alloc");
}

TEST_F(AgentDualStackTest, BadPublicIPv6IsABadFlag) {
  EXPECT_EQ(RunAgent("bad-flag", {"--public-ipv6", "fe80::1"}), 2) << Log();
  EXPECT_THAT(Log(), HasSubstr("--public-ipv6"));
  EXPECT_THAT(Log(), HasSubstr("link-local"));
}

}  // namespace
}  // namespace weft::testing
