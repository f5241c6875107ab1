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

IPv6Net Net6(absl::string_view s) {
  absl::StatusOr<IPv6Net> n = IPv6Net::Parse(s);
  EXPECT_TRUE(n.ok()) << n.status();
  return n.ok() ? *n : IPv6Net();
}
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
  absl::StatusOr<bool> Ensure6(const char* network, const char* subnet) {
    return host_->Run([&] { return masq_.Ensure(Net6(network), Net6(subnet)); });
  }
  absl::Status Remove() {
    return host_->Run([&] { return masq_.Remove(); });
  }
  absl::Status Remove6() {
    return host_->Run([&] { return masq_.RemoveIPv6(); });
  }
  std::vector<std::string> Chain(absl::string_view iptables = "iptables") {
    auto out = host_->Sh(absl::StrCat(iptables, " -w -t nat -S WEFT-POSTRTG"));
    if (!out.ok()) return {};
    return absl::StrSplit(*out, '\n', absl::SkipEmpty());
  }
  int Jumps(absl::string_view iptables = "iptables") {
    return std::stoi(
        HostSh(absl::StrCat(iptables, " -w -t nat -S POSTROUTING | grep -c -- '-j WEFT-POSTRTG' || true")));
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

TEST_F(MasqTest, IPv6RulesMirrorTheIPv4Ones) {
  EXPECT_THAT(Masquerade::ChainRules(Net6("fd00:1::/48"), Net6("fd00:1:0:13::/64")),
              ElementsAreArray({
                  "-N WEFT-POSTRTG",
                  "-A WEFT-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment \"weft masq\" -j RETURN",
                  "-A WEFT-POSTRTG -s fd00:1::/48 -d fd00:1::/48 -m comment --comment \"weft masq\" -j RETURN",
                  "-A WEFT-POSTRTG -s fd00:1::/48 ! -d ff00::/8 -m comment --comment \"weft masq\" -j MASQUERADE --random-fully",
                  "-A WEFT-POSTRTG ! -s fd00:1::/48 -d fd00:1:0:13::/64 -m comment --comment \"weft masq\" -j RETURN",
                  "-A WEFT-POSTRTG ! -s fd00:1::/48 -d fd00:1::/48 -m comment --comment \"weft masq\" -j MASQUERADE --random-fully",
              }));
}

// The same life cycle with ip6tables, and the two families never touch each other.
TEST_F(MasqTest, IPv6EnsureIsIdempotentRepairsAndRemovesOnlyItsOwn) {
  ASSERT_TRUE(Ensure("198.18.0.0/16", "198.18.1.0/24").ok());
  absl::StatusOr<bool> changed = Ensure6("fd00:1::/48", "fd00:1:0:13::/64");
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_TRUE(*changed);
  EXPECT_EQ(Chain("ip6tables"), Masquerade::ChainRules(Net6("fd00:1::/48"), Net6("fd00:1:0:13::/64")));
  EXPECT_EQ(Jumps("ip6tables"), 1);
  EXPECT_EQ(Chain(), Masquerade::ChainRules(Net("198.18.0.0/16"), Net("198.18.1.0/24")));

  changed = Ensure6("fd00:1::/48", "fd00:1:0:13::/64");
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_FALSE(*changed) << "nothing to do the second time";

  // Drift: a rule and the jump deleted, then repaired by the next Ensure.
  HostSh("ip6tables -w -t nat -D WEFT-POSTRTG 3 && "
         "ip6tables -w -t nat -D POSTROUTING -m comment --comment 'weft masq' -j WEFT-POSTRTG");
  EXPECT_TRUE(*Ensure6("fd00:1::/48", "fd00:1:0:13::/64"));
  EXPECT_EQ(Chain("ip6tables"), Masquerade::ChainRules(Net6("fd00:1::/48"), Net6("fd00:1:0:13::/64")));
  EXPECT_EQ(Jumps("ip6tables"), 1);

  // A new lease rewrites the chain.
  EXPECT_TRUE(*Ensure6("fd00:1::/48", "fd00:1:0:14::/64"));
  EXPECT_EQ(Chain("ip6tables"), Masquerade::ChainRules(Net6("fd00:1::/48"), Net6("fd00:1:0:14::/64")));

  ASSERT_TRUE(Remove6().ok());
  EXPECT_EQ(Jumps("ip6tables"), 0);
  EXPECT_FALSE(host_->Sh("ip6tables -w -t nat -S WEFT-POSTRTG").ok()) << "IPv6 chain still there";
  EXPECT_TRUE(Remove6().ok()) << "removing nothing is fine";
  EXPECT_EQ(Chain(), Masquerade::ChainRules(Net("198.18.0.0/16"), Net("198.18.1.0/24"))) << "IPv4 untouched";
  EXPECT_EQ(Jumps(), 1);
  ASSERT_TRUE(Ensure6("fd00:1::/48", "fd00:1:0:13::/64").ok());
  ASSERT_TRUE(Remove().ok());
  EXPECT_EQ(Jumps("ip6tables"), 1) << "IPv6 untouched by the IPv4 Remove";
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

// host: eth0 192.0.2.1 and 2001:db8::1 <-> outside 192.0.2.2 and 2001:db8::2;
// cni0 198.18.1.1 and fd00:1:0:13::1 <-> pod 198.18.1.2 and fd00:1:0:13::2, whose
// default routes go through the host. The outside has no route to the pod
// network: only a masqueraded ping returns.
class MasqPingTest : public MasqTest {
 protected:
  void SetUp() override {
    MasqTest::SetUp();
    auto pod = NetNs::Create("mqp");
    auto outside = NetNs::Create("mqo");
    ASSERT_TRUE(pod.ok() && outside.ok());
    pod_ = std::move(*pod);
    outside_ = std::move(*outside);
    ASSERT_TRUE(weft::testing::ConnectVeth(*host_, "eth0", "192.0.2.1/24", *outside_, "eth0", "192.0.2.2/24").ok());
    ASSERT_TRUE(weft::testing::ConnectVeth(*host_, "cni0", "198.18.1.1/24", *pod_, "eth0", "198.18.1.2/24").ok());
    HostSh("ip -6 addr add 2001:db8::1/64 dev eth0 nodad && ip -6 addr add fd00:1:0:13::1/64 dev cni0 nodad && "
           "sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1");
    ASSERT_TRUE(outside_->Sh("ip -6 addr add 2001:db8::2/64 dev eth0 nodad").ok());
    ASSERT_TRUE(pod_->Sh("ip route add default via 198.18.1.1 && ip -6 addr add fd00:1:0:13::2/64 dev eth0 nodad && "
                         "ip -6 route add default via fd00:1:0:13::1")
                    .ok());
  }

  bool PodPings(absl::string_view addr) { return pod_->Sh(absl::StrCat("ping -c 1 -W 2 ", addr)).ok(); }

  std::unique_ptr<NetNs> pod_;
  std::unique_ptr<NetNs> outside_;
};

TEST_F(MasqPingTest, PodReachesTheOutsideOnlyThroughTheNat) {
  EXPECT_FALSE(PodPings("192.0.2.2")) << "without NAT the reply has no way back";
  ASSERT_TRUE(Ensure("198.18.0.0/16", "198.18.1.0/24").ok());
  EXPECT_TRUE(PodPings("192.0.2.2"));
  EXPECT_FALSE(PodPings("2001:db8::2")) << "IPv4 rules do not NAT IPv6";
  ASSERT_TRUE(Remove().ok());
  EXPECT_FALSE(PodPings("192.0.2.2")) << "NAT is off again";
}

TEST_F(MasqPingTest, IPv6PodReachesTheOutsideOnlyThroughTheNat) {
  EXPECT_FALSE(PodPings("2001:db8::2")) << "without NAT the reply has no way back";
  ASSERT_TRUE(Ensure6("fd00:1::/48", "fd00:1:0:13::/64").ok());
  EXPECT_TRUE(PodPings("2001:db8::2"));
  ASSERT_TRUE(Remove6().ok());
  EXPECT_FALSE(PodPings("2001:db8::2")) << "NAT is off again";
}

}  // namespace
}  // namespace weft::agent
