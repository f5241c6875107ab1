// Keys, the key file and the UAPI codec (the answers are what wireguard-go
// 0.0.20220316 printed for the same configuration).

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "agent/backend/wireguard/uapi.h"
#include "agent/backend/wireguard/wg_key.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace weft::agent::wg {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

Key Hex(const char* s) { return *ParseHexKey(s, "test"); }

TEST(WgKeyTest, PublicKeyIsX25519OfTheBasePoint) {
  // RFC 7748, 6.1: Alice's keys.
  const Key priv = Hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  absl::StatusOr<Key> pub = PublicKeyOf(priv);
  ASSERT_TRUE(pub.ok()) << pub.status();
  EXPECT_EQ(ToHex(*pub), "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
}

TEST(WgKeyTest, GeneratedKeysAreClampedAndDiffer) {
  Key a = *GeneratePrivateKey(), b = *GeneratePrivateKey();
  EXPECT_NE(a, b);
  EXPECT_EQ(a[0] & 7, 0);
  EXPECT_EQ(a[31] & 128, 0);
  EXPECT_EQ(a[31] & 64, 64);
}

TEST(WgKeyTest, Base64AndHexRoundTripStrictly) {
  const Key k = Hex("a8dac1d8a70a751f0f699fb14ba1cff7b79cf4fbd8f09f44c6e4a90d0369604d");
  const std::string b64 = ToBase64(k);
  EXPECT_EQ(b64.size(), 44u);
  EXPECT_EQ(*ParseBase64Key(b64, "k"), k);
  EXPECT_EQ(ToHex(k), "a8dac1d8a70a751f0f699fb14ba1cff7b79cf4fbd8f09f44c6e4a90d0369604d");
  EXPECT_EQ(*ParseHexKey("A8DAC1D8A70A751F0F699FB14BA1CFF7B79CF4FBD8F09F44C6E4A90D0369604D", "k"), k);
  for (const std::string& bad : {std::string(""), b64.substr(0, 43), b64 + "=", std::string(44, '!'),
                                std::string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=")}) {
    absl::StatusOr<Key> r = ParseBase64Key(bad, "Backend.PSK");
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("Backend.PSK"));
  }
  EXPECT_FALSE(ParseHexKey("zz", "k").ok());
  EXPECT_FALSE(ParseHexKey(std::string(64, 'g'), "k").ok());
}

std::string TmpDir() {
  const char* t = std::getenv("TEST_TMPDIR");
  return t != nullptr ? t : "/tmp";
}

mode_t ModeOf(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? st.st_mode & 0777 : 0;
}

TEST(WgKeyFileTest, CreatedOnceWithMode0600AndKept) {
  const std::string path = TmpDir() + "/keys/created/wireguard-key";
  absl::StatusOr<Key> first = LoadOrCreatePrivateKey(path);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(ModeOf(path), 0600u);
  EXPECT_EQ(ModeOf(TmpDir() + "/keys/created"), 0700u);
  absl::StatusOr<Key> again = LoadOrCreatePrivateKey(path);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *first);
  // The file holds what `wg genkey` writes: base64 and a newline.
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  EXPECT_EQ(line, ToBase64(*first));
}

TEST(WgKeyFileTest, CorruptOrExposedFileIsAClearErrorAndNotReplaced) {
  const std::string path = TmpDir() + "/corrupt-key";
  {
    std::ofstream f(path);
    f << "secretsecretsecret-not-a-key\n";
  }
  chmod(path.c_str(), 0600);
  absl::StatusOr<Key> k = LoadOrCreatePrivateKey(path);
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(k.status().message()), HasSubstr(path));
  EXPECT_THAT(std::string(k.status().message()), Not(HasSubstr("secretsecret"))) << "never quotes key material";
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  EXPECT_EQ(line, "secretsecretsecret-not-a-key") << "left as it was";

  const std::string exposed = TmpDir() + "/exposed-key";
  ASSERT_TRUE(LoadOrCreatePrivateKey(exposed).ok());
  chmod(exposed.c_str(), 0644);
  k = LoadOrCreatePrivateKey(exposed);
  ASSERT_FALSE(k.ok());
  EXPECT_THAT(std::string(k.status().message()), HasSubstr("0644"));
}

Peer SamplePeer() {
  Peer p;
  p.public_key = Hex("b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33");
  p.preshared_key = Hex("188515093e952f5f22e865cef3012e72f8b5f0b598ac0309d5dacce3b70fcf52");
  p.endpoint_ip = *IPv4Addr::Parse("192.0.2.5");
  p.endpoint_port = 51820;
  p.keepalive_seconds = 25;
  p.allowed_ips = {*IPv4Net::Parse("10.1.2.0/24")};
  return p;
}

TEST(UapiTest, EncodesASetAsTheProtocolSays) {
  DeviceChange c;
  c.private_key = Hex("a8dac1d8a70a751f0f699fb14ba1cff7b79cf4fbd8f09f44c6e4a90d0369604d");
  c.listen_port = 51820;
  c.peers.push_back({SamplePeer(), false});
  Peer gone;
  gone.public_key = Hex("0101010101010101010101010101010101010101010101010101010101010101");
  c.peers.push_back({gone, true});
  EXPECT_EQ(EncodeSet(c),
            "set=1\n"
            "private_key=a8dac1d8a70a751f0f699fb14ba1cff7b79cf4fbd8f09f44c6e4a90d0369604d\n"
            "listen_port=51820\n"
            "public_key=b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33\n"
            "preshared_key=188515093e952f5f22e865cef3012e72f8b5f0b598ac0309d5dacce3b70fcf52\n"
            "endpoint=192.0.2.5:51820\n"
            "persistent_keepalive_interval=25\n"
            "replace_allowed_ips=true\n"
            "allowed_ip=10.1.2.0/24\n"
            "public_key=0101010101010101010101010101010101010101010101010101010101010101\n"
            "remove=true\n"
            "\n");
  // No PSK: zeros remove one that was set.
  DeviceChange nopsk;
  Peer p = SamplePeer();
  p.preshared_key = Key{};
  nopsk.peers.push_back({p, false});
  EXPECT_THAT(EncodeSet(nopsk), HasSubstr("preshared_key=" + std::string(64, '0') + "\n"));
}

constexpr char kGetAnswer[] =
    "private_key=a8dac1d8a70a751f0f699fb14ba1cff7b79cf4fbd8f09f44c6e4a90d0369604d\n"
    "listen_port=51820\n"
    "public_key=b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33\n"
    "preshared_key=188515093e952f5f22e865cef3012e72f8b5f0b598ac0309d5dacce3b70fcf52\n"
    "protocol_version=1\n"
    "endpoint=192.0.2.5:51820\n"
    "last_handshake_time_sec=1700000000\n"
    "last_handshake_time_nsec=500000000\n"
    "tx_bytes=1234\n"
    "rx_bytes=5678\n"
    "persistent_keepalive_interval=25\n"
    "allowed_ip=10.1.2.0/24\n"
    "allowed_ip=fd00::/64\n"
    "public_key=0101010101010101010101010101010101010101010101010101010101010101\n"
    "endpoint=[2001:db8::1]:51820\n"
    "last_handshake_time_sec=0\n"
    "last_handshake_time_nsec=0\n"
    "tx_bytes=0\n"
    "rx_bytes=0\n"
    "persistent_keepalive_interval=0\n"
    "errno=0\n"
    "\n";

TEST(UapiTest, DecodesAGetAnswer) {
  absl::StatusOr<Device> d = DecodeGet(kGetAnswer);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(ToHex(d->private_key), "a8dac1d8a70a751f0f699fb14ba1cff7b79cf4fbd8f09f44c6e4a90d0369604d");
  EXPECT_EQ(d->listen_port, 51820);
  ASSERT_EQ(d->peers.size(), 2u);
  const Peer& p = d->peers[0];
  const Peer want = SamplePeer();
  EXPECT_EQ(p.public_key, want.public_key);
  EXPECT_EQ(p.preshared_key, want.preshared_key);
  EXPECT_EQ(p.endpoint_ip, want.endpoint_ip);
  EXPECT_EQ(p.endpoint_port, 51820);
  EXPECT_EQ(p.keepalive_seconds, 25);
  EXPECT_EQ(p.allowed_ips, (std::vector<netlink::IPPrefix>{*IPv4Net::Parse("10.1.2.0/24"), *IPv6Net::Parse("fd00::/64")}));
  EXPECT_EQ(p.last_handshake, absl::FromUnixMillis(1700000000500));
  EXPECT_EQ(p.tx_bytes, 1234u);
  EXPECT_EQ(p.rx_bytes, 5678u);
  const Peer& q = d->peers[1];
  EXPECT_EQ(q.endpoint_ip, netlink::IPAddr(*IPv6Addr::Parse("2001:db8::1")));
  EXPECT_EQ(q.endpoint_port, 51820);
  EXPECT_EQ(q.last_handshake, absl::UnixEpoch());
  EXPECT_TRUE(q.allowed_ips.empty());
}

// The protocol's IPv6 forms: "[IP]:port" endpoints, "IP/cidr" allowed IPs.
TEST(UapiTest, EncodesIPv6EndpointsInBracketsAndBothFamiliesOfAllowedIps) {
  DeviceChange c;
  Peer p = SamplePeer();
  p.endpoint_ip = *IPv6Addr::Parse("fd77:2::12");
  p.endpoint_port = 51821;
  p.allowed_ips = {*IPv4Net::Parse("10.1.2.0/24"), *IPv6Net::Parse("fd00:12:0:2::/64")};
  c.peers.push_back({p, false});
  const std::string set = EncodeSet(c);
  EXPECT_THAT(set, HasSubstr("\nendpoint=[fd77:2::12]:51821\n"));
  EXPECT_THAT(set, HasSubstr("\nreplace_allowed_ips=true\nallowed_ip=10.1.2.0/24\nallowed_ip=fd00:12:0:2::/64\n"));
}

// What a Set says is what a Get of the same peers reads back (the device
// lists a peer's configuration with the same keys, minus replace_allowed_ips).
TEST(UapiTest, PeersOfBothFamiliesRoundTrip) {
  Peer v6 = SamplePeer();
  v6.endpoint_ip = *IPv6Addr::Parse("2001:db8:0:1::5");
  v6.allowed_ips = {*IPv6Net::Parse("fd00:12:0:5::/64")};
  Peer dual = SamplePeer();
  dual.public_key = Hex("0202020202020202020202020202020202020202020202020202020202020202");
  dual.allowed_ips = {*IPv4Net::Parse("10.1.5.0/24"), *IPv6Net::Parse("fd00:12:0:5::/64")};
  DeviceChange c;
  c.peers = {{v6, false}, {dual, false}};
  std::string answer = EncodeSet(c).substr(6);  // without "set=1\n"
  answer.resize(answer.size() - 1);              // and the final empty line
  absl::StrReplaceAll({{"replace_allowed_ips=true\n", ""}}, &answer);
  answer += "errno=0\n\n";
  absl::StatusOr<Device> d = DecodeGet(answer);
  ASSERT_TRUE(d.ok()) << d.status() << "\n" << answer;
  ASSERT_EQ(d->peers.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const Peer& want = c.peers[i].peer;
    EXPECT_EQ(d->peers[i].public_key, want.public_key);
    EXPECT_EQ(d->peers[i].endpoint_ip, want.endpoint_ip);
    EXPECT_EQ(d->peers[i].endpoint_port, want.endpoint_port);
    EXPECT_EQ(d->peers[i].allowed_ips, want.allowed_ips);
  }
}

TEST(UapiTest, IPv6EndpointZoneIsDroppedAndBadIPv6FormsAreRefused) {
  const std::string peer = absl::StrCat("public_key=", std::string(64, '1'), "\n");
  absl::StatusOr<Device> d = DecodeGet(peer + "endpoint=[fe80::1%eth0]:51821\nerrno=0\n\n");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->peers[0].endpoint_ip, netlink::IPAddr(*IPv6Addr::Parse("fe80::1")));
  for (const char* bad : {"endpoint=fd77:2::12:51821", "endpoint=[fd77:2::12:51821", "endpoint=[fd77:2::12]",
                          "endpoint=[fd77:2::12]:65536", "endpoint=[10.0.0.1]:1", "endpoint=[zz::1]:1",
                          "allowed_ip=fd00::1/64", "allowed_ip=fd00::/129", "allowed_ip=fd00::", "allowed_ip=:/1"}) {
    absl::StatusOr<Device> r = DecodeGet(absl::StrCat(peer, bad, "\nerrno=0\n\n"));
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    }
  }
}

TEST(UapiTest, ErrorsAndMalformedAnswers) {
  // wireguard-go 0.0.20220316 answers a bad set with a negative errno.
  absl::Status s = DecodeSetAnswer("errno=-22\n\n");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("errno 22"));
  EXPECT_TRUE(DecodeSetAnswer("errno=0\n\n").ok());
  EXPECT_FALSE(DecodeSetAnswer("").ok());
  EXPECT_FALSE(DecodeGet("private_key=00\nerrno=0\n\n").ok());
  EXPECT_FALSE(DecodeGet("listen_port=70000\nerrno=0\n\n").ok());
  EXPECT_FALSE(DecodeGet("listen_port=1\n\n").ok()) << "no errno: truncated";
  EXPECT_FALSE(DecodeGet("garbage\nerrno=0\n\n").ok());
  EXPECT_FALSE(DecodeGet(absl::StrCat("public_key=", std::string(64, '1'), "\nallowed_ip=10.1.2.0/33\nerrno=0\n\n")).ok());
  EXPECT_FALSE(DecodeGet(absl::StrCat("public_key=", std::string(64, '1'), "\nendpoint=1.2.3.4\nerrno=0\n\n")).ok());
  EXPECT_EQ(DecodeGet("errno=2\n\n").status().code(), absl::StatusCode::kNotFound);
  // Keys Weft does not use are ignored.
  absl::StatusOr<Device> d = DecodeGet("fwmark=5\nfuture_key=1\nerrno=0\n\n");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(IsZero(d->private_key));
  // A peer's allowed IPs are bounded.
  std::string many = absl::StrCat("public_key=", std::string(64, '1'), "\n");
  for (size_t i = 0; i <= kMaxAllowedIpsPerPeer; ++i) {
    absl::StrAppend(&many, "allowed_ip=fd00:", absl::Hex(i), "::/64\n");
  }
  absl::StatusOr<Device> too_many = DecodeGet(many + "errno=0\n\n");
  ASSERT_FALSE(too_many.ok());
  EXPECT_THAT(std::string(too_many.status().message()), HasSubstr("too many allowed IPs"));
  // A huge answer is refused before parsing.
  EXPECT_FALSE(DecodeGet(std::string(kMaxUapiAnswer + 1, 'a')).ok());
}

TEST(UapiTest, ExchangeWithAMissingSocketIsUnavailable) {
  absl::StatusOr<std::string> r = UapiExchange("/nonexistent-weft-dir/flannel-wg.sock", "get=1\n\n");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
}

}  // namespace
}  // namespace weft::agent::wg
