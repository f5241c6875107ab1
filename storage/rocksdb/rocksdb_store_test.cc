#include "storage/rocksdb/rocksdb_store.h"

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "gtest/gtest.h"

namespace weft::storage {
namespace {

const std::string kAll(1, '\0');

std::string TestDir() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/", info->test_suite_name(), ".",
                                 info->name());
  std::filesystem::remove_all(dir);
  return dir;
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

RequestOp PutOp(const std::string& key, const std::string& value, int64_t lease = 0) {
  RequestOp op;
  op.type = RequestOp::Type::kPut;
  op.put = PutReq(key, value, lease);
  return op;
}

RequestOp RangeOp(const std::string& key, const std::string& end = "", int64_t revision = 0) {
  RequestOp op;
  op.type = RequestOp::Type::kRange;
  op.range = RangeReq(key, end, revision);
  return op;
}

RequestOp DeleteOp(const std::string& key, const std::string& end = "") {
  RequestOp op;
  op.type = RequestOp::Type::kDeleteRange;
  op.delete_range.key = key;
  op.delete_range.range_end = end;
  return op;
}

Compare Cmp(const std::string& key, Compare::Target target, Compare::Result result, int64_t operand,
            const std::string& value = "") {
  Compare c;
  c.key = key;
  c.target = target;
  c.result = result;
  c.operand = operand;
  c.value = value;
  return c;
}

void ExpectKv(const std::optional<KeyValue>& kv, const std::string& value, int64_t create_revision,
              int64_t mod_revision, int64_t version) {
  ASSERT_TRUE(kv.has_value());
  EXPECT_EQ(kv->value, value);
  EXPECT_EQ(kv->create_revision, create_revision);
  EXPECT_EQ(kv->mod_revision, mod_revision);
  EXPECT_EQ(kv->version, version);
}

std::vector<std::string> Keys(const RangeResponse& r) {
  std::vector<std::string> keys;
  for (const KeyValue& kv : r.kvs) keys.push_back(kv.key);
  return keys;
}

// Collects watch deliveries; waits in real time (bounded) for them to arrive.
class WatchRecorder {
 public:
  std::function<void(const WatchBatch&)> Callback() {
    return [this](const WatchBatch& b) {
      absl::MutexLock l(&mu_);
      for (const Event& ev : b.events) events_.push_back(ev);
      last_revision_ = b.revision;
      threads_.push_back(std::this_thread::get_id());
    };
  }
  std::vector<Event> WaitFor(size_t n) {
    absl::MutexLock l(&mu_);
    auto enough = [this, n]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return events_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
    return events_;
  }
  size_t size() {
    absl::MutexLock l(&mu_);
    return events_.size();
  }
  int64_t last_revision() {
    absl::MutexLock l(&mu_);
    return last_revision_;
  }
  std::vector<std::thread::id> threads() {
    absl::MutexLock l(&mu_);
    return threads_;
  }

 private:
  absl::Mutex mu_;
  std::vector<Event> events_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread::id> threads_ ABSL_GUARDED_BY(mu_);
  int64_t last_revision_ ABSL_GUARDED_BY(mu_) = 0;
};

class RocksDbStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.path = TestDir();
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

  int64_t MustPut(const std::string& key, const std::string& value, int64_t lease = 0) {
    absl::StatusOr<PutResponse> r = store_->Put(PutReq(key, value, lease));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->revision : -1;
  }

  int64_t MustDelete(const std::string& key) {
    DeleteRangeRequest del;
    del.key = key;
    absl::StatusOr<DeleteRangeResponse> r = store_->DeleteRange(del);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->revision : -1;
  }

  std::optional<KeyValue> Get(const std::string& key, int64_t revision = 0) {
    absl::StatusOr<RangeResponse> r = store_->Range(RangeReq(key, "", revision));
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok() || r->kvs.empty()) return std::nullopt;
    return r->kvs[0];
  }

  RangeResponse MustRange(const RangeRequest& req) {
    absl::StatusOr<RangeResponse> r = store_->Range(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : RangeResponse{};
  }

  SimulatedClock clock_;
  RocksDbStore::Options options_;
  std::unique_ptr<RocksDbStore> store_;
};

TEST_F(RocksDbStoreTest, FreshStoreIsAtRevisionOne) {
  EXPECT_EQ(store_->CurrentRevision(), 1);
  EXPECT_EQ(store_->CompactRevision(), 0);
  RangeResponse r = MustRange(RangeReq(kAll, kAll));
  EXPECT_EQ(r.revision, 1);
  EXPECT_EQ(r.count, 0);
}

TEST_F(RocksDbStoreTest, PutsCountRevisionsAndVersions) {
  EXPECT_EQ(MustPut("a", "1"), 2);
  EXPECT_EQ(MustPut("a", "2"), 3);
  EXPECT_EQ(MustPut("b", "1"), 4);
  ExpectKv(Get("a"), "2", 2, 3, 2);

  PutRequest with_prev = PutReq("a", "3");
  with_prev.prev_kv = true;
  absl::StatusOr<PutResponse> p = store_->Put(with_prev);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->revision, 5);
  ASSERT_TRUE(p->prev_kv);
  EXPECT_EQ(p->prev_kv->value, "2");
  EXPECT_EQ(p->prev_kv->version, 2);

  MustDelete("a");
  EXPECT_EQ(store_->CurrentRevision(), 6);
  EXPECT_EQ(MustPut("a", "again"), 7);
  ExpectKv(Get("a"), "again", 7, 7, 1);  // recreated: a new life
  EXPECT_EQ(store_->CurrentRevision(), 7);
}

TEST_F(RocksDbStoreTest, RangeRules) {
  for (const char* k : {"a", "b", "c", "d/1", "d/2", "e"}) MustPut(k, std::string("v") + k);
  EXPECT_EQ(Keys(MustRange(RangeReq("b"))), (std::vector<std::string>{"b"}));
  EXPECT_EQ(Keys(MustRange(RangeReq("bb"))), (std::vector<std::string>{}));
  EXPECT_EQ(Keys(MustRange(RangeReq("b", "d/1"))), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(Keys(MustRange(RangeReq("d/", PrefixEnd("d/")))), (std::vector<std::string>{"d/1", "d/2"}));
  EXPECT_EQ(Keys(MustRange(RangeReq("d/2", kAll))), (std::vector<std::string>{"d/2", "e"}));
  EXPECT_EQ(MustRange(RangeReq(kAll, kAll)).count, 6);
  EXPECT_EQ(MustRange(RangeReq("c", "b")).count, 0);  // end before key: empty

  RangeRequest limited = RangeReq("a", kAll);
  limited.limit = 2;
  RangeResponse r = MustRange(limited);
  EXPECT_EQ(Keys(r), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.count, 6);
  EXPECT_TRUE(r.more);
  limited.limit = 6;
  EXPECT_FALSE(MustRange(limited).more);

  RangeRequest keys_only = RangeReq("a", "c");
  keys_only.keys_only = true;
  r = MustRange(keys_only);
  ASSERT_EQ(r.kvs.size(), 2u);
  EXPECT_EQ(r.kvs[0].value, "");
  EXPECT_EQ(r.kvs[0].version, 1);

  RangeRequest count_only = RangeReq("a", kAll);
  count_only.count_only = true;
  r = MustRange(count_only);
  EXPECT_TRUE(r.kvs.empty());
  EXPECT_EQ(r.count, 6);
  EXPECT_EQ(r.revision, 7);

  EXPECT_TRUE(absl::IsInvalidArgument(store_->Range(RangeReq("")).status()));
}

TEST_F(RocksDbStoreTest, RangeAtPastRevisions) {
  MustPut("a", "1");   // 2
  MustPut("a", "2");   // 3
  MustPut("b", "1");   // 4
  MustDelete("a");  // 5
  MustPut("c", "1");   // 6

  EXPECT_EQ(Get("a", 2)->value, "1");
  EXPECT_EQ(Get("a", 3)->value, "2");
  EXPECT_EQ(Get("a", 3)->version, 2);
  EXPECT_FALSE(Get("a", 5));
  EXPECT_FALSE(Get("a", 1));
  RangeResponse r = MustRange(RangeReq("a", kAll, 4));
  EXPECT_EQ(Keys(r), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.revision, 6);  // the header carries the current revision
  RangeRequest limited = RangeReq("a", kAll, 4);
  limited.limit = 1;
  r = MustRange(limited);
  EXPECT_EQ(r.count, 2);
  EXPECT_TRUE(r.more);
  EXPECT_EQ(MustRange(RangeReq("a", kAll, 6)).count, 2);  // == current: b, c

  absl::Status future = store_->Range(RangeReq("a", "", 7)).status();
  EXPECT_TRUE(absl::IsOutOfRange(future));
  EXPECT_FALSE(IsCompacted(future));
}

TEST_F(RocksDbStoreTest, DeleteRangeReturnsCountAndPrevKvs) {
  for (const char* k : {"p/1", "p/2", "q"}) MustPut(k, k);
  DeleteRangeRequest del;
  del.key = "p/";
  del.range_end = PrefixEnd("p/");
  del.prev_kv = true;
  absl::StatusOr<DeleteRangeResponse> r = store_->DeleteRange(del);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->deleted, 2);
  EXPECT_EQ(r->revision, 5);
  ASSERT_EQ(r->prev_kvs.size(), 2u);
  EXPECT_EQ(r->prev_kvs[1].value, "p/2");

  r = store_->DeleteRange(del);  // nothing left: no new revision
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->deleted, 0);
  EXPECT_EQ(r->revision, 5);
  EXPECT_EQ(store_->CurrentRevision(), 5);
}

TEST_F(RocksDbStoreTest, TxnComparesOnEveryTarget) {
  const int64_t lease = store_->LeaseGrant(60, 7).value().id;
  MustPut("k", "m", lease);  // rev 2
  MustPut("k", "m");         // rev 3, version 2, no lease
  using T = Compare::Target;
  using R = Compare::Result;
  struct Case {
    Compare cmp;
    bool want;
  };
  const std::vector<Case> cases = {
      {Cmp("k", T::kVersion, R::kEqual, 2), true},
      {Cmp("k", T::kVersion, R::kNotEqual, 2), false},
      {Cmp("k", T::kVersion, R::kGreater, 1), true},
      {Cmp("k", T::kVersion, R::kLess, 2), false},
      {Cmp("k", T::kCreateRevision, R::kEqual, 2), true},
      {Cmp("k", T::kModRevision, R::kEqual, 3), true},
      {Cmp("k", T::kModRevision, R::kLess, 3), false},
      {Cmp("k", T::kLease, R::kEqual, 0), true},
      {Cmp("k", T::kValue, R::kEqual, 0, "m"), true},
      {Cmp("k", T::kValue, R::kGreater, 0, "a"), true},
      {Cmp("k", T::kValue, R::kLess, 0, "a"), false},
      {Cmp("k", T::kValue, R::kNotEqual, 0, "m"), false},
      // A missing key compares as version/create/mod/lease 0; never by value.
      {Cmp("nope", T::kVersion, R::kEqual, 0), true},
      {Cmp("nope", T::kCreateRevision, R::kEqual, 0), true},
      {Cmp("nope", T::kModRevision, R::kLess, 1), true},
      {Cmp("nope", T::kLease, R::kEqual, 0), true},
      {Cmp("nope", T::kValue, R::kEqual, 0, ""), false},
      {Cmp("nope", T::kValue, R::kNotEqual, 0, "x"), false},
  };
  for (const Case& c : cases) {
    TxnRequest txn;
    txn.compares = {c.cmp};
    absl::StatusOr<TxnResponse> r = store_->Txn(txn);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->succeeded, c.want) << "key " << c.cmp.key << " target " << static_cast<int>(c.cmp.target)
                                    << " result " << static_cast<int>(c.cmp.result);
    EXPECT_EQ(r->revision, 3);  // read-only
  }
  EXPECT_EQ(store_->CurrentRevision(), 3);
}

TEST_F(RocksDbStoreTest, TxnRangeCompareNeedsEveryKey) {
  MustPut("r/1", "x");
  MustPut("r/2", "x");
  Compare c = Cmp("r/", Compare::Target::kValue, Compare::Result::kEqual, 0, "x");
  c.range_end = PrefixEnd("r/");
  TxnRequest txn;
  txn.compares = {c};
  EXPECT_TRUE(store_->Txn(txn)->succeeded);
  MustPut("r/3", "y");
  EXPECT_FALSE(store_->Txn(txn)->succeeded);
}

TEST_F(RocksDbStoreTest, TxnBranchesAreOneRevision) {
  MustPut("seen", "1");  // rev 2
  TxnRequest txn;
  txn.compares = {Cmp("x", Compare::Target::kVersion, Compare::Result::kEqual, 0)};
  txn.success = {PutOp("x", "1"), PutOp("y", "1"), RangeOp("x"), DeleteOp("seen")};
  txn.failure = {RangeOp("x")};
  absl::StatusOr<TxnResponse> r = store_->Txn(txn);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->succeeded);
  EXPECT_EQ(r->revision, 3);
  ASSERT_EQ(r->responses.size(), 4u);
  EXPECT_EQ(r->responses[0].put.revision, 3);
  // A range after a put in the same txn sees the put.
  ASSERT_EQ(r->responses[2].range.kvs.size(), 1u);
  EXPECT_EQ(r->responses[2].range.kvs[0].mod_revision, 3);
  EXPECT_EQ(r->responses[3].delete_range.deleted, 1);
  EXPECT_EQ(Get("y")->mod_revision, 3);
  EXPECT_FALSE(Get("seen"));

  r = store_->Txn(txn);  // x exists now: failure branch, read-only
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->succeeded);
  EXPECT_EQ(r->revision, 3);
  ASSERT_EQ(r->responses.size(), 1u);
  EXPECT_EQ(r->responses[0].range.kvs[0].value, "1");
}

TEST_F(RocksDbStoreTest, TxnRangeAtPastRevision) {
  MustPut("k", "old");  // 2
  MustPut("k", "new");  // 3
  TxnRequest txn;
  txn.success = {PutOp("k", "newer"), RangeOp("k", "", 2), RangeOp("k", "", 3)};
  absl::StatusOr<TxnResponse> r = store_->Txn(txn);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->responses[1].range.kvs[0].value, "old");
  EXPECT_EQ(r->responses[2].range.kvs[0].value, "new");  // not this txn's own put
  txn.success = {RangeOp("k", "", 99)};
  EXPECT_TRUE(absl::IsOutOfRange(store_->Txn(txn).status()));
}

TEST_F(RocksDbStoreTest, FailedTxnChangesNothing) {
  MustPut("a", "1");
  TxnRequest txn;
  txn.success = {PutOp("a", "2"), PutOp("b", "1", /*lease=*/12345)};
  absl::Status s = store_->Txn(txn).status();
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_EQ(s.message(), "requested lease not found");
  EXPECT_EQ(Get("a")->value, "1");
  EXPECT_FALSE(Get("b"));
  EXPECT_EQ(store_->CurrentRevision(), 2);
  EXPECT_TRUE(absl::IsNotFound(store_->Put(PutReq("c", "1", 12345)).status()));

  txn.success = {PutOp("a", "2"), PutOp("a", "3")};
  EXPECT_TRUE(absl::IsInvalidArgument(store_->Txn(txn).status()));
  txn.success = {PutOp("p/a", "2"), DeleteOp("p/", PrefixEnd("p/"))};
  EXPECT_TRUE(absl::IsInvalidArgument(store_->Txn(txn).status()));
  EXPECT_EQ(store_->CurrentRevision(), 2);
}

TEST_F(RocksDbStoreTest, RacingCreatesHaveExactlyOneWinner) {
  constexpr int kThreads = 16;
  constexpr int kKeys = 40;
  std::vector<std::vector<int>> wins(kThreads, std::vector<int>(kKeys));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < kKeys; ++k) {
        const std::string key = absl::StrCat("/subnets/", k);
        TxnRequest txn;
        txn.compares = {Cmp(key, Compare::Target::kVersion, Compare::Result::kEqual, 0)};
        txn.success = {PutOp(key, absl::StrCat("node-", t))};
        absl::StatusOr<TxnResponse> r = store_->Txn(txn);
        ASSERT_TRUE(r.ok()) << r.status();
        wins[t][k] = r->succeeded ? 1 : 0;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int k = 0; k < kKeys; ++k) {
    int winners = 0, winner = -1;
    for (int t = 0; t < kThreads; ++t) {
      if (wins[t][k]) {
        ++winners;
        winner = t;
      }
    }
    ASSERT_EQ(winners, 1) << "key " << k;
    EXPECT_EQ(Get(absl::StrCat("/subnets/", k))->value, absl::StrCat("node-", winner));
  }
  EXPECT_EQ(store_->CurrentRevision(), 1 + kKeys);
}

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
  MustPut("/o", "outside");
  const absl::Time start = absl::Now();
  RangeResponse r = MustRange(RangeReq("/n/", PrefixEnd("/n/")));
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(r.count, 10000);
  EXPECT_EQ(r.kvs.front().key, "/n/100000");
  EXPECT_LT(took, absl::Seconds(1));  // in memory: a few ms
  EXPECT_EQ(MustRange(RangeReq("/n/", PrefixEnd("/n/"), 2)).count, 10000);  // from disk
}

TEST_F(RocksDbStoreTest, LeaseGrantChoosesOrChecksIds) {
  absl::StatusOr<LeaseGrantResponse> g = store_->LeaseGrant(30);
  ASSERT_TRUE(g.ok());
  EXPECT_GT(g->id, 0);
  EXPECT_EQ(g->ttl_seconds, 30);
  ASSERT_TRUE(store_->LeaseGrant(30, 42).ok());
  EXPECT_TRUE(absl::IsAlreadyExists(store_->LeaseGrant(10, 42).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(store_->LeaseGrant(0).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(store_->LeaseGrant(10, -1).status()));
  std::vector<int64_t> want = {42, g->id};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(store_->Leases().value(), want);
  EXPECT_EQ(store_->CurrentRevision(), 1);  // leases are not revisions
}

TEST_F(RocksDbStoreTest, LeaseKeepAliveTtlAndExpiry) {
  const int64_t id = store_->LeaseGrant(10).value().id;
  MustPut("a", "1", id);
  MustPut("b", "1", id);
  MustPut("c", "1");
  LeaseTimeToLiveResponse ttl = store_->LeaseTimeToLive(id, true).value();
  EXPECT_EQ(ttl.ttl_seconds, 10);
  EXPECT_EQ(ttl.granted_ttl_seconds, 10);
  EXPECT_EQ(ttl.keys, (std::vector<std::string>{"a", "b"}));

  clock_.Advance(absl::Milliseconds(6500));
  EXPECT_EQ(store_->LeaseTimeToLive(id, false)->ttl_seconds, 4);  // 3.5 s, rounded up
  EXPECT_EQ(store_->ExpireDueLeases().value(), 0);
  EXPECT_EQ(store_->LeaseKeepAlive(id).value(), 10);
  EXPECT_EQ(store_->LeaseTimeToLive(id, false)->ttl_seconds, 10);

  clock_.Advance(absl::Seconds(10));  // deadline reached exactly
  EXPECT_TRUE(absl::IsNotFound(store_->LeaseKeepAlive(id).status()));
  EXPECT_EQ(store_->LeaseTimeToLive(id, false)->ttl_seconds, -1);
  const int64_t before = store_->CurrentRevision();
  EXPECT_EQ(store_->ExpireDueLeases().value(), 1);
  EXPECT_EQ(store_->CurrentRevision(), before + 1);  // both keys in one revision
  EXPECT_FALSE(Get("a"));
  EXPECT_FALSE(Get("b"));
  EXPECT_TRUE(Get("c"));
  EXPECT_TRUE(store_->Leases()->empty());
  LeaseTimeToLiveResponse gone = store_->LeaseTimeToLive(id, true).value();
  EXPECT_EQ(gone.ttl_seconds, -1);
  EXPECT_EQ(gone.granted_ttl_seconds, 0);
  EXPECT_TRUE(absl::IsNotFound(store_->LeaseKeepAlive(id).status()));
  EXPECT_TRUE(absl::IsNotFound(store_->LeaseRevoke(id)));
}

TEST_F(RocksDbStoreTest, LeaseRevokeDeletesKeysInOneRevision) {
  const int64_t id = store_->LeaseGrant(60).value().id;
  MustPut("a", "1", id);
  MustPut("b", "1", id);
  ASSERT_TRUE(store_->LeaseRevoke(id).ok());
  EXPECT_EQ(store_->CurrentRevision(), 4);
  EXPECT_FALSE(Get("a"));
  EXPECT_FALSE(Get("b"));
  // A lease without keys: revoked without a revision.
  const int64_t empty = store_->LeaseGrant(60).value().id;
  ASSERT_TRUE(store_->LeaseRevoke(empty).ok());
  EXPECT_EQ(store_->CurrentRevision(), 4);
}

TEST_F(RocksDbStoreTest, KeysMoveBetweenLeases) {
  const int64_t one = store_->LeaseGrant(60, 1).value().id;
  const int64_t two = store_->LeaseGrant(60, 2).value().id;
  MustPut("k", "v", one);
  MustPut("k", "v", two);
  EXPECT_TRUE(store_->LeaseTimeToLive(one, true)->keys.empty());
  EXPECT_EQ(store_->LeaseTimeToLive(two, true)->keys, (std::vector<std::string>{"k"}));
  EXPECT_EQ(Get("k")->lease, two);
  ASSERT_TRUE(store_->LeaseRevoke(one).ok());
  EXPECT_TRUE(Get("k"));
  MustPut("k", "v");  // no lease: detached
  ASSERT_TRUE(store_->LeaseRevoke(two).ok());
  EXPECT_TRUE(Get("k"));
}

TEST_F(RocksDbStoreTest, BackgroundThreadExpiresLeases) {
  options_.lease_expiry_interval = absl::Milliseconds(5);
  Reopen();
  const int64_t id = store_->LeaseGrant(5).value().id;
  MustPut("k", "v", id);
  clock_.Advance(absl::Seconds(5));
  for (int i = 0; i < 2000 && Get("k"); ++i) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_FALSE(Get("k"));
  EXPECT_TRUE(store_->Leases()->empty());
}

TEST_F(RocksDbStoreTest, WatchReplaysHistoryThenLive) {
  MustPut("w/a", "1");  // 2
  MustPut("x", "1");    // 3, outside
  MustPut("w/a", "2");  // 4
  WatchRequest req;
  req.key = "w/";
  req.range_end = PrefixEnd("w/");
  req.start_revision = 2;
  req.prev_kv = true;
  WatchRecorder rec;
  absl::StatusOr<std::unique_ptr<WatchHandle>> w = store_->Watch(req, rec.Callback());
  ASSERT_TRUE(w.ok()) << w.status();
  MustPut("w/b", "1");  // 5
  MustDelete("w/a");  // 6
  std::vector<Event> evs = rec.WaitFor(4);
  ASSERT_EQ(evs.size(), 4u);
  EXPECT_EQ(evs[0].kv.mod_revision, 2);
  EXPECT_FALSE(evs[0].prev_kv);
  EXPECT_EQ(evs[1].kv.value, "2");
  ASSERT_TRUE(evs[1].prev_kv);
  EXPECT_EQ(evs[1].prev_kv->value, "1");
  EXPECT_EQ(evs[2].kv.key, "w/b");
  EXPECT_EQ(evs[3].type, Event::Type::kDelete);
  EXPECT_EQ(evs[3].kv.key, "w/a");
  EXPECT_EQ(evs[3].kv.mod_revision, 6);
  ASSERT_TRUE(evs[3].prev_kv);
  EXPECT_EQ(evs[3].prev_kv->value, "2");
  EXPECT_EQ(rec.last_revision(), 6);
  for (std::thread::id t : rec.threads()) EXPECT_NE(t, std::this_thread::get_id());
}

TEST_F(RocksDbStoreTest, WatchHistoryOverItsByteBoundIsRefusedPlainly) {
  options_.max_watch_history_bytes = 64 << 10;
  Reopen();
  const std::string value(1024, 'v');
  for (int i = 0; i < 100; ++i) MustPut(absl::StrCat("w/", i % 10), value);  // revisions 2..101
  WatchRequest req;
  req.key = "w/";
  req.range_end = PrefixEnd("w/");
  req.start_revision = 2;  // ~100 KiB of history
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

TEST_F(RocksDbStoreTest, WatchFromNowAndResume) {
  MustPut("k", "1");  // 2
  WatchRequest req;
  req.key = "k";
  WatchRecorder now;
  auto w = store_->Watch(req, now.Callback()).value();
  MustPut("k", "2");  // 3
  MustPut("k", "3");  // 4
  std::vector<Event> evs = now.WaitFor(2);
  ASSERT_EQ(evs.size(), 2u);
  EXPECT_EQ(evs[0].kv.mod_revision, 3);
  EXPECT_FALSE(evs[1].prev_kv);  // not asked for

  // A client that saw revision 3 resumes from 4: no gap, no repeat.
  req.start_revision = 4;
  WatchRecorder resumed;
  auto w2 = store_->Watch(req, resumed.Callback()).value();
  MustPut("k", "4");  // 5
  evs = resumed.WaitFor(2);
  ASSERT_EQ(evs.size(), 2u);
  EXPECT_EQ(evs[0].kv.mod_revision, 4);
  EXPECT_EQ(evs[1].kv.mod_revision, 5);
}

TEST_F(RocksDbStoreTest, WatchFromNowStartsAfterAcknowledgedWrites) {
  // Watch() right after a write returns: that write is history, not news.
  for (int i = 0; i < 50; ++i) {
    MustPut("k", "before");
    WatchRequest req;
    req.key = "k";
    WatchRecorder rec;
    auto w = store_->Watch(req, rec.Callback()).value();
    const int64_t after = MustPut("k", "after");
    std::vector<Event> evs = rec.WaitFor(1);
    ASSERT_FALSE(evs.empty());
    ASSERT_EQ(evs[0].kv.mod_revision, after) << "iteration " << i;
  }
}

TEST_F(RocksDbStoreTest, WatchSeesLeaseExpiryAsDeletes) {
  const int64_t id = store_->LeaseGrant(5).value().id;
  MustPut("s/1", "v", id);
  MustPut("s/2", "v", id);
  WatchRequest req;
  req.key = "s/";
  req.range_end = PrefixEnd("s/");
  WatchRecorder rec;
  auto w = store_->Watch(req, rec.Callback()).value();
  clock_.Advance(absl::Seconds(6));
  ASSERT_EQ(store_->ExpireDueLeases().value(), 1);
  std::vector<Event> evs = rec.WaitFor(2);
  ASSERT_EQ(evs.size(), 2u);
  EXPECT_EQ(evs[0].type, Event::Type::kDelete);
  EXPECT_EQ(evs[0].kv.mod_revision, evs[1].kv.mod_revision);
}

TEST_F(RocksDbStoreTest, CancelledWatchGetsNothingMore) {
  WatchRequest req;
  req.key = "k";
  WatchRecorder rec;
  auto w = store_->Watch(req, rec.Callback()).value();
  MustPut("k", "1");
  rec.WaitFor(1);
  w.reset();
  MustPut("k", "2");
  WatchRecorder after;  // proves the second put has been dispatched
  req.start_revision = 3;
  auto w2 = store_->Watch(req, after.Callback()).value();
  ASSERT_EQ(after.WaitFor(1).size(), 1u);
  EXPECT_EQ(rec.size(), 1u);
}

TEST_F(RocksDbStoreTest, ManyConcurrentWritesArriveInOrder) {
  WatchRequest req;
  req.key = "c/";
  req.range_end = PrefixEnd("c/");
  req.start_revision = 1;
  WatchRecorder rec;
  auto w = store_->Watch(req, rec.Callback()).value();
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) MustPut(absl::StrCat("c/", t), absl::StrCat(i));
    });
  }
  for (std::thread& t : threads) t.join();
  std::vector<Event> evs = rec.WaitFor(800);
  ASSERT_EQ(evs.size(), 800u);
  for (size_t i = 0; i < evs.size(); ++i) EXPECT_EQ(evs[i].kv.mod_revision, static_cast<int64_t>(i) + 2);
}

TEST_F(RocksDbStoreTest, CompactionDropsOldHistoryOnly) {
  MustPut("a", "1");  // 2
  MustPut("a", "2");  // 3
  MustPut("b", "1");  // 4
  MustDelete("b");  // 5
  MustPut("c", "1");  // 6
  MustPut("a", "3");  // 7

  ASSERT_TRUE(store_->Compact(6).ok());
  EXPECT_EQ(store_->CompactRevision(), 6);
  EXPECT_TRUE(IsCompacted(store_->Range(RangeReq("a", "", 5)).status()));
  // At the compact revision every key reads as it was, from its kept version.
  RangeResponse at6 = MustRange(RangeReq("a", kAll, 6));
  EXPECT_EQ(Keys(at6), (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(at6.kvs[0].value, "2");
  EXPECT_EQ(Get("a", 7)->value, "3");

  EXPECT_TRUE(IsCompacted(store_->Compact(6)));
  EXPECT_TRUE(IsCompacted(store_->Compact(3)));
  absl::Status future = store_->Compact(99);
  EXPECT_TRUE(absl::IsOutOfRange(future));
  EXPECT_FALSE(IsCompacted(future));

  WatchRequest req;
  req.key = "a";
  req.start_revision = 5;
  absl::StatusOr<std::unique_ptr<WatchHandle>> w = store_->Watch(req, [](const WatchBatch&) {});
  EXPECT_TRUE(IsCompacted(w.status())) << w.status();
  req.start_revision = 6;
  req.prev_kv = true;
  WatchRecorder rec;
  w = store_->Watch(req, rec.Callback());
  ASSERT_TRUE(w.ok());
  std::vector<Event> evs = rec.WaitFor(1);
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].kv.mod_revision, 7);
  ASSERT_TRUE(evs[0].prev_kv);  // kept through compaction
  EXPECT_EQ(evs[0].prev_kv->value, "2");

  // Survives a reopen.
  w->reset();
  Reopen();
  EXPECT_EQ(store_->CompactRevision(), 6);
  EXPECT_TRUE(IsCompacted(store_->Range(RangeReq("a", "", 5)).status()));
  EXPECT_EQ(Keys(MustRange(RangeReq("a", kAll, 6))), (std::vector<std::string>{"a", "c"}));
}

TEST_F(RocksDbStoreTest, RepeatedCompactionsKeepReadsRight) {
  // Compacting in steps must keep, for every key, its newest version.
  for (int rev = 2; rev <= 60; ++rev) {
    if (rev % 10 == 0) {
      MustDelete(absl::StrCat("k", rev % 3));
    } else {
      MustPut(absl::StrCat("k", rev % 3), absl::StrCat(rev));
    }
  }
  std::vector<RangeResponse> expected;  // as of revisions 40..60, before compaction
  for (int64_t rev = 40; rev <= 60; ++rev) expected.push_back(MustRange(RangeReq("k", kAll, rev)));
  for (int64_t c : {10, 25, 33, 40}) ASSERT_TRUE(store_->Compact(c).ok());
  Reopen();
  for (int64_t rev = 40; rev <= 60; ++rev) {
    RangeResponse got = MustRange(RangeReq("k", kAll, rev));
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
  for (int i = 0; i < 60; ++i) MustPut("k", absl::StrCat(i));  // revisions 2..61
  for (int i = 0; i < 2000 && store_->CompactRevision() == 0; ++i) absl::SleepFor(absl::Milliseconds(5));
  const int64_t compacted = store_->CompactRevision();
  EXPECT_GT(compacted, 0);
  EXPECT_LE(compacted, store_->CurrentRevision() - 20);
  EXPECT_EQ(Get("k", store_->CurrentRevision() - 20)->value, "39");
}

TEST_F(RocksDbStoreTest, ReopenKeepsEverything) {
  const int64_t lease = store_->LeaseGrant(100, 77).value().id;
  MustPut("a", "1");             // 2
  MustPut("a", "2");             // 3
  MustPut("leased", "x", lease);  // 4
  MustPut("gone", "x");          // 5
  MustDelete("gone");  // 6
  clock_.Advance(absl::Seconds(60));
  Reopen();

  EXPECT_EQ(store_->CurrentRevision(), 6);
  ExpectKv(Get("a"), "2", 2, 3, 2);
  EXPECT_FALSE(Get("gone"));
  EXPECT_EQ(Get("gone", 5)->value, "x");
  EXPECT_EQ(Get("leased")->lease, 77);
  EXPECT_EQ(store_->Leases().value(), (std::vector<int64_t>{77}));
  LeaseTimeToLiveResponse ttl = store_->LeaseTimeToLive(77, true).value();
  EXPECT_EQ(ttl.ttl_seconds, 100);  // a reopen restarts the TTL
  EXPECT_EQ(ttl.keys, (std::vector<std::string>{"leased"}));

  // History from before the reopen replays, then live changes follow.
  WatchRequest req;
  req.key = "a";
  req.start_revision = 2;
  WatchRecorder rec;
  auto w = store_->Watch(req, rec.Callback()).value();
  EXPECT_EQ(rec.WaitFor(2).size(), 2u);
  EXPECT_EQ(MustPut("a", "3"), 7);
  std::vector<Event> evs = rec.WaitFor(3);
  ASSERT_EQ(evs.size(), 3u);
  EXPECT_EQ(evs[2].kv.mod_revision, 7);
  w.reset();

  ASSERT_TRUE(store_->LeaseRevoke(77).ok());
  Reopen();
  EXPECT_TRUE(store_->Leases()->empty());
  EXPECT_FALSE(Get("leased"));
}

TEST_F(RocksDbStoreTest, SecondOpenOfSameDirectoryFails) {
  absl::StatusOr<std::unique_ptr<RocksDbStore>> again = RocksDbStore::Open(options_);
  EXPECT_FALSE(again.ok());
}

TEST_F(RocksDbStoreTest, WatchCallbackMayCallTheStore) {
  WatchRequest req;
  req.key = "k";
  absl::Notification done;
  std::string seen;
  auto w = store_->Watch(req, [&](const WatchBatch& b) {
    seen = store_->Range(RangeReq("k")).value().kvs[0].value;
    done.Notify();
  }).value();
  MustPut("k", "v");
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(seen, "v");
}

}  // namespace
}  // namespace weft::storage
