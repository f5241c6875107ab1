// EtcdStore against real etcd 3.4 (single member and a 3-member cluster on
// loopback), and against Weft's own etcd API for the compaction resync.

#include "storage/etcd/etcd_store.h"

#include <cstdlib>
#include <filesystem>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "controller/etcd_api/etcd_api_server.h"
#include "gtest/gtest.h"
#include "storage/rocksdb/rocksdb_store.h"
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

PutRequest PutReq(const std::string& key, const std::string& value, int64_t lease = 0) {
  PutRequest r;
  r.key = key;
  r.value = value;
  r.lease = lease;
  return r;
}

RangeRequest RangeReq(const std::string& key, const std::string& end = "", int64_t revision = 0) {
  RangeRequest r;
  r.key = key;
  r.range_end = end;
  r.revision = revision;
  return r;
}

// Collects watch batches.
class Collector {
 public:
  std::function<void(const WatchBatch&)> Callback() {
    return [this](const WatchBatch& b) {
      absl::MutexLock l(&mu_);
      for (const Event& e : b.events) events_.push_back(e);
      EXPECT_GE(b.revision, revision_) << "batch revisions go backwards";
      revision_ = b.revision;
    };
  }
  // Waits until `n` events arrived; returns them.
  std::vector<Event> WaitFor(size_t n, absl::Duration timeout = absl::Seconds(30)) {
    absl::MutexLock l(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return events_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
    return events_;
  }
  int64_t revision() {
    absl::MutexLock l(&mu_);
    return revision_;
  }

 private:
  absl::Mutex mu_;
  std::vector<Event> events_ ABSL_GUARDED_BY(mu_);
  int64_t revision_ ABSL_GUARDED_BY(mu_) = 0;
};

TEST(EtcdStoreTest, KvTxnAndRevisionsAsTheStoreContract) {
  auto etcd = StartEtcd(1);
  ASSERT_NE(etcd, nullptr);
  auto store = OpenStore({"http://" + etcd->endpoint(0)});
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->CurrentRevision(), 1);

  auto p1 = store->Put(PutReq("k/a", "1"));
  ASSERT_TRUE(p1.ok()) << p1.status();
  EXPECT_EQ(p1->revision, 2);
  PutRequest again = PutReq("k/a", "2");
  again.prev_kv = true;
  auto p2 = store->Put(again);
  ASSERT_TRUE(p2.ok());
  ASSERT_TRUE(p2->prev_kv);
  EXPECT_EQ(p2->prev_kv->value, "1");
  ASSERT_TRUE(store->Put(PutReq("k/b", "x")).ok());

  auto r = store->Range(RangeReq("k/", PrefixEnd("k/")));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kvs.size(), 2u);
  EXPECT_EQ(r->kvs[0].version, 2);
  EXPECT_EQ(r->kvs[0].create_revision, 2);
  EXPECT_EQ(r->kvs[0].mod_revision, 3);
  EXPECT_EQ(r->revision, 4);
  auto old = store->Range(RangeReq("k/a", "", 2));
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->kvs[0].value, "1");
  auto future = store->Range(RangeReq("k/a", "", 100));
  EXPECT_TRUE(absl::IsOutOfRange(future.status())) << future.status();

  TxnRequest txn;
  Compare c;
  c.key = "k/a";
  c.target = Compare::Target::kVersion;
  c.operand = 2;
  txn.compares.push_back(c);
  RequestOp put;
  put.type = RequestOp::Type::kPut;
  put.put = PutReq("k/c", "new");
  txn.success.push_back(put);
  RequestOp get;
  get.type = RequestOp::Type::kRange;
  get.range = RangeReq("k/c");
  txn.success.push_back(get);
  auto t = store->Txn(txn);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_TRUE(t->succeeded);
  EXPECT_EQ(t->revision, 5);
  ASSERT_EQ(t->responses.size(), 2u);
  EXPECT_EQ(t->responses[1].range.kvs[0].value, "new");
  t = store->Txn(txn);  // k/a's version is still 2: succeeds again
  ASSERT_TRUE(t.ok());
  txn.compares[0].operand = 7;
  t = store->Txn(txn);
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t->succeeded);

  DeleteRangeRequest del;
  del.key = "k/";
  del.range_end = PrefixEnd("k/");
  del.prev_kv = true;
  auto d = store->DeleteRange(del);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->deleted, 3);
  EXPECT_EQ(d->prev_kvs.size(), 3u);

  // Compaction: reads below fail as the contract says; the probe finds it.
  const int64_t rev = store->CurrentRevision();
  EXPECT_EQ(store->CompactRevision(), 0);
  ASSERT_TRUE(store->Compact(rev - 1).ok());
  EXPECT_EQ(store->CompactRevision(), rev - 1);
  auto compacted = store->Range(RangeReq("k/a", "", rev - 2));
  EXPECT_TRUE(IsCompacted(compacted.status())) << compacted.status();
  EXPECT_TRUE(IsCompacted(store->Compact(rev - 1)));
  // A fresh store (no cache) finds the compact revision by probing.
  auto other = OpenStore({etcd->endpoint(0)});
  EXPECT_EQ(other->CompactRevision(), rev - 1);
}

TEST(EtcdStoreTest, LeasesMapOneToOne) {
  auto etcd = StartEtcd(1);
  ASSERT_NE(etcd, nullptr);
  auto store = OpenStore(etcd->endpoints());
  ASSERT_NE(store, nullptr);
  auto g = store->LeaseGrant(60, 4242);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->id, 4242);
  EXPECT_EQ(g->ttl_seconds, 60);
  EXPECT_TRUE(absl::IsAlreadyExists(store->LeaseGrant(60, 4242).status()));
  auto chosen = store->LeaseGrant(30);
  ASSERT_TRUE(chosen.ok());
  EXPECT_NE(chosen->id, 0);

  ASSERT_TRUE(store->Put(PutReq("l/1", "a", 4242)).ok());
  ASSERT_TRUE(store->Put(PutReq("l/2", "b", 4242)).ok());
  EXPECT_TRUE(absl::IsNotFound(store->Put(PutReq("l/3", "c", 999)).status()));
  auto ttl = store->LeaseTimeToLive(4242, true);
  ASSERT_TRUE(ttl.ok());
  EXPECT_EQ(ttl->granted_ttl_seconds, 60);
  EXPECT_GT(ttl->ttl_seconds, 50);
  EXPECT_EQ(ttl->keys, (std::vector<std::string>{"l/1", "l/2"}));
  auto ka = store->LeaseKeepAlive(4242);
  ASSERT_TRUE(ka.ok()) << ka.status();
  EXPECT_EQ(*ka, 60);
  EXPECT_TRUE(absl::IsNotFound(store->LeaseKeepAlive(999).status()));
  auto ids = store->Leases();
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(ids->size(), 2u);

  const int64_t before = store->CurrentRevision();
  ASSERT_TRUE(store->LeaseRevoke(4242).ok());
  EXPECT_EQ(store->CurrentRevision(), before + 1);  // both keys in one revision
  EXPECT_EQ(store->Range(RangeReq("l/", PrefixEnd("l/")))->kvs.size(), 0u);
  EXPECT_TRUE(absl::IsNotFound(store->LeaseRevoke(4242)));
  auto gone = store->LeaseTimeToLive(4242, false);
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone->ttl_seconds, -1);

  // Expiry is etcd's: a short lease takes its key with it.
  auto short_lease = store->LeaseGrant(2);
  ASSERT_TRUE(short_lease.ok());
  ASSERT_TRUE(store->Put(PutReq("short", "x", short_lease->id)).ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (absl::Now() < deadline && !store->Range(RangeReq("short"))->kvs.empty()) absl::SleepFor(absl::Milliseconds(200));
  EXPECT_TRUE(store->Range(RangeReq("short"))->kvs.empty());
}

TEST(EtcdStoreTest, WatchDeliversHistoryThenLiveChangesAndRefusesCompactedStarts) {
  auto etcd = StartEtcd(1);
  ASSERT_NE(etcd, nullptr);
  auto store = OpenStore(etcd->endpoints());
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put(PutReq("w/a", "1")).ok());  // 2
  ASSERT_TRUE(store->Put(PutReq("other", "x")).ok());  // 3
  ASSERT_TRUE(store->Put(PutReq("w/a", "2")).ok());  // 4

  Collector history;
  WatchRequest wr;
  wr.key = "w/";
  wr.range_end = PrefixEnd("w/");
  wr.start_revision = 2;
  wr.prev_kv = true;
  auto h = store->Watch(wr, history.Callback());
  ASSERT_TRUE(h.ok()) << h.status();
  Collector live;
  WatchRequest from_now = wr;
  from_now.start_revision = 0;
  auto l = store->Watch(from_now, live.Callback());
  ASSERT_TRUE(l.ok());

  DeleteRangeRequest del;
  del.key = "w/a";
  ASSERT_TRUE(store->DeleteRange(del).ok());  // 5
  auto events = history.WaitFor(3);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].kv.mod_revision, 2);
  EXPECT_EQ(events[1].kv.value, "2");
  ASSERT_TRUE(events[1].prev_kv);
  EXPECT_EQ(events[1].prev_kv->value, "1");
  EXPECT_EQ(events[2].type, Event::Type::kDelete);
  EXPECT_EQ(events[2].kv.mod_revision, 5);
  events = live.WaitFor(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, Event::Type::kDelete);
  EXPECT_EQ(live.revision(), 5);

  ASSERT_TRUE(store->Compact(4).ok());
  wr.start_revision = 3;
  auto refused = store->Watch(wr, [](const WatchBatch&) {});
  EXPECT_TRUE(IsCompacted(refused.status())) << refused.status();
  wr.start_revision = 4;  // at the compact revision: still allowed
  EXPECT_TRUE(store->Watch(wr, [](const WatchBatch&) {}).ok());
}

TEST(EtcdStoreTest, IdleWatchesReachTheRevisionsOfWritesElsewhere) {
  auto etcd = StartEtcd(1);
  ASSERT_NE(etcd, nullptr);
  auto store = OpenStore(etcd->endpoints());
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put(PutReq("p/a", "1")).ok());
  Collector c;
  WatchRequest wr;
  wr.key = "p/";
  wr.range_end = PrefixEnd("p/");
  auto h = store->Watch(wr, c.Callback());
  ASSERT_TRUE(h.ok());
  // A write outside the range, then a failed compare-and-swap inside it: a
  // caller waiting for its watch to reach that revision gets there.
  ASSERT_TRUE(store->Put(PutReq("elsewhere", "x")).ok());
  TxnRequest cas;
  Compare c0;
  c0.key = "p/a";
  c0.target = Compare::Target::kVersion;
  c0.operand = 0;
  cas.compares.push_back(c0);
  RequestOp put;
  put.type = RequestOp::Type::kPut;
  put.put = PutReq("p/a", "2");
  cas.success.push_back(put);
  auto r = store->Txn(cas);
  ASSERT_TRUE(r.ok());
  ASSERT_FALSE(r->succeeded);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (c.revision() < r->revision && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(c.revision(), r->revision);
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
  Collector c;
  WatchRequest wr;
  wr.key = "r/";
  wr.range_end = PrefixEnd("r/");
  auto h = store->Watch(wr, c.Callback());
  ASSERT_TRUE(h.ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(store->Put(PutReq(absl::StrCat("r/", i), "x")).ok());
  ASSERT_EQ(c.WaitFor(5).size(), 5u);

  etcd->Kill(0);
  ASSERT_TRUE(etcd->Restart(0));
  for (int i = 5; i < 10; ++i) {
    absl::StatusOr<PutResponse> p;
    for (int attempt = 0; attempt < 20; ++attempt) {
      p = store->Put(PutReq(absl::StrCat("r/", i), "x"));
      if (p.ok()) break;
      absl::SleepFor(absl::Milliseconds(200));
    }
    ASSERT_TRUE(p.ok()) << p.status();
  }
  auto events = c.WaitFor(10);
  ASSERT_EQ(events.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(events[i].kv.key, absl::StrCat("r/", i));
    if (i > 0) EXPECT_EQ(events[i].kv.mod_revision, events[i - 1].kv.mod_revision + 1);
  }
}

TEST(EtcdStoreTest, ClusterFailsOverWhenAMemberDies) {
  auto etcd = StartEtcd(3);
  ASSERT_NE(etcd, nullptr);
  auto store = OpenStore(etcd->endpoints());
  ASSERT_NE(store, nullptr);
  auto lease = store->LeaseGrant(30);
  ASSERT_TRUE(lease.ok());
  Collector c;
  WatchRequest wr;
  wr.key = "f/";
  wr.range_end = PrefixEnd("f/");
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
  Collector c;
  WatchRequest wr;
  wr.key = "s/";
  wr.range_end = PrefixEnd("s/");
  wr.start_revision = 4;
  auto h = store->Watch(wr, c.Callback());
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(store->Put(PutReq("s/changed", "1")).ok());  // 4
  ASSERT_EQ(c.WaitFor(1).size(), 1u);

  server.Stop();
  ASSERT_TRUE((*rocks)->Put(PutReq("s/changed", "2")).ok());  // 5
  DeleteRangeRequest del;
  del.key = "s/gone";
  ASSERT_TRUE((*rocks)->DeleteRange(del).ok());  // 6
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
  EXPECT_EQ(c.revision(), 8);

  // And it carries on live from there.
  ASSERT_TRUE(store->Put(PutReq("s/after", "1")).ok());
  events = c.WaitFor(5);
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[4].kv.key, "s/after");
  EXPECT_EQ(events[4].kv.mod_revision, 9);
}

}  // namespace
}  // namespace weft::storage
