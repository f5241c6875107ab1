// --ip-masq end to end: the agent installs its NAT chain in the host's
// namespace, cross-host pod traffic is not NATed, and the chain goes away when
// the agent runs without the flag.

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/cluster/harness.h"

namespace weft::testing {
namespace {

TEST(MasqE2ETest, ChainFollowsTheFlagAndPodsKeepTheirAddresses) {
  Cluster::InstallSignalHandlers();
  ClusterOptions o;
  o.name = "masq";
  o.hosts = 0;
  auto started = Cluster::Start(o);
  ASSERT_TRUE(started.ok()) << started.status();
  Cluster& c = **started;
  auto masq_host = c.AddHost(1, {"--ip-masq"});
  ASSERT_TRUE(masq_host.ok()) << masq_host.status();
  auto plain_host = c.AddHost(1);
  ASSERT_TRUE(plain_host.ok()) << plain_host.status();

  auto rules = c.Sh(c.host(*masq_host).ns, "iptables -w -t nat -S WEFT-POSTRTG");
  ASSERT_TRUE(rules.ok()) << rules.status();
  EXPECT_TRUE(absl::StrContains(*rules, "-s 10.1.0.0/16 -d 10.1.0.0/16")) << *rules;
  EXPECT_TRUE(absl::StrContains(*rules, "MASQUERADE")) << *rules;
  auto jump = c.Sh(c.host(*masq_host).ns, "iptables -w -t nat -S POSTROUTING");
  ASSERT_TRUE(jump.ok());
  EXPECT_TRUE(absl::StrContains(*jump, "-j WEFT-POSTRTG")) << *jump;
  auto env = c.ReadSubnetEnv(*masq_host);
  ASSERT_TRUE(env.ok());
  EXPECT_TRUE(env->ipmasq);
  // The other host has no chain at all.
  auto none = c.Exec(c.host(*plain_host).ns, {"iptables", "-w", "-t", "nat", "-S", "WEFT-POSTRTG"});
  ASSERT_TRUE(none.ok());
  EXPECT_NE(none->exit_code, 0) << none->out;

  // Pod to pod across hosts: the receiver sees the sender's own address (no NAT).
  const Container& from = c.host(*masq_host).containers[0];
  const Container& to = c.host(*plain_host).containers[0];
  ASSERT_TRUE(c.Ping(from, to.ip).ok());
  auto conntrack = c.Sh(c.host(*masq_host).ns, "iptables -w -t nat -L WEFT-POSTRTG -v -n -x");
  ASSERT_TRUE(conntrack.ok());
  // Only the RETURN rule for cluster-internal traffic may have matched: MASQUERADE counters stay 0.
  for (absl::string_view line : absl::StrSplit(*conntrack, '\n')) {
    if (absl::StrContains(line, "MASQUERADE")) {
      std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipWhitespace());
      ASSERT_FALSE(f.empty());
      EXPECT_EQ(f[0], "0") << "pod-to-pod traffic was masqueraded: " << line;
    }
  }

  // Turned off: the chain and the jump are removed.
  ASSERT_TRUE(c.StopAgent(*masq_host).ok());
  ASSERT_TRUE(c.StartAgent(*masq_host, {"--ip-masq=false"}).ok());
  auto gone = c.Exec(c.host(*masq_host).ns, {"iptables", "-w", "-t", "nat", "-S", "WEFT-POSTRTG"});
  ASSERT_TRUE(gone.ok());
  EXPECT_NE(gone->exit_code, 0) << "chain still there: " << gone->out;
  auto jump_after = c.Sh(c.host(*masq_host).ns, "iptables -w -t nat -S POSTROUTING");
  ASSERT_TRUE(jump_after.ok());
  EXPECT_FALSE(absl::StrContains(*jump_after, "WEFT-POSTRTG")) << *jump_after;
}

}  // namespace
}  // namespace weft::testing
