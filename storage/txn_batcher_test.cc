// TxnBatcher against the real RocksDB store: merged transactions give every
// caller the answer its own transaction would have had.

#include "storage/txn_batcher.h"

#include <atomic>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/testing.h"
#include "gtest/gtest.h"
#include "storage/forwarding_store.h"
#include "storage/rocksdb/rocksdb_store.h"

namespace weft::storage {
namespace {

// The real store, with every Txn counted and the first one held until released.
class GatedStore : public ForwardingStore {
 public:
  explicit GatedStore(Store* s) : ForwardingStore(s) {}
  absl::StatusOr<TxnResponse> Txn(const TxnRequest& r) override {
    if (txns.fetch_add(1) == 0 && hold_first) {
      entered.Notify();
      release.WaitForNotification();
    }
    return next_->Txn(r);
  }

  bool hold_first = false;
  std::atomic<int> txns{0};
  absl::Notification entered, release;
};

TxnRequest CreateIfAbsent(const std::string& key, const std::string& value, int64_t lease = 0) {
  return PutIf(key, Compare::Target::kVersion, 0, value, lease);
}

class TxnBatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RocksDbStore::Options so;
    so.path = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    auto s = RocksDbStore::Open(so);
    ASSERT_TRUE(s.ok()) << s.status();
    db_ = *std::move(s);
    gated_ = std::make_unique<GatedStore>(db_.get());
  }

  std::string Get(const std::string& key) {
    RangeRequest r;
    r.key = key;
    auto resp = db_->Range(r);
    EXPECT_TRUE(resp.ok());
    return resp.ok() && !resp->kvs.empty() ? resp->kvs[0].value : "";
  }

  // Holds the store on a first transaction, queues `reqs` behind it, then lets go.
  std::vector<absl::StatusOr<TxnResponse>> QueueBehindFirst(TxnBatcher& b, const std::vector<TxnRequest>& reqs,
                                                            std::vector<int>* batch_sizes) {
    gated_->hold_first = true;
    std::thread first([&] { EXPECT_TRUE(b.Txn(CreateIfAbsent("/first", "x")).ok()); });
    gated_->entered.WaitForNotification();
    std::vector<absl::StatusOr<TxnResponse>> results(reqs.size(), absl::UnknownError("not run"));
    std::vector<std::thread> threads;
    for (size_t i = 0; i < reqs.size(); ++i) {
      threads.emplace_back([&, i] { results[i] = b.Txn(reqs[i]); });
    }
    // Let go once every request is queued behind the held one.
    EXPECT_TRUE(Eventually([&] { return b.QueueLength() >= reqs.size(); }));
    EXPECT_EQ(b.QueueLength(), reqs.size()) << "requests did not queue behind the held transaction";
    gated_->release.Notify();
    first.join();
    for (auto& t : threads) t.join();
    (void)batch_sizes;
    return results;
  }

  // One merged transaction at a time: everything that arrives while the first
  // is held queues behind it.
  static TxnBatcher::Options OneInFlight() {
    TxnBatcher::Options o;
    o.max_in_flight = 1;
    return o;
  }

  std::unique_ptr<RocksDbStore> db_;
  std::unique_ptr<GatedStore> gated_;
};

TEST_F(TxnBatcherTest, QueuedRequestsShareOneTransactionAndRevision) {
  std::vector<int> sizes;
  TxnBatcher::Options o = OneInFlight();
  absl::Mutex mu;
  o.on_commit = [&](int n) {
    absl::MutexLock l(&mu);
    sizes.push_back(n);
  };
  TxnBatcher b(gated_.get(), o);
  std::vector<TxnRequest> reqs;
  for (int i = 0; i < 10; ++i) reqs.push_back(CreateIfAbsent(absl::StrCat("/k/", i), absl::StrCat("v", i)));
  auto results = QueueBehindFirst(b, reqs, &sizes);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i].status();
    EXPECT_TRUE(results[i]->succeeded);
    EXPECT_EQ(results[i]->revision, results[0]->revision) << "one merged transaction, one revision";
    EXPECT_EQ(results[i]->responses.size(), 1u);
    EXPECT_EQ(Get(absl::StrCat("/k/", i)), absl::StrCat("v", i));
  }
  EXPECT_EQ(gated_->txns.load(), 2) << "the first alone, the ten queued ones together";
  EXPECT_EQ(sizes, (std::vector<int>{1, 10}));
}

TEST_F(TxnBatcherTest, OneFalseCompareDoesNotFailTheOthers) {
  ASSERT_TRUE(db_->Txn(CreateIfAbsent("/k/taken", "old")).ok());
  TxnBatcher b(gated_.get(), OneInFlight());
  std::vector<TxnRequest> reqs = {CreateIfAbsent("/k/a", "a"), CreateIfAbsent("/k/taken", "new"),
                                  CreateIfAbsent("/k/b", "b")};
  auto results = QueueBehindFirst(b, reqs, nullptr);
  ASSERT_TRUE(results[0].ok() && results[1].ok() && results[2].ok());
  EXPECT_TRUE(results[0]->succeeded);
  EXPECT_FALSE(results[1]->succeeded) << "its own compare was false";
  EXPECT_TRUE(results[2]->succeeded);
  EXPECT_EQ(Get("/k/taken"), "old");
  EXPECT_EQ(Get("/k/a"), "a");
  EXPECT_EQ(Get("/k/b"), "b");
  // first, the failed merge, then each of the three alone.
  EXPECT_EQ(gated_->txns.load(), 5);
}

TEST_F(TxnBatcherTest, AStoreErrorOfOneRequestStaysItsOwn) {
  TxnBatcher b(gated_.get(), OneInFlight());
  // Lease 12345 does not exist: the store refuses that put (NOT_FOUND).
  std::vector<TxnRequest> reqs = {CreateIfAbsent("/k/a", "a"), CreateIfAbsent("/k/nolease", "x", 12345),
                                  CreateIfAbsent("/k/b", "b")};
  auto results = QueueBehindFirst(b, reqs, nullptr);
  ASSERT_TRUE(results[0].ok()) << results[0].status();
  EXPECT_TRUE(absl::IsNotFound(results[1].status())) << results[1].status();
  ASSERT_TRUE(results[2].ok()) << results[2].status();
  EXPECT_TRUE(results[0]->succeeded && results[2]->succeeded);
  EXPECT_EQ(Get("/k/nolease"), "");
}

TEST_F(TxnBatcherTest, RequestsOnTheSameKeyAreNotMerged) {
  TxnBatcher b(gated_.get(), OneInFlight());
  std::vector<TxnRequest> reqs = {CreateIfAbsent("/k/same", "one"), CreateIfAbsent("/k/same", "two")};
  auto results = QueueBehindFirst(b, reqs, nullptr);
  ASSERT_TRUE(results[0].ok() && results[1].ok());
  // Exactly one create wins, as with two separate transactions.
  EXPECT_NE(results[0]->succeeded, results[1]->succeeded);
  EXPECT_EQ(gated_->txns.load(), 3) << "the first, then one transaction each";
  EXPECT_EQ(Get("/k/same"), results[0]->succeeded ? "one" : "two");
}

TEST_F(TxnBatcherTest, ASecondTransactionGoesOutWhileTheFirstIsInFlight) {
  TxnBatcher::Options o;
  o.max_in_flight = 2;
  TxnBatcher b(gated_.get(), o);
  gated_->hold_first = true;
  std::thread first([&] { EXPECT_TRUE(b.Txn(CreateIfAbsent("/first", "x")).ok()); });
  gated_->entered.WaitForNotification();
  // The first is stuck in the store; the second must not wait for it.
  auto second = b.Txn(CreateIfAbsent("/second", "y"));
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->succeeded);
  EXPECT_EQ(Get("/first"), "") << "the first is still held";
  gated_->release.Notify();
  first.join();
  EXPECT_EQ(Get("/first"), "x");
}

TEST_F(TxnBatcherTest, UnmergeableRequestsPassThrough) {
  TxnRequest with_failure = CreateIfAbsent("/k/f", "v");
  RequestOp read;
  read.type = RequestOp::Type::kRange;
  read.range.key = "/k/f";
  with_failure.failure.push_back(read);
  EXPECT_FALSE(TxnBatcher::Mergeable(with_failure));
  EXPECT_TRUE(TxnBatcher::Mergeable(CreateIfAbsent("/k/f", "v")));
  TxnBatcher b(db_.get());
  ASSERT_TRUE(b.Txn(CreateIfAbsent("/k/f", "v")).ok());
  auto r = b.Txn(with_failure);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->succeeded);
  ASSERT_EQ(r->responses.size(), 1u);
  EXPECT_EQ(r->responses[0].range.kvs.at(0).value, "v");
}

TEST_F(TxnBatcherTest, ManyConcurrentWritersAllLandOnce) {
  std::atomic<int> commits{0};
  TxnBatcher::Options o;
  o.max_ops = 16;
  std::atomic<int> biggest{0};
  o.on_commit = [&](int n) {
    commits++;
    int cur = biggest.load();
    while (n > cur && !biggest.compare_exchange_weak(cur, n)) {
    }
  };
  TxnBatcher b(db_.get(), o);
  constexpr int kThreads = 32, kEach = 20;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto r = b.Txn(CreateIfAbsent(absl::StrCat("/m/", t, "/", i), "v"));
        if (r.ok() && r->succeeded) ok++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads * kEach);
  RangeRequest all;
  all.key = "/m/";
  all.range_end = PrefixEnd("/m/");
  all.count_only = true;
  EXPECT_EQ(db_->Range(all)->count, kThreads * kEach);
  EXPECT_LE(biggest.load(), 16) << "max_ops respected";
  EXPECT_LT(commits.load(), kThreads * kEach) << "concurrent writers shared transactions";
}

// Asynchronous requests: answered by the committer threads, merged like the
// synchronous ones, each with its own answer.
TEST_F(TxnBatcherTest, AsyncRequestsAreMergedAndEachAnswered) {
  std::vector<int> sizes;
  TxnBatcher::Options o = OneInFlight();
  absl::Mutex mu;
  o.on_commit = [&](int n) {
    absl::MutexLock l(&mu);
    sizes.push_back(n);
  };
  ASSERT_TRUE(db_->Txn(CreateIfAbsent("/k/taken", "old")).ok());
  TxnBatcher b(gated_.get(), o);
  gated_->hold_first = true;
  std::vector<absl::StatusOr<TxnResponse>> results(6, absl::UnknownError("not answered"));
  absl::BlockingCounter answered(7);
  std::thread::id caller = std::this_thread::get_id();
  std::atomic<bool> answered_inline{false};
  b.TxnAsync(CreateIfAbsent("/first", "x"), [&](absl::StatusOr<TxnResponse> r) {
    EXPECT_TRUE(r.ok() && r->succeeded);
    answered.DecrementCount();
  });
  gated_->entered.WaitForNotification();  // the first holds the store; the rest queue
  for (int i = 0; i < 6; ++i) {
    const std::string key = i == 3 ? "/k/taken" : absl::StrCat("/k/", i);
    b.TxnAsync(CreateIfAbsent(key, absl::StrCat("v", i)), [&, i](absl::StatusOr<TxnResponse> r) {
      if (std::this_thread::get_id() == caller) answered_inline = true;
      results[i] = std::move(r);
      answered.DecrementCount();
    });
  }
  gated_->release.Notify();
  answered.Wait();
  EXPECT_FALSE(answered_inline.load()) << "merged requests are answered by the committer threads";
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].status();
    EXPECT_EQ(results[i]->succeeded, i != 3) << i;
  }
  EXPECT_EQ(Get("/k/taken"), "old");
  EXPECT_EQ(Get("/k/5"), "v5");
  // The first alone, the six queued in one (failed) merge, then each alone.
  absl::MutexLock l(&mu);
  EXPECT_EQ(sizes, (std::vector<int>{1, 6}));
  EXPECT_EQ(gated_->txns.load(), 1 + 1 + 6);
}

TEST_F(TxnBatcherTest, AsyncAndSyncWritersTogetherAllLandOnce) {
  TxnBatcher b(db_.get());
  constexpr int kThreads = 8, kEach = 50;
  std::atomic<int> ok{0};
  absl::BlockingCounter answered(kThreads * kEach);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const std::string key = absl::StrCat("/m/", t, "/", i);
        if (t % 2 == 0) {
          auto r = b.Txn(CreateIfAbsent(key, "v"));
          if (r.ok() && r->succeeded) ok++;
          answered.DecrementCount();
        } else {
          b.TxnAsync(CreateIfAbsent(key, "v"), [&](absl::StatusOr<TxnResponse> r) {
            if (r.ok() && r->succeeded) ok++;
            answered.DecrementCount();
          });
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  answered.Wait();
  EXPECT_EQ(ok.load(), kThreads * kEach);
  RangeRequest all;
  all.key = "/m/";
  all.range_end = PrefixEnd("/m/");
  all.count_only = true;
  EXPECT_EQ(db_->Range(all)->count, kThreads * kEach);
}

TEST_F(TxnBatcherTest, DestructorAnswersWhatIsQueued) {
  std::atomic<int> answered{0};
  {
    TxnBatcher b(gated_.get(), OneInFlight());
    gated_->hold_first = true;
    b.TxnAsync(CreateIfAbsent("/first", "x"), [&](absl::StatusOr<TxnResponse>) { answered++; });
    gated_->entered.WaitForNotification();
    for (int i = 0; i < 5; ++i) {
      b.TxnAsync(CreateIfAbsent(absl::StrCat("/q/", i), "v"), [&](absl::StatusOr<TxnResponse> r) {
        EXPECT_TRUE(r.ok() && r->succeeded);
        answered++;
      });
    }
    gated_->release.Notify();
  }
  EXPECT_EQ(answered.load(), 6);
  EXPECT_EQ(Get("/q/4"), "v");
}

// RevisionAsync: a revision read rides on the next write transaction, or is an
// empty (read-only) transaction of its own.
TEST_F(TxnBatcherTest, RevisionReadsRideOnTheNextWrite) {
  TxnBatcher b(gated_.get(), OneInFlight());
  gated_->hold_first = true;
  absl::BlockingCounter answered(3);
  b.TxnAsync(CreateIfAbsent("/first", "x"), [&](absl::StatusOr<TxnResponse>) { answered.DecrementCount(); });
  gated_->entered.WaitForNotification();
  // Asked while the first transaction is in flight: that one may have read the
  // store before this call, so the answer must come from the next one.
  const int64_t at_call = db_->CurrentRevision();
  absl::StatusOr<int64_t> revision = absl::UnknownError("not answered");
  absl::StatusOr<TxnResponse> write = absl::UnknownError("not answered");
  b.RevisionAsync([&](absl::StatusOr<int64_t> r) {
    revision = r;
    answered.DecrementCount();
  });
  b.TxnAsync(CreateIfAbsent("/second", "y"), [&](absl::StatusOr<TxnResponse> r) {
    write = std::move(r);
    answered.DecrementCount();
  });
  gated_->release.Notify();
  answered.Wait();
  ASSERT_TRUE(revision.ok()) << revision.status();
  ASSERT_TRUE(write.ok()) << write.status();
  EXPECT_GE(*revision, at_call);
  EXPECT_EQ(*revision, write->revision) << "answered by the write's transaction";
  EXPECT_EQ(gated_->txns.load(), 2) << "no transaction of its own";
}

TEST_F(TxnBatcherTest, ARevisionReadAloneIsAnEmptyTransaction) {
  ASSERT_TRUE(db_->Txn(CreateIfAbsent("/a", "1")).ok());
  ASSERT_TRUE(db_->Txn(CreateIfAbsent("/b", "2")).ok());
  const int64_t current = db_->CurrentRevision();
  TxnBatcher b(gated_.get());
  absl::Notification done;
  absl::StatusOr<int64_t> revision = absl::UnknownError("not answered");
  b.RevisionAsync([&](absl::StatusOr<int64_t> r) {
    revision = r;
    done.Notify();
  });
  done.WaitForNotification();
  ASSERT_TRUE(revision.ok()) << revision.status();
  EXPECT_EQ(*revision, current);
  EXPECT_EQ(db_->CurrentRevision(), current) << "a read does not bump the revision";
  EXPECT_EQ(gated_->txns.load(), 1);
}

TEST_F(TxnBatcherTest, ARevisionReadIsAnsweredEvenWhenTheMergedWriteFails) {
  ASSERT_TRUE(db_->Txn(CreateIfAbsent("/k/taken", "old")).ok());
  TxnBatcher b(gated_.get(), OneInFlight());
  gated_->hold_first = true;
  absl::BlockingCounter answered(4);
  b.TxnAsync(CreateIfAbsent("/first", "x"), [&](absl::StatusOr<TxnResponse>) { answered.DecrementCount(); });
  gated_->entered.WaitForNotification();
  absl::StatusOr<int64_t> revision = absl::UnknownError("not answered");
  b.RevisionAsync([&](absl::StatusOr<int64_t> r) {
    revision = r;
    answered.DecrementCount();
  });
  bool taken_ok = true, other_ok = false;
  b.TxnAsync(CreateIfAbsent("/k/taken", "new"), [&](absl::StatusOr<TxnResponse> r) {
    taken_ok = r.ok() && r->succeeded;
    answered.DecrementCount();
  });
  b.TxnAsync(CreateIfAbsent("/k/other", "v"), [&](absl::StatusOr<TxnResponse> r) {
    other_ok = r.ok() && r->succeeded;
    answered.DecrementCount();
  });
  gated_->release.Notify();
  answered.Wait();
  ASSERT_TRUE(revision.ok()) << revision.status();
  EXPECT_GE(*revision, 2);
  EXPECT_FALSE(taken_ok);
  EXPECT_TRUE(other_ok);
  // first, the failed merge (which answered the read), then the two writes alone.
  EXPECT_EQ(gated_->txns.load(), 4);
}

}  // namespace
}  // namespace weft::storage
