#include "storage/store_conformance.h"

#include <algorithm>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "storage/store_testing.h"

namespace weft::storage {

std::string StoreFactoryName(const ::testing::TestParamInfo<StoreFactory>& info) { return info.param.name; }

void PrintTo(const StoreFactory& factory, std::ostream* os) { *os << factory.name; }

void StoreConformanceTest::SetUp() {
  under_test_ = GetParam().make();
  ASSERT_NE(under_test_, nullptr) << "could not make a " << GetParam().name << " store";
}

void StoreConformanceTest::TearDown() { under_test_.reset(); }

int64_t StoreConformanceTest::MustPut(const std::string& key, const std::string& value, int64_t lease) {
  return storage::MustPut(store(), key, value, lease);
}

int64_t StoreConformanceTest::MustDelete(const std::string& key) { return storage::MustDelete(store(), key); }

std::optional<KeyValue> StoreConformanceTest::Get(const std::string& key, int64_t revision) {
  return storage::Get(store(), key, revision);
}

RangeResponse StoreConformanceTest::MustRange(const RangeRequest& req) { return storage::MustRange(store(), req); }

int64_t StoreConformanceTest::RemainingTtl(int64_t lease) {
  absl::StatusOr<LeaseTimeToLiveResponse> r = store().LeaseTimeToLive(lease, false);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? r->ttl_seconds : -2;
}

bool StoreConformanceTest::PollWhileLeaseTimePasses(const std::function<bool()>& done, absl::Duration step) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!done()) {
    if (absl::Now() > deadline) return false;
    under_test_->LetLeaseTimePass(step);
  }
  return true;
}

namespace {

using T = Compare::Target;
using R = Compare::Result;

// ---- Revisions, puts, deletes, ranges ----

TEST_P(StoreConformanceTest, FreshStoreIsAtRevisionOne) {
  EXPECT_EQ(store().CurrentRevision(), 1);
  EXPECT_EQ(store().CompactRevision(), 0);
  RangeResponse r = MustRange(RangeReq(kAllKeys, kAllKeys));
  EXPECT_EQ(r.revision, 1);
  EXPECT_EQ(r.count, 0);
}

TEST_P(StoreConformanceTest, PutsCountRevisionsAndVersions) {
  EXPECT_EQ(MustPut("a", "1"), 2);
  EXPECT_EQ(MustPut("a", "2"), 3);
  EXPECT_EQ(MustPut("b", "1"), 4);
  ExpectKv(Get("a"), "2", 2, 3, 2);

  PutRequest with_prev = PutReq("a", "3");
  with_prev.prev_kv = true;
  absl::StatusOr<PutResponse> p = store().Put(with_prev);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->revision, 5);
  ExpectKv(p->prev_kv, "2", 2, 3, 2);
  EXPECT_FALSE(store().Put(PutReq("a", "4")).value().prev_kv);  // not asked for

  EXPECT_EQ(MustDelete("a"), 7);
  EXPECT_EQ(store().CurrentRevision(), 7);
  EXPECT_EQ(MustPut("a", "again"), 8);
  ExpectKv(Get("a"), "again", 8, 8, 1);  // recreated: a new life
  EXPECT_EQ(store().CurrentRevision(), 8);
  EXPECT_EQ(MustRange(RangeReq("a")).revision, 8);  // reads carry the current revision
  EXPECT_EQ(store().CurrentRevision(), 8);          // and do not move it
}

TEST_P(StoreConformanceTest, RangeRules) {
  for (const char* k : {"a", "b", "c", "d/1", "d/2", "e"}) MustPut(k, std::string("v") + k);
  EXPECT_EQ(Keys(MustRange(RangeReq("b"))), (std::vector<std::string>{"b"}));
  EXPECT_EQ(MustRange(RangeReq("b")).kvs[0].value, "vb");
  EXPECT_EQ(Keys(MustRange(RangeReq("bb"))), (std::vector<std::string>{}));
  EXPECT_EQ(Keys(MustRange(RangeReq("b", "d/1"))), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(Keys(MustRange(RangeReq("d/", PrefixEnd("d/")))), (std::vector<std::string>{"d/1", "d/2"}));
  EXPECT_EQ(Keys(MustRange(RangeReq("d/2", kAllKeys))), (std::vector<std::string>{"d/2", "e"}));
  EXPECT_EQ(MustRange(RangeReq(kAllKeys, kAllKeys)).count, 6);
  EXPECT_EQ(MustRange(RangeReq("c", "b")).count, 0);  // end before key: empty

  RangeRequest limited = RangeReq("a", kAllKeys);
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
  EXPECT_EQ(Keys(r), (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(r.kvs.size(), 2u);
  EXPECT_EQ(r.kvs[0].value, "");
  EXPECT_EQ(r.kvs[0].version, 1);
  EXPECT_EQ(r.kvs[0].mod_revision, 2);

  RangeRequest count_only = RangeReq("a", kAllKeys);
  count_only.count_only = true;
  r = MustRange(count_only);
  EXPECT_TRUE(r.kvs.empty());
  EXPECT_EQ(r.count, 6);
  EXPECT_EQ(r.revision, 7);

  EXPECT_TRUE(absl::IsInvalidArgument(store().Range(RangeReq("")).status()));
}

TEST_P(StoreConformanceTest, RangeAtPastRevisions) {
  MustPut("a", "1");  // 2
  MustPut("a", "2");  // 3
  MustPut("b", "1");  // 4
  MustDelete("a");    // 5
  MustPut("c", "1");  // 6

  EXPECT_EQ(Get("a", 2)->value, "1");
  EXPECT_EQ(Get("a", 3)->value, "2");
  EXPECT_EQ(Get("a", 3)->version, 2);
  EXPECT_FALSE(Get("a", 5));
  EXPECT_FALSE(Get("a", 1));
  RangeResponse r = MustRange(RangeReq("a", kAllKeys, 4));
  EXPECT_EQ(Keys(r), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.revision, 6);  // the header carries the current revision
  RangeRequest limited = RangeReq("a", kAllKeys, 4);
  limited.limit = 1;
  r = MustRange(limited);
  EXPECT_EQ(Keys(r), (std::vector<std::string>{"a"}));
  EXPECT_EQ(r.count, 2);
  EXPECT_TRUE(r.more);
  EXPECT_EQ(MustRange(RangeReq("a", kAllKeys, 6)).count, 2);  // == current: b, c

  absl::Status future = store().Range(RangeReq("a", "", 7)).status();
  EXPECT_TRUE(absl::IsOutOfRange(future)) << future;
  EXPECT_FALSE(IsCompacted(future));
}

TEST_P(StoreConformanceTest, DeleteRangeReturnsCountAndPrevKvs) {
  for (const char* k : {"p/1", "p/2", "q"}) MustPut(k, k);
  DeleteRangeRequest del = DeleteReq("p/", PrefixEnd("p/"));
  del.prev_kv = true;
  absl::StatusOr<DeleteRangeResponse> r = store().DeleteRange(del);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->deleted, 2);
  EXPECT_EQ(r->revision, 5);
  ASSERT_EQ(r->prev_kvs.size(), 2u);
  EXPECT_EQ(r->prev_kvs[0].key, "p/1");
  EXPECT_EQ(r->prev_kvs[1].value, "p/2");
  EXPECT_EQ(r->prev_kvs[1].mod_revision, 3);
  EXPECT_EQ(Keys(MustRange(RangeReq(kAllKeys, kAllKeys))), (std::vector<std::string>{"q"}));

  r = store().DeleteRange(del);  // nothing left: no new revision
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->deleted, 0);
  EXPECT_EQ(r->revision, 5);
  EXPECT_EQ(store().CurrentRevision(), 5);
  EXPECT_TRUE(store().DeleteRange(DeleteReq("q")).value().prev_kvs.empty());  // not asked for
}

// ---- Transactions ----

TEST_P(StoreConformanceTest, TxnComparesOnEveryTarget) {
  const int64_t lease = store().LeaseGrant(60, 7).value().id;
  MustPut("k", "m", lease);  // rev 2
  MustPut("k", "m");         // rev 3, version 2, no lease
  MustPut("l", "x", lease);  // rev 4
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
      {Cmp("k", T::kCreateRevision, R::kGreater, 2), false},
      {Cmp("k", T::kModRevision, R::kEqual, 3), true},
      {Cmp("k", T::kModRevision, R::kLess, 3), false},
      {Cmp("k", T::kLease, R::kEqual, 0), true},
      {Cmp("l", T::kLease, R::kEqual, 7), true},
      {Cmp("l", T::kLease, R::kNotEqual, 7), false},
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
    absl::StatusOr<TxnResponse> r = store().Txn(txn);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->succeeded, c.want) << "key " << c.cmp.key << " target " << static_cast<int>(c.cmp.target)
                                    << " result " << static_cast<int>(c.cmp.result);
    EXPECT_EQ(r->revision, 4);  // read-only
  }
  // Several compares: all must hold.
  TxnRequest both;
  both.compares = {Cmp("k", T::kVersion, R::kEqual, 2), Cmp("k", T::kValue, R::kEqual, 0, "m")};
  EXPECT_TRUE(store().Txn(both).value().succeeded);
  both.compares.push_back(Cmp("nope", T::kVersion, R::kGreater, 0));
  EXPECT_FALSE(store().Txn(both).value().succeeded);
  EXPECT_EQ(store().CurrentRevision(), 4);
}

TEST_P(StoreConformanceTest, TxnRangeCompareNeedsEveryKey) {
  MustPut("r/1", "x");
  MustPut("r/2", "x");
  Compare c = Cmp("r/", T::kValue, R::kEqual, 0, "x");
  c.range_end = PrefixEnd("r/");
  TxnRequest txn;
  txn.compares = {c};
  EXPECT_TRUE(store().Txn(txn).value().succeeded);
  MustPut("r/3", "y");
  EXPECT_FALSE(store().Txn(txn).value().succeeded);
}

TEST_P(StoreConformanceTest, TxnBranchesAreOneRevision) {
  MustPut("seen", "1");  // rev 2
  TxnRequest txn;
  txn.compares = {Cmp("x", T::kVersion, R::kEqual, 0)};
  txn.success = {PutOp("x", "1"), PutOp("y", "1"), RangeOp("x"), DeleteOp("seen")};
  txn.failure = {RangeOp("x")};
  absl::StatusOr<TxnResponse> r = store().Txn(txn);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->succeeded);
  EXPECT_EQ(r->revision, 3);
  ASSERT_EQ(r->responses.size(), 4u);
  EXPECT_EQ(r->responses[0].type, RequestOp::Type::kPut);
  EXPECT_EQ(r->responses[0].put.revision, 3);
  // A range after a put in the same txn sees the put.
  EXPECT_EQ(r->responses[2].type, RequestOp::Type::kRange);
  ASSERT_EQ(r->responses[2].range.kvs.size(), 1u);
  EXPECT_EQ(r->responses[2].range.kvs[0].mod_revision, 3);
  EXPECT_EQ(r->responses[3].type, RequestOp::Type::kDeleteRange);
  EXPECT_EQ(r->responses[3].delete_range.deleted, 1);
  EXPECT_EQ(Get("x")->mod_revision, 3);
  EXPECT_EQ(Get("y")->mod_revision, 3);
  EXPECT_FALSE(Get("seen"));
  EXPECT_EQ(store().CurrentRevision(), 3);

  r = store().Txn(txn);  // x exists now: failure branch, read-only
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->succeeded);
  EXPECT_EQ(r->revision, 3);
  ASSERT_EQ(r->responses.size(), 1u);
  EXPECT_EQ(r->responses[0].range.kvs[0].value, "1");

  // A failure branch that writes: one revision too.
  txn.failure = {PutOp("x", "2"), DeleteOp("y")};
  r = store().Txn(txn);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->succeeded);
  EXPECT_EQ(r->revision, 4);
  ExpectKv(Get("x"), "2", 3, 4, 2);
  EXPECT_FALSE(Get("y"));
  EXPECT_EQ(store().CurrentRevision(), 4);
}

TEST_P(StoreConformanceTest, TxnRangeAtPastRevision) {
  MustPut("k", "old");  // 2
  MustPut("k", "new");  // 3
  TxnRequest txn;
  txn.success = {PutOp("k", "newer"), RangeOp("k", "", 2), RangeOp("k", "", 3)};
  absl::StatusOr<TxnResponse> r = store().Txn(txn);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->responses.size(), 3u);
  EXPECT_EQ(r->responses[1].range.kvs[0].value, "old");
  EXPECT_EQ(r->responses[2].range.kvs[0].value, "new");  // not this txn's own put
  txn.success = {RangeOp("k", "", 99)};
  EXPECT_TRUE(absl::IsOutOfRange(store().Txn(txn).status()));
}

TEST_P(StoreConformanceTest, FailedTxnChangesNothing) {
  MustPut("a", "1");
  TxnRequest txn;
  txn.success = {PutOp("a", "2"), PutOp("b", "1", /*lease=*/12345)};
  absl::Status s = store().Txn(txn).status();
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_EQ(s.message(), "requested lease not found");
  EXPECT_EQ(Get("a")->value, "1");
  EXPECT_FALSE(Get("b"));
  EXPECT_EQ(store().CurrentRevision(), 2);
  EXPECT_TRUE(absl::IsNotFound(store().Put(PutReq("c", "1", 12345)).status()));

  // One key written twice in one branch, or put and deleted: refused whole.
  txn.success = {PutOp("a", "2"), PutOp("a", "3")};
  EXPECT_TRUE(absl::IsInvalidArgument(store().Txn(txn).status()));
  txn.success = {PutOp("p/a", "2"), DeleteOp("p/", PrefixEnd("p/"))};
  EXPECT_TRUE(absl::IsInvalidArgument(store().Txn(txn).status()));
  EXPECT_EQ(Get("a")->value, "1");
  EXPECT_EQ(store().CurrentRevision(), 2);
}

TEST_P(StoreConformanceTest, RacingCreatesHaveExactlyOneWinner) {
  constexpr int kThreads = 16;
  constexpr int kKeys = 40;
  std::vector<std::vector<int>> wins(kThreads, std::vector<int>(kKeys));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < kKeys; ++k) {
        const std::string key = absl::StrCat("/subnets/", k);
        absl::StatusOr<TxnResponse> r = store().Txn(PutIf(key, T::kVersion, 0, absl::StrCat("node-", t)));
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
  EXPECT_EQ(store().CurrentRevision(), 1 + kKeys);
}

// ---- Leases ----

TEST_P(StoreConformanceTest, LeaseGrantChoosesOrChecksIds) {
  absl::StatusOr<LeaseGrantResponse> g = store().LeaseGrant(30);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_GT(g->id, 0);
  EXPECT_EQ(g->ttl_seconds, 30);
  absl::StatusOr<LeaseGrantResponse> chosen = store().LeaseGrant(60, 42);
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  EXPECT_EQ(chosen->id, 42);
  EXPECT_EQ(chosen->ttl_seconds, 60);
  EXPECT_TRUE(absl::IsAlreadyExists(store().LeaseGrant(10, 42).status()));
  std::vector<int64_t> want = {42, g->id};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(store().Leases().value(), want);
  EXPECT_EQ(store().CurrentRevision(), 1);  // leases are not revisions
}

TEST_P(StoreConformanceTest, LeaseTtlBelowTheMinimumIsRaisedToIt) {
  const int64_t granted = std::max<int64_t>(1, capabilities().min_lease_ttl_seconds);
  absl::StatusOr<LeaseGrantResponse> g = store().LeaseGrant(1);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->ttl_seconds, granted);
  EXPECT_EQ(store().LeaseTimeToLive(g->id, false).value().granted_ttl_seconds, granted);
  EXPECT_EQ(store().LeaseKeepAlive(g->id).value(), granted);
}

TEST_P(StoreConformanceTest, LeaseTimeToLiveAndKeepAlive) {
  constexpr int64_t kTtl = 3;
  const int64_t id = store().LeaseGrant(kTtl).value().id;
  // Fresh, the whole TTL is left: rounded up, that is kTtl; truncated, a
  // fraction of a second less is kTtl - 1.
  const int64_t fresh = capabilities().remaining_ttl_rounds_up ? kTtl : kTtl - 1;
  EXPECT_EQ(RemainingTtl(id), fresh);
  MustPut("a", "1", id);
  MustPut("b", "1", id);
  MustPut("c", "1");
  LeaseTimeToLiveResponse ttl = store().LeaseTimeToLive(id, true).value();
  EXPECT_EQ(ttl.id, id);
  EXPECT_EQ(ttl.granted_ttl_seconds, kTtl);
  EXPECT_EQ(ttl.keys, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(store().LeaseTimeToLive(id, false).value().keys.empty());  // not asked for

  // Time passes; a keep-alive gives the lease its whole TTL back.
  ASSERT_TRUE(PollWhileLeaseTimePasses([&] { return RemainingTtl(id) <= fresh - 1; }, absl::Seconds(1)));
  absl::StatusOr<int64_t> ka = store().LeaseKeepAlive(id);
  ASSERT_TRUE(ka.ok()) << ka.status();
  EXPECT_EQ(*ka, kTtl);
  EXPECT_EQ(RemainingTtl(id), fresh);
  EXPECT_TRUE(Get("a"));

  EXPECT_TRUE(absl::IsNotFound(store().LeaseKeepAlive(999).status()));
  LeaseTimeToLiveResponse unknown = store().LeaseTimeToLive(999, true).value();
  EXPECT_EQ(unknown.ttl_seconds, -1);
  EXPECT_EQ(unknown.granted_ttl_seconds, 0);
}

TEST_P(StoreConformanceTest, LeaseExpiryDeletesItsKeysInOneRevision) {
  const int64_t id = store().LeaseGrant(2).value().id;
  MustPut("s/1", "v", id);
  MustPut("s/2", "v", id);
  MustPut("s/3", "v");
  WatchRecorder rec;
  auto w = store().Watch(WatchReq("s/", PrefixEnd("s/")), rec.Callback()).value();
  const int64_t before = store().CurrentRevision();

  int polls = 0;
  ASSERT_TRUE(PollWhileLeaseTimePasses(
      [&] {
        ++polls;
        return !Get("s/1");
      },
      absl::Seconds(1)));
  if (capabilities().lease_clock == StoreCapabilities::LeaseClock::kSimulated) {
    EXPECT_EQ(polls, 3);  // there at 0 s and 1 s, gone at the 2 s deadline
  }
  EXPECT_FALSE(Get("s/2"));
  EXPECT_TRUE(Get("s/3"));
  EXPECT_EQ(store().CurrentRevision(), before + 1);  // both keys in one revision
  EXPECT_TRUE(store().Leases().value().empty());
  LeaseTimeToLiveResponse gone = store().LeaseTimeToLive(id, true).value();
  EXPECT_EQ(gone.ttl_seconds, -1);
  EXPECT_EQ(gone.granted_ttl_seconds, 0);
  EXPECT_TRUE(gone.keys.empty());
  EXPECT_TRUE(absl::IsNotFound(store().LeaseKeepAlive(id).status()));
  EXPECT_TRUE(absl::IsNotFound(store().LeaseRevoke(id)));

  // Watchers see the expiry as deletes, of that one revision.
  std::vector<Event> evs = rec.WaitFor(2);
  ASSERT_EQ(evs.size(), 2u);
  for (const Event& ev : evs) {
    EXPECT_EQ(ev.type, Event::Type::kDelete);
    EXPECT_EQ(ev.kv.mod_revision, before + 1);
  }
  EXPECT_EQ(evs[0].kv.key, "s/1");
  EXPECT_EQ(evs[1].kv.key, "s/2");
}

TEST_P(StoreConformanceTest, LeaseRevokeDeletesKeysInOneRevision) {
  const int64_t id = store().LeaseGrant(60).value().id;
  MustPut("a", "1", id);
  MustPut("b", "1", id);
  ASSERT_TRUE(store().LeaseRevoke(id).ok());
  EXPECT_EQ(store().CurrentRevision(), 4);
  EXPECT_FALSE(Get("a"));
  EXPECT_FALSE(Get("b"));
  EXPECT_TRUE(store().Leases().value().empty());
  EXPECT_EQ(RemainingTtl(id), -1);
  EXPECT_TRUE(absl::IsNotFound(store().LeaseRevoke(id)));
  EXPECT_TRUE(absl::IsNotFound(store().LeaseKeepAlive(id).status()));
  // A lease without keys: revoked without a revision.
  const int64_t empty = store().LeaseGrant(60).value().id;
  ASSERT_TRUE(store().LeaseRevoke(empty).ok());
  EXPECT_EQ(store().CurrentRevision(), 4);
}

TEST_P(StoreConformanceTest, KeysMoveBetweenLeases) {
  const int64_t one = store().LeaseGrant(60, 1).value().id;
  const int64_t two = store().LeaseGrant(60, 2).value().id;
  MustPut("k", "v", one);
  MustPut("k", "v", two);
  EXPECT_TRUE(store().LeaseTimeToLive(one, true).value().keys.empty());
  EXPECT_EQ(store().LeaseTimeToLive(two, true).value().keys, (std::vector<std::string>{"k"}));
  EXPECT_EQ(Get("k")->lease, two);
  ASSERT_TRUE(store().LeaseRevoke(one).ok());
  EXPECT_TRUE(Get("k"));
  MustPut("k", "v");  // no lease: detached
  EXPECT_EQ(Get("k")->lease, 0);
  ASSERT_TRUE(store().LeaseRevoke(two).ok());
  EXPECT_TRUE(Get("k"));
}

// ---- Watches ----

TEST_P(StoreConformanceTest, WatchReplaysHistoryThenLive) {
  MustPut("w/a", "1");  // 2
  MustPut("x", "1");    // 3, outside
  MustPut("w/a", "2");  // 4
  WatchRecorder rec;
  absl::StatusOr<std::unique_ptr<WatchHandle>> w =
      store().Watch(WatchReq("w/", PrefixEnd("w/"), 2, /*prev_kv=*/true), rec.Callback());
  ASSERT_TRUE(w.ok()) << w.status();
  MustPut("w/b", "1");  // 5
  MustPut("y", "1");    // 6, outside
  MustDelete("w/a");    // 7
  std::vector<Event> evs = rec.WaitFor(4);
  ASSERT_EQ(evs.size(), 4u);
  EXPECT_EQ(evs[0].type, Event::Type::kPut);
  EXPECT_EQ(evs[0].kv.key, "w/a");
  EXPECT_EQ(evs[0].kv.mod_revision, 2);
  EXPECT_FALSE(evs[0].prev_kv);  // created
  EXPECT_EQ(evs[1].kv.value, "2");
  EXPECT_EQ(evs[1].kv.version, 2);
  ASSERT_TRUE(evs[1].prev_kv);
  EXPECT_EQ(evs[1].prev_kv->value, "1");
  EXPECT_EQ(evs[2].kv.key, "w/b");
  EXPECT_EQ(evs[2].kv.mod_revision, 5);
  EXPECT_EQ(evs[3].type, Event::Type::kDelete);
  EXPECT_EQ(evs[3].kv.key, "w/a");
  EXPECT_EQ(evs[3].kv.mod_revision, 7);
  ASSERT_TRUE(evs[3].prev_kv);
  EXPECT_EQ(evs[3].prev_kv->value, "2");
  EXPECT_EQ(rec.last_revision(), 7);
  for (std::thread::id t : rec.threads()) EXPECT_NE(t, std::this_thread::get_id());
}

TEST_P(StoreConformanceTest, WatchFromNowAndResume) {
  MustPut("k", "1");  // 2
  WatchRecorder now;
  auto w = store().Watch(WatchReq("k"), now.Callback()).value();
  MustPut("k", "2");  // 3
  MustDelete("k");    // 4
  std::vector<Event> evs = now.WaitFor(2);
  ASSERT_EQ(evs.size(), 2u);
  EXPECT_EQ(evs[0].kv.mod_revision, 3);
  EXPECT_FALSE(evs[0].prev_kv);  // not asked for
  EXPECT_EQ(evs[1].type, Event::Type::kDelete);
  EXPECT_FALSE(evs[1].prev_kv);
  EXPECT_EQ(now.last_revision(), 4);

  // A client that saw revision 3 resumes from 4: no gap, no repeat.
  WatchRecorder resumed;
  auto w2 = store().Watch(WatchReq("k", "", 4), resumed.Callback()).value();
  MustPut("k", "4");  // 5
  evs = resumed.WaitFor(2);
  ASSERT_EQ(evs.size(), 2u);
  EXPECT_EQ(evs[0].kv.mod_revision, 4);
  EXPECT_EQ(evs[1].kv.mod_revision, 5);
}

TEST_P(StoreConformanceTest, WatchFromNowStartsAfterAcknowledgedWrites) {
  // Watch() right after a write returns: that write is history, not news.
  for (int i = 0; i < 50; ++i) {
    MustPut("k", "before");
    WatchRecorder rec;
    auto w = store().Watch(WatchReq("k"), rec.Callback()).value();
    const int64_t after = MustPut("k", "after");
    std::vector<Event> evs = rec.WaitFor(1);
    ASSERT_FALSE(evs.empty());
    ASSERT_EQ(evs[0].kv.mod_revision, after) << "iteration " << i;
  }
}

TEST_P(StoreConformanceTest, CancelledWatchGetsNothingMore) {
  WatchRecorder rec;
  auto w = store().Watch(WatchReq("k"), rec.Callback()).value();
  MustPut("k", "1");  // 2
  ASSERT_EQ(rec.WaitFor(1).size(), 1u);
  w.reset();
  MustPut("k", "2");  // 3
  WatchRecorder after;  // proves the second put has been dispatched
  auto w2 = store().Watch(WatchReq("k", "", 3), after.Callback()).value();
  ASSERT_EQ(after.WaitFor(1).size(), 1u);
  EXPECT_EQ(rec.size(), 1u);
}

TEST_P(StoreConformanceTest, ManyConcurrentWritesArriveInOrder) {
  WatchRecorder rec;
  auto w = store().Watch(WatchReq("c/", PrefixEnd("c/"), 1), rec.Callback()).value();
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

TEST_P(StoreConformanceTest, WatchCallbackMayCallTheStore) {
  absl::Notification done;
  std::string seen;
  auto w = store()
               .Watch(WatchReq("k"),
                      [&](const WatchBatch& b) {
                        if (b.events.empty() || done.HasBeenNotified()) return;
                        seen = store().Range(RangeReq("k")).value().kvs[0].value;
                        done.Notify();
                      })
               .value();
  MustPut("k", "v");
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(seen, "v");
}

// ---- Compaction ----

TEST_P(StoreConformanceTest, CompactionDropsOldHistoryOnly) {
  MustPut("a", "1");  // 2
  MustPut("a", "2");  // 3
  MustPut("b", "1");  // 4
  MustDelete("b");    // 5
  MustPut("c", "1");  // 6
  MustPut("a", "3");  // 7

  EXPECT_EQ(store().CompactRevision(), 0);
  ASSERT_TRUE(store().Compact(6).ok());
  EXPECT_EQ(store().CompactRevision(), 6);
  EXPECT_EQ(store().CurrentRevision(), 7);  // compaction is not a revision
  absl::Status compacted = store().Range(RangeReq("a", "", 5)).status();
  EXPECT_TRUE(IsCompacted(compacted)) << compacted;
  EXPECT_TRUE(absl::IsOutOfRange(compacted));
  // At the compact revision every key reads as it was, from its kept version.
  RangeResponse at6 = MustRange(RangeReq("a", kAllKeys, 6));
  EXPECT_EQ(Keys(at6), (std::vector<std::string>{"a", "c"}));
  ASSERT_EQ(at6.kvs.size(), 2u);
  EXPECT_EQ(at6.kvs[0].value, "2");
  EXPECT_EQ(at6.kvs[0].version, 2);
  EXPECT_EQ(Get("a", 7)->value, "3");
  EXPECT_EQ(Get("a")->create_revision, 2);  // the current state is untouched

  EXPECT_TRUE(IsCompacted(store().Compact(6)));
  EXPECT_TRUE(IsCompacted(store().Compact(3)));
  absl::Status future = store().Compact(99);
  EXPECT_TRUE(absl::IsOutOfRange(future)) << future;
  EXPECT_FALSE(IsCompacted(future));
  EXPECT_EQ(store().CompactRevision(), 6);

  // A watch cannot start before the compact revision; at it, it can, and the
  // events' previous values survive.
  absl::StatusOr<std::unique_ptr<WatchHandle>> refused =
      store().Watch(WatchReq("a", "", 5), [](const WatchBatch&) {});
  EXPECT_TRUE(IsCompacted(refused.status())) << refused.status();
  WatchRecorder rec;
  absl::StatusOr<std::unique_ptr<WatchHandle>> w = store().Watch(WatchReq("a", "", 6, true), rec.Callback());
  ASSERT_TRUE(w.ok()) << w.status();
  std::vector<Event> evs = rec.WaitFor(1);
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].kv.mod_revision, 7);
  ASSERT_TRUE(evs[0].prev_kv);
  EXPECT_EQ(evs[0].prev_kv->value, "2");
  EXPECT_EQ(MustPut("a", "4"), 8);  // and live changes follow
  EXPECT_EQ(rec.WaitFor(2).size(), 2u);
}

}  // namespace
}  // namespace weft::storage
