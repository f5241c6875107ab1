#include "cni/cni_args.h"

#include <map>

#include "cni/cni_error.h"
#include "gtest/gtest.h"

namespace weft::cni {
namespace {

EnvLookup Env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::map<std::string, std::string> AddEnv() {
  return {{"CNI_COMMAND", "ADD"},
          {"CNI_CONTAINERID", "abc123"},
          {"CNI_NETNS", "/run/netns/c1"},
          {"CNI_IFNAME", "eth0"},
          {"CNI_PATH", "/opt/cni/bin::/usr/lib/cni"}};
}

void ExpectInvalidEnv(const absl::StatusOr<CniArgs>& args, absl::string_view mentions) {
  ASSERT_FALSE(args.ok());
  EXPECT_EQ(CniCodeOf(args.status()), kInvalidEnvironment);
  EXPECT_NE(args.status().message().find(mentions), absl::string_view::npos) << args.status();
}

TEST(CniArgsTest, ParsesAdd) {
  absl::StatusOr<CniArgs> args = ParseCniArgs(Env(AddEnv()));
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->command, Command::kAdd);
  EXPECT_EQ(args->container_id, "abc123");
  EXPECT_EQ(args->netns, "/run/netns/c1");
  EXPECT_EQ(args->ifname, "eth0");
  EXPECT_EQ(args->path, (std::vector<std::string>{"/opt/cni/bin", "/usr/lib/cni"}));
}

TEST(CniArgsTest, VersionNeedsNothingElse) {
  absl::StatusOr<CniArgs> args = ParseCniArgs(Env({{"CNI_COMMAND", "VERSION"}}));
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->command, Command::kVersion);
}

TEST(CniArgsTest, DelNeedsNoNetns) {
  auto vars = AddEnv();
  vars["CNI_COMMAND"] = "DEL";
  vars.erase("CNI_NETNS");
  EXPECT_TRUE(ParseCniArgs(Env(vars)).ok());
  vars["CNI_COMMAND"] = "CHECK";
  ExpectInvalidEnv(ParseCniArgs(Env(vars)), "CNI_NETNS");
}

TEST(CniArgsTest, MissingOrUnknownCommand) {
  ExpectInvalidEnv(ParseCniArgs(Env({})), "CNI_COMMAND");
  ExpectInvalidEnv(ParseCniArgs(Env({{"CNI_COMMAND", "add"}})), "unknown CNI_COMMAND: add");
  ExpectInvalidEnv(ParseCniArgs(Env({{"CNI_COMMAND", "GC"}})), "unknown CNI_COMMAND: GC");
}

TEST(CniArgsTest, NamesEveryMissingVariable) {
  ExpectInvalidEnv(ParseCniArgs(Env({{"CNI_COMMAND", "ADD"}})),
                   "CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_PATH");
  auto vars = AddEnv();
  vars["CNI_IFNAME"] = "";
  ExpectInvalidEnv(ParseCniArgs(Env(vars)), "CNI_IFNAME");
}

TEST(CniArgsTest, ContainerIdCannotEscapeTheDataDir) {
  for (const char* id : {"../etc/passwd", "a/b", ".hidden", "-x", "a b", "x\n"}) {
    auto vars = AddEnv();
    vars["CNI_CONTAINERID"] = id;
    ExpectInvalidEnv(ParseCniArgs(Env(vars)), "CNI_CONTAINERID");
  }
  auto vars = AddEnv();
  vars["CNI_CONTAINERID"] = "k8s_pod-1.a_b";
  EXPECT_TRUE(ParseCniArgs(Env(vars)).ok());
}

TEST(CniArgsTest, InterfaceNameAsLinuxAllows) {
  for (const char* name : {"0123456789abcdef", ".", "..", "eth/0", "eth:0", "eth 0"}) {
    auto vars = AddEnv();
    vars["CNI_IFNAME"] = name;
    ExpectInvalidEnv(ParseCniArgs(Env(vars)), "CNI_IFNAME");
  }
  auto vars = AddEnv();
  vars["CNI_IFNAME"] = "0123456789abcde";  // 15: the longest
  EXPECT_TRUE(ParseCniArgs(Env(vars)).ok());
}

}  // namespace
}  // namespace weft::cni
