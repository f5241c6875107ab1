// What only the RocksDB store does: group commit, its simulated-clock lease
// deadlines, input checks, the watch history bound, compaction on disk,
// reopening. The store contract it shares with the etcd store is in
// storage/store_conformance.h (rocksdb_store_conformance_test).

#include "storage/rocksdb/rocksdb_store.h"

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/testing.h"
#include "gtest/gtest.h"
#include "storage/store_testing.h"

namespace weft::storage {
namespace {

class RocksDbStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.path = dir_.path();
    options_.clock = &clock_;
    options_.lease_expiry_interval = absl::ZeroDuration();
    options_.history_revisions = 0;
    Reopen();
  }

  void Reopen() {
    store_.reset();
    absl::StatusOr<std::unique_ptr<RocksDbStore>> s = RocksDbStore::Open(options_);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
  }

  const TempDir dir_{"rocksdb-"};  // outlives the store
  SimulatedClock clock_;
  RocksDbStore::Options options_;
  std::unique_ptr<RocksDbStore> store_;
};

TEST_F(RocksDbStoreTest, ConcurrentWritersShareSyncs) {
  std::atomic<int64_t> reported{0};
  std::atomic<int> callbacks{0};
  options_.on_commit = [&](absl::Duration, int n) {
    reported += n;
    ++callbacks;
  };
  Reopen();
  constexpr int kThreads = 32;
  constexpr int kPuts = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPuts; ++i) {
        ASSERT_TRUE(store_->Put(PutReq(absl::StrCat("k", t, "/", i), "v")).ok());
        // What a read returns is durable, hence already current.
        const int64_t read_at = store_->Range(RangeReq("k0/0")).value().revision;
        ASSERT_LE(read_at, store_->CurrentRevision());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const RocksDbStore::CommitStats stats = store_->commit_stats();
  EXPECT_EQ(stats.writes, static_cast<uint64_t>(kThreads * kPuts));
  EXPECT_EQ(stats.syncs, stats.group_commits);
  EXPECT_LT(stats.group_commits, stats.writes);  // groups of more than one
  EXPECT_GT(stats.max_group_size, 1u);
  EXPECT_EQ(store_->CurrentRevision(), 1 + kThreads * kPuts);
  // on_commit runs after the group's writers are woken; closing joins the committer.
  store_.reset();
  EXPECT_EQ(reported, kThreads * kPuts);
  EXPECT_EQ(callbacks, static_cast<int>(stats.group_commits));
}

TEST_F(RocksDbStoreTest, LargePrefixRange) {
  TxnRequest txn;
  for (int i = 0; i < 10000; ++i) txn.success.push_back(PutOp(absl::StrCat("/n/", 100000 + i), "v"));
  ASSERT_TRUE(store_->Txn(txn).ok());
  MustPut(*store_, "/o", "outside");
  const absl::Time start = absl::Now();
  RangeResponse r = MustRange(*store_, RangeReq("/n/", PrefixEnd("/n/")));
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(r.count, 10000);
  EXPECT_EQ(r.kvs.front().key, "/n/100000");
  EXPECT_LT(took, absl::Seconds(1));  // in memory: a few ms
  EXPECT_EQ(MustRange(*store_, RangeReq("/n/", PrefixEnd("/n/"), 2)).count, 10000);  // from disk
}

// etcd grants these instead: a TTL of 0 at its minimum TTL, a negative id as asked.
TEST_F(RocksDbStoreTest, LeaseGrantRefusesNonPositiveTtlsAndNegativeIds) {
  EXPECT_TRUE(absl::IsInvalidArgument(store_->LeaseGrant(0).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(store_->LeaseGrant(10, -1).status()));
  EXPECT_TRUE(store_->Leases()->empty());
}

// On the simulated clock a lease's deadline is exact, to the fraction of a second.
TEST_F(RocksDbStoreTest, LeaseDeadlineIsExact) {
  const int64_t id = store_->LeaseGrant(10).value().id;
  MustPut(*store_, "a", "1", id);
  clock_.Advance(absl::Milliseconds(6500));
  EXPECT_EQ(store_->LeaseTimeToLive(id, false)->ttl_seconds, 4);  // 3.5 s, rounded up
  EXPECT_EQ(store_->ExpireDueLeases().value(), 0);
  EXPECT_EQ(store_->LeaseKeepAlive(id).value(), 10);
  EXPECT_EQ(store_->LeaseTimeToLive(id, false)->ttl_seconds, 10);

  clock_.Advance(absl::Seconds(10));  // deadline reached exactly: dead before the expiry pass runs
  EXPECT_TRUE(absl::IsNotFound(store_->LeaseKeepAlive(id).status()));
  EXPECT_EQ(store_->LeaseTimeToLive(id, false)->ttl_seconds, -1);
  const int64_t before = store_->CurrentRevision();
  EXPECT_EQ(store_->ExpireDueLeases().value(), 1);
  EXPECT_EQ(store_->CurrentRevision(), before + 1);
  EXPECT_FALSE(Get(*store_, "a"));
}

TEST_F(RocksDbStoreTest, BackgroundThreadExpiresLeases) {
  options_.lease_expiry_interval = absl::Milliseconds(5);
  Reopen();
  const int64_t id = store_->LeaseGrant(5).value().id;
  MustPut(*store_, "k", "v", id);
  // The expiry loop waits on the store's clock: 5 s of it wakes it, and once it
  // waits again its pass is done.
  clock_.AwaitWaiters(1);
  clock_.Advance(absl::Seconds(5));
  clock_.AwaitWaiters(1);
  EXPECT_FALSE(Get(*store_, "k"));
  EXPECT_TRUE(store_->Leases()->empty());
}

TEST_F(RocksDbStoreTest, WatchHistoryOverItsByteBoundIsRefusedPlainly) {
  options_.max_watch_history_bytes = 64 << 10;
  Reopen();
  const std::string value(1024, 'v');
  for (int i = 0; i < 100; ++i) MustPut(*store_, absl::StrCat("w/", i % 10), value);  // revisions 2..101
  WatchRequest req = WatchReq("w/", PrefixEnd("w/"), 2);  // ~100 KiB of history
  WatchRecorder rec;
  absl::StatusOr<std::unique_ptr<WatchHandle>> w = store_->Watch(req, rec.Callback());
  ASSERT_EQ(w.status().code(), absl::StatusCode::kResourceExhausted) << w.status();
  EXPECT_NE(w.status().message().find("--max-watch-history-bytes"), std::string::npos) << w.status();
  // Other keys' history does not count; a later start fits.
  req.key = "x";
  req.range_end.clear();
  EXPECT_TRUE(store_->Watch(req, rec.Callback()).ok());
  req.key = "w/";
  req.range_end = PrefixEnd("w/");
  req.start_revision = 62;  // 40 events, 40 KiB
  w = store_->Watch(req, rec.Callback());
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(rec.WaitFor(40).size(), 40u);
  // prev_kv doubles what each event holds.
  req.prev_kv = true;
  EXPECT_EQ(store_->Watch(req, rec.Callback()).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(RocksDbStoreTest, RepeatedCompactionsKeepReadsRight) {
  // Compacting in steps must keep, for every key, its newest version.
  for (int rev = 2; rev <= 60; ++rev) {
    if (rev % 10 == 0) {
      MustDelete(*store_, absl::StrCat("k", rev % 3));
    } else {
      MustPut(*store_, absl::StrCat("k", rev % 3), absl::StrCat(rev));
    }
  }
  std::vector<RangeResponse> expected;  // as of revisions 40..60, before compaction
  for (int64_t rev = 40; rev <= 60; ++rev) expected.push_back(MustRange(*store_, RangeReq("k", kAllKeys, rev)));
  for (int64_t c : {10, 25, 33, 40}) ASSERT_TRUE(store_->Compact(c).ok());
  Reopen();
  EXPECT_EQ(store_->CompactRevision(), 40);  // survives the reopen
  EXPECT_TRUE(IsCompacted(store_->Range(RangeReq("k", kAllKeys, 39)).status()));
  for (int64_t rev = 40; rev <= 60; ++rev) {
    RangeResponse got = MustRange(*store_, RangeReq("k", kAllKeys, rev));
    const RangeResponse& want = expected[rev - 40];
    ASSERT_EQ(got.kvs.size(), want.kvs.size()) << "revision " << rev;
    for (size_t i = 0; i < got.kvs.size(); ++i) {
      EXPECT_EQ(got.kvs[i].key, want.kvs[i].key);
      EXPECT_EQ(got.kvs[i].value, want.kvs[i].value);
      EXPECT_EQ(got.kvs[i].mod_revision, want.kvs[i].mod_revision);
    }
  }
}

TEST_F(RocksDbStoreTest, AutoCompactionKeepsRecentHistory) {
  options_.history_revisions = 20;
  Reopen();
  for (int i = 0; i < 60; ++i) MustPut(*store_, "k", absl::StrCat(i));  // revisions 2..61
  EXPECT_TRUE(Eventually([&] { return store_->CompactRevision() != 0; }));
  const int64_t compacted = store_->CompactRevision();
  EXPECT_GT(compacted, 0);
  EXPECT_LE(compacted, store_->CurrentRevision() - 20);
  EXPECT_EQ(Get(*store_, "k", store_->CurrentRevision() - 20)->value, "39");
}

TEST_F(RocksDbStoreTest, ReopenKeepsEverything) {
  const int64_t lease = store_->LeaseGrant(100, 77).value().id;
  MustPut(*store_, "a", "1");             // 2
  MustPut(*store_, "a", "2");             // 3
  MustPut(*store_, "leased", "x", lease);  // 4
  MustPut(*store_, "gone", "x");          // 5
  MustDelete(*store_, "gone");  // 6
  clock_.Advance(absl::Seconds(60));
  Reopen();

  EXPECT_EQ(store_->CurrentRevision(), 6);
  ExpectKv(Get(*store_, "a"), "2", 2, 3, 2);
  EXPECT_FALSE(Get(*store_, "gone"));
  EXPECT_EQ(Get(*store_, "gone", 5)->value, "x");
  EXPECT_EQ(Get(*store_, "leased")->lease, 77);
  EXPECT_EQ(store_->Leases().value(), (std::vector<int64_t>{77}));
  LeaseTimeToLiveResponse ttl = store_->LeaseTimeToLive(77, true).value();
  EXPECT_EQ(ttl.ttl_seconds, 100);  // a reopen restarts the TTL
  EXPECT_EQ(ttl.keys, (std::vector<std::string>{"leased"}));

  // History from before the reopen replays, then live changes follow.
  WatchRequest req = WatchReq("a", "", 2);
  WatchRecorder rec;
  auto w = store_->Watch(req, rec.Callback()).value();
  EXPECT_EQ(rec.WaitFor(2).size(), 2u);
  EXPECT_EQ(MustPut(*store_, "a", "3"), 7);
  std::vector<Event> evs = rec.WaitFor(3);
  ASSERT_EQ(evs.size(), 3u);
  EXPECT_EQ(evs[2].kv.mod_revision, 7);
  w.reset();

  ASSERT_TRUE(store_->LeaseRevoke(77).ok());
  Reopen();
  EXPECT_TRUE(store_->Leases()->empty());
  EXPECT_FALSE(Get(*store_, "leased"));
}

TEST_F(RocksDbStoreTest, SecondOpenOfSameDirectoryFails) {
  absl::StatusOr<std::unique_ptr<RocksDbStore>> again = RocksDbStore::Open(options_);
  EXPECT_FALSE(again.ok());
}

}  // namespace
}  // namespace weft::storage
