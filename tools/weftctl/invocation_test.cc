#include "tools/weftctl/invocation.h"

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/reflection.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/weftctl/test_env.h"

namespace weft::weftctl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class InvocationTest : public ::testing::Test {
 protected:
  absl::FlagSaver flags_;  // every test starts from the defaults
  CleanWeftEnvironment env_;
};

TEST_F(InvocationTest, DefaultsWithoutFlagsOrEnvironment) {
  absl::StatusOr<Invocation> inv = ParseInvocation({"status"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->action, Invocation::Action::kRun);
  EXPECT_EQ(inv->command, Command::kStatus);
  EXPECT_THAT(inv->connection.controllers, ElementsAre("127.0.0.1:7800"));
  EXPECT_EQ(inv->connection.timeout, absl::Seconds(10));
  EXPECT_EQ(inv->connection.etcd, "127.0.0.1:2379");
  EXPECT_FALSE(inv->connection.tls.enabled());
  EXPECT_EQ(inv->options.output, OutputFormat::kTable);
}

TEST_F(InvocationTest, EnvironmentBeatsDefaultsAndFlagsBeatEnvironment) {
  env_.Set("WEFT_CONTROLLER", "10.0.0.1:7800, 10.0.0.2:7800");
  env_.Set("WEFT_TIMEOUT", "3s");
  env_.Set("WEFT_CA_FILE", "env-ca.crt");
  env_.Set("WEFT_CERT_FILE", "env.crt");
  env_.Set("WEFT_KEY_FILE", "env.key");
  env_.Set("WEFT_ETCD", "10.0.0.1:2379");
  absl::StatusOr<Invocation> inv = ParseInvocation({"leases", "list"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_THAT(inv->connection.controllers, ElementsAre("10.0.0.1:7800", "10.0.0.2:7800"));
  EXPECT_EQ(inv->connection.timeout, absl::Seconds(3));
  EXPECT_EQ(inv->connection.tls.ca_file, "env-ca.crt");
  EXPECT_EQ(inv->connection.tls.cert_file, "env.crt");
  EXPECT_EQ(inv->connection.tls.key_file, "env.key");
  EXPECT_EQ(inv->connection.etcd, "10.0.0.1:2379");

  // Flags anywhere on the line, --name value or --name=value, dashes or underscores.
  inv = ParseInvocation({"--controller", "c:1", "leases", "--ca_file=flag-ca.crt", "list", "--timeout=250ms",
                         "--key-file", "flag.key"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, Command::kLeasesList);
  EXPECT_THAT(inv->connection.controllers, ElementsAre("c:1"));
  EXPECT_EQ(inv->connection.timeout, absl::Milliseconds(250));
  EXPECT_EQ(inv->connection.tls.ca_file, "flag-ca.crt");
  EXPECT_EQ(inv->connection.tls.cert_file, "env.crt");  // not given: still the environment's
  EXPECT_EQ(inv->connection.tls.key_file, "flag.key");
}

TEST_F(InvocationTest, CommandOptionsAreNotReadFromTheEnvironment) {
  // An agent's settings in the environment must not become a reservation's.
  env_.Set("WEFT_PUBLIC_IP", "192.0.2.1");
  env_.Set("WEFT_NODE", "n1");
  env_.Set("WEFT_OUTPUT", "json");
  env_.Set("WEFT_FORCE", "true");
  absl::StatusOr<Invocation> inv = ParseInvocation({"reserve", "10.1.7.0/24"});
  ASSERT_FALSE(inv.ok());
  EXPECT_THAT(inv.status().message(), HasSubstr("reserve needs --public-ip"));
  inv = ParseInvocation({"config", "set", "net.json"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_FALSE(inv->options.force);
  EXPECT_EQ(inv->options.output, OutputFormat::kTable);
}

TEST_F(InvocationTest, OutputFormatAndItsShortAlias) {
  struct Case {
    std::vector<std::string> args;
    OutputFormat want;
  };
  for (const Case& c : std::vector<Case>{
           {{"leases", "list", "-o", "wide"}, OutputFormat::kWide},
           {{"leases", "list", "-o=json"}, OutputFormat::kJson},
           {{"-o", "yaml", "leases", "list"}, OutputFormat::kYaml},
           {{"leases", "list", "--output", "json"}, OutputFormat::kJson},
           {{"leases", "list", "--output=table"}, OutputFormat::kTable},
           {{"leases", "list", "-o", "json", "-o", "wide"}, OutputFormat::kWide},  // the last one wins
       }) {
    absl::FlagSaver each;  // cases do not see each other's flags
    absl::StatusOr<Invocation> inv = ParseInvocation(c.args);
    ASSERT_TRUE(inv.ok()) << inv.status();
    EXPECT_EQ(inv->options.output, c.want) << c.args.back();
  }
}

TEST_F(InvocationTest, SubnetsInCidrOrFlannelKeyForm) {
  EXPECT_EQ(SubnetArg("10.5.189.0/24"), "10.5.189.0/24");
  EXPECT_EQ(SubnetArg("10.5.189.0-24"), "10.5.189.0/24");
  EXPECT_EQ(SubnetArg("fd00:12::-56"), "fd00:12::/56");
  EXPECT_EQ(SubnetArg("banana"), "banana");
  EXPECT_EQ(SubnetArg("node-1234"), "node-1234");  // too many digits for a prefix length
  EXPECT_EQ(SubnetArg("10.5.189.0-"), "10.5.189.0-");
  EXPECT_EQ(SubnetArg("10.5.189.0-2x"), "10.5.189.0-2x");

  absl::StatusOr<Invocation> inv = ParseInvocation({"lease", "show", "10.5.189.0-24"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, Command::kLeaseShow);
  EXPECT_EQ(inv->operand, "10.5.189.0/24");

  inv = ParseInvocation({"reserve", "10.5.189.0-24", "--public-ip", "192.0.2.9", "--node=edge-1", "--ipv6-subnet",
                         "fd00:12:0:200::-64", "--public-ipv6", "fd77::200"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, Command::kReserve);
  EXPECT_EQ(inv->operand, "10.5.189.0/24");
  EXPECT_EQ(inv->options.public_ip, "192.0.2.9");
  EXPECT_EQ(inv->options.node, "edge-1");
  EXPECT_EQ(inv->options.ipv6_subnet, "fd00:12:0:200::/64");
  EXPECT_EQ(inv->options.public_ipv6, "fd77::200");

  // A file name is not a subnet, even when it looks like flannel's key.
  inv = ParseInvocation({"snapshot", "save", "backup-24", "--etcd", "10.0.0.1:2379"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, Command::kSnapshotSave);
  EXPECT_EQ(inv->operand, "backup-24");
  EXPECT_EQ(inv->connection.etcd, "10.0.0.1:2379");
}

TEST_F(InvocationTest, EveryCommandAndItsOperand) {
  struct Case {
    std::vector<std::string> args;
    Command command;
    std::string operand;
  };
  for (const Case& c : std::vector<Case>{
           {{"status"}, Command::kStatus, ""},
           {{"config", "get"}, Command::kConfigGet, ""},
           {{"config", "set", "-", "--force"}, Command::kConfigSet, "-"},
           {{"leases", "list"}, Command::kLeasesList, ""},
           {{"lease", "show", "10.1.7.0/24"}, Command::kLeaseShow, "10.1.7.0/24"},
           {{"reserve", "10.1.7.0/24", "--public-ipv6", "fd77::1"}, Command::kReserve, "10.1.7.0/24"},
           {{"unreserve", "10.1.7.0-24"}, Command::kUnreserve, "10.1.7.0/24"},
           {{"snapshot", "save", "b.db"}, Command::kSnapshotSave, "b.db"},
           {{"--", "snapshot", "save", "--odd-name"}, Command::kSnapshotSave, "--odd-name"},
       }) {
    absl::FlagSaver each;  // cases do not see each other's flags
    absl::StatusOr<Invocation> inv = ParseInvocation(c.args);
    ASSERT_TRUE(inv.ok()) << c.args[0] << ": " << inv.status();
    EXPECT_EQ(inv->command, c.command) << c.args[0];
    EXPECT_EQ(inv->operand, c.operand) << c.args[0];
  }
  absl::StatusOr<Invocation> inv = ParseInvocation({"config", "set", "-", "--force"});
  ASSERT_TRUE(inv.ok());
  EXPECT_TRUE(inv->options.force);
}

TEST_F(InvocationTest, HelpAndVersion) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--help"}, {"-h"}, {"help"}, {"leases", "list", "--help"}, {"--no-such-flag", "--help"}}) {
    absl::StatusOr<Invocation> inv = ParseInvocation(args);
    ASSERT_TRUE(inv.ok() && inv->action == Invocation::Action::kHelp) << args[0];
  }
  for (const auto& args : std::vector<std::vector<std::string>>{{"--version"}, {"version"}}) {
    absl::StatusOr<Invocation> inv = ParseInvocation(args);
    ASSERT_TRUE(inv.ok() && inv->action == Invocation::Action::kVersion) << args[0];
  }
}

TEST_F(InvocationTest, BadUsageSaysWhat) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {{}, "no command"},
           {{"bogus"}, "unknown command \"bogus\""},
           {{"config", "nope", "x"}, "unknown command \"config nope\""},
           {{"status", "extra"}, "status takes no argument"},
           {{"leases", "list", "10.1.0.0/16"}, "leases list takes no argument"},
           {{"lease", "show"}, "lease show needs SUBNET"},
           {{"lease", "show", "a", "b"}, "lease show needs SUBNET"},
           {{"config", "set"}, "config set needs FILE"},
           {{"unreserve"}, "unreserve needs SUBNET"},
           {{"snapshot", "save"}, "snapshot save needs FILE"},
           {{"reserve", "10.1.7.0/24", "--node", "n"}, "reserve needs --public-ip (or --public-ipv6)"},
           {{"--no-such-flag", "status"}, "unknown flag --no-such-flag"},
           {{"status", "-x"}, "unknown flag -x"},
           {{"--flagfile=/etc/passwd", "status"}, "unknown flag --flagfile"},  // Abseil's, not weftctl's
           {{"status", "-o", "xml"}, "-o is table, wide, json or yaml"},
           {{"status", "-o"}, "-o is table, wide, json or yaml"},
           {{"status", "--output="}, "-o is table, wide, json or yaml"},
           {{"status", "--force=yes"}, "--force takes no value"},
           {{"reserve", "10.1.7.0/24", "--public-ip"}, "--public-ip needs an address"},
           {{"status", "--controller"}, "--controller needs a value"},
           {{"--controller=", "status"}, "--controller needs an address"},
           {{"--controller", " , ", "status"}, "--controller needs an address"},
           {{"--timeout", "banana", "status"}, "bad value for --timeout"},
           {{"--timeout=0s", "status"}, "--timeout needs a positive duration like 10s"},
           {{"--timeout=-1s", "status"}, "--timeout needs a positive duration like 10s"},
           {{"--log-level=loud", "status"}, "bad value for --log-level"},
       }) {
    absl::FlagSaver each;  // cases do not see each other's flags
    absl::StatusOr<Invocation> inv = ParseInvocation(c.args);
    ASSERT_FALSE(inv.ok()) << (c.args.empty() ? "(none)" : c.args[0]);
    EXPECT_EQ(inv.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(inv.status().message(), HasSubstr(c.message));
  }
}

TEST_F(InvocationTest, BadEnvironmentValueNamesTheVariable) {
  env_.Set("WEFT_TIMEOUT", "soon");
  absl::StatusOr<Invocation> inv = ParseInvocation({"status"});
  ASSERT_FALSE(inv.ok());
  EXPECT_THAT(inv.status().message(), HasSubstr("WEFT_TIMEOUT"));
  // A flag given wins over the bad variable.
  inv = ParseInvocation({"--timeout", "2s", "status"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->connection.timeout, absl::Seconds(2));
}

TEST_F(InvocationTest, HelpListsCommandsFlagsAndExitStatus) {
  const std::string help = HelpText(Help(), "WEFT_");
  for (const char* want : {"Usage: weftctl [FLAGS] COMMAND", "leases list", "lease show SUBNET", "snapshot save FILE",
                           "-o, --output FORMAT", "--controller=STRING", "--timeout=DURATION", "--ca-file=STRING",
                           "--cert-file=STRING", "--key-file=STRING", "--etcd=STRING", "WEFT_<FLAG>",
                           "Exit status: 0 done; 1"}) {
    EXPECT_THAT(help, HasSubstr(want));
  }
  EXPECT_THAT(help, ::testing::Not(HasSubstr("Other flags")));  // every flag in a group
  EXPECT_THAT(UsageError("no command"), HasSubstr("weftctl: no command\n"));
}

}  // namespace
}  // namespace weft::weftctl
