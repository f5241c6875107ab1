// The WireGuard drivers against the real thing, in a network namespace: this
// machine's kernel has no WireGuard, so the kernel driver must say so and
// "auto" must pick wireguard-go; the userspace driver starts a real
// wireguard-go and speaks its UAPI protocol (set, get, remove, restart after a
// crash, delete). wireguard-go's socket directory is fixed, so it runs in a
// mount namespace of its own with a private directory bound there (a wrapper
// script given as --wireguard-go).

#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "agent/backend/wireguard/wg_driver.h"
#include "agent/backend/wireguard/wg_key.h"
#include "common/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/netns/netns.h"

namespace weft::agent::wg {
namespace {

using weft::testing::NetNs;

class WireguardNetnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<NetNs>> ns = NetNs::Create("wg");
    ASSERT_TRUE(ns.ok()) << ns.status();
    ns_ = std::move(*ns);
    // A short path: a unix socket path has at most 107 bytes.
    tmp_ = std::make_unique<TempDir>("weft-wg-", TempDir::Root::kTmp);
    dir_ = tmp_->path();
    ASSERT_EQ(mkdir((dir_ + "/run").c_str(), 0700), 0);
    wrapper_ = dir_ + "/wireguard-go";
    std::ofstream(wrapper_) << "#!/bin/sh\nexec unshare --mount --propagation private sh -c "
                               "'mkdir -p /run/wireguard && mount --bind \"$0\" /run/wireguard && exec wireguard-go \"$@\"' "
                            << dir_ << "/run \"$@\"\n";
    ASSERT_EQ(chmod(wrapper_.c_str(), 0755), 0);
    options_.uapi_dir = dir_ + "/run";
    options_.wireguard_go = wrapper_;
    options_.implementation = kUserspaceDriver;
  }

  void TearDown() override {
    KillAllInNamespace();
    ns_.reset();
    tmp_.reset();
  }

  // wireguard-go keeps a namespace alive after its name is gone: kill what runs there.
  void KillAllInNamespace() {
    for (int pid : Pids()) kill(pid, SIGKILL);
  }
  std::vector<int> Pids() {
    absl::StatusOr<CommandResult> r = RunCommand({"ip", "netns", "pids", ns_->name()});
    std::vector<int> out;
    if (!r.ok()) return out;
    for (absl::string_view p : absl::StrSplit(r->output, '\n', absl::SkipWhitespace())) {
      int pid;
      if (absl::SimpleAtoi(p, &pid) && pid > 1) out.push_back(pid);
    }
    return out;
  }

  std::unique_ptr<NetNs> ns_;
  std::unique_ptr<TempDir> tmp_;
  std::string dir_, wrapper_;
  DriverOptions options_;
};

bool KernelHasWireguard() {
  struct stat st;
  return stat("/sys/module/wireguard", &st) == 0;
}

TEST_F(WireguardNetnsTest, WithoutKernelWireguardAutoPicksWireguardGo) {
  if (KernelHasWireguard()) GTEST_SKIP() << "this kernel has WireGuard";
  absl::StatusOr<std::unique_ptr<Driver>> kernel = ns_->Run([&] { return NewKernelDriver(options_); });
  ASSERT_FALSE(kernel.ok());
  EXPECT_EQ(kernel.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(kernel.status().message()), ::testing::HasSubstr("no WireGuard"));
  EXPECT_FALSE(ns_->Sh("ip link show flannel-wg").ok()) << "the probe left nothing behind";
  DriverOptions automatic = options_;
  automatic.implementation = "auto";
  absl::StatusOr<std::unique_ptr<Driver>> picked = ns_->Run([&] { return NewDriver(automatic); });
  ASSERT_TRUE(picked.ok()) << picked.status();
  EXPECT_STREQ((*picked)->kind(), kUserspaceDriver);
  automatic.implementation = "bogus";
  EXPECT_EQ(NewDriver(automatic).status().code(), absl::StatusCode::kInvalidArgument);
}

Peer MakePeer(uint8_t fill, const char* subnet, const char* endpoint) {
  Peer p;
  p.public_key = *PublicKeyOf(*GeneratePrivateKey());
  p.preshared_key.fill(fill);
  p.endpoint_ip = *IPv4Addr::Parse(endpoint);
  p.endpoint_port = 51820;
  p.keepalive_seconds = fill;
  p.allowed_ips = {*IPv4Net::Parse(subnet)};
  return p;
}

TEST_F(WireguardNetnsTest, UserspaceDriverSpeaksWireguardGosProtocol) {
  std::unique_ptr<Driver> d = NewUserspaceDriver(options_);
  ASSERT_TRUE(ns_->Run([&] { return d->EnsureDevice(); }).ok());
  EXPECT_TRUE(ns_->Sh("ip link show flannel-wg").ok());
  ASSERT_EQ(Pids().size(), 1u) << "one wireguard-go daemon";
  const int daemon = Pids()[0];
  ASSERT_TRUE(ns_->Run([&] { return d->EnsureDevice(); }).ok());
  EXPECT_EQ(Pids(), std::vector<int>{daemon}) << "an answering daemon is kept";

  DeviceChange c;
  c.private_key = *GeneratePrivateKey();
  c.listen_port = 51999;
  const Peer p1 = MakePeer(0, "10.1.2.0/24", "192.0.2.2");
  const Peer p2 = MakePeer(25, "10.1.3.0/24", "192.0.2.3");
  c.peers = {{p1, false}, {p2, false}};
  ASSERT_TRUE(d->Set(c).ok());
  absl::StatusOr<Device> got = d->Get();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->private_key, *c.private_key);
  EXPECT_EQ(got->listen_port, 51999);
  ASSERT_EQ(got->peers.size(), 2u);
  for (const Peer& want : {p1, p2}) {
    auto it = std::find_if(got->peers.begin(), got->peers.end(),
                           [&](const Peer& p) { return p.public_key == want.public_key; });
    ASSERT_NE(it, got->peers.end());
    EXPECT_EQ(it->preshared_key, want.preshared_key);
    EXPECT_EQ(it->endpoint_ip, want.endpoint_ip);
    EXPECT_EQ(it->endpoint_port, want.endpoint_port);
    EXPECT_EQ(it->keepalive_seconds, want.keepalive_seconds);
    EXPECT_EQ(it->allowed_ips, want.allowed_ips);
    EXPECT_EQ(it->last_handshake, absl::UnixEpoch());
  }

  // Update one (allowed IPs replaced, not added), remove the other.
  Peer p1b = p1;
  p1b.allowed_ips = {*IPv4Net::Parse("10.1.9.0/24")};
  DeviceChange c2;
  c2.peers = {{p2, true}, {p1b, false}};
  ASSERT_TRUE(d->Set(c2).ok());
  got = d->Get();
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->peers.size(), 1u);
  EXPECT_EQ(got->peers[0].allowed_ips, p1b.allowed_ips);

  // wireguard-go crashes: its device goes; EnsureDevice starts a new one.
  kill(daemon, SIGKILL);
  Eventually([&] { return !ns_->Sh("ip link show flannel-wg").ok(); }, absl::Seconds(2));
  EXPECT_FALSE(d->Get().ok());
  ASSERT_TRUE(ns_->Run([&] { return d->EnsureDevice(); }).ok());
  got = d->Get();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got->peers.empty()) << "a fresh device: the backend sets it up again";

  // Deleting the device ends wireguard-go.
  ASSERT_TRUE(ns_->Run([&] { return d->DeleteDevice(); }).ok());
  EXPECT_FALSE(ns_->Sh("ip link show flannel-wg").ok());
  Eventually([&] { return Pids().empty(); }, absl::Seconds(4));
  EXPECT_TRUE(Pids().empty()) << "wireguard-go exits with its device";
  EXPECT_TRUE(ns_->Run([&] { return d->DeleteDevice(); }).ok()) << "deleting nothing is fine";
}

// The IPv6 forms of the protocol as wireguard-go reads and prints them: an
// [IPv6]:port endpoint and allowed IPs of both families on one peer, on a
// device named as flanneld's IPv6 one.
TEST_F(WireguardNetnsTest, UserspaceDriverSetsAndReadsIPv6EndpointsAndAllowedIps) {
  options_.device = "flannel-wg-v6";
  std::unique_ptr<Driver> d = NewUserspaceDriver(options_);
  ASSERT_TRUE(ns_->Run([&] { return d->EnsureDevice(); }).ok());
  EXPECT_TRUE(ns_->Sh("ip link show flannel-wg-v6").ok());
  Peer p = MakePeer(0, "10.1.2.0/24", "192.0.2.2");
  p.endpoint_ip = *IPv6Addr::Parse("fd77:2::12");
  p.endpoint_port = 51821;
  p.allowed_ips = {*IPv4Net::Parse("10.1.2.0/24"), *IPv6Net::Parse("fd00:12:0:2::/64")};
  Peer v6only = MakePeer(0, "10.1.3.0/24", "192.0.2.3");
  v6only.endpoint_ip = *IPv6Addr::Parse("2001:db8::3");
  v6only.allowed_ips = {*IPv6Net::Parse("fd00:12:0:3::/64")};
  DeviceChange c;
  c.private_key = *GeneratePrivateKey();
  c.listen_port = 51821;
  c.peers = {{p, false}, {v6only, false}};
  ASSERT_TRUE(d->Set(c).ok());
  absl::StatusOr<Device> got = d->Get();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->listen_port, 51821);
  ASSERT_EQ(got->peers.size(), 2u);
  for (const Peer& want : {p, v6only}) {
    auto it = std::find_if(got->peers.begin(), got->peers.end(),
                           [&](const Peer& q) { return q.public_key == want.public_key; });
    ASSERT_NE(it, got->peers.end());
    EXPECT_EQ(it->endpoint_ip, want.endpoint_ip);
    EXPECT_EQ(it->endpoint_port, want.endpoint_port);
    EXPECT_EQ(it->allowed_ips, want.allowed_ips);
  }
  ASSERT_TRUE(ns_->Run([&] { return d->DeleteDevice(); }).ok());
  EXPECT_FALSE(ns_->Sh("ip link show flannel-wg-v6").ok());
}

TEST_F(WireguardNetnsTest, MissingWireguardGoIsAClearError) {
  options_.wireguard_go = dir_ + "/no-such-wireguard-go";
  std::unique_ptr<Driver> d = NewUserspaceDriver(options_);
  absl::Status s = ns_->Run([&] { return d->EnsureDevice(); });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("no-such-wireguard-go"));
}

}  // namespace
}  // namespace weft::agent::wg
