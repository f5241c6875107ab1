// The kernel driver's peer attributes (include/uapi/linux/wireguard.h), both
// ways, without a kernel that has WireGuard: what PutPeer writes is what the
// kernel reads (a sockaddr_in6 endpoint, AF_INET6 allowed IPs), and ParsePeer
// reads it back.

#include "agent/backend/wireguard/wg_netlink.h"

#include <arpa/inet.h>
#include <linux/wireguard.h>
#include <netinet/in.h>

#include <vector>

#include "gtest/gtest.h"

namespace weft::agent::wg {
namespace {

struct Message {
  std::vector<uint32_t> buf = std::vector<uint32_t>(MNL_SOCKET_BUFFER_SIZE / 4);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  Message() { mnl_nlmsg_put_extra_header(nlh, sizeof(genlmsghdr)); }
  // The peer nests inside the message's WGDEVICE_A_PEERS.
  std::vector<const nlattr*> Peers() const {
    std::vector<const nlattr*> out;
    ForEachGenlAttr(nlh, [&](const nlattr* a) {
      if (mnl_attr_get_type(a) == WGDEVICE_A_PEERS) ForEachNested(a, [&](const nlattr* p) { out.push_back(p); });
    });
    return out;
  }
};

// The attribute of `type` directly inside `nest`, or nullptr.
const nlattr* Find(const nlattr* nest, uint16_t type) {
  const nlattr* found = nullptr;
  ForEachNested(nest, [&](const nlattr* a) {
    if (mnl_attr_get_type(a) == type) found = a;
  });
  return found;
}

Peer DualStackPeer() {
  Peer p;
  p.public_key.fill(0xab);
  p.preshared_key.fill(0x11);
  p.endpoint_ip = *IPv6Addr::Parse("fd77:2::12");
  p.endpoint_port = 51821;
  p.keepalive_seconds = 25;
  p.allowed_ips = {*IPv4Net::Parse("10.1.2.0/24"), *IPv6Net::Parse("fd00:12:0:2::/64")};
  return p;
}

TEST(WgNetlinkTest, IPv6EndpointIsASockaddrIn6AndAllowedIpsCarryTheirFamily) {
  Message m;
  PutPeer(m.nlh, {DualStackPeer(), false});
  const std::vector<const nlattr*> peers = m.Peers();
  ASSERT_EQ(peers.size(), 1u);
  const nlattr* ep = Find(peers[0], WGPEER_A_ENDPOINT);
  ASSERT_NE(ep, nullptr);
  ASSERT_EQ(mnl_attr_get_payload_len(ep), sizeof(sockaddr_in6));
  sockaddr_in6 sin6;
  std::memcpy(&sin6, mnl_attr_get_payload(ep), sizeof(sin6));
  EXPECT_EQ(sin6.sin6_family, AF_INET6);
  EXPECT_EQ(ntohs(sin6.sin6_port), 51821);
  char text[INET6_ADDRSTRLEN];
  ASSERT_NE(inet_ntop(AF_INET6, &sin6.sin6_addr, text, sizeof(text)), nullptr);
  EXPECT_STREQ(text, "fd77:2::12");

  const nlattr* ips = Find(peers[0], WGPEER_A_ALLOWEDIPS);
  ASSERT_NE(ips, nullptr);
  std::vector<std::pair<uint16_t, size_t>> families;  // (family, address length)
  ForEachNested(ips, [&](const nlattr* entry) {
    const nlattr* fam = Find(entry, WGALLOWEDIP_A_FAMILY);
    const nlattr* addr = Find(entry, WGALLOWEDIP_A_IPADDR);
    ASSERT_NE(fam, nullptr);
    ASSERT_NE(addr, nullptr);
    families.emplace_back(mnl_attr_get_u16(fam), mnl_attr_get_payload_len(addr));
  });
  EXPECT_EQ(families, (std::vector<std::pair<uint16_t, size_t>>{{AF_INET, 4}, {AF_INET6, 16}}));
  const nlattr* flags = Find(peers[0], WGPEER_A_FLAGS);
  ASSERT_NE(flags, nullptr);
  EXPECT_EQ(mnl_attr_get_u32(flags), static_cast<uint32_t>(WGPEER_F_REPLACE_ALLOWEDIPS));
}

TEST(WgNetlinkTest, PeersRoundTripInBothFamilies) {
  Peer v4 = DualStackPeer();
  v4.endpoint_ip = *IPv4Addr::Parse("192.0.2.12");
  v4.endpoint_port = 51820;
  v4.allowed_ips = {*IPv4Net::Parse("10.1.2.0/24")};
  Peer v6 = DualStackPeer();
  v6.allowed_ips = {*IPv6Net::Parse("fd00:12:0:2::/64")};
  for (const Peer& want : {DualStackPeer(), v4, v6}) {
    Message m;
    PutPeer(m.nlh, {want, false});
    const std::vector<const nlattr*> peers = m.Peers();
    ASSERT_EQ(peers.size(), 1u);
    const Peer got = ParsePeer(peers[0]);
    EXPECT_EQ(got.public_key, want.public_key);
    EXPECT_EQ(got.preshared_key, want.preshared_key);
    EXPECT_EQ(got.endpoint_ip, want.endpoint_ip);
    EXPECT_EQ(got.endpoint_port, want.endpoint_port);
    EXPECT_EQ(got.keepalive_seconds, want.keepalive_seconds);
    EXPECT_EQ(got.allowed_ips, want.allowed_ips);
  }
}

TEST(WgNetlinkTest, RemovalCarriesOnlyTheKeyAndAFlag) {
  Message m;
  PutPeer(m.nlh, {DualStackPeer(), true});
  const std::vector<const nlattr*> peers = m.Peers();
  ASSERT_EQ(peers.size(), 1u);
  EXPECT_EQ(mnl_attr_get_u32(Find(peers[0], WGPEER_A_FLAGS)), static_cast<uint32_t>(WGPEER_F_REMOVE_ME));
  EXPECT_EQ(Find(peers[0], WGPEER_A_ENDPOINT), nullptr);
  EXPECT_EQ(Find(peers[0], WGPEER_A_ALLOWEDIPS), nullptr);
}

TEST(WgNetlinkTest, MalformedAttributesAreSkipped) {
  // Hand-made answers: an endpoint of a size no sockaddr has, a sockaddr_in6
  // that says AF_INET, allowed IPs with a prefix too long or the wrong length.
  Message m;
  nlattr* peers = mnl_attr_nest_start(m.nlh, WGDEVICE_A_PEERS);
  nlattr* peer = mnl_attr_nest_start(m.nlh, 0);
  Key key;
  key.fill(7);
  mnl_attr_put(m.nlh, WGPEER_A_PUBLIC_KEY, 32, key.data());
  const char junk[7] = {};
  mnl_attr_put(m.nlh, WGPEER_A_ENDPOINT, sizeof(junk), junk);
  sockaddr_in6 lying{};
  lying.sin6_family = AF_INET;
  lying.sin6_port = htons(1);
  mnl_attr_put(m.nlh, WGPEER_A_ENDPOINT, sizeof(lying), &lying);
  nlattr* ips = mnl_attr_nest_start(m.nlh, WGPEER_A_ALLOWEDIPS);
  const uint8_t addr6[16] = {0xfd};
  for (auto [family, len, cidr] : {std::tuple<uint16_t, uint16_t, uint8_t>{AF_INET6, 16, 129},
                                   {AF_INET6, 4, 64}, {AF_INET, 16, 24}, {AF_INET6, 16, 64}}) {
    nlattr* e = mnl_attr_nest_start(m.nlh, 0);
    mnl_attr_put_u16(m.nlh, WGALLOWEDIP_A_FAMILY, family);
    mnl_attr_put(m.nlh, WGALLOWEDIP_A_IPADDR, len, addr6);
    mnl_attr_put_u8(m.nlh, WGALLOWEDIP_A_CIDR_MASK, cidr);
    mnl_attr_nest_end(m.nlh, e);
  }
  mnl_attr_nest_end(m.nlh, ips);
  mnl_attr_nest_end(m.nlh, peer);
  mnl_attr_nest_end(m.nlh, peers);
  const std::vector<const nlattr*> found = m.Peers();
  ASSERT_EQ(found.size(), 1u);
  const Peer got = ParsePeer(found[0]);
  EXPECT_EQ(got.public_key, key);
  EXPECT_EQ(got.endpoint_port, 0) << "no usable endpoint";
  ASSERT_EQ(got.allowed_ips.size(), 1u) << "only the well-formed entry";
  EXPECT_EQ(got.allowed_ips[0], netlink::IPPrefix(*IPv6Net::Parse("fd00::/64")));
}

}  // namespace
}  // namespace weft::agent::wg
