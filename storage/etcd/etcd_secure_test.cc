// EtcdStore against real etcd 3.4 members that require client certificates
// (--client-cert-auth, certificates made by tools/certs.sh) and that have
// etcd's own authentication enabled (a user whose role covers only the
// network prefix and the election key).

#include <cstdlib>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/testing.h"
#include "gtest/gtest.h"
#include "storage/etcd/etcd_store.h"
#include "tests/etcd/etcd_cluster.h"

namespace weft::storage {
namespace {

using weft::testing::EtcdCluster;

using weft::testing::TestDir;

std::unique_ptr<EtcdCluster> StartEtcd(const std::string& tls_dir) {
  EtcdCluster::Options o;
  o.dir = TestDir("etcd");
  o.log_dir = weft::testing::TestOutputDir();
  o.tls_dir = tls_dir;
  std::string error;
  auto c = EtcdCluster::Start(o, &error);
  EXPECT_NE(c, nullptr) << error;
  return c;
}

PutRequest PutReq(const std::string& key, const std::string& value) {
  PutRequest r;
  r.key = key;
  r.value = value;
  return r;
}

RangeRequest RangeReq(const std::string& key) {
  RangeRequest r;
  r.key = key;
  return r;
}

// Counts watch events.
class Counter {
 public:
  std::function<void(const WatchBatch&)> Callback() {
    return [this](const WatchBatch& b) {
      absl::MutexLock l(&mu_);
      n_ += b.events.size();
    };
  }
  bool WaitFor(size_t n) {
    absl::MutexLock l(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return n_ >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(30));
  }

 private:
  absl::Mutex mu_;
  size_t n_ ABSL_GUARDED_BY(mu_) = 0;
};

// Short timeouts for the attempts that are meant to fail.
EtcdStore::Options Quick(const std::vector<std::string>& endpoints) {
  EtcdStore::Options o;
  o.endpoints = endpoints;
  o.failover_timeout = absl::Seconds(2);
  o.connect_timeout = absl::Milliseconds(500);
  return o;
}

TEST(EtcdSecureTest, StoreWorksOverMutualTlsAndClientsWithoutTheRightCertificateAreRefused) {
  const std::string certs = TestDir("certs");
  auto etcd = StartEtcd(certs);
  ASSERT_NE(etcd, nullptr);

  EtcdStore::Options o;
  o.endpoints = etcd->urls();
  ASSERT_TRUE(absl::StartsWith(o.endpoints[0], "https://"));
  o.ca_file = etcd->ca_file();
  o.cert_file = etcd->client_cert_file();
  o.key_file = etcd->client_key_file();
  auto store = EtcdStore::Open(o);
  ASSERT_TRUE(store.ok()) << store.status();
  Counter c;
  WatchRequest wr;
  wr.key = "/coreos.com/network/";
  wr.range_end = PrefixEnd(wr.key);
  auto watch = (*store)->Watch(wr, c.Callback());
  ASSERT_TRUE(watch.ok()) << watch.status();
  ASSERT_TRUE((*store)->Put(PutReq("/coreos.com/network/config", "{}")).ok());
  auto got = (*store)->Range(RangeReq("/coreos.com/network/config"));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->kvs.size(), 1u);
  EXPECT_EQ(got->kvs[0].value, "{}");
  auto lease = (*store)->LeaseGrant(10);
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_TRUE((*store)->LeaseKeepAlive(lease->id).ok());
  EXPECT_TRUE(c.WaitFor(1)) << "no watch event over TLS";

  // The CA alone (TLS, but no client certificate): etcd refuses the connection.
  EtcdStore::Options no_cert = Quick(etcd->urls());
  no_cert.ca_file = etcd->ca_file();
  auto refused = EtcdStore::Open(no_cert);
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();

  // Plaintext to a TLS member.
  auto plain = EtcdStore::Open(Quick(etcd->endpoints()));
  EXPECT_FALSE(plain.ok());

  // A client certificate from another CA.
  std::string error;
  ASSERT_TRUE(weft::testing::MakeCerts({"--dir", certs, "--ca", "other-ca", "ca"}, &error)) << error;
  ASSERT_TRUE(weft::testing::MakeCerts({"--dir", certs, "--ca", "other-ca", "client", "stranger"}, &error)) << error;
  EtcdStore::Options stranger = Quick(etcd->urls());
  stranger.ca_file = etcd->ca_file();
  stranger.cert_file = certs + "/stranger.crt";
  stranger.key_file = certs + "/stranger.key";
  auto strange = EtcdStore::Open(stranger);
  EXPECT_FALSE(strange.ok());

  // A server that the given CA did not sign: the store refuses etcd.
  EtcdStore::Options wrong_ca = Quick(etcd->urls());
  wrong_ca.ca_file = certs + "/other-ca.crt";
  wrong_ca.cert_file = etcd->client_cert_file();
  wrong_ca.key_file = etcd->client_key_file();
  EXPECT_FALSE(EtcdStore::Open(wrong_ca).ok());
  // An expired client certificate.
  ASSERT_TRUE(weft::testing::MakeCerts({"--dir", certs, "--expired", "client", "old"}, &error)) << error;
  EtcdStore::Options expired = Quick(etcd->urls());
  expired.ca_file = etcd->ca_file();
  expired.cert_file = certs + "/old.crt";
  expired.key_file = certs + "/old.key";
  EXPECT_FALSE(EtcdStore::Open(expired).ok());
}

// The client certificate and key are re-read when their files change: a
// rotated certificate serves the next connection without a restart. Shown both
// ways: files swapped for a certificate etcd refuses make the store fail once
// etcd restarts (the old one would still be accepted), and the good ones put
// back make it work again.
TEST(EtcdSecureTest, RotatedClientCertificateIsUsedForTheNextConnection) {
  const std::string certs = TestDir("certs");
  auto etcd = StartEtcd(certs);
  ASSERT_NE(etcd, nullptr);
  std::string error;
  ASSERT_TRUE(weft::testing::MakeCerts({"--dir", certs, "--ca", "other-ca", "ca"}, &error)) << error;
  ASSERT_TRUE(weft::testing::MakeCerts({"--dir", certs, "--ca", "other-ca", "client", "stranger"}, &error)) << error;
  const std::string dir = TestDir("rotating");
  auto install = [&](const std::string& crt, const std::string& key) {
    // As a rotation does it: new files renamed over the old ones.
    std::filesystem::copy_file(crt, dir + "/client.crt.new", std::filesystem::copy_options::overwrite_existing);
    std::filesystem::copy_file(key, dir + "/client.key.new", std::filesystem::copy_options::overwrite_existing);
    std::filesystem::rename(dir + "/client.key.new", dir + "/client.key");
    std::filesystem::rename(dir + "/client.crt.new", dir + "/client.crt");
  };
  std::filesystem::create_directories(dir);
  install(etcd->client_cert_file(), etcd->client_key_file());

  EtcdStore::Options o = Quick(etcd->urls());
  o.ca_file = etcd->ca_file();
  o.cert_file = dir + "/client.crt";
  o.key_file = dir + "/client.key";
  o.tls_refresh_interval = absl::Seconds(1);
  auto store = EtcdStore::Open(o);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->Put(PutReq("/rotate", "1")).ok());

  // A second store on fixed copies of the good files: etcd is up when it reads.
  const std::string fixed = TestDir("fixed");
  std::filesystem::create_directories(fixed);
  std::filesystem::copy_file(etcd->client_cert_file(), fixed + "/client.crt");
  std::filesystem::copy_file(etcd->client_key_file(), fixed + "/client.key");
  EtcdStore::Options co = o;
  co.cert_file = fixed + "/client.crt";
  co.key_file = fixed + "/client.key";
  auto control = EtcdStore::Open(co);
  ASSERT_TRUE(control.ok()) << control.status();

  // True once a read of `s` succeeds within `within`.
  auto reads = [](EtcdStore* s, absl::Duration within) {
    return Eventually([s] { return s->Range(RangeReq("/rotate")).ok(); }, within);
  };
  install(certs + "/stranger.crt", certs + "/stranger.key");
  // Each round restarts etcd so that every connection handshakes anew; the
  // provider reads the new files within a refresh period, after which the
  // store is refused while the control store is not.
  bool refused = false;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(60); !refused && absl::Now() < deadline;) {
    etcd->Kill(0);
    ASSERT_TRUE(etcd->Restart(0));
    ASSERT_TRUE(reads(control->get(), absl::Seconds(30))) << "etcd did not come back";
    refused = !reads(store->get(), absl::Seconds(3));
  }
  EXPECT_TRUE(refused) << "the store still connects with the certificate it read at start";
  install(etcd->client_cert_file(), etcd->client_key_file());
  EXPECT_TRUE(reads(store->get(), absl::Seconds(60))) << "the store did not pick the good certificate back up";
}

TEST(EtcdSecureTest, BadTlsSettingsAreClearErrors) {
  EtcdStore::Options mixed = Quick({"https://127.0.0.1:1", "http://127.0.0.1:2"});
  auto s = EtcdStore::Open(mixed);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.status().message(), "mix")) << s.status();

  EtcdStore::Options missing = Quick({"https://127.0.0.1:1"});
  missing.ca_file = "/nonexistent/ca.crt";
  s = EtcdStore::Open(missing);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.status().message(), "/nonexistent/ca.crt")) << s.status();

  EtcdStore::Options half = Quick({"https://127.0.0.1:1"});
  half.cert_file = "/etc/hostname";
  s = EtcdStore::Open(half);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << s.status();

  const std::string dir = TestDir("files");
  const std::string not_pem = dir + "/ca.txt";
  FILE* f = fopen(not_pem.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fputs("hello\n", f);
  fclose(f);
  EtcdStore::Options bad = Quick({"127.0.0.1:1"});
  bad.ca_file = not_pem;
  s = EtcdStore::Open(bad);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.status().message(), "not a PEM file")) << s.status();

  EXPECT_EQ(EtcdStore::Open(Quick({"ftp://127.0.0.1:1"})).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(EtcdSecureTest, StoreLogsInAsARestrictedUserAndLogsInAgainWhenTheTokenDies) {
  auto etcd = StartEtcd("");
  ASSERT_NE(etcd, nullptr);
  // etcd's auth as flannel's docs set it up: root, and a user whose role may
  // read and write the network prefix and the election key only.
  std::string error;
  ASSERT_TRUE(etcd->EnableAuth("weft", "weft-pw", {"/coreos.com/network/", "/weft.io/controller/"}, &error)) << error;

  // Without credentials etcd refuses.
  EXPECT_FALSE(EtcdStore::Open(Quick(etcd->endpoints())).ok());
  // A wrong password: a clear error, at once.
  EtcdStore::Options wrong = Quick(etcd->endpoints());
  wrong.username = "weft";
  wrong.password = "not-the-password";
  auto refused = EtcdStore::Open(wrong);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnauthenticated) << refused.status();
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "weft")) << refused.status();
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "invalid user ID or password")) << refused.status();
  EXPECT_FALSE(absl::StrContains(refused.status().message(), "not-the-password")) << "the password leaks";

  EtcdStore::Options o;
  o.endpoints = etcd->endpoints();
  o.username = "weft";
  o.password = "weft-pw";
  o.probe_key = "/coreos.com/network/config";
  auto store = EtcdStore::Open(o);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->logins(), 1);
  Counter c;
  WatchRequest wr;
  wr.key = "/coreos.com/network/";
  wr.range_end = PrefixEnd(wr.key);
  auto watch = (*store)->Watch(wr, c.Callback());
  ASSERT_TRUE(watch.ok()) << watch.status();
  ASSERT_TRUE((*store)->Put(PutReq("/coreos.com/network/config", "{}")).ok());
  ASSERT_TRUE((*store)->Put(PutReq("/weft.io/controller/leader", "c0")).ok());
  auto lease = (*store)->LeaseGrant(10);
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_TRUE((*store)->LeaseKeepAlive(lease->id).ok());
  ASSERT_TRUE(c.WaitFor(1));
  // Outside its role: etcd's permission check, passed through.
  auto outside = (*store)->Put(PutReq("/other", "x"));
  EXPECT_EQ(outside.status().code(), absl::StatusCode::kPermissionDenied) << outside.status();

  // A restarted member still knows the token (the login is in its raft log,
  // replayed at start): the store carries on through the restart.
  etcd->Kill(0);
  ASSERT_TRUE(etcd->Restart(0));
  auto PutUntilOk = [&](const std::string& key) {
    absl::StatusOr<PutResponse> p;
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    do {
      p = (*store)->Put(PutReq(key, "{}"));
    } while (!p.ok() && absl::Now() < deadline);
    return p.status();
  };
  ASSERT_TRUE(PutUntilOk("/coreos.com/network/subnets/10.1.2.0-24").ok());
  EXPECT_TRUE(c.WaitFor(2)) << "the watch did not resume after the restart";

  // Switching auth off and on drops every simple token (as their TTL does):
  // the next call is refused with "invalid auth token", the store logs in
  // again and the call goes through; the watch stream, refused too, resumes
  // after its own login.
  std::string out;
  ASSERT_EQ(etcd->Etcdctl({"auth", "disable"}, &out, /*as_root=*/true), 0) << out;
  ASSERT_EQ(etcd->Etcdctl({"auth", "enable"}, &out), 0) << out;
  const int64_t before = (*store)->logins();
  auto p = (*store)->Put(PutReq("/coreos.com/network/subnets/10.1.3.0-24", "{}"));
  ASSERT_TRUE(p.ok()) << p.status() << " (no retry after a fresh login)";
  EXPECT_EQ((*store)->logins(), before + 1);
  auto got = (*store)->Range(RangeReq("/coreos.com/network/subnets/10.1.3.0-24"));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->kvs.size(), 1u);
  ASSERT_TRUE((*store)->Put(PutReq("/coreos.com/network/subnets/10.1.4.0-24", "{}")).ok());
  EXPECT_TRUE(c.WaitFor(4)) << "the watch did not resume after the token died";
}

}  // namespace
}  // namespace weft::storage
