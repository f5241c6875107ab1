// Replicated controllers on a real 3-member etcd cluster (loopback): clients
// that fail over between 3 controllers keep acquiring while the controller they
// use is killed and then an etcd member is killed. Afterwards every acknowledged
// lease is there, held by its node; no subnet and no node appears twice; and
// leases still expire after the failovers.

#include <atomic>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "agent/controller_client.h"
#include "gtest/gtest.h"
#include "tests/etcd/etcd_cluster.h"
#include "tests/integration/controller_fixture.h"

namespace weft::testing {
namespace {

weft::v1::AcquireLeaseRequest Node(int i) {
  weft::v1::AcquireLeaseRequest r;
  r.set_node_name(absl::StrCat("ha-", i));
  r.set_public_ip(absl::StrCat("198.51.", i / 250, ".", i % 250 + 1));
  r.set_backend_type("vxlan");
  r.set_backend_data(absl::StrFormat(R"({"VNI":1,"VtepMAC":"02:00:00:00:%02x:%02x"})", i >> 8, i & 0xff));
  return r;
}

TEST(HaTest, FailoverLosesNothingAndExpiryContinues) {
  std::string error;
  EtcdCluster::Options eo;
  eo.members = 3;
  eo.dir = DataDir("etcd");
  eo.log_dir = DataDir("");
  eo.fast_elections = true;
  std::unique_ptr<EtcdCluster> etcd = EtcdCluster::Start(eo, &error);
  ASSERT_NE(etcd, nullptr) << error;
  const std::string endpoints = absl::StrJoin(etcd->endpoints(), ",");

  std::vector<std::unique_ptr<Controller>> controllers;
  std::vector<std::string> addrs;
  for (int i = 0; i < 3; ++i) {
    controllers.push_back(std::make_unique<Controller>(DataDir(absl::StrCat("unused", i).c_str())));
    controllers.back()->Start({"--store", "etcd", "--etcd-endpoints", endpoints});
    addrs.push_back(controllers.back()->addr());
  }
  {
    weft::v1::SetNetworkConfigRequest req;
    req.set_config(R"({"Network":"10.0.0.0/12","LeaseTTL":"20s","Backend":{"Type":"vxlan"}})");
    weft::v1::SetNetworkConfigResponse resp;
    grpc::Status s = controllers[0]->network()->SetNetworkConfig(Ctx().get(), req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  // Every client starts on controller 0, the one that will be killed.
  agent::ControllerClient::Options co;
  co.endpoints = addrs;
  co.rpc_timeout = absl::Seconds(20);
  absl::Mutex mu;
  std::map<std::string, std::string> acked;  // node -> subnet
  std::atomic<int> next{0}, failed{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      agent::ControllerClient client(co);
      while (!stop.load()) {
        const int i = next.fetch_add(1);
        auto resp = client.Acquire(Node(i));
        if (!resp.ok()) {
          failed++;
          continue;
        }
        absl::MutexLock l(&mu);
        acked[Node(i).node_name()] = resp->lease().subnet();
      }
    });
  }
  absl::SleepFor(absl::Seconds(1));
  controllers[0]->Kill9();
  absl::SleepFor(absl::Seconds(1));
  const int leader = etcd->Leader();
  etcd->Kill(leader >= 0 ? leader : 0);
  absl::SleepFor(absl::Seconds(2));
  stop.store(true);
  for (auto& t : threads) t.join();
  std::cerr << "acknowledged " << acked.size() << " acquisitions, " << failed.load()
            << " failed calls across the failovers\n";
  ASSERT_GT(acked.size(), 20u) << "too few acquisitions to mean anything (" << failed.load() << " failed)";

  // Checked through a surviving controller, well inside the 20 s TTL.
  Controller& c = *controllers[1];
  weft::v1::ListLeasesResponse list;
  grpc::Status s = c.leases()->ListLeases(Ctx(20).get(), {}, &list);
  ASSERT_TRUE(s.ok()) << s.error_message();
  std::map<std::string, std::string> holder;  // subnet -> node
  std::set<std::string> nodes;
  for (const auto& l : list.leases()) {
    EXPECT_TRUE(holder.emplace(l.subnet(), l.node_name()).second) << l.subnet() << " listed twice";
    EXPECT_TRUE(nodes.insert(l.node_name()).second) << l.node_name() << " holds two subnets";
  }
  for (const auto& [node, subnet] : acked) {
    auto it = holder.find(subnet);
    ASSERT_NE(it, holder.end()) << "acknowledged lease " << subnet << " of " << node << " lost";
    EXPECT_EQ(it->second, node);
  }
  // Nobody renews: after the TTL (20 s + the 1 s bucket) every lease expires,
  // with the first controller and one etcd member still down.
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  int left = list.leases_size();
  while (left > 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Seconds(1));
    weft::v1::ListLeasesResponse now;
    if (c.leases()->ListLeases(Ctx(20).get(), {}, &now).ok()) left = now.leases_size();
  }
  EXPECT_EQ(left, 0) << "leases did not expire after the failover";
}

}  // namespace
}  // namespace weft::testing
