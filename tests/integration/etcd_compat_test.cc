// The controller's etcd faces, with the real etcdctl and the real etcd server:
// --etcd-listen serves the etcd v3 API over the controller's own store (leases
// written in flannel's format through it are honoured by the allocator, bad ones
// refused), and --store=etcd keeps the leases in a real etcd.

#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/testing.h"
#include "gtest/gtest.h"
#include "tests/integration/controller_fixture.h"

namespace weft::testing {
namespace {

constexpr char kEtcdctl[] = "/usr/bin/etcdctl";

int Etcdctl(const std::string& endpoint, std::vector<std::string> args, std::string* out) {
  std::vector<std::string> argv = {"/usr/bin/env", "ETCDCTL_API=3", kEtcdctl, "--endpoints", endpoint,
                                   "--command-timeout=5s"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, out);
}

weft::v1::AcquireLeaseRequest Node(int i) {
  weft::v1::AcquireLeaseRequest r;
  r.set_node_name(absl::StrCat("e", i));
  r.set_public_ip(absl::StrCat("192.0.2.", i));
  r.set_backend_type("vxlan");
  r.set_backend_data(R"({"VNI":1,"VtepMAC":"02:00:00:00:00:01"})");
  return r;
}

void SetConfig(Controller& c, const std::string& json) {
  weft::v1::SetNetworkConfigRequest req;
  req.set_config(json);
  weft::v1::SetNetworkConfigResponse resp;
  grpc::Status s = c.network()->SetNetworkConfig(Ctx().get(), req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
}

TEST(EtcdCompatTest, EtcdctlSeesAndWritesFlannelLeases) {
  Controller c(DataDir("etcd-listen"));
  const std::string etcd_addr = absl::StrCat("127.0.0.1:", FreePort());
  c.Start({"--etcd-listen", etcd_addr});
  SetConfig(c, R"({"Network":"10.1.0.0/28","SubnetLen":30,"Backend":{"Type":"vxlan"}})");
  weft::v1::AcquireLeaseResponse a;
  ASSERT_TRUE(c.leases()->AcquireLease(Ctx().get(), Node(1), &a).ok());
  // etcdctl reads the lease in flannel's keyspace and JSON.
  std::string out;
  ASSERT_EQ(Etcdctl(etcd_addr, {"get", "--prefix", "/coreos.com/network/subnets/"}, &out), 0) << out;
  std::string key = a.lease().subnet();
  key[key.find('/')] = '-';
  EXPECT_TRUE(absl::StrContains(out, "/coreos.com/network/subnets/" + key)) << out;
  EXPECT_TRUE(absl::StrContains(out, R"("PublicIP":"192.0.2.1")")) << out;

  // A lease written by flannel's own tools through etcd is honoured: the allocator
  // never hands that subnet out. Pick a free one of the three.
  std::string free_key;
  for (const char* k : {"10.1.0.4-30", "10.1.0.8-30", "10.1.0.12-30"}) {
    if (k != key) {
      free_key = k;
      break;
    }
  }
  ASSERT_EQ(Etcdctl(etcd_addr,
                    {"put", "/coreos.com/network/subnets/" + free_key,
                     R"({"PublicIP":"192.0.2.200","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:c8"}})"},
                    &out),
            0)
      << out;
  weft::v1::AcquireLeaseResponse b;
  ASSERT_TRUE(c.leases()->AcquireLease(Ctx().get(), Node(2), &b).ok());
  std::string bkey = b.lease().subnet();
  bkey[bkey.find('/')] = '-';
  EXPECT_NE(bkey, free_key) << "the allocator handed out a subnet written through etcd";
  weft::v1::ListLeasesResponse list;
  ASSERT_TRUE(c.leases()->ListLeases(Ctx().get(), {}, &list).ok());
  EXPECT_EQ(list.leases_size(), 3);
  // The pool is now full.
  weft::v1::AcquireLeaseResponse none;
  EXPECT_EQ(c.leases()->AcquireLease(Ctx().get(), Node(3), &none).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);

  // Writes that would corrupt allocation state are refused and change nothing.
  EXPECT_NE(Etcdctl(etcd_addr, {"put", "/coreos.com/network/subnets/10.1.0.4-30", "not json"}, &out), 0);
  EXPECT_NE(Etcdctl(etcd_addr,
                    {"put", "/coreos.com/network/subnets/10.9.0.0-24", R"({"PublicIP":"192.0.2.9","BackendType":"vxlan"})"},
                    &out),
            0);
  EXPECT_NE(Etcdctl(etcd_addr,
                    {"put", "/coreos.com/network/subnets/10.1.0.5-30", R"({"PublicIP":"192.0.2.9","BackendType":"vxlan"})"},
                    &out),
            0);
  ASSERT_EQ(Etcdctl(etcd_addr, {"get", "--prefix", "--keys-only", "/coreos.com/network/subnets/"}, &out), 0);
  int keys = 0;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipWhitespace())) keys += !line.empty();
  EXPECT_EQ(keys, 3) << out;

  // A lease written through the etcd API with an etcd lease of its own shows
  // when that lease expires, in GetLease, ListLeases and weftctl.
  ASSERT_EQ(Etcdctl(etcd_addr, {"del", "/coreos.com/network/subnets/" + free_key}, &out), 0) << out;
  ASSERT_EQ(Etcdctl(etcd_addr, {"lease", "grant", "600"}, &out), 0) << out;
  const std::string lease_id = out.substr(6, out.find(' ', 6) - 6);  // "lease 694d7a... granted with TTL(600s)"
  ASSERT_EQ(Etcdctl(etcd_addr,
                    {"put", "--lease=" + lease_id, "/coreos.com/network/subnets/" + free_key,
                     R"({"PublicIP":"192.0.2.201","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:c9"}})"},
                    &out),
            0)
      << out;
  std::string free_subnet = free_key;
  free_subnet[free_subnet.find('-')] = '/';
  weft::v1::GetLeaseResponse got;
  weft::v1::GetLeaseRequest get;
  get.set_subnet(free_subnet);
  Eventually(  // the watch applies it
      [&] {
        got.Clear();
        return c.leases()->GetLease(Ctx().get(), get, &got).ok() && got.lease().public_ip() == "192.0.2.201";
      },
      absl::Seconds(20));
  ASSERT_EQ(got.lease().public_ip(), "192.0.2.201");
  ASSERT_TRUE(got.lease().has_expiration()) << got.DebugString();
  const int64_t left = got.lease().expiration().seconds() - absl::ToUnixSeconds(absl::Now());
  EXPECT_GT(left, 500);
  EXPECT_LE(left, 601);
  ASSERT_EQ(RunCommand({Runfile("tools/weftctl/weftctl"), "--controller", c.addr(), "lease", "show", free_key, "-o",
                        "json"},
                       &out),
            0);
  EXPECT_TRUE(absl::StrContains(out, "\"expiration\":\"20")) << out;
  weft::v1::ListLeasesResponse listed;
  ASSERT_TRUE(c.leases()->ListLeases(Ctx().get(), {}, &listed).ok());
  for (const auto& l : listed.leases()) {
    if (l.subnet() == free_subnet) {
      EXPECT_TRUE(l.has_expiration()) << l.DebugString();
    }
  }

  // endpoint status: the API level with Weft's version, the store's real size,
  // this member as the leader.
  ASSERT_EQ(Etcdctl(etcd_addr, {"endpoint", "status", "-w", "json"}, &out), 0) << out;
  EXPECT_TRUE(absl::StrContains(out, "\"version\":\"3.4.0+weft.0.1.0\"")) << out;
  EXPECT_FALSE(absl::StrContains(out, "\"dbSize\":0,")) << out;
  const size_t member = out.find("\"member_id\":");
  const size_t leader = out.find("\"leader\":");
  ASSERT_NE(member, std::string::npos) << out;
  ASSERT_NE(leader, std::string::npos) << out;
  const std::string member_id = out.substr(member + 12, out.find_first_of(",}", member) - member - 12);
  const std::string leader_id = out.substr(leader + 9, out.find_first_of(",}", leader) - leader - 9);
  EXPECT_EQ(member_id, leader_id) << out;
  EXPECT_NE(leader_id, "0") << out;
}

class Etcd {
 public:
  void Start() {
    client_ = absl::StrCat("127.0.0.1:", FreePort());
    const std::string peer = absl::StrCat("http://127.0.0.1:", FreePort());
    const std::string dir = DataDir("etcd-server");
    ASSERT_TRUE(proc_.Start({"/usr/bin/etcd", "--name", "t", "--data-dir", dir, "--listen-client-urls",
                             "http://" + client_, "--advertise-client-urls", "http://" + client_,
                             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                             "--initial-cluster", "t=" + peer},
                            DataDir("etcd.log")));
    std::string out;
    ASSERT_TRUE(Eventually([&] { return Etcdctl(client_, {"endpoint", "health"}, &out) == 0; }, absl::Seconds(20)))
        << "etcd did not start: " << out;
  }
  const std::string& client() const { return client_; }

 private:
  std::string client_;
  Process proc_;
};

TEST(EtcdCompatTest, LeasesLiveInARealEtcdWithStoreEtcd) {
  Etcd etcd;
  etcd.Start();
  Controller c(DataDir("unused"));
  c.Start({"--store", "etcd", "--etcd-endpoints", etcd.client()});
  SetConfig(c, R"({"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}})");
  weft::v1::AcquireLeaseResponse a;
  ASSERT_TRUE(c.leases()->AcquireLease(Ctx().get(), Node(1), &a).ok());
  std::string key = a.lease().subnet();
  key[key.find('/')] = '-';
  std::string out;
  ASSERT_EQ(Etcdctl(etcd.client(), {"get", "/coreos.com/network/subnets/" + key}, &out), 0);
  EXPECT_TRUE(absl::StrContains(out, R"("NodeName":"e1")")) << out;
  // The key carries an etcd lease with a TTL, as flannel's do.
  ASSERT_EQ(Etcdctl(etcd.client(), {"get", "/coreos.com/network/subnets/" + key, "-w", "json"}, &out), 0);
  EXPECT_TRUE(absl::StrContains(out, "\"lease\":")) << out;
  // A restarted controller finds it there, and the node keeps its subnet.
  c.Stop();
  c.Start({"--store", "etcd", "--etcd-endpoints", etcd.client()});
  weft::v1::AcquireLeaseResponse again;
  ASSERT_TRUE(c.leases()->AcquireLease(Ctx().get(), Node(1), &again).ok());
  EXPECT_EQ(again.lease().subnet(), a.lease().subnet());
}

}  // namespace
}  // namespace weft::testing
