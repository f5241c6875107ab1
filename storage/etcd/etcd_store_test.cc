// What only the etcd store does, against real etcd 3.4 (single member and a
// 3-member cluster on loopback) and against Weft's own etcd API for the
// compaction resync: failover, reconnecting watches, progress of idle watches,
// probing for the compact revision. The store contract it shares with the
// RocksDB store is in storage/store_conformance.h (etcd_store_conformance_test).

#include "storage/etcd/etcd_store.h"

#include <cstdlib>
#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/testing.h"
#include "controller/etcd_api/etcd_api_server.h"
#include "gtest/gtest.h"
#include "storage/rocksdb/rocksdb_store.h"
#include "storage/store_testing.h"
#include "tests/etcd/etcd_cluster.h"  // and tests/integration/process.h (FreePort)

namespace weft::storage {
namespace {

using weft::testing::EtcdCluster;

using weft::testing::TestDir;

std::unique_ptr<EtcdCluster> StartEtcd(int members) {
  EtcdCluster::Options o;
  o.members = members;
  o.dir = TestDir("etcd");
  o.log_dir = weft::testing::TestOutputDir();
  o.fast_elections = members > 1;
  std::string error;
  auto c = EtcdCluster::Start(o, &error);
  EXPECT_NE(c, nullptr) << error;
  return c;
}

std::unique_ptr<EtcdStore> OpenStore(const std::vector<std::string>& endpoints) {
  EtcdStore::Options o;
  o.endpoints = endpoints;
  auto s = EtcdStore::Open(o);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move(*s) : nullptr;
}

// etcd does not say how far it has compacted: a store finds out by probing
// reads at past revisions, also one that did not compact (no cache of its own).
TEST(EtcdStoreTest, CompactRevisionIsFoundByProbing) {
  auto etcd = StartEtcd(1);
  ASSERT_NE(etcd, nullptr);
  auto store = OpenStore({"http://" + etcd->endpoint(0)});
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(store->Put(PutReq("k", absl::StrCat(i))).ok());  // 2..11
  auto other = OpenStore({etcd->endpoint(0)});  // endpoints with or without http://
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(other->CompactRevision(), 0);
  ASSERT_TRUE(store->Compact(7).ok());
  EXPECT_EQ(other->CompactRevision(), 7);
  auto fresh = OpenStore({etcd->endpoint(0)});
  ASSERT_NE(fresh, nullptr);
  EXPECT_EQ(fresh->CompactRevision(), 7);
  ASSERT_TRUE(store->Compact(10).ok());
  EXPECT_EQ(other->CompactRevision(), 10);
}

TEST(EtcdStoreTest, IdleWatchesReachTheRevisionsOfWritesElsewhere) {
  auto etcd = StartEtcd(1);
  ASSERT_NE(etcd, nullptr);
  auto store = OpenStore(etcd->endpoints());
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put(PutReq("p/a", "1")).ok());
  WatchRecorder c;
  WatchRequest wr = WatchReq("p/", PrefixEnd("p/"));
  auto h = store->Watch(wr, c.Callback());
  ASSERT_TRUE(h.ok());
  // A write outside the range, then a failed compare-and-swap inside it: a
  // caller waiting for its watch to reach that revision gets there.
  ASSERT_TRUE(store->Put(PutReq("elsewhere", "x")).ok());
  auto r = store->Txn(PutIf("p/a", Compare::Target::kVersion, 0, "2"));
  ASSERT_TRUE(r.ok());
  ASSERT_FALSE(r->succeeded);
  EXPECT_TRUE(c.WaitForRevision(r->revision, absl::Seconds(10)));
  EXPECT_EQ(c.last_revision(), r->revision);
  EXPECT_TRUE(c.WaitFor(0).empty());
  // A change in the range after that is still delivered.
  ASSERT_TRUE(store->Put(PutReq("p/b", "1")).ok());
  auto events = c.WaitFor(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kv.key, "p/b");
}

TEST(EtcdStoreTest, WatchResumesAfterEtcdRestartsWithoutGapOrRepeat) {
  auto etcd = StartEtcd(1);
  ASSERT_NE(etcd, nullptr);
  auto store = OpenStore(etcd->endpoints());
  ASSERT_NE(store, nullptr);
  WatchRecorder c;
  WatchRequest wr = WatchReq("r/", PrefixEnd("r/"));
  auto h = store->Watch(wr, c.Callback());
  ASSERT_TRUE(h.ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(store->Put(PutReq(absl::StrCat("r/", i), "x")).ok());
  ASSERT_EQ(c.WaitFor(5).size(), 5u);

  etcd->Kill(0);
  ASSERT_TRUE(etcd->Restart(0));
  for (int i = 5; i < 10; ++i) {
    absl::StatusOr<PutResponse> p;
    Eventually([&] { return (p = store->Put(PutReq(absl::StrCat("r/", i), "x"))).ok(); }, absl::Seconds(30));
    ASSERT_TRUE(p.ok()) << p.status();
  }
  auto events = c.WaitFor(10);
  ASSERT_EQ(events.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(events[i].kv.key, absl::StrCat("r/", i));
    if (i > 0) {
      EXPECT_EQ(events[i].kv.mod_revision, events[i - 1].kv.mod_revision + 1);
    }
  }
}

TEST(EtcdStoreTest, ClusterFailsOverWhenAMemberDies) {
  auto etcd = StartEtcd(3);
  ASSERT_NE(etcd, nullptr);
  auto store = OpenStore(etcd->endpoints());
  ASSERT_NE(store, nullptr);
  auto lease = store->LeaseGrant(30);
  ASSERT_TRUE(lease.ok());
  WatchRecorder c;
  WatchRequest wr = WatchReq("f/", PrefixEnd("f/"));
  auto h = store->Watch(wr, c.Callback());
  ASSERT_TRUE(h.ok());

  std::map<std::string, int64_t> acked;  // key -> revision
  int unknown = 0;
  auto write = [&](int i) {
    const std::string key = absl::StrFormat("f/%03d", i);
    auto p = store->Put(PutReq(key, "v", lease->id));
    if (p.ok()) {
      acked[key] = p->revision;
    } else {
      // Only writes around the kill may end this way: UNAVAILABLE, outcome
      // unknown.
      EXPECT_TRUE(absl::IsUnavailable(p.status())) << p.status();
      ++unknown;
    }
  };
  for (int i = 0; i < 50; ++i) write(i);
  // Kill the member the store talks to.
  const std::string victim = store->current_endpoint();
  int victim_index = -1;
  for (int i = 0; i < etcd->size(); ++i) {
    if (etcd->endpoint(i) == victim) victim_index = i;
  }
  ASSERT_GE(victim_index, 0);
  etcd->Kill(victim_index);
  for (int i = 50; i < 150; ++i) write(i);
  // The write in flight on the dead connection, and (when the victim was the
  // leader) one a follower forwarded to it before noticing.
  EXPECT_LE(unknown, 2);
  EXPECT_NE(store->current_endpoint(), victim);
  EXPECT_TRUE(store->LeaseKeepAlive(lease->id).ok());

  // Every acknowledged write is stored, and the watch (which had to move too)
  // saw each change once, in revision order.
  auto all = store->Range(RangeReq("f/", PrefixEnd("f/")));
  ASSERT_TRUE(all.ok()) << all.status();
  for (const auto& [key, rev] : acked) {
    bool found = false;
    for (const KeyValue& kv : all->kvs) found |= kv.key == key && kv.mod_revision == rev;
    EXPECT_TRUE(found) << key;
  }
  auto events = c.WaitFor(all->kvs.size());
  ASSERT_EQ(events.size(), all->kvs.size());
  for (size_t i = 1; i < events.size(); ++i) EXPECT_GT(events[i].kv.mod_revision, events[i - 1].kv.mod_revision);

  // The member comes back and catches up; the store can use it again.
  ASSERT_TRUE(etcd->Restart(victim_index));
  auto back = OpenStore({etcd->endpoint(victim_index)});
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(back->Range(RangeReq("f/", PrefixEnd("f/")))->kvs.size(), all->kvs.size());
}

TEST(EtcdStoreTest, WritesGoOnWhenTheLeaderDies) {
  auto etcd = StartEtcd(3);
  ASSERT_NE(etcd, nullptr);
  // Talk to a follower first, so that the writes depend on a leader elsewhere.
  const int leader = etcd->Leader();
  ASSERT_GE(leader, 0);
  std::vector<std::string> endpoints;
  for (int i = 0; i < etcd->size(); ++i) {
    if (i != leader) endpoints.push_back(etcd->endpoint(i));
  }
  endpoints.push_back(etcd->endpoint(leader));
  auto store = OpenStore(endpoints);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put(PutReq("before", "x")).ok());
  etcd->Kill(leader);
  int ok = 0;
  int unknown = 0;
  for (int i = 0; i < 50; ++i) {
    auto p = store->Put(PutReq(absl::StrCat("after/", i), "v"));
    if (p.ok()) {
      ++ok;
    } else {
      EXPECT_TRUE(absl::IsUnavailable(p.status())) << p.status();
      ++unknown;
    }
  }
  // At most the write the follower forwarded to the dead leader before it
  // noticed (it times out: the outcome is unknown).
  EXPECT_LE(unknown, 1);
  EXPECT_GE(ok, 49);
  EXPECT_GE(etcd->Leader(), 0);
}

// Weft's etcd API over RocksDB, restartable on one port: lets the test compact
// while the watch is disconnected, which a real etcd cannot be made to do.
class WeftEtcd {
 public:
  WeftEtcd(RocksDbStore* store, int port) : store_(store), address_(absl::StrCat("127.0.0.1:", port)) { Start(); }
  ~WeftEtcd() { Stop(); }
  void Start() {
    grpc::ServerBuilder b;
    b.AddListeningPort(address_, grpc::InsecureServerCredentials());
    api_ = controller::etcd_api::RegisterEtcdApi(b, store_, controller::etcd_api::EtcdApiOptions());
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void Stop() {
    if (!server_) return;
    api_->Shutdown();
    server_->Shutdown(std::chrono::system_clock::now());
    server_.reset();
    api_.reset();
  }
  const std::string& address() const { return address_; }

 private:
  RocksDbStore* store_;
  std::string address_;
  std::unique_ptr<controller::etcd_api::EtcdApiServer> api_;
  std::unique_ptr<grpc::Server> server_;
};

TEST(EtcdStoreTest, WatchResyncsWhenItsResumeRevisionWasCompacted) {
  RocksDbStore::Options ro;
  ro.path = TestDir("rocksdb");
  ro.lease_expiry_interval = absl::ZeroDuration();
  auto rocks = RocksDbStore::Open(ro);
  ASSERT_TRUE(rocks.ok()) << rocks.status();
  WeftEtcd server(rocks->get(), weft::testing::FreePort());
  EtcdStore::Options o;
  o.endpoints = {server.address()};
  o.failover_timeout = absl::Seconds(3);
  auto opened = EtcdStore::Open(o);
  ASSERT_TRUE(opened.ok()) << opened.status();
  auto store = std::move(*opened);

  ASSERT_TRUE(store->Put(PutReq("s/keep", "1")).ok());  // 2: known to the watcher, unchanged
  ASSERT_TRUE(store->Put(PutReq("s/gone", "1")).ok());  // 3
  WatchRecorder c;
  WatchRequest wr = WatchReq("s/", PrefixEnd("s/"), 4);
  auto h = store->Watch(wr, c.Callback());
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(store->Put(PutReq("s/changed", "1")).ok());  // 4
  ASSERT_EQ(c.WaitFor(1).size(), 1u);

  server.Stop();
  ASSERT_TRUE((*rocks)->Put(PutReq("s/changed", "2")).ok());  // 5
  ASSERT_TRUE((*rocks)->DeleteRange(DeleteReq("s/gone")).ok());  // 6
  ASSERT_TRUE((*rocks)->Put(PutReq("s/new", "1")).ok());  // 7
  ASSERT_TRUE((*rocks)->Put(PutReq("s/new", "2")).ok());  // 8
  ASSERT_TRUE((*rocks)->Compact(8).ok());
  server.Start();

  auto events = c.WaitFor(4);
  ASSERT_EQ(events.size(), 4u);
  std::map<std::string, Event> last;
  for (size_t i = 1; i < events.size(); ++i) last[events[i].kv.key] = events[i];
  ASSERT_EQ(last.size(), 3u);
  EXPECT_EQ(last["s/gone"].type, Event::Type::kDelete);
  EXPECT_EQ(last["s/changed"].kv.value, "2");
  EXPECT_EQ(last["s/new"].kv.value, "2");
  EXPECT_EQ(last.count("s/keep"), 0u);
  EXPECT_EQ(c.last_revision(), 8);

  // And it carries on live from there.
  ASSERT_TRUE(store->Put(PutReq("s/after", "1")).ok());
  events = c.WaitFor(5);
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[4].kv.key, "s/after");
  EXPECT_EQ(events[4].kv.mod_revision, 9);
}

}  // namespace
}  // namespace weft::storage
