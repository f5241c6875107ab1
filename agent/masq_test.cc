// Masquerade against real iptables in a namespace: a "pod" behind a "host" reaches
// an "outside" machine only through the NAT, and the rules are exactly flannel's.

#include "agent/masq.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "agent/netlink/test_literals.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/netns/netns.h"

namespace weft::agent {
namespace {

using test_literals::Net;
using ::testing::ElementsAreArray;
using weft::testing::NetNs;

class MasqTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto host = NetNs::Create("mqh");
    ASSERT_TRUE(host.ok()) << host.status();
    host_ = std::move(*host);
  }

  std::string HostSh(absl::string_view cmd) {
    auto out = host_->Sh(cmd);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *out : "";
  }
  absl::StatusOr<bool> Ensure(const char* network, const char* subnet) {
    return host_->Run([&] { return masq_.Ensure(Net(network), Net(subnet)); });
  }
  absl::Status Remove() {
    return host_->Run([&] { return masq_.Remove(); });
  }
  std::vector<std::string> Chain() {
    auto out = host_->Sh("iptables -w -t nat -S WEFT-POSTRTG");
    if (!out.ok()) return {};
    return absl::StrSplit(*out, '\n', absl::SkipEmpty());
  }
  int Jumps() {
    return std::stoi(HostSh("iptables -w -t nat -S POSTROUTING | grep -c -- '-j WEFT-POSTRTG' || true"));
  }

  std::unique_ptr<NetNs> host_;
  Masquerade masq_;
};

TEST_F(MasqTest, RulesAreFlannelsInTheirOwnChain) {
  EXPECT_THAT(Masquerade::ChainRules(Net("10.1.0.0/16"), Net("10.1.19.0/24")),
              ElementsAreArray({
                  "-N WEFT-POSTRTG",
                  "-A WEFT-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment \"weft masq\" -j RETURN",
                  "-A WEFT-POSTRTG -s 10.1.0.0/16 -d 10.1.0.0/16 -m comment --comment \"weft masq\" -j RETURN",
                  "-A WEFT-POSTRTG -s 10.1.0.0/16 ! -d 224.0.0.0/4 -m comment --comment \"weft masq\" -j MASQUERADE --random-fully",
                  "-A WEFT-POSTRTG ! -s 10.1.0.0/16 -d 10.1.19.0/24 -m comment --comment \"weft masq\" -j RETURN",
                  "-A WEFT-POSTRTG ! -s 10.1.0.0/16 -d 10.1.0.0/16 -m comment --comment \"weft masq\" -j MASQUERADE --random-fully",
              }));
}

TEST_F(MasqTest, EnsureIsIdempotentRepairsAndFollowsTheLease) {
  absl::StatusOr<bool> changed = Ensure("198.18.0.0/16", "198.18.1.0/24");
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_TRUE(*changed);
  EXPECT_EQ(Chain(), Masquerade::ChainRules(Net("198.18.0.0/16"), Net("198.18.1.0/24")));
  EXPECT_EQ(Jumps(), 1);

  changed = Ensure("198.18.0.0/16", "198.18.1.0/24");
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_FALSE(*changed) << "nothing to do the second time";
  EXPECT_EQ(Jumps(), 1);

  // Someone deletes a rule and the jump: the next Ensure puts them back.
  HostSh("iptables -w -t nat -D WEFT-POSTRTG 2 && "
         "iptables -w -t nat -D POSTROUTING -m comment --comment 'weft masq' -j WEFT-POSTRTG");
  EXPECT_TRUE(*Ensure("198.18.0.0/16", "198.18.1.0/24"));
  EXPECT_EQ(Chain(), Masquerade::ChainRules(Net("198.18.0.0/16"), Net("198.18.1.0/24")));
  EXPECT_EQ(Jumps(), 1);

  // A new lease: the chain is rewritten, not appended to.
  EXPECT_TRUE(*Ensure("198.18.0.0/16", "198.18.7.0/24"));
  EXPECT_EQ(Chain(), Masquerade::ChainRules(Net("198.18.0.0/16"), Net("198.18.7.0/24")));
  EXPECT_EQ(Jumps(), 1);
}

TEST_F(MasqTest, RemoveTakesEverythingAway) {
  ASSERT_TRUE(Ensure("198.18.0.0/16", "198.18.1.0/24").ok());
  HostSh("iptables -w -t nat -A POSTROUTING -m comment --comment 'weft masq' -j WEFT-POSTRTG");
  ASSERT_EQ(Jumps(), 2);
  ASSERT_TRUE(Remove().ok());
  EXPECT_EQ(Jumps(), 0);
  EXPECT_FALSE(host_->Sh("iptables -w -t nat -S WEFT-POSTRTG").ok()) << "chain still there";
  EXPECT_TRUE(Remove().ok()) << "removing nothing is fine";
}

// host: eth0 192.0.2.1 <-> outside 192.0.2.2, and cni0 198.18.1.1 <-> pod 198.18.1.2.
// The outside has no route to the pod network: only a masqueraded ping returns.
TEST_F(MasqTest, PodReachesTheOutsideOnlyThroughTheNat) {
  auto pod = NetNs::Create("mqp");
  auto outside = NetNs::Create("mqo");
  ASSERT_TRUE(pod.ok() && outside.ok());
  ASSERT_TRUE(weft::testing::ConnectVeth(*host_, "eth0", "192.0.2.1/24", **outside, "eth0", "192.0.2.2/24").ok());
  ASSERT_TRUE(weft::testing::ConnectVeth(*host_, "cni0", "198.18.1.1/24", **pod, "eth0", "198.18.1.2/24").ok());
  ASSERT_TRUE((*pod)->Sh("ip route add default via 198.18.1.1").ok());
  HostSh("sysctl -qw net.ipv4.ip_forward=1");

  const std::string ping = "ping -c 1 -W 2 192.0.2.2";
  EXPECT_FALSE((*pod)->Sh(ping).ok()) << "without NAT the reply has no way back";
  ASSERT_TRUE(Ensure("198.18.0.0/16", "198.18.1.0/24").ok());
  absl::StatusOr<std::string> out = (*pod)->Sh(ping);
  EXPECT_TRUE(out.ok()) << out.status();
  ASSERT_TRUE(Remove().ok());
  EXPECT_FALSE((*pod)->Sh("ping -c 1 -W 2 192.0.2.2").ok()) << "NAT is off again";
}

}  // namespace
}  // namespace weft::agent
