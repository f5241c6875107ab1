// The WireGuard backend without WireGuard: config parsing, lease data, the
// desired peers, the peer diff, and the backend against a fake driver and the
// fake kernel.

#include "agent/backend/wireguard/wireguard_backend.h"

#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/backend/wireguard/wg_key.h"
#include "agent/netlink/fake_programmer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace weft::agent {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

IPv4Net Net(const char* s) { return *IPv4Net::Parse(s); }
IPv4Addr Ip(const char* s) { return *IPv4Addr::Parse(s); }
wg::Key KeyOf(uint8_t b) {
  wg::Key k;
  k.fill(b);
  return k;
}

TEST(WireguardConfigTest, FlannelsDefaults) {
  for (const char* json : {"", "{}", R"({"Type":"wireguard"})", R"({"Type":"WireGuard","PSK":""})"}) {
    absl::StatusOr<WireguardConfig> c = ParseWireguardConfig(json);
    ASSERT_TRUE(c.ok()) << json << ": " << c.status();
    EXPECT_EQ(c->listen_port, 51820);
    EXPECT_EQ(c->listen_port_v6, 51821);
    EXPECT_EQ(c->mode, "separate");
    EXPECT_EQ(c->mtu, 0u);
    EXPECT_EQ(c->keepalive_seconds, 0);
    EXPECT_FALSE(c->psk.has_value());
  }
}

TEST(WireguardConfigTest, EveryFieldCaseInsensitively) {
  const wg::Key psk = KeyOf(7);
  absl::StatusOr<WireguardConfig> c = ParseWireguardConfig(absl::StrCat(
      R"({"Type":"wireguard","listenport":51000,"ListenPortV6":51001,"MTU":1400,"Mode":"auto",)",
      R"("PersistentKeepaliveInterval":25,"psk":")", wg::ToBase64(psk), R"(","Unknown":[1]})"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listen_port, 51000);
  EXPECT_EQ(c->listen_port_v6, 51001);
  EXPECT_EQ(c->mtu, 1400u);
  EXPECT_EQ(c->mode, "auto");
  EXPECT_EQ(c->keepalive_seconds, 25);
  ASSERT_TRUE(c->psk.has_value());
  EXPECT_EQ(*c->psk, psk);
  EXPECT_EQ(ParseWireguardConfig(R"({"Mode":"ipv4"})")->mode, "ipv4");
}

TEST(WireguardConfigTest, EveryFlannelModeAndTheIPv6SidesPort) {
  for (const char* mode : {"separate", "auto", "ipv4", "ipv6", "IPv6"}) {
    absl::StatusOr<WireguardConfig> c =
        ParseWireguardConfig(absl::StrCat(R"({"Mode":")", mode, R"(","ListenPort":1000,"ListenPortV6":2000})"));
    ASSERT_TRUE(c.ok()) << mode << ": " << c.status();
    const bool separate = absl::EqualsIgnoreCase(mode, "separate");
    EXPECT_EQ(c->separate(), separate) << mode;
    EXPECT_EQ(c->v6_port(), separate ? 2000 : 1000) << "one device: IPv6 on ListenPort too (" << mode << ")";
  }
}

TEST(WireguardConfigTest, BadValuesAreRefusedNamingTheField) {
  struct Case {
    const char* json;
    const char* field;
  };
  for (const Case& c : {Case{R"({"Type":"vxlan"})", "Backend.Type"}, Case{R"({"ListenPort":70000})", "ListenPort"},
                        Case{R"({"ListenPort":-1})", "ListenPort"}, Case{R"({"ListenPort":"51820"})", "ListenPort"},
                        Case{R"({"ListenPortV6":1.5})", "ListenPortV6"}, Case{R"({"MTU":100})", "MTU"},
                        Case{R"({"Mode":"tunnel"})", "Mode"}, Case{R"({"Mode":5})", "Mode"},
                        Case{R"({"PersistentKeepaliveInterval":-5})", "PersistentKeepaliveInterval"},
                        Case{R"({"PSK":5})", "PSK"}, Case{R"({"PSK":"topsecretvalue"})", "PSK"}, Case{"[]", "Backend"}}) {
    absl::StatusOr<WireguardConfig> r = ParseWireguardConfig(c.json);
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.field)) << c.json;
    EXPECT_THAT(std::string(r.status().message()), Not(HasSubstr("topsecret"))) << "a PSK is never quoted";
  }
}

TEST(WireguardLeaseDataTest, FlannelsFormatBothWays) {
  const wg::Key k = KeyOf(9);
  const std::string json = EncodeWireguardLeaseData({k, 51820});
  EXPECT_EQ(json, absl::StrCat(R"({"PublicKey":")", wg::ToBase64(k), R"(","Port":51820})"));
  absl::StatusOr<WireguardLeaseData> d = ParseWireguardLeaseData(json);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->public_key, k);
  EXPECT_EQ(d->port, 51820);
  // Older flanneld: no Port.
  d = ParseWireguardLeaseData(absl::StrCat(R"({"PublicKey":")", wg::ToBase64(k), R"("})"));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->port, 0);
  EXPECT_FALSE(ParseWireguardLeaseData("null").ok());
  EXPECT_FALSE(ParseWireguardLeaseData(R"({"PublicKey":"abc"})").ok());
  EXPECT_FALSE(ParseWireguardLeaseData(R"({"Port":1})").ok());
  EXPECT_FALSE(ParseWireguardLeaseData(absl::StrCat(R"({"PublicKey":")", wg::ToBase64(k), R"(","Port":-1})")).ok());
}

Peer LeaseOf(const char* subnet, const char* ip, const wg::Key& key, int port = 51820) {
  return Peer{Net(subnet), Ip(ip), "wireguard", EncodeWireguardLeaseData({key, static_cast<uint16_t>(port)})};
}

WireguardSetup BaseSetup() {
  WireguardSetup s;
  s.lease = OwnLease{Net("10.1.1.0/24"), Net("10.1.0.0/16")};
  s.public_ip = Ip("192.0.2.1");
  s.public_key = KeyOf(1);
  return s;
}

TEST(WireguardDesiredPeersTest, OnePeerPerUsableLease) {
  WireguardSetup setup = BaseSetup();
  setup.config.keepalive_seconds = 25;
  setup.config.psk = KeyOf(0x55);
  std::vector<WireguardSkippedPeer> skipped;
  const std::vector<wg::Peer> got = WireguardDesiredPeers(
      setup,
      {LeaseOf("10.1.1.0/24", "192.0.2.1", KeyOf(1)),           // own
       LeaseOf("10.1.2.0/24", "192.0.2.2", KeyOf(3), 51999),    // fine
       LeaseOf("10.1.3.0/24", "192.0.2.3", KeyOf(2), 0),        // fine, older flanneld: our port
       Peer{Net("10.1.4.0/24"), Ip("192.0.2.4"), "vxlan", "{}"},  // other type
       Peer{Net("10.1.5.0/24"), Ip("192.0.2.5"), "wireguard", "{not json"},
       LeaseOf("10.1.6.0/24", "192.0.2.6", KeyOf(1)),           // our own key
       LeaseOf("10.1.7.0/24", "192.0.2.7", KeyOf(3)),           // a key another lease has
       LeaseOf("10.1.1.0/25", "192.0.2.8", KeyOf(8))},          // overlaps ours
      &skipped).peers;
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].public_key, KeyOf(2)) << "sorted by key";
  EXPECT_EQ(got[0].endpoint_ip, Ip("192.0.2.3"));
  EXPECT_EQ(got[0].endpoint_port, 51820) << "Port 0: our own listen port";
  EXPECT_EQ(got[0].allowed_ips, std::vector<netlink::IPPrefix>{Net("10.1.3.0/24")});
  EXPECT_EQ(got[0].keepalive_seconds, 25);
  EXPECT_EQ(got[0].preshared_key, KeyOf(0x55));
  EXPECT_EQ(got[1].public_key, KeyOf(3));
  EXPECT_EQ(got[1].endpoint_port, 51999);
  ASSERT_EQ(skipped.size(), 5u);
  EXPECT_THAT(skipped[0].reason, HasSubstr("vxlan"));
  EXPECT_THAT(skipped[2].reason, HasSubstr("this host's own"));
  EXPECT_THAT(skipped[3].reason, HasSubstr("another lease"));
  EXPECT_THAT(skipped[4].reason, HasSubstr("overlaps"));
  EXPECT_EQ(skipped[4].subnet, netlink::IPPrefix(Net("10.1.1.0/25")));
}

IPv6Net Net6(const char* s) { return *IPv6Net::Parse(s); }
IPv6Addr Ip6(const char* s) { return *IPv6Addr::Parse(s); }

// A dual-stack lease (IPv6 subnet fd00:12:0:<n>::/64) with its BackendV6Data;
// `v6_data` "" leaves it out (a lease of an older flanneld).
Peer DualLease(int n, const char* ip, const char* ipv6, const wg::Key& key, int port = 51820, int v6_port = 51821) {
  Peer p = LeaseOf(absl::StrCat("10.1.", n, ".0/24").c_str(), ip, key, port);
  p.ipv6_subnet = Net6(absl::StrCat("fd00:12:0:", n, "::/64").c_str());
  p.public_ipv6 = Ip6(ipv6);
  p.backend_v6_data_json = EncodeWireguardLeaseData({key, static_cast<uint16_t>(v6_port)});
  return p;
}

// This host: 10.1.1.0/24 and fd00:12:0:1::/64, underlay 192.0.2.1 and fd77:2::1.
WireguardSetup DualSetup(const char* mode, const char* ipv6 = "fd77:2::1") {
  WireguardSetup s = BaseSetup();
  s.lease.ipv6_subnet = Net6("fd00:12:0:1::/64");
  s.lease.ipv6_network = Net6("fd00:12::/48");
  s.v6 = LocalV6{*s.lease.ipv6_subnet, Ip6(ipv6), Net6("fd77:2::/64"), Ip6(ipv6)};
  s.config.mode = mode;
  return s;
}

WireguardSetup IPv6OnlySetup(const char* mode) {
  WireguardSetup s = DualSetup(mode);
  s.lease.ipv4 = false;
  s.lease.subnet = IPv4Net();
  s.lease.network = IPv4Net();
  s.public_ip = IPv4Addr();
  return s;
}

Peer V6OnlyLease(int n, const char* ipv6, const wg::Key& key, int v6_port = 51821) {
  Peer p = DualLease(n, "0.0.0.0", ipv6, key, 0, v6_port);
  p.ipv4 = false;
  p.subnet = IPv4Net();
  p.public_ip = IPv4Addr();
  p.backend_data_json = "";
  return p;
}

std::vector<netlink::IPPrefix> Prefixes(std::vector<netlink::IPPrefix> v) { return v; }

TEST(WireguardDesiredPeersTest, SeparateModePutsEachFamilyOnItsDevice) {
  std::vector<WireguardSkippedPeer> skipped;
  Peer old_flanneld = DualLease(3, "192.0.2.3", "fd77:2::3", KeyOf(3));
  old_flanneld.backend_v6_data_json = "";
  Peer overlapping_v6 = DualLease(4, "192.0.2.4", "fd77:2::4", KeyOf(4));
  overlapping_v6.ipv6_subnet = Net6("fd00:12:0:1::/80");
  const WireguardDesired got = WireguardDesiredPeers(
      DualSetup("separate"),
      {DualLease(1, "192.0.2.1", "fd77:2::1", KeyOf(1)),  // own
       DualLease(2, "192.0.2.2", "fd77:2::2", KeyOf(2), 51820, 0), old_flanneld, overlapping_v6},
      &skipped);
  ASSERT_EQ(got.peers.size(), 3u);
  EXPECT_EQ(got.peers[0].public_key, KeyOf(2));
  EXPECT_EQ(got.peers[0].endpoint_ip, netlink::IPAddr(Ip("192.0.2.2")));
  EXPECT_EQ(got.peers[0].endpoint_port, 51820);
  EXPECT_EQ(got.peers[0].allowed_ips, Prefixes({Net("10.1.2.0/24")}));
  ASSERT_EQ(got.v6_peers.size(), 1u);
  EXPECT_EQ(got.v6_peers[0].public_key, KeyOf(2));
  EXPECT_EQ(got.v6_peers[0].endpoint_ip, netlink::IPAddr(Ip6("fd77:2::2")));
  EXPECT_EQ(got.v6_peers[0].endpoint_port, 51821) << "BackendV6Data Port 0: our ListenPortV6";
  EXPECT_EQ(got.v6_peers[0].allowed_ips, Prefixes({Net6("fd00:12:0:2::/64")}));
  ASSERT_EQ(skipped.size(), 2u);
  EXPECT_EQ(skipped[0].subnet, netlink::IPPrefix(Net6("fd00:12:0:3::/64")));
  EXPECT_THAT(skipped[0].reason, HasSubstr("no BackendV6Data"));
  EXPECT_EQ(skipped[1].subnet, netlink::IPPrefix(Net6("fd00:12:0:1::/80")));
  EXPECT_THAT(skipped[1].reason, HasSubstr("overlaps"));
}

TEST(WireguardDesiredPeersTest, SeparateModeInAnIPv6OnlyNetworkHasOnlyTheIPv6Device) {
  std::vector<WireguardSkippedPeer> skipped;
  const WireguardDesired got = WireguardDesiredPeers(
      IPv6OnlySetup("separate"),
      {V6OnlyLease(1, "fd77:2::1", KeyOf(9)),  // own (by its IPv6 subnet), whatever its key
       V6OnlyLease(2, "fd77:2::2", KeyOf(2), 52000), V6OnlyLease(3, "fd77:2::3", KeyOf(2))},
      &skipped);
  EXPECT_TRUE(got.peers.empty());
  ASSERT_EQ(got.v6_peers.size(), 1u);
  EXPECT_EQ(got.v6_peers[0].endpoint_ip, netlink::IPAddr(Ip6("fd77:2::2")));
  EXPECT_EQ(got.v6_peers[0].endpoint_port, 52000);
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_EQ(skipped[0].subnet, netlink::IPPrefix(Net6("fd00:12:0:3::/64")));
  EXPECT_THAT(skipped[0].reason, HasSubstr("another lease"));
}

TEST(WireguardDesiredPeersTest, OneDeviceModesCarryBothSubnetsOnOnePeer) {
  struct Case {
    const char* mode;
    bool v6_endpoint;
  };
  for (const Case& c : {Case{"ipv4", false}, Case{"ipv6", true}}) {
    SCOPED_TRACE(c.mode);
    std::vector<WireguardSkippedPeer> skipped;
    const WireguardDesired got =
        WireguardDesiredPeers(DualSetup(c.mode), {DualLease(2, "192.0.2.2", "fd77:2::2", KeyOf(2), 51820, 0)}, &skipped);
    EXPECT_TRUE(skipped.empty());
    EXPECT_TRUE(got.v6_peers.empty());
    ASSERT_EQ(got.peers.size(), 1u);
    const wg::Peer& w = got.peers[0];
    EXPECT_EQ(w.allowed_ips, Prefixes({Net("10.1.2.0/24"), Net6("fd00:12:0:2::/64")}));
    EXPECT_EQ(w.endpoint_ip, c.v6_endpoint ? netlink::IPAddr(Ip6("fd77:2::2")) : netlink::IPAddr(Ip("192.0.2.2")));
    EXPECT_EQ(w.endpoint_port, 51820) << "one device: its ListenPort, also for a Port 0 in BackendV6Data";
  }
  // An IPv6-only network in Mode ipv4 has no endpoint to use.
  std::vector<WireguardSkippedPeer> skipped;
  const WireguardDesired got = WireguardDesiredPeers(IPv6OnlySetup("ipv4"), {V6OnlyLease(2, "fd77:2::2", KeyOf(2))}, &skipped);
  EXPECT_TRUE(got.peers.empty());
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_EQ(skipped[0].subnet, netlink::IPPrefix(Net6("fd00:12:0:2::/64")));
  EXPECT_THAT(skipped[0].reason, HasSubstr("no PublicIP (Mode ipv4)"));
}

// flanneld's selectPublicEndpoint, row by row.
TEST(WireguardDesiredPeersTest, AutoModePicksTheEndpointAsFlanneldDoes) {
  struct Case {
    const char* what;
    const char* peer_ip;
    const char* peer_ipv6;
    const char* own_ipv6;
    bool own_ipv4;
    bool want_v6;
  };
  for (const Case& c : {
           Case{"public IPv4 wins", "198.51.100.2", "2001:db8::2", "2001:db8::1", true, false},
           Case{"private IPv4, public IPv6 on both ends", "10.0.0.2", "2001:db8::2", "2001:db8::1", true, true},
           Case{"172.16/12 is private too", "172.31.0.2", "2001:db8::2", "2001:db8::1", true, true},
           Case{"192.168/16 is private too", "192.168.0.2", "2001:db8::2", "2001:db8::1", true, true},
           Case{"172.32/16 is public", "172.32.0.2", "2001:db8::2", "2001:db8::1", true, false},
           Case{"peer's IPv6 is ULA", "10.0.0.2", "fd77:2::2", "2001:db8::1", true, false},
           Case{"our IPv6 is ULA", "10.0.0.2", "2001:db8::2", "fc00::1", true, false},
           Case{"we have no IPv4 address", "198.51.100.2", "2001:db8::2", "2001:db8::1", false, true},
       }) {
    SCOPED_TRACE(c.what);
    WireguardSetup setup = DualSetup("auto", c.own_ipv6);
    if (!c.own_ipv4) setup.public_ip = IPv4Addr();
    std::vector<WireguardSkippedPeer> skipped;
    const WireguardDesired got =
        WireguardDesiredPeers(setup, {DualLease(2, c.peer_ip, c.peer_ipv6, KeyOf(2), 51000, 52000)}, &skipped);
    ASSERT_EQ(got.peers.size(), 1u);
    const wg::Peer& w = got.peers[0];
    if (c.want_v6) {
      EXPECT_EQ(w.endpoint_ip, netlink::IPAddr(Ip6(c.peer_ipv6)));
      EXPECT_EQ(w.endpoint_port, 52000) << "the Port of BackendV6Data";
    } else {
      EXPECT_EQ(w.endpoint_ip, netlink::IPAddr(Ip(c.peer_ip)));
      EXPECT_EQ(w.endpoint_port, 51000) << "the Port of BackendData";
    }
  }
  // Only one address: that one.
  std::vector<WireguardSkippedPeer> skipped;
  WireguardDesired got = WireguardDesiredPeers(IPv6OnlySetup("auto"), {V6OnlyLease(2, "fd77:2::2", KeyOf(2))}, &skipped);
  ASSERT_EQ(got.peers.size(), 1u);
  EXPECT_EQ(got.peers[0].endpoint_ip, netlink::IPAddr(Ip6("fd77:2::2")));
  EXPECT_EQ(got.peers[0].allowed_ips, Prefixes({Net6("fd00:12:0:2::/64")}));
  WireguardSetup v4only = BaseSetup();
  v4only.config.mode = "auto";
  got = WireguardDesiredPeers(v4only, {LeaseOf("10.1.2.0/24", "10.0.0.2", KeyOf(2))}, &skipped);
  ASSERT_EQ(got.peers.size(), 1u);
  EXPECT_EQ(got.peers[0].endpoint_ip, netlink::IPAddr(Ip("10.0.0.2")));
}

wg::Peer WgPeer(uint8_t key, const char* subnet, const char* ip) {
  wg::Peer p;
  p.public_key = KeyOf(key);
  p.endpoint_ip = Ip(ip);
  p.endpoint_port = 51820;
  p.allowed_ips = {Net(subnet)};
  return p;
}

TEST(WireguardPeerDiffTest, AddsUpdatesRemovesAndIgnoresCounters) {
  wg::Peer same = WgPeer(2, "10.1.2.0/24", "192.0.2.2");
  wg::Peer same_with_traffic = same;
  same_with_traffic.rx_bytes = 100;
  same_with_traffic.last_handshake = absl::Now();
  wg::Peer moved = WgPeer(3, "10.1.3.0/24", "192.0.2.3");
  wg::Peer moved_before = moved;
  moved_before.endpoint_ip = Ip("192.0.2.99");
  wg::Peer gone = WgPeer(4, "10.1.4.0/24", "192.0.2.4");
  wg::Peer fresh = WgPeer(5, "10.1.5.0/24", "192.0.2.5");
  ReconcileStats stats;
  std::vector<wg::PeerChange> changes =
      WireguardPeerDiff({moved_before, gone, same_with_traffic}, {fresh, same, moved}, &stats);
  EXPECT_EQ(stats.added, 1);
  EXPECT_EQ(stats.updated, 1);
  EXPECT_EQ(stats.removed, 1);
  EXPECT_EQ(stats.unchanged, 1);
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_TRUE(changes[0].remove) << "removals first";
  EXPECT_EQ(changes[0].peer.public_key, KeyOf(4));
  EXPECT_EQ(changes[1].peer.public_key, KeyOf(3));
  EXPECT_EQ(changes[1].peer.endpoint_ip, Ip("192.0.2.3"));
  EXPECT_EQ(changes[2].peer.public_key, KeyOf(5));

  // Each configuration field counts.
  for (auto edit : std::vector<void (*)(wg::Peer&)>{
           [](wg::Peer& p) { p.preshared_key = KeyOf(9); }, [](wg::Peer& p) { p.endpoint_port = 1; },
           [](wg::Peer& p) { p.keepalive_seconds = 5; }, [](wg::Peer& p) { p.allowed_ips.push_back(Net("10.9.0.0/16")); }}) {
    wg::Peer drifted = same;
    edit(drifted);
    ReconcileStats s;
    EXPECT_EQ(WireguardPeerDiff({drifted}, {same}, &s).size(), 1u);
    EXPECT_EQ(s.updated, 1);
  }
  ReconcileStats none;
  EXPECT_TRUE(WireguardPeerDiff({same}, {same}, &none).empty());
}

// Keeps a device in memory; counts the calls.
class FakeDriver : public wg::Driver {
 public:
  // Makes its link in `kernel` (when given) as wireguard-go makes its TUN.
  explicit FakeDriver(std::string name = "flannel-wg", netlink::FakeProgrammer* kernel = nullptr)
      : Driver(std::move(name)), kernel_(kernel) {}
  const char* kind() const override { return wg::kUserspaceDriver; }
  absl::Status EnsureDevice() override {
    ++ensures;
    if (kernel_ != nullptr && !kernel_->GetLink(device_).ok()) {
      kernel_->AddLink(device_, 1420);
      device = wg::Device();  // a new device starts empty
    }
    return absl::OkStatus();
  }
  absl::StatusOr<wg::Device> Get() override { return device; }
  absl::Status Set(const wg::DeviceChange& c) override {
    sets.push_back(c);
    if (c.private_key) device.private_key = *c.private_key;
    if (c.listen_port) device.listen_port = *c.listen_port;
    for (const wg::PeerChange& pc : c.peers) {
      auto it = std::find_if(device.peers.begin(), device.peers.end(),
                             [&](const wg::Peer& p) { return p.public_key == pc.peer.public_key; });
      if (it != device.peers.end()) device.peers.erase(it);
      if (!pc.remove) device.peers.push_back(pc.peer);
    }
    return absl::OkStatus();
  }
  wg::Device device;
  int ensures = 0;
  std::vector<wg::DeviceChange> sets;

 private:
  netlink::FakeProgrammer* kernel_;
};

class WireguardBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kernel_.AddLink("eth0", 1500);
    kernel_.AddLink("flannel-wg", 1420);  // what the driver made; the MTU already right
    auto driver = std::make_unique<FakeDriver>("flannel-wg", &kernel_);
    driver_ = driver.get();
    auto v6_driver = std::make_unique<FakeDriver>("flannel-wg-v6", &kernel_);
    v6_driver_ = v6_driver.get();
    WireguardOptions options;
    options.key_file = absl::StrCat(std::getenv("TEST_TMPDIR"), "/",
                                    ::testing::UnitTest::GetInstance()->current_test_info()->name(), "/key");
    options.peer_metrics = true;
    absl::StatusOr<WireguardConfig> cfg = ParseWireguardConfig(R"({"Type":"wireguard"})");
    backend_ = std::make_unique<WireguardBackend>(&kernel_, std::move(driver), std::move(v6_driver), *cfg, options,
                                                  &registry_);
    local_.iface_name = "eth0";
    local_.iface_index = 1;
    local_.iface_mtu = 1500;
    local_.iface_ip = Ip("192.0.2.1");
    local_.iface_network = Net("192.0.2.0/24");
    local_.public_ip = Ip("192.0.2.1");
  }

  netlink::FakeProgrammer kernel_;
  metrics::Registry registry_;
  FakeDriver* driver_ = nullptr;
  FakeDriver* v6_driver_ = nullptr;
  std::unique_ptr<WireguardBackend> backend_;
  LocalConfig local_;
};

TEST_F(WireguardBackendTest, InitSetsUpFlannelsDeviceKeyAndPort) {
  absl::StatusOr<std::string> data = backend_->LeaseData();
  ASSERT_TRUE(data.ok()) << data.status();
  absl::StatusOr<WireguardLeaseData> parsed = ParseWireguardLeaseData(*data);
  ASSERT_TRUE(parsed.ok()) << *data;
  EXPECT_EQ(parsed->port, 51820);

  absl::StatusOr<BackendInfo> info =
      backend_->Init(local_, OwnLease{Net("10.1.1.0/24"), Net("10.1.0.0/16")}, R"({"Type":"wireguard"})");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->type, "wireguard");
  EXPECT_EQ(info->mtu, 1420u) << "underlay 1500 - 80";
  EXPECT_EQ(info->data_json, *data);
  EXPECT_EQ(driver_->device.listen_port, 51820);
  EXPECT_EQ(*wg::PublicKeyOf(driver_->device.private_key), parsed->public_key);
  const int index = kernel_.GetLink("flannel-wg")->index;
  EXPECT_TRUE(kernel_.GetLink("flannel-wg")->up);
  EXPECT_THAT(*kernel_.ListAddresses(index),
              ::testing::ElementsAre(netlink::InterfaceAddress{index, Ip("10.1.1.0"), 32}));
  ASSERT_EQ(kernel_.routes.count(Net("10.1.0.0/16")), 1u);
  EXPECT_EQ(kernel_.routes[Net("10.1.0.0/16")].ifindex, index);

  // A second Init (same setup) sends nothing new to the device.
  const size_t sets = driver_->sets.size();
  ASSERT_TRUE(backend_->Init(local_, OwnLease{Net("10.1.1.0/24"), Net("10.1.0.0/16")}, "{}").ok());
  EXPECT_EQ(driver_->sets.size(), sets);
}

TEST_F(WireguardBackendTest, ReconcilesPeersAsADiffAndRepairsDrift) {
  ASSERT_TRUE(backend_->Init(local_, OwnLease{Net("10.1.1.0/24"), Net("10.1.0.0/16")}, "{}").ok());
  const std::vector<Peer> leases = {LeaseOf("10.1.2.0/24", "192.0.2.2", KeyOf(2)),
                                    LeaseOf("10.1.3.0/24", "192.0.2.3", KeyOf(3))};
  absl::StatusOr<ReconcileStats> s = backend_->Reconcile(leases);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->added, 2);
  ASSERT_EQ(driver_->device.peers.size(), 2u);

  s = backend_->Reconcile(leases);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->changes(), 0);
  EXPECT_EQ(s->unchanged, 3) << "two peers and the route";

  // Someone edits a peer by hand; the next pass puts it back.
  driver_->device.peers[0].endpoint_ip = Ip("198.51.100.1");
  driver_->device.peers[0].allowed_ips.clear();
  s = backend_->Reconcile(leases);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->updated, 1);
  EXPECT_EQ(driver_->sets.back().peers.size(), 1u);

  // A node reinstalled: same subnet, new key. The old peer goes, the new comes.
  s = backend_->Reconcile({LeaseOf("10.1.2.0/24", "192.0.2.2", KeyOf(22)), leases[1]});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->removed, 1);
  EXPECT_EQ(s->added, 1);
  const wg::DeviceChange& last = driver_->sets.back();
  ASSERT_EQ(last.peers.size(), 2u);
  EXPECT_TRUE(last.peers[0].remove);
  EXPECT_EQ(last.peers[0].peer.public_key, KeyOf(2));
  EXPECT_EQ(last.peers[1].peer.public_key, KeyOf(22));

  // A lease released: its peer removed.
  s = backend_->Reconcile({leases[1]});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->removed, 1);
  ASSERT_EQ(driver_->device.peers.size(), 1u);
  EXPECT_EQ(driver_->device.peers[0].public_key, KeyOf(3));

  // The key or port changed on the device: restored.
  driver_->device.listen_port = 1;
  driver_->device.private_key = KeyOf(0);
  ASSERT_TRUE(backend_->Reconcile({leases[1]}).ok());
  EXPECT_EQ(driver_->device.listen_port, 51820);
  EXPECT_FALSE(wg::IsZero(driver_->device.private_key));
}

TEST_F(WireguardBackendTest, MetricsComeFromTheDevicesCounters) {
  ASSERT_TRUE(backend_->Init(local_, OwnLease{Net("10.1.1.0/24"), Net("10.1.0.0/16")}, "{}").ok());
  const std::vector<Peer> leases = {LeaseOf("10.1.2.0/24", "192.0.2.2", KeyOf(2)),
                                    LeaseOf("10.1.3.0/24", "192.0.2.3", KeyOf(3))};
  ASSERT_TRUE(backend_->Reconcile(leases).ok());
  for (wg::Peer& p : driver_->device.peers) {
    if (p.public_key == KeyOf(2)) {
      p.rx_bytes = 1000;
      p.tx_bytes = 2000;
      p.last_handshake = absl::Now() - absl::Seconds(30);
    }
  }
  ASSERT_TRUE(backend_->Reconcile(leases).ok());
  const std::string page = registry_.Serialize();
  EXPECT_THAT(page, HasSubstr("weft_agent_wireguard_peers 2\n"));
  EXPECT_THAT(page, HasSubstr("weft_agent_wireguard_peers_without_handshake 1\n"));
  EXPECT_THAT(page, HasSubstr("weft_agent_wireguard_oldest_handshake_age_seconds 3"));
  EXPECT_THAT(page, HasSubstr("weft_agent_wireguard_bytes_total{direction=\"rx\"} 1000\n"));
  EXPECT_THAT(page, HasSubstr("weft_agent_wireguard_implementation{implementation=\"userspace\"} 1\n"));
  EXPECT_THAT(page, HasSubstr("weft_agent_wireguard_implementation{implementation=\"kernel\"} 0\n"));
  EXPECT_THAT(page, HasSubstr("weft_agent_wireguard_peer_bytes_total{peer_subnet=\"10.1.2.0/24\",direction=\"rx\"} 1000\n"));
  EXPECT_THAT(page, HasSubstr("weft_agent_wireguard_peer_bytes_total{peer_subnet=\"10.1.2.0/24\",direction=\"tx\"} 2000\n"));
  EXPECT_THAT(page, HasSubstr("weft_agent_wireguard_peer_handshake_age_seconds{peer_subnet=\"10.1.2.0/24\"} 3"));
  EXPECT_THAT(page, Not(HasSubstr("weft_agent_wireguard_peer_handshake_age_seconds{peer_subnet=\"10.1.3.0/24\"}")))
      << "no handshake yet: no sample";
}

OwnLease DualOwnLease() {
  OwnLease l{Net("10.1.1.0/24"), Net("10.1.0.0/16")};
  l.ipv6_subnet = Net6("fd00:12:0:1::/64");
  l.ipv6_network = Net6("fd00:12::/48");
  return l;
}

class WireguardDualStackTest : public WireguardBackendTest {
 protected:
  void SetUp() override {
    WireguardBackendTest::SetUp();
    local_.iface_ipv6 = Ip6("fd77:2::1");
    local_.iface_ipv6_network = Net6("fd77:2::/64");
    local_.public_ipv6 = Ip6("fd77:2::1");
  }
  std::vector<netlink::InterfaceAddress> AddressesOf(const char* dev) {
    absl::StatusOr<netlink::Link> l = kernel_.GetLink(dev);
    if (!l.ok()) return {};
    return *kernel_.ListAddresses(l->index);
  }
  int IndexOf(const char* dev) {
    absl::StatusOr<netlink::Link> l = kernel_.GetLink(dev);
    return l.ok() ? l->index : -1;
  }
};

TEST_F(WireguardDualStackTest, SeparateModeMakesADevicePerFamily) {
  EXPECT_EQ(backend_->device_name(), "flannel-wg");
  EXPECT_EQ(backend_->v6_device_name(), "flannel-wg-v6");
  absl::StatusOr<std::string> v4data = backend_->LeaseData(), v6data = backend_->LeaseV6Data();
  ASSERT_TRUE(v4data.ok() && v6data.ok());
  EXPECT_EQ(ParseWireguardLeaseData(*v6data)->public_key, ParseWireguardLeaseData(*v4data)->public_key)
      << "one key file for every device";
  EXPECT_EQ(ParseWireguardLeaseData(*v6data)->port, 51821);

  absl::StatusOr<BackendInfo> info = backend_->Init(local_, DualOwnLease(), "{}");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->data_json, *v4data);
  EXPECT_EQ(info->v6_data_json, *v6data);
  EXPECT_EQ(driver_->device.listen_port, 51820);
  EXPECT_EQ(v6_driver_->device.listen_port, 51821);
  EXPECT_EQ(v6_driver_->device.private_key, driver_->device.private_key);
  const int v4 = IndexOf("flannel-wg"), v6 = IndexOf("flannel-wg-v6");
  ASSERT_GT(v6, 0);
  EXPECT_TRUE(kernel_.GetLink("flannel-wg-v6")->up);
  EXPECT_EQ(kernel_.GetLink("flannel-wg-v6")->mtu, 1420u);
  EXPECT_THAT(AddressesOf("flannel-wg"), ::testing::ElementsAre(netlink::InterfaceAddress{v4, Ip("10.1.1.0"), 32}));
  EXPECT_THAT(AddressesOf("flannel-wg-v6"),
              ::testing::ElementsAre(netlink::InterfaceAddress{v6, Ip6("fd00:12:0:1::"), 128}));
  EXPECT_EQ(kernel_.routes[Net("10.1.0.0/16")].ifindex, v4);
  EXPECT_EQ(kernel_.routes[Net6("fd00:12::/48")].ifindex, v6);

  const std::vector<Peer> leases = {DualLease(2, "192.0.2.2", "fd77:2::2", KeyOf(2)),
                                    DualLease(3, "192.0.2.3", "fd77:2::3", KeyOf(3))};
  absl::StatusOr<ReconcileStats> s = backend_->Reconcile(leases);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->added, 4) << "each peer on each device";
  ASSERT_EQ(v6_driver_->device.peers.size(), 2u);
  for (const wg::Peer& p : v6_driver_->device.peers) {
    EXPECT_TRUE(p.endpoint_ip.is_v6());
    ASSERT_EQ(p.allowed_ips.size(), 1u);
    EXPECT_TRUE(p.allowed_ips[0].is_v6());
  }
  s = backend_->Reconcile(leases);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->changes(), 0);
  // A peer edited by hand on the IPv6 device is repaired there.
  v6_driver_->device.peers[0].endpoint_port = 1;
  s = backend_->Reconcile(leases);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->updated, 1);
  EXPECT_EQ(v6_driver_->device.peers.back().endpoint_port, 51821);

  // Metrics: peers over both devices; per-peer series by each device's subnet.
  for (wg::Peer& p : v6_driver_->device.peers) p.rx_bytes = 700;
  ASSERT_TRUE(backend_->Reconcile(leases).ok());
  const std::string page = registry_.Serialize();
  EXPECT_THAT(page, HasSubstr("weft_agent_wireguard_peers 4\n"));
  EXPECT_THAT(page, HasSubstr("weft_agent_wireguard_bytes_total{direction=\"rx\"} 1400\n"));
  EXPECT_THAT(page, HasSubstr("weft_agent_wireguard_peer_bytes_total{peer_subnet=\"fd00:12:0:2::/64\",direction=\"rx\"} 700\n"));
  EXPECT_THAT(page, HasSubstr("weft_agent_wireguard_peer_bytes_total{peer_subnet=\"10.1.2.0/24\",direction=\"rx\"} 0\n"));
}

TEST_F(WireguardDualStackTest, IPv6OnlyInSeparateModeHasOnlyTheIPv6DeviceAndDropsAStaleOne) {
  ASSERT_GT(IndexOf("flannel-wg"), 0) << "flannel-wg from an earlier IPv4 run";
  OwnLease lease = DualOwnLease();
  lease.ipv4 = false;
  lease.subnet = IPv4Net();
  lease.network = IPv4Net();
  local_.iface_ip = IPv4Addr();
  local_.public_ip = IPv4Addr();
  absl::StatusOr<BackendInfo> info = backend_->Init(local_, lease, "{}");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->data_json, "") << "an IPv6-only lease has no BackendData";
  EXPECT_FALSE(info->v6_data_json.empty());
  EXPECT_EQ(IndexOf("flannel-wg"), -1) << "removed: the network has no IPv4";
  EXPECT_GT(IndexOf("flannel-wg-v6"), 0);
  EXPECT_EQ(kernel_.routes.count(Net("10.1.0.0/16")), 0u);
  absl::StatusOr<ReconcileStats> s = backend_->Reconcile({V6OnlyLease(2, "fd77:2::2", KeyOf(2))});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->added, 1);
  EXPECT_TRUE(driver_->device.peers.empty());
  ASSERT_EQ(v6_driver_->device.peers.size(), 1u);
  EXPECT_EQ(v6_driver_->device.peers[0].endpoint_ip, netlink::IPAddr(Ip6("fd77:2::2")));
}

TEST_F(WireguardDualStackTest, OneDeviceModeCarriesBothFamiliesAndRemovesTheIPv6Device) {
  ASSERT_TRUE(backend_->Init(local_, DualOwnLease(), "{}").ok());
  ASSERT_GT(IndexOf("flannel-wg-v6"), 0);
  // The config changes to Mode auto (the agent restarts with it).
  absl::StatusOr<WireguardConfig> cfg = ParseWireguardConfig(R"({"Mode":"auto"})");
  auto driver = std::make_unique<FakeDriver>("flannel-wg", &kernel_);
  FakeDriver* d = driver.get();
  d->device = driver_->device;
  WireguardOptions options;
  options.key_file = absl::StrCat(std::getenv("TEST_TMPDIR"), "/OneDeviceModeCarriesBothFamilies/key");
  WireguardBackend b(&kernel_, std::move(driver), std::make_unique<FakeDriver>("flannel-wg-v6", &kernel_), *cfg,
                     options, nullptr);
  EXPECT_EQ(b.v6_device_name(), "") << "the IPv6 side is flannel-wg";
  EXPECT_EQ(ParseWireguardLeaseData(*b.LeaseV6Data())->port, 51820) << "IPv6 listens on ListenPort too";
  ASSERT_TRUE(b.Init(local_, DualOwnLease(), R"({"Mode":"auto"})").ok());
  EXPECT_EQ(IndexOf("flannel-wg-v6"), -1) << "stale: removed";
  const int wg = IndexOf("flannel-wg");
  EXPECT_THAT(AddressesOf("flannel-wg"),
              ::testing::UnorderedElementsAre(netlink::InterfaceAddress{wg, Ip("10.1.1.0"), 32},
                                              netlink::InterfaceAddress{wg, Ip6("fd00:12:0:1::"), 128}));
  EXPECT_EQ(kernel_.routes[Net("10.1.0.0/16")].ifindex, wg);
  EXPECT_EQ(kernel_.routes[Net6("fd00:12::/48")].ifindex, wg);
  ASSERT_TRUE(b.Reconcile({DualLease(2, "192.0.2.2", "fd77:2::2", KeyOf(2))}).ok());
  ASSERT_EQ(d->device.peers.size(), 1u);
  EXPECT_EQ(d->device.peers[0].allowed_ips, Prefixes({Net("10.1.2.0/24"), Net6("fd00:12:0:2::/64")}));
}

TEST_F(WireguardBackendTest, CorruptKeyFileStopsTheAgentWithAClearError) {
  WireguardOptions options;
  options.key_file = absl::StrCat(std::getenv("TEST_TMPDIR"), "/bad-key");
  FILE* f = fopen(options.key_file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fputs("garbage\n", f);
  fclose(f);
  chmod(options.key_file.c_str(), 0600);
  WireguardBackend b(&kernel_, std::make_unique<FakeDriver>(), std::make_unique<FakeDriver>("flannel-wg-v6"),
                     WireguardConfig(), options, nullptr);
  absl::StatusOr<std::string> data = b.LeaseData();
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument) << "the agent stops on INVALID_ARGUMENT";
  EXPECT_THAT(std::string(data.status().message()), HasSubstr(options.key_file));
}

}  // namespace
}  // namespace weft::agent
