#include "cni/delegate.h"

#include <signal.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>

#include <nlohmann/json.hpp>

#include "cni/cni_error.h"
#include "gtest/gtest.h"

namespace weft::cni {
namespace {

using json = nlohmann::json;

class DelegateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);  // as main does
    dir_ = std::string(std::getenv("TEST_TMPDIR")) + "/plugins";
    mkdir(dir_.c_str(), 0755);
  }
  void Script(const std::string& name, const std::string& body, mode_t mode = 0755) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << "#!/bin/sh\n" << body;
    chmod(path.c_str(), mode);
  }
  std::string dir_;
};

TEST_F(DelegateTest, PassesConfigEnvironmentAndCommand) {
  Script("echoer", "printf '{\"cmd\":\"%s\",\"id\":\"%s\",\"stdin\":%s}' \"$CNI_COMMAND\" "
                   "\"$CNI_CONTAINERID\" \"$(cat)\"\n");
  setenv("CNI_COMMAND", "ADD", 1);
  setenv("CNI_CONTAINERID", "c1", 1);
  ExecDelegateRunner runner({"/nonexistent", dir_});
  absl::StatusOr<std::string> out = runner.Run("echoer", Command::kDel, R"({"a":1})");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(json::parse(*out), json::parse(R"({"cmd":"DEL","id":"c1","stdin":{"a":1}})"));
}

TEST_F(DelegateTest, RelaysTheDelegatesCniError) {
  Script("failer", "echo '{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"busy\",\"details\":\"d\"}'\n"
                   "exit 1\n");
  ExecDelegateRunner runner({dir_});
  absl::StatusOr<std::string> out = runner.Run("failer", Command::kAdd, "{}");
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(CniCodeOf(out.status()), 11);
  EXPECT_EQ(out.status().message(), "delegate failer ADD failed: busy");
  EXPECT_EQ(CniDetailsOf(out.status()), "d");
}

TEST_F(DelegateTest, NonCniFailureIs999WithWhatItPrinted) {
  Script("crasher", "echo garbage; echo oops >&2; exit 3\n");
  ExecDelegateRunner runner({dir_});
  absl::StatusOr<std::string> out = runner.Run("crasher", Command::kCheck, "{}");
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(CniCodeOf(out.status()), 999);
  EXPECT_NE(out.status().message().find("CHECK failed (exit code 3)"), absl::string_view::npos)
      << out.status();
  EXPECT_NE(CniDetailsOf(out.status()).find("garbage"), std::string::npos);
  EXPECT_NE(CniDetailsOf(out.status()).find("oops"), std::string::npos);
}

TEST_F(DelegateTest, KilledBySignal) {
  Script("killed", "kill -9 $$\n");
  ExecDelegateRunner runner({dir_});
  absl::StatusOr<std::string> out = runner.Run("killed", Command::kAdd, "{}");
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("killed by signal 9"), absl::string_view::npos) << out.status();
}

TEST_F(DelegateTest, FindPluginSkipsWhatCannotRun) {
  Script("notexec", "exit 0\n", 0644);
  mkdir((dir_ + "/adir").c_str(), 0755);
  absl::StatusOr<std::string> found = FindPlugin("notexec", {dir_});
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(CniCodeOf(found.status()), 999);
  EXPECT_NE(found.status().message().find("\"notexec\""), absl::string_view::npos);
  EXPECT_NE(CniDetailsOf(found.status()).find(dir_), std::string::npos);
  EXPECT_FALSE(FindPlugin("adir", {dir_}).ok());
  Script("runs", "exit 0\n");
  found = FindPlugin("runs", {"/nonexistent", dir_});
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(*found, dir_ + "/runs");
}

}  // namespace
}  // namespace weft::cni
