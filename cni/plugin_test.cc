#include "cni/plugin.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <deque>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "cni/cni_error.h"
#include "cni/saved_configs.h"
#include "gtest/gtest.h"

namespace weft::cni {
namespace {

using json = nlohmann::json;

constexpr char kResult[] =
    R"({"cniVersion":"1.0.0","interfaces":[{"name":"eth0"}],"ips":[{"address":"10.1.19.2/24"}]})";

// Records every call; answers from a queue (default: success with kResult).
class FakeDelegate : public DelegateRunner {
 public:
  struct Call {
    std::string type;
    Command command;
    json config;
  };
  absl::StatusOr<std::string> Run(absl::string_view type, Command command,
                                  absl::string_view config) override {
    calls.push_back({std::string(type), command, json::parse(config)});
    if (answers.empty()) return std::string(kResult);
    absl::StatusOr<std::string> a = answers.front();
    answers.pop_front();
    return a;
  }
  std::vector<Call> calls;
  std::deque<absl::StatusOr<std::string>> answers;
};

class PluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int n = 0;
    root_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/plugin", n++);
    mkdir(root_.c_str(), 0755);
    subnet_file_ = root_ + "/subnet.env";
    data_dir_ = root_ + "/data";
    WriteLease("10.1.19.1/24");
  }

  void WriteLease(const std::string& subnet) {
    std::ofstream(subnet_file_) << "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=" << subnet
                                << "\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";
  }

  std::string Config(const std::string& version = "1.0.0", const std::string& extra = "") {
    return absl::StrCat(R"({"cniVersion":")", version, R"(","name":"weft","type":"weft-cni",)",
                        R"("subnetFile":")", subnet_file_, R"(","dataDir":")", data_dir_, R"(")", extra,
                        "}");
  }

  CniArgs Args(Command command) {
    CniArgs args;
    args.command = command;
    args.container_id = "c1";
    args.netns = "/run/netns/c1";
    args.ifname = "eth0";
    return args;
  }

  bool Saved() { return access(SavedConfigs(data_dir_).PathFor("c1").c_str(), F_OK) == 0; }

  std::string root_, subnet_file_, data_dir_;
  FakeDelegate delegate_;
};

TEST_F(PluginTest, AddSavesTheRenderedConfigAndReturnsTheResult) {
  absl::StatusOr<std::string> out = RunPluginCommand(Args(Command::kAdd), Config(), delegate_);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, kResult);
  ASSERT_EQ(delegate_.calls.size(), 1u);
  EXPECT_EQ(delegate_.calls[0].type, "bridge");
  EXPECT_EQ(delegate_.calls[0].command, Command::kAdd);
  EXPECT_EQ(delegate_.calls[0].config["ipam"]["ranges"][0][0]["subnet"], "10.1.19.0/24");
  absl::StatusOr<std::optional<std::string>> saved = SavedConfigs(data_dir_).Load("c1");
  ASSERT_TRUE(saved.ok() && *saved);
  EXPECT_EQ(json::parse(**saved), delegate_.calls[0].config);
  struct stat st;
  ASSERT_EQ(stat(data_dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(PluginTest, FailedAddUndoesTheDelegateAndLeavesNoFile) {
  delegate_.answers.push_back(CniError(7, "delegate bridge ADD failed: no such netns"));
  absl::StatusOr<std::string> out = RunPluginCommand(Args(Command::kAdd), Config(), delegate_);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(CniCodeOf(out.status()), 7);
  ASSERT_EQ(delegate_.calls.size(), 2u);
  EXPECT_EQ(delegate_.calls[1].command, Command::kDel);
  EXPECT_EQ(delegate_.calls[1].config, delegate_.calls[0].config);
  EXPECT_FALSE(Saved());
}

TEST_F(PluginTest, AddRefusesAResultThatIsNotJson) {
  delegate_.answers.push_back(std::string("half a resu"));
  absl::StatusOr<std::string> out = RunPluginCommand(Args(Command::kAdd), Config(), delegate_);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(CniCodeOf(out.status()), 999);
  EXPECT_EQ(delegate_.calls.size(), 2u);
  EXPECT_FALSE(Saved());
}

TEST_F(PluginTest, AddWithoutSubnetEnvIsTryAgainAndTouchesNothing) {
  unlink(subnet_file_.c_str());
  absl::StatusOr<std::string> out = RunPluginCommand(Args(Command::kAdd), Config(), delegate_);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(CniCodeOf(out.status()), kTryAgainLater);
  EXPECT_NE(out.status().message().find(subnet_file_), absl::string_view::npos);
  EXPECT_TRUE(delegate_.calls.empty());
  EXPECT_NE(access(data_dir_.c_str(), F_OK), 0);
}

TEST_F(PluginTest, DelUsesTheSavedConfigEvenWithoutSubnetEnvThenIsIdempotent) {
  ASSERT_TRUE(RunPluginCommand(Args(Command::kAdd), Config(), delegate_).ok());
  unlink(subnet_file_.c_str());
  absl::StatusOr<std::string> out = RunPluginCommand(Args(Command::kDel), Config(), delegate_);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "");
  ASSERT_EQ(delegate_.calls.size(), 2u);
  EXPECT_EQ(delegate_.calls[1].command, Command::kDel);
  EXPECT_EQ(delegate_.calls[1].config, delegate_.calls[0].config);
  EXPECT_FALSE(Saved());

  out = RunPluginCommand(Args(Command::kDel), Config(), delegate_);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(delegate_.calls.size(), 2u);  // nothing left to undo
}

TEST_F(PluginTest, FailedDelKeepsTheFileForTheRetry) {
  ASSERT_TRUE(RunPluginCommand(Args(Command::kAdd), Config(), delegate_).ok());
  delegate_.answers.push_back(CniError(11, "delegate bridge DEL failed: busy"));
  absl::StatusOr<std::string> out = RunPluginCommand(Args(Command::kDel), Config(), delegate_);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(CniCodeOf(out.status()), 11);
  EXPECT_TRUE(Saved());
  EXPECT_TRUE(RunPluginCommand(Args(Command::kDel), Config(), delegate_).ok());
  EXPECT_FALSE(Saved());
}

TEST_F(PluginTest, DelAndCheckPassPrevResult) {
  ASSERT_TRUE(RunPluginCommand(Args(Command::kAdd), Config(), delegate_).ok());
  const std::string with_prev = Config("1.0.0", absl::StrCat(R"(,"prevResult":)", kResult));
  ASSERT_TRUE(RunPluginCommand(Args(Command::kCheck), with_prev, delegate_).ok());
  ASSERT_TRUE(RunPluginCommand(Args(Command::kDel), with_prev, delegate_).ok());
  ASSERT_EQ(delegate_.calls.size(), 3u);
  for (int i : {1, 2}) {
    EXPECT_EQ(delegate_.calls[i].config["prevResult"], json::parse(kResult));
    json without = delegate_.calls[i].config;
    without.erase("prevResult");
    EXPECT_EQ(without, delegate_.calls[0].config);
  }
  EXPECT_EQ(delegate_.calls[1].command, Command::kCheck);
}

TEST_F(PluginTest, CheckRelaysTheDelegatesFailure) {
  ASSERT_TRUE(RunPluginCommand(Args(Command::kAdd), Config(), delegate_).ok());
  delegate_.answers.push_back(CniError(999, "delegate bridge CHECK failed: no eth0"));
  absl::StatusOr<std::string> out = RunPluginCommand(Args(Command::kCheck), Config(), delegate_);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("no eth0"), absl::string_view::npos);
  EXPECT_TRUE(Saved());  // CHECK changes nothing
}

TEST_F(PluginTest, CheckOfAnUnknownContainerIsCode3) {
  absl::StatusOr<std::string> out = RunPluginCommand(Args(Command::kCheck), Config(), delegate_);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(CniCodeOf(out.status()), kUnknownContainer);
  EXPECT_TRUE(delegate_.calls.empty());
}

TEST_F(PluginTest, CheckNeedsVersion040) {
  ASSERT_TRUE(RunPluginCommand(Args(Command::kAdd), Config("0.3.1"), delegate_).ok());
  absl::StatusOr<std::string> out = RunPluginCommand(Args(Command::kCheck), Config("0.3.1"), delegate_);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(CniCodeOf(out.status()), kIncompatibleVersion);
  EXPECT_EQ(delegate_.calls.size(), 1u);
}

TEST_F(PluginTest, CheckFailsWhenTheNodesSubnetChanged) {
  ASSERT_TRUE(RunPluginCommand(Args(Command::kAdd), Config(), delegate_).ok());
  WriteLease("10.1.20.1/24");
  absl::StatusOr<std::string> out = RunPluginCommand(Args(Command::kCheck), Config(), delegate_);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("no longer this node's"), absl::string_view::npos)
      << out.status();
  EXPECT_NE(CniDetailsOf(out.status()).find("10.1.20.0/24"), std::string::npos);
  EXPECT_EQ(delegate_.calls.size(), 1u);
}

TEST_F(PluginTest, CorruptSavedConfigIsAnErrorNotACrash) {
  ASSERT_TRUE(SavedConfigs(data_dir_).Save("c1", "{not json").ok());
  absl::StatusOr<std::string> out = RunPluginCommand(Args(Command::kDel), Config(), delegate_);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("corrupt"), absl::string_view::npos);
}

TEST_F(PluginTest, SavedConfigsOverwriteAtomically) {
  SavedConfigs saved(data_dir_ + "/deeper/still");
  ASSERT_TRUE(saved.Save("c1", "one").ok());
  ASSERT_TRUE(saved.Save("c1", "two").ok());
  EXPECT_EQ(**saved.Load("c1"), "two");
  EXPECT_EQ(*saved.Load("c2"), std::nullopt);
  EXPECT_TRUE(saved.Remove("c1").ok());
  EXPECT_TRUE(saved.Remove("c1").ok());
  EXPECT_EQ(*saved.Load("c1"), std::nullopt);
}

// PluginMain: what reaches stdout and the exit code, before any delegate runs.
std::string Main(std::map<std::string, std::string> env, absl::string_view input, int* code) {
  std::string out;
  *code = PluginMain(
      [&](const char* name) -> std::optional<std::string> {
        auto it = env.find(name);
        if (it == env.end()) return std::nullopt;
        return it->second;
      },
      input, &out);
  return out;
}

TEST(PluginMainTest, Version) {
  int code;
  const json j = json::parse(Main({{"CNI_COMMAND", "VERSION"}}, R"({"cniVersion":"0.4.0"})", &code));
  EXPECT_EQ(code, 0);
  EXPECT_EQ(j["cniVersion"], "1.0.0");
  EXPECT_EQ(j["supportedVersions"].size(), 4u);
}

TEST(PluginMainTest, ErrorsAreCniJsonInTheConfigsVersion) {
  int code;
  json j = json::parse(Main({{"CNI_COMMAND", "ADD"}}, R"({"cniVersion":"0.4.0","name":"n"})", &code));
  EXPECT_EQ(code, 1);
  EXPECT_EQ(j["cniVersion"], "0.4.0");
  EXPECT_EQ(j["code"], 4);

  j = json::parse(Main({{"CNI_COMMAND", "DEL"}, {"CNI_CONTAINERID", "c"}, {"CNI_IFNAME", "eth0"},
                        {"CNI_PATH", "/nonexistent"}},
                       "{oops", &code));
  EXPECT_EQ(code, 1);
  EXPECT_EQ(j["cniVersion"], "1.0.0");
  EXPECT_EQ(j["code"], 6);
  EXPECT_TRUE(j["msg"].is_string());
  EXPECT_TRUE(j["details"].is_string());
}

}  // namespace
}  // namespace weft::cni
