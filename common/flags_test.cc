#include "common/flags.h"

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "common/log.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

ABSL_FLAG(std::string, etcd_endpoints, "http://127.0.0.1:2379", "etcd endpoints");
ABSL_FLAG(int, healthz_port, 8471, "port");
ABSL_FLAG(bool, ip_masq, false, "masquerade");
ABSL_FLAG(weft::HostPort, listen, (weft::HostPort{"", 8080}), "listen address");
ABSL_FLAG(double, renew_margin, 1.5, "a double");
ABSL_FLAG(bool, nowhere, false, "a bool flag whose name starts with no");

namespace weft {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Holds an argv for ParseFlagsWithEnv and resets flags and variables around each test.
class FlagsTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const char* v : {"WEFT_ETCD_ENDPOINTS", "WEFT_HEALTHZ_PORT", "WEFT_IP_MASQ", "WEFT_LISTEN",
                          "WEFT_RENEW_MARGIN", "WEFT_LOG_LEVEL", "WEFT_FLAGFILE", "WEFT_HELP", "WEFT_NOWHERE"}) {
      unsetenv(v);
    }
    absl::SetFlag(&FLAGS_etcd_endpoints, "http://127.0.0.1:2379");
    absl::SetFlag(&FLAGS_healthz_port, 8471);
    absl::SetFlag(&FLAGS_ip_masq, false);
    absl::SetFlag(&FLAGS_listen, HostPort{"", 8080});
    absl::SetFlag(&FLAGS_renew_margin, 1.5);
    absl::SetFlag(&FLAGS_nowhere, false);
    absl::SetFlag(&FLAGS_log_level, log::Level::kInfo);
  }

  absl::StatusOr<std::vector<std::string>> Parse(std::vector<std::string> args) {
    args_ = std::move(args);
    args_.insert(args_.begin(), "weftd");
    argv_.clear();
    for (std::string& a : args_) argv_.push_back(a.data());
    absl::StatusOr<std::vector<char*>> positional = ParseFlagsWithEnv(argv_.size(), argv_.data(), "WEFT_");
    if (!positional.ok()) return positional.status();
    std::vector<std::string> out;
    for (char* p : *positional) {
      // Positional arguments point into our argv.
      EXPECT_TRUE(std::find(argv_.begin(), argv_.end(), p) != argv_.end()) << p;
      out.push_back(p);
    }
    return out;
  }

  std::vector<std::string> args_;
  std::vector<char*> argv_;
};

TEST_F(FlagsTest, AcceptsDashesAndUnderscores) {
  ASSERT_TRUE(Parse({"--etcd-endpoints=http://etcd-1:2379", "--healthz_port", "9000", "--ip-masq"}).ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_etcd_endpoints), "http://etcd-1:2379");  // dashes in values stay
  EXPECT_EQ(absl::GetFlag(FLAGS_healthz_port), 9000);
  EXPECT_TRUE(absl::GetFlag(FLAGS_ip_masq));

  ASSERT_TRUE(Parse({"--etcd_endpoints", "-x-", "--healthz-port", "-1", "-ip-masq=false"}).ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_etcd_endpoints), "-x-");  // a value that looks like a flag
  EXPECT_EQ(absl::GetFlag(FLAGS_healthz_port), -1);
  EXPECT_FALSE(absl::GetFlag(FLAGS_ip_masq));
}

TEST_F(FlagsTest, NegatesBoolFlags) {
  absl::SetFlag(&FLAGS_ip_masq, true);
  ASSERT_TRUE(Parse({"--no-ip-masq"}).ok());
  EXPECT_FALSE(absl::GetFlag(FLAGS_ip_masq));
  absl::SetFlag(&FLAGS_ip_masq, true);
  ASSERT_TRUE(Parse({"--noip_masq"}).ok());
  EXPECT_FALSE(absl::GetFlag(FLAGS_ip_masq));
  ASSERT_TRUE(Parse({"--nowhere"}).ok());  // a flag named no... is itself
  EXPECT_TRUE(absl::GetFlag(FLAGS_nowhere));
}

TEST_F(FlagsTest, ReturnsPositionalArguments) {
  absl::StatusOr<std::vector<std::string>> pos =
      Parse({"run", "--healthz-port=1", "-", "x", "--", "--not-a-flag", "-y"});
  ASSERT_TRUE(pos.ok()) << pos.status();
  EXPECT_THAT(*pos, ElementsAre("weftd", "run", "-", "x", "--not-a-flag", "-y"));
  EXPECT_EQ(absl::GetFlag(FLAGS_healthz_port), 1);
}

TEST_F(FlagsTest, TakesUnsetFlagsFromTheEnvironment) {
  setenv("WEFT_ETCD_ENDPOINTS", "http://10.0.0.1:2379,http://10.0.0.2:2379", 1);
  setenv("WEFT_HEALTHZ_PORT", "9100", 1);
  setenv("WEFT_IP_MASQ", "true", 1);
  setenv("WEFT_LISTEN", "[::1]:9090", 1);
  setenv("WEFT_RENEW_MARGIN", "0.25", 1);
  setenv("WEFT_LOG_LEVEL", "debug", 1);
  ASSERT_TRUE(Parse({}).ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_etcd_endpoints), "http://10.0.0.1:2379,http://10.0.0.2:2379");
  EXPECT_EQ(absl::GetFlag(FLAGS_healthz_port), 9100);
  EXPECT_TRUE(absl::GetFlag(FLAGS_ip_masq));
  EXPECT_EQ(absl::GetFlag(FLAGS_listen), (HostPort{"::1", 9090}));
  EXPECT_EQ(absl::GetFlag(FLAGS_renew_margin), 0.25);
  EXPECT_EQ(log::GetLevel(), log::Level::kDebug);  // --log-level's update hook ran
}

TEST_F(FlagsTest, CommandLineWinsOverEnvironment) {
  setenv("WEFT_HEALTHZ_PORT", "9100", 1);
  setenv("WEFT_ETCD_ENDPOINTS", "from-env", 1);
  setenv("WEFT_IP_MASQ", "true", 1);
  ASSERT_TRUE(Parse({"--healthz-port=1234", "--etcd_endpoints", "from-cli", "--no-ip-masq"}).ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_healthz_port), 1234);
  EXPECT_EQ(absl::GetFlag(FLAGS_etcd_endpoints), "from-cli");
  EXPECT_FALSE(absl::GetFlag(FLAGS_ip_masq));
}

TEST_F(FlagsTest, BadEnvironmentValueNamesTheVariable) {
  setenv("WEFT_HEALTHZ_PORT", "ninety", 1);
  absl::StatusOr<std::vector<std::string>> r = Parse({});
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("environment variable WEFT_HEALTHZ_PORT=\"ninety\" is not a valid value for --healthz_port"));

  setenv("WEFT_HEALTHZ_PORT", "1", 1);
  setenv("WEFT_LISTEN", "nope", 1);
  r = Parse({});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("WEFT_LISTEN"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("missing \":PORT\""));

  // A bad value is harmless when the command line overrides it.
  EXPECT_TRUE(Parse({"--listen=:1"}).ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_listen), (HostPort{"", 1}));
}

TEST_F(FlagsTest, IgnoresAbseilsOwnFlagsInTheEnvironment) {
  setenv("WEFT_FLAGFILE", "/nonexistent", 1);
  setenv("WEFT_HELP", "true", 1);
  EXPECT_TRUE(Parse({}).ok());
}

TEST_F(FlagsTest, UnknownFlagExits) {
  EXPECT_EXIT(Parse({"--bogus-flag=1"}).ok(), ::testing::ExitedWithCode(1), "bogus_flag");
}

TEST(HelpTextTest, GroupsDescribesAndHidesNothing) {
  ProgramHelp help;
  help.name = "weftd";
  help.summary = "a test program.";
  help.synopsis = "[FLAGS]";
  help.groups = {{"Network", {"listen", "ip_*"}}, {"etcd", {"etcd_endpoints"}}};
  help.footer = "Exit status: 0.";
  const std::string text = HelpText(help, "WEFT_");
  EXPECT_THAT(text, HasSubstr("weftd 0.1.0: a test program.\n\nUsage: weftd [FLAGS]\n"));
  // Groups in the order given, flags with dashes, their type, text and default.
  const size_t network = text.find("\nNetwork:\n"), etcd = text.find("\netcd:\n"), other = text.find("\nOther flags:\n");
  ASSERT_NE(network, std::string::npos) << text;
  ASSERT_NE(etcd, std::string::npos) << text;
  ASSERT_NE(other, std::string::npos) << text;
  EXPECT_LT(network, etcd);
  EXPECT_LT(etcd, other);
  EXPECT_THAT(text.substr(network, etcd - network), HasSubstr("  --ip-masq\n      masquerade (default false)\n"));
  EXPECT_THAT(text.substr(network, etcd - network), HasSubstr("  --listen=HOST:PORT\n"));
  EXPECT_THAT(text.substr(etcd, other - etcd),
              HasSubstr("  --etcd-endpoints=STRING\n      etcd endpoints (default http://127.0.0.1:2379)\n"));
  // A flag no group names is still shown; Abseil's own are not.
  EXPECT_THAT(text.substr(other), HasSubstr("  --healthz-port=INT\n"));
  EXPECT_THAT(text.substr(other), HasSubstr("  --renew-margin=NUMBER\n"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("--flagfile")));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("--fromenv")));
  EXPECT_THAT(text, HasSubstr("WEFT_<FLAG>"));
  EXPECT_THAT(text, HasSubstr("\nExit status: 0.\n"));
}

TEST(EnvVarForFlagTest, UpperCasesWithPrefix) {
  EXPECT_EQ(EnvVarForFlag("WEFT_", "etcd_endpoints"), "WEFT_ETCD_ENDPOINTS");
  EXPECT_EQ(EnvVarForFlag("FLANNELD_", "iface-regex"), "FLANNELD_IFACE_REGEX");
}

}  // namespace
}  // namespace weft
