#include "agent/lease_fields.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace weft::agent {
namespace {

using ::testing::HasSubstr;

weft::v1::Lease V4Lease() {
  weft::v1::Lease l;
  l.set_subnet("10.1.7.0/24");
  l.set_public_ip("192.0.2.7");
  l.set_backend_type("vxlan");
  l.set_backend_data(R"({"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"})");
  return l;
}

weft::v1::Lease DualStackLease() {
  weft::v1::Lease l = V4Lease();
  l.set_ipv6_subnet("fd00:1:0:7::/64");
  l.set_public_ipv6("2001:db8::7");
  l.set_backend_v6_data(R"({"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:45"})");
  return l;
}

TEST(LeaseFieldsTest, IPv4PeerHasNoIPv6Part) {
  bool v6_bad = true;
  std::optional<Peer> p = PeerFromLease(V4Lease(), true, &v6_bad);
  ASSERT_TRUE(p.has_value());
  EXPECT_FALSE(v6_bad);
  EXPECT_EQ(p->subnet.ToString(), "10.1.7.0/24");
  EXPECT_EQ(p->public_ip.ToString(), "192.0.2.7");
  EXPECT_EQ(p->backend_type, "vxlan");
  EXPECT_EQ(p->backend_data_json, V4Lease().backend_data());
  EXPECT_FALSE(p->ipv6_subnet.has_value());
  EXPECT_FALSE(p->public_ipv6.has_value());
  EXPECT_EQ(p->backend_v6_data_json, "");
}

TEST(LeaseFieldsTest, DualStackPeer) {
  bool v6_bad = true;
  std::optional<Peer> p = PeerFromLease(DualStackLease(), true, &v6_bad);
  ASSERT_TRUE(p.has_value());
  EXPECT_FALSE(v6_bad);
  EXPECT_EQ(p->ipv6_subnet->ToString(), "fd00:1:0:7::/64");
  EXPECT_EQ(p->public_ipv6->ToString(), "2001:db8::7");
  EXPECT_EQ(p->backend_v6_data_json, R"({"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:45"})");
}

TEST(LeaseFieldsTest, UnreadableIPv6PartIsDroppedAlone) {
  for (auto spoil : std::vector<void (*)(weft::v1::Lease&)>{
           [](weft::v1::Lease& l) { l.set_ipv6_subnet("fd00:1:0:7::1/64"); },  // host bits
           [](weft::v1::Lease& l) { l.set_ipv6_subnet(""); },
           [](weft::v1::Lease& l) { l.set_public_ipv6("192.0.2.7"); },
           [](weft::v1::Lease& l) { l.set_public_ipv6(""); },
       }) {
    weft::v1::Lease l = DualStackLease();
    spoil(l);
    bool v6_bad = false;
    std::optional<Peer> p = PeerFromLease(l, true, &v6_bad);
    ASSERT_TRUE(p.has_value()) << l.ShortDebugString();
    EXPECT_TRUE(v6_bad) << l.ShortDebugString();
    EXPECT_EQ(p->subnet.ToString(), "10.1.7.0/24");
    EXPECT_FALSE(p->ipv6_subnet.has_value());
    EXPECT_FALSE(p->public_ipv6.has_value());
    EXPECT_EQ(p->backend_v6_data_json, "");
  }
}

TEST(LeaseFieldsTest, UnreadableIPv4PartDropsThePeer) {
  weft::v1::Lease l = DualStackLease();
  l.set_public_ip("nope");
  bool v6_bad = true;
  EXPECT_FALSE(PeerFromLease(l, true, &v6_bad).has_value());
  EXPECT_FALSE(v6_bad);
}

weft::v1::AcquireLeaseResponse Response(const weft::v1::Lease& lease) {
  weft::v1::AcquireLeaseResponse r;
  *r.mutable_lease() = lease;
  r.set_network("10.1.0.0/16");
  if (!lease.ipv6_subnet().empty()) r.set_ipv6_network("fd00:1::/48");
  return r;
}

TEST(LeaseFieldsTest, OwnLeaseIPv4) {
  auto own = OwnLeaseFromResponse(Response(V4Lease()), true, false);
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_EQ(own->subnet.ToString(), "10.1.7.0/24");
  EXPECT_EQ(own->network.ToString(), "10.1.0.0/16");
  EXPECT_FALSE(own->ipv6_subnet.has_value());
  EXPECT_FALSE(own->ipv6_network.has_value());
}

TEST(LeaseFieldsTest, OwnLeaseDualStack) {
  auto own = OwnLeaseFromResponse(Response(DualStackLease()), true, true);
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_EQ(own->ipv6_subnet->ToString(), "fd00:1:0:7::/64");
  EXPECT_EQ(own->ipv6_network->ToString(), "fd00:1::/48");

  // A controller that answers IPv4 only for a dual-stack network.
  auto v4 = OwnLeaseFromResponse(Response(V4Lease()), true, true);
  EXPECT_TRUE(absl::IsFailedPrecondition(v4.status())) << v4.status();
  EXPECT_THAT(std::string(v4.status().message()), HasSubstr("no IPv6 subnet"));

  weft::v1::AcquireLeaseResponse bad = Response(DualStackLease());
  bad.set_ipv6_network("fd00:1::/200");
  EXPECT_TRUE(absl::IsInvalidArgument(OwnLeaseFromResponse(bad, true, true).status()));
}

// A lease of an IPv6-only network, as the controller sends it: no IPv4 fields.
weft::v1::Lease V6OnlyLease() {
  weft::v1::Lease l;
  l.set_ipv6_subnet("fd00:1:0:7::/64");
  l.set_public_ipv6("2001:db8::7");
  l.set_backend_type("vxlan");
  l.set_backend_v6_data(R"({"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:45"})");
  return l;
}

TEST(LeaseFieldsTest, IPv6OnlyPeer) {
  EXPECT_EQ(LeaseName(V6OnlyLease()), "fd00:1:0:7::/64");
  EXPECT_EQ(LeaseName(DualStackLease()), "10.1.7.0/24");
  bool v6_bad = true;
  std::optional<Peer> p = PeerFromLease(V6OnlyLease(), false, &v6_bad);
  ASSERT_TRUE(p.has_value());
  EXPECT_FALSE(v6_bad);
  EXPECT_FALSE(p->ipv4);
  EXPECT_EQ(p->ipv6_subnet->ToString(), "fd00:1:0:7::/64");
  EXPECT_EQ(p->public_ipv6->ToString(), "2001:db8::7");
  EXPECT_EQ(p->backend_data_json, "");

  // Its IPv6 part is all it has: unreadable drops the peer.
  weft::v1::Lease bad = V6OnlyLease();
  bad.set_public_ipv6("192.0.2.7");
  EXPECT_FALSE(PeerFromLease(bad, false, &v6_bad).has_value());
  // In a network with IPv4 enabled, a lease without IPv4 fields is unreadable.
  EXPECT_FALSE(PeerFromLease(V6OnlyLease(), true, &v6_bad).has_value());
}

TEST(LeaseFieldsTest, OwnLeaseIPv6Only) {
  weft::v1::AcquireLeaseResponse r;
  *r.mutable_lease() = V6OnlyLease();
  r.set_ipv6_network("fd00:1::/48");
  auto own = OwnLeaseFromResponse(r, false, true);
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_FALSE(own->ipv4);
  EXPECT_EQ(own->ipv6_subnet->ToString(), "fd00:1:0:7::/64");
  EXPECT_EQ(own->ipv6_network->ToString(), "fd00:1::/48");
  // Own-lease matching goes by the IPv6 subnet.
  bool v6_bad = false;
  EXPECT_TRUE(IsOwnLease(*PeerFromLease(V6OnlyLease(), false, &v6_bad), *own));
  weft::v1::Lease other = V6OnlyLease();
  other.set_ipv6_subnet("fd00:1:0:8::/64");
  EXPECT_FALSE(IsOwnLease(*PeerFromLease(other, false, &v6_bad), *own));

  // A network with IPv4 enabled needs the IPv4 fields.
  auto v4 = OwnLeaseFromResponse(r, true, true);
  EXPECT_TRUE(absl::IsFailedPrecondition(v4.status())) << v4.status();
  EXPECT_THAT(std::string(v4.status().message()), HasSubstr("no IPv4 subnet"));
}

}  // namespace
}  // namespace weft::agent
