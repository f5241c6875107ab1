// LeaseManager against the real RocksDB store, with a simulated clock for TTLs.

#include "common/testing.h"
#include "controller/lease_manager.h"

#include <algorithm>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "storage/forwarding_store.h"
#include "storage/rocksdb/rocksdb_store.h"

namespace weft::controller {
namespace {

// The real store, whose watch deliveries can be held back (a lagging watch:
// etcd partitioned from this replica, say) and let go later, in order.
class PausableWatchStore : public storage::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  absl::StatusOr<std::unique_ptr<storage::WatchHandle>> Watch(
      const storage::WatchRequest& r, std::function<void(const storage::WatchBatch&)> cb) override {
    return next_->Watch(r, [this, cb](const storage::WatchBatch& b) {
      absl::MutexLock l(&mu_);
      if (paused_) {
        held_.push_back({b, cb});
      } else {
        cb(b);
      }
    });
  }
  void Pause() {
    absl::MutexLock l(&mu_);
    paused_ = true;
  }
  void Resume() {
    absl::MutexLock l(&mu_);
    paused_ = false;
    for (auto& [batch, cb] : held_) cb(batch);
    held_.clear();
  }

 private:
  absl::Mutex mu_;
  bool paused_ = false;
  std::vector<std::pair<storage::WatchBatch, std::function<void(const storage::WatchBatch&)>>> held_;
};

// The real store, whose first lease-write transaction (one with a put) after
// HoldNext() waits until Release(): a write in flight from a replica that died
// or whose etcd leader was lost, landing after another replica decided.
class HeldTxnStore : public storage::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  absl::StatusOr<storage::TxnResponse> Txn(const storage::TxnRequest& r) override {
    bool writes = false;
    for (const auto& op : r.success) writes |= op.type == storage::RequestOp::Type::kPut;
    {
      absl::MutexLock l(&mu_);
      if (writes && state_ == kArmed) {
        state_ = kHolding;
        mu_.Await(absl::Condition(
            +[](State* s) { return *s == kReleased; }, &state_));
      }
    }
    return next_->Txn(r);
  }
  void HoldNext() {
    absl::MutexLock l(&mu_);
    state_ = kArmed;
  }
  bool AwaitHolding(absl::Duration timeout) {
    absl::MutexLock l(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(+[](State* s) { return *s == kHolding; }, &state_), timeout);
  }
  void Release() {
    absl::MutexLock l(&mu_);
    state_ = kReleased;
  }

 private:
  enum State { kIdle, kArmed, kHolding, kReleased };
  absl::Mutex mu_;
  State state_ = kIdle;
};

class LeaseManagerTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open() {
    manager_.reset();
    store_.reset();
    storage::RocksDbStore::Options so;
    so.path = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    so.clock = &clock_;
    so.lease_expiry_interval = absl::ZeroDuration();  // the test expires leases itself
    auto s = storage::RocksDbStore::Open(so);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
    LeaseManager::Options mo;
    mo.clock = &clock_;
    mo.hooks.on_expired = [this] { expired_++; };
    manager_ = std::make_unique<LeaseManager>(store_.get(), mo);
    ASSERT_TRUE(manager_->Start().ok());
  }

  // A new manager on the same store, whose watch the test can hold back.
  PausableWatchStore* OpenBehindPausableWatch(absl::Duration apply_timeout) {
    auto* watch = new PausableWatchStore(store_.get());
    wrapper_.reset(watch);
    LeaseManager::Options mo;
    mo.clock = &clock_;
    mo.apply_timeout = apply_timeout;
    manager_ = std::make_unique<LeaseManager>(wrapper_.get(), mo);
    EXPECT_TRUE(manager_->Start().ok());
    return watch;
  }

  void Config(const std::string& json) {
    auto c = manager_->SetConfig(json, false);
    ASSERT_TRUE(c.ok()) << c.status();
  }

  AcquireRequest Node(int i) {
    AcquireRequest r;
    r.node_name = absl::StrCat("node-", i);
    r.public_ip = absl::StrCat("192.0.2.", i);
    r.backend_type = "vxlan";
    r.backend_data = R"({"VNI":1,"VtepMAC":"02:00:00:00:00:01"})";
    return r;
  }

  void Expire() {
    auto n = store_->ExpireDueLeases();
    ASSERT_TRUE(n.ok()) << n.status();
    // Let the watch deliver the deletions.
    const int64_t rev = store_->CurrentRevision();
    Eventually([&] { return manager_->AppliedRevision() >= rev; }, absl::Seconds(1));
  }

  SimulatedClock clock_;
  std::unique_ptr<storage::RocksDbStore> store_;
  std::unique_ptr<storage::Store> wrapper_;  // a test's store in front of store_, if any
  std::unique_ptr<LeaseManager> manager_;
  std::atomic<int> expired_{0};
};

TEST_F(LeaseManagerTest, SameNodeGetsSameLeaseAndAttributesAreStoredAsFlannel) {
  Config(R"({"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}})");
  auto a = manager_->Acquire(Node(1));
  ASSERT_TRUE(a.ok()) << a.status();
  auto again = manager_->Acquire(Node(1));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(SubnetText(again->key), SubnetText(a->key));
  storage::RangeRequest rr;
  rr.key = EncodeSubnetKey("/coreos.com/network", a->key);
  auto got = store_->Range(rr);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->kvs.size(), 1u);
  EXPECT_EQ(got->kvs[0].value,
            R"({"PublicIP":"192.0.2.1","PublicIPv6":null,"BackendType":"vxlan",)"
            R"("BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:01"},"NodeName":"node-1"})");
  EXPECT_NE(got->kvs[0].lease, 0);
}

TEST_F(LeaseManagerTest, PreviousSubnetIsReusedWhenFreeAndInRange) {
  Config(R"({"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}})");
  auto r = Node(1);
  r.previous_subnet = "10.1.42.0/24";
  auto a = manager_->Acquire(r);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(SubnetText(a->key), "10.1.42.0/24");
  auto r2 = Node(2);
  r2.previous_subnet = "10.1.42.0/24";  // taken: a random one instead
  auto b = manager_->Acquire(r2);
  ASSERT_TRUE(b.ok());
  EXPECT_NE(SubnetText(b->key), "10.1.42.0/24");
  auto r3 = Node(3);
  r3.previous_subnet = "10.2.0.0/24";  // outside the network
  auto c = manager_->Acquire(r3);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(IPv4Net::Parse("10.1.0.0/16")->Contains(*c->key.ipv4));
  auto r4 = Node(4);
  r4.previous_subnet = "10.1.0.0/24";  // the skipped first subnet is never handed out
  auto d = manager_->Acquire(r4);
  ASSERT_TRUE(d.ok());
  EXPECT_NE(SubnetText(d->key), "10.1.0.0/24");
}

TEST_F(LeaseManagerTest, ExpiredLeaseFreesItsSubnetAndIsCounted) {
  Config(R"({"Network":"10.1.0.0/28","SubnetLen":30,"LeaseTTL":"60s","Backend":{"Type":"vxlan"}})");
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(manager_->Acquire(Node(i)).ok());
  EXPECT_EQ(manager_->Acquire(Node(4)).status().code(), absl::StatusCode::kResourceExhausted);
  clock_.Advance(absl::Seconds(59));
  Expire();
  EXPECT_EQ(manager_->List().size(), 3u) << "expired before its TTL";
  // Renew node 1 only; the others lapse.
  auto one = manager_->Get(SubnetText(manager_->Acquire(Node(1))->key));
  ASSERT_TRUE(one.ok());
  ASSERT_TRUE(manager_->Renew({SubnetText(one->key), "node-1", ""}).ok());
  clock_.Advance(absl::Seconds(60));
  Expire();
  auto left = manager_->List();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].attrs.node_name, "node-1");
  EXPECT_EQ(expired_.load(), 2);
  EXPECT_EQ(manager_->Stats().free, 2u);
  EXPECT_TRUE(manager_->Acquire(Node(5)).ok());
}

TEST_F(LeaseManagerTest, ReservationsAreNeverHandedToAnotherNodeAndNeverExpire) {
  Config(R"({"Network":"10.1.0.0/28","SubnetLen":30,"LeaseTTL":"60s","Backend":{"Type":"vxlan"}})");
  ReserveRequest rr{"10.1.0.8/30", "192.0.2.99", "", "", ""};
  ASSERT_TRUE(manager_->Reserve(rr).ok());
  std::set<std::string> got;
  for (int i = 1; i <= 2; ++i) {
    auto a = manager_->Acquire(Node(i));
    ASSERT_TRUE(a.ok());
    got.insert(SubnetText(a->key));
  }
  EXPECT_EQ(got.count("10.1.0.8/30"), 0u);
  EXPECT_EQ(manager_->Acquire(Node(3)).status().code(), absl::StatusCode::kResourceExhausted);
  clock_.Advance(absl::Hours(48));
  Expire();
  auto left = manager_->List();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_TRUE(left[0].reserved());
  // The reservation's own public IP gets it.
  auto owner = Node(7);
  owner.node_name.clear();
  owner.public_ip = "192.0.2.99";
  auto o = manager_->Acquire(owner);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(SubnetText(o->key), "10.1.0.8/30");
  EXPECT_TRUE(o->reserved());
  // Reserving a subnet leased to someone else is refused.
  EXPECT_EQ(manager_->Reserve({"10.1.0.8/30", "192.0.2.1", "", "", ""}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(manager_->Unreserve("10.1.0.8/30").ok());
  EXPECT_FALSE(manager_->List()[0].reserved());
}

TEST_F(LeaseManagerTest, ConcurrentAcquisitionsNeverShareASubnet) {
  Config(R"({"Network":"10.1.0.0/20","SubnetLen":28,"Backend":{"Type":"vxlan"}})");
  // 255 subnets, 300 nodes: 255 succeed, 45 are told the pool is empty.
  std::vector<std::thread> threads;
  std::atomic<int> ok{0}, exhausted{0};
  for (int t = 0; t < 10; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < 300; i += 10) {
        auto r = Node(i + 1);
        r.public_ip = absl::StrCat("198.51.", i / 250, ".", i % 250 + 1);
        auto a = manager_->Acquire(r);
        if (a.ok()) ok++;
        else if (a.status().code() == absl::StatusCode::kResourceExhausted) exhausted++;
        else ADD_FAILURE() << a.status();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 255);
  EXPECT_EQ(exhausted.load(), 45);
  std::set<std::string> subnets, nodes;
  for (const auto& l : manager_->List()) {
    EXPECT_TRUE(subnets.insert(SubnetText(l.key)).second);
    EXPECT_TRUE(nodes.insert(l.attrs.node_name).second);
  }
  EXPECT_EQ(subnets.size(), 255u);
}

TEST_F(LeaseManagerTest, WritesFromOtherWritersAreRespected) {
  Config(R"({"Network":"10.1.0.0/28","SubnetLen":30,"Backend":{"Type":"vxlan"}})");
  // Another replica (or flannel itself) writes a lease straight into the store.
  storage::PutRequest p;
  p.key = "/coreos.com/network/subnets/10.1.0.4-30";
  p.value = R"({"PublicIP":"192.0.2.50","BackendType":"vxlan","BackendData":null})";
  ASSERT_TRUE(store_->Put(p).ok());
  // A malformed value still blocks its subnet.
  p.key = "/coreos.com/network/subnets/10.1.0.8-30";
  p.value = "garbage";
  ASSERT_TRUE(store_->Put(p).ok());
  auto a = manager_->Acquire(Node(1));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(SubnetText(a->key), "10.1.0.12/30");
  EXPECT_EQ(manager_->Acquire(Node(2)).status().code(), absl::StatusCode::kResourceExhausted);
  // A flannel node (no name) is found again by its public IP.
  auto f = Node(3);
  f.node_name.clear();
  f.public_ip = "192.0.2.50";
  auto b = manager_->Acquire(f);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(SubnetText(b->key), "10.1.0.4/30");
}

// Values written around the API arrive through the watch: unreadable ones (not
// JSON, nested 150,000 deep, a field of another type, a broken config) are
// skipped and counted once each, never fatal; their subnets stay taken.
TEST_F(LeaseManagerTest, CorruptValuesFromTheWatchAreSkippedAndCounted) {
  absl::Mutex mu;
  std::vector<std::string> seen;
  auto corrupt_seen = [&] {
    absl::MutexLock l(&mu);
    return seen;
  };
  manager_.reset();
  LeaseManager::Options mo;
  mo.clock = &clock_;
  mo.hooks.on_corrupt = [&](const char* kind) {
    absl::MutexLock l(&mu);
    seen.push_back(kind);
  };
  manager_ = std::make_unique<LeaseManager>(store_.get(), mo);
  ASSERT_TRUE(manager_->Start().ok());
  Config(R"({"Network":"10.1.0.0/27","SubnetLen":30,"Backend":{"Type":"vxlan"}})");
  std::string deep;
  for (int i = 0; i < 150000; ++i) deep += "[";
  int n = 4;
  for (const std::string& value : {std::string("garbage"), R"({"PublicIP":"192.0.2.60","BackendData":)" + deep,
                                   std::string(R"({"PublicIP":["192.0.2.61"]})")}) {
    storage::PutRequest p;
    p.key = absl::StrCat("/coreos.com/network/subnets/10.1.0.", n, "-30");
    p.value = value;
    ASSERT_TRUE(store_->Put(p).ok());
    n += 4;
  }
  // 4, 8 and 12 stay taken: four of the pool's seven subnets are left.
  for (int i = 1; i <= 4; ++i) {
    auto a = manager_->Acquire(Node(i));
    ASSERT_TRUE(a.ok()) << a.status();
    for (const char* taken : {"10.1.0.4/30", "10.1.0.8/30", "10.1.0.12/30"}) EXPECT_NE(SubnetText(a->key), taken);
  }
  EXPECT_EQ(manager_->Acquire(Node(5)).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(corrupt_seen(), (std::vector<std::string>{"lease", "lease", "lease"}));
  // A config written around the API: allocation stops, nothing crashes.
  storage::PutRequest c;
  c.key = "/coreos.com/network/config";
  c.value = R"({"Network":"10.1.0.0/27","Backend":)" + deep;
  ASSERT_TRUE(store_->Put(c).ok());
  Eventually([&] { return manager_->AppliedRevision() >= store_->CurrentRevision(); }, absl::Seconds(1));
  EXPECT_EQ(manager_->Acquire(Node(6)).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(corrupt_seen().back(), "config");
  // And a restart reads the same store without trouble.
  manager_.reset();
  manager_ = std::make_unique<LeaseManager>(store_.get(), mo);
  ASSERT_TRUE(manager_->Start().ok());
  EXPECT_EQ(corrupt_seen().size(), 8u);  // 4 more: the three leases and the config, at load
}

TEST_F(LeaseManagerTest, StateSurvivesReopen) {
  Config(R"({"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}})");
  auto a = manager_->Acquire(Node(1));
  ASSERT_TRUE(a.ok());
  Open();
  ASSERT_TRUE(manager_->Config().has_value());
  auto again = manager_->Acquire(Node(1));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(SubnetText(again->key), SubnetText(a->key));
}

// replay_revisions: a manager started on a store with history hands the last
// revisions' changes to on_changes, in order, before Start returns (so the
// fan-out can serve resumes from before the start); expiries it replays were
// counted by whoever saw them, not again.
TEST_F(LeaseManagerTest, StartReplaysTheRecentHistoryThroughOnChanges) {
  Config(R"({"Network":"10.1.0.0/16","LeaseTTL":"60s","Backend":{"Type":"vxlan"}})");
  ASSERT_TRUE(manager_->Acquire(Node(1)).ok());
  ASSERT_TRUE(manager_->Acquire(Node(2)).ok());
  clock_.Advance(absl::Seconds(61));
  Expire();
  ASSERT_EQ(expired_.load(), 2);
  ASSERT_TRUE(manager_->Acquire(Node(3)).ok());
  const int64_t current = store_->CurrentRevision();
  manager_.reset();

  for (const int64_t replay : {int64_t{1000}, int64_t{1}}) {
    SCOPED_TRACE(absl::StrCat("replay_revisions ", replay));
    std::vector<LeaseChange> seen;
    int64_t last_batch = 0;
    int expired = 0;
    LeaseManager::Options mo;
    mo.clock = &clock_;
    mo.replay_revisions = replay;
    mo.hooks.on_changes = [&](const std::vector<LeaseChange>& changes, int64_t revision) {
      seen.insert(seen.end(), changes.begin(), changes.end());
      last_batch = revision;
    };
    mo.hooks.on_expired = [&] { expired++; };
    LeaseManager m(store_.get(), mo);
    ASSERT_TRUE(m.Start().ok());
    EXPECT_EQ(m.AppliedRevision(), current);
    EXPECT_EQ(last_batch, current);
    std::vector<std::string> got;  // "+node" / "-node" in order
    int64_t previous = 0;
    for (const LeaseChange& c : seen) {
      EXPECT_GT(c.revision, current - replay);
      EXPECT_GE(c.revision, previous);
      previous = c.revision;
      got.push_back(absl::StrCat(c.deleted ? "-" : "+", c.record.attrs.node_name));
    }
    if (replay == 1) {
      EXPECT_EQ(got, std::vector<std::string>({"+node-3"}));
    } else {
      // The two expiries are one revision, in key (subnet) order.
      if (got.size() == 5) std::sort(got.begin() + 2, got.begin() + 4);
      EXPECT_EQ(got, std::vector<std::string>({"+node-1", "+node-2", "-node-1", "-node-2", "+node-3"}));
    }
    EXPECT_EQ(expired, 0) << "replayed expiries counted again";
    ASSERT_EQ(m.List().size(), 1u);
    EXPECT_EQ(m.List()[0].attrs.node_name, "node-3");
  }
}

// The last revisions are other keys' (the replica election's, say): the replay
// has no lease change to deliver and Start must not wait for one.
TEST_F(LeaseManagerTest, StartWithNoLeaseChangeToReplayDoesNotWait) {
  Config(R"({"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}})");
  ASSERT_TRUE(manager_->Acquire(Node(1)).ok());
  manager_.reset();
  for (int i = 0; i < 5; ++i) {
    storage::PutRequest put;
    put.key = "/weft.io/controller/leader";
    put.value = absl::StrCat("replica-", i);
    ASSERT_TRUE(store_->Put(put).ok());
  }
  LeaseManager::Options mo;
  mo.clock = &clock_;
  mo.replay_revisions = 3;  // only the election's writes
  LeaseManager m(store_.get(), mo);
  absl::Notification started;
  absl::Status status;
  std::thread start([&] {
    status = m.Start();
    started.Notify();
  });
  // On the simulated clock a wait for a replay that never comes would not time out.
  const bool promptly = Eventually([&] { return started.HasBeenNotified(); }, absl::Seconds(10));
  if (!promptly) clock_.Advance(mo.apply_timeout);  // let it go, to fail cleanly
  start.join();
  EXPECT_TRUE(promptly) << "Start waited for a replay with nothing in it";
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(m.AppliedRevision(), store_->CurrentRevision());
  ASSERT_EQ(m.List().size(), 1u);
}

// AcquireAsync: the same node asking many times at once is served one request
// at a time (queued, not blocking a thread), and every answer is its one lease.
TEST_F(LeaseManagerTest, AsyncAcquisitionsOfOneNodeQueueAndAgree) {
  Config(R"({"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}})");
  constexpr int kSame = 20, kOthers = 40;
  absl::Mutex mu;
  std::vector<std::string> same;
  std::set<std::string> others;
  absl::BlockingCounter answered(kSame + kOthers);
  // Every third request is node 1's, interleaved with the others'.
  for (int i = 0; i < kSame + kOthers; ++i) {
    const bool is_same = i % 3 == 0;
    AcquireRequest r = is_same ? Node(1) : Node(100 + i);
    manager_->AcquireAsync(r, [&, is_same](absl::StatusOr<LeaseRecord> a) {
      ASSERT_TRUE(a.ok()) << a.status();
      absl::MutexLock l(&mu);
      if (is_same) {
        same.push_back(SubnetText(a->key));
      } else {
        EXPECT_TRUE(others.insert(SubnetText(a->key)).second) << "two nodes got " << SubnetText(a->key);
      }
      answered.DecrementCount();
    });
  }
  answered.Wait();
  ASSERT_EQ(same.size(), static_cast<size_t>(kSame));
  for (const std::string& s : same) EXPECT_EQ(s, same[0]) << "one node, one lease";
  EXPECT_EQ(others.count(same[0]), 0u);
  EXPECT_EQ(manager_->List().size(), static_cast<size_t>(kOthers + 1));
}

TEST_F(LeaseManagerTest, AsyncBadInputIsAnsweredAtOnceAndChangesNothing) {
  Config(R"({"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}})");
  AcquireRequest bad = Node(1);
  bad.public_ip = "not-an-ip";
  bool answered = false;
  manager_->AcquireAsync(bad, [&](absl::StatusOr<LeaseRecord> a) {
    answered = true;
    EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(a.status().message().find("public_ip"), std::string::npos) << a.status();
  });
  EXPECT_TRUE(answered) << "decided on the caller's thread";
  EXPECT_TRUE(manager_->List().empty());
  // The node is not left marked busy: its next, valid request goes through.
  auto ok = manager_->Acquire(Node(1));
  EXPECT_TRUE(ok.ok()) << ok.status();
}

TEST_F(LeaseManagerTest, ShutdownAnswersAcquisitionsInFlight) {
  Config(R"({"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}})");
  std::atomic<int> answered{0}, ok{0};
  for (int i = 0; i < 50; ++i) {
    manager_->AcquireAsync(Node(i + 1), [&](absl::StatusOr<LeaseRecord> a) {
      if (a.ok()) ok++;
      answered++;
    });
  }
  manager_.reset();
  EXPECT_EQ(answered.load(), 50) << "every caller got an answer";
  // What was acknowledged is in the store.
  manager_ = std::make_unique<LeaseManager>(store_.get(), LeaseManager::Options{});
  ASSERT_TRUE(manager_->Start().ok());
  EXPECT_EQ(manager_->List().size(), static_cast<size_t>(ok.load()));
}

TEST_F(LeaseManagerTest, ALaggingWatchFailsTheWaitCleanlyAndNothingIsLost) {
  Config(R"({"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}})");
  PausableWatchStore* watch = OpenBehindPausableWatch(absl::Milliseconds(300));
  watch->Pause();
  // Durable, so answered although the index has not seen it.
  auto first = manager_->Acquire(Node(1));
  ASSERT_TRUE(first.ok()) << first.status();
  // The node's next request must see that write first: the watch never brings
  // it, so the request fails once apply_timeout has passed on the manager's
  // clock instead of hanging or deciding on a stale index.
  absl::Notification answered;
  absl::StatusOr<LeaseRecord> second;
  manager_->AcquireAsync(Node(1), [&](absl::StatusOr<LeaseRecord> r) {
    second = std::move(r);
    answered.Notify();
  });
  clock_.AwaitWaiters(1);  // the waiters' sweeper, every 75 ms
  clock_.Advance(absl::Milliseconds(300) - absl::Nanoseconds(1));
  clock_.AwaitWaiters(1);  // its pass is done: too early to fail the request
  EXPECT_FALSE(answered.HasBeenNotified());
  clock_.Advance(absl::Milliseconds(75));  // the sweeper's next pass
  answered.WaitForNotification();
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable) << second.status();
  watch->Resume();
  auto third = manager_->Acquire(Node(1));
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(SubnetText(third->key), SubnetText(first->key)) << "the same lease, not a second one";
  EXPECT_EQ(manager_->List().size(), 1u);
}

TEST_F(LeaseManagerTest, StopWaitingAnswersRequestsWaitingForTheWatchAtOnce) {
  Config(R"({"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}})");
  PausableWatchStore* watch = OpenBehindPausableWatch(absl::Minutes(10));
  watch->Pause();
  ASSERT_TRUE(manager_->Acquire(Node(1)).ok());
  absl::Notification answered;
  absl::Status waiting;
  manager_->AcquireAsync(Node(1), [&](absl::StatusOr<LeaseRecord> r) {
    waiting = r.status();
    answered.Notify();
  });
  // AcquireAsync registered its wait before returning, and nobody moves the clock.
  EXPECT_FALSE(answered.HasBeenNotified()) << "it waits for the watch";
  manager_->StopWaiting();
  EXPECT_TRUE(answered.HasBeenNotified()) << "answered by the sweeper before StopWaiting returns";
  EXPECT_EQ(waiting.code(), absl::StatusCode::kUnavailable) << waiting;
  // The held watch batches are never delivered: the manager goes first.
}

// Two replicas on one store. Replica A's write for node-1 is in flight while
// node-1, retrying, is served by replica B, which finds no lease and gives one;
// then A's write lands. Each subnet key is new, so only the node's guard key
// stops A's write from leaving node-1 a second subnet.
TEST_F(LeaseManagerTest, AWriteLandingLateOnAnotherReplicaNeverGivesTheNodeTwoSubnets) {
  Config(R"({"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}})");
  LeaseManager::Options mo;
  mo.clock = &clock_;
  mo.shared_store = true;
  mo.node_guard_prefix = "/weft.io/controller/nodes/coreos.com/network/";
  HeldTxnStore held(store_.get());
  LeaseManager a(&held, mo);
  ASSERT_TRUE(a.Start().ok());
  LeaseManager b(store_.get(), mo);
  ASSERT_TRUE(b.Start().ok());

  held.HoldNext();
  absl::Notification a_answered;
  absl::StatusOr<LeaseRecord> from_a;
  a.AcquireAsync(Node(1), [&](absl::StatusOr<LeaseRecord> r) {
    from_a = std::move(r);
    a_answered.Notify();
  });
  ASSERT_TRUE(held.AwaitHolding(absl::Seconds(10))) << "replica A's write never reached the store";
  auto from_b = b.Acquire(Node(1));
  ASSERT_TRUE(from_b.ok()) << from_b.status();
  held.Release();
  ASSERT_TRUE(a_answered.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(from_a.ok()) << from_a.status();
  EXPECT_EQ(SubnetText(from_a->key), SubnetText(from_b->key)) << "A retried and found B's lease";

  storage::RangeRequest rr;
  rr.key = "/coreos.com/network/subnets/";
  rr.range_end = "/coreos.com/network/subnets0";
  auto kvs = store_->Range(rr);
  ASSERT_TRUE(kvs.ok()) << kvs.status();
  EXPECT_EQ(kvs->kvs.size(), 1u) << "node-1 holds one subnet in the store";
  rr.key = "/weft.io/controller/nodes/coreos.com/network/name:node-1";
  rr.range_end.clear();
  auto guard = store_->Range(rr);
  ASSERT_TRUE(guard.ok()) << guard.status();
  ASSERT_EQ(guard->kvs.size(), 1u);
  EXPECT_EQ(guard->kvs[0].value, SubnetText(from_b->key));
  EXPECT_NE(guard->kvs[0].lease, 0) << "the guard expires with the lease";
}

constexpr char kDualStack[] =
    R"({"Network":"10.1.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:12::/48","Backend":{"Type":"vxlan"}})";

AcquireRequest DualNode(int i) {
  AcquireRequest r;
  r.node_name = absl::StrCat("node-", i);
  r.public_ip = absl::StrCat("192.0.2.", i);
  r.public_ipv6 = absl::StrCat("fd77::", i);
  r.backend_type = "vxlan";
  r.backend_data = R"({"VNI":1,"VtepMAC":"02:00:00:00:00:01"})";
  r.backend_v6_data = R"({"VNI":1,"VtepMAC":"02:00:00:00:00:02"})";
  return r;
}

// Every lease key under the subnets prefix, as stored.
std::vector<std::string> StoredKeys(storage::Store* store) {
  storage::RangeRequest rr;
  rr.key = "/coreos.com/network/subnets/";
  rr.range_end = "/coreos.com/network/subnets0";
  auto got = store->Range(rr);
  std::vector<std::string> keys;
  if (got.ok()) {
    for (const auto& kv : got->kvs) keys.push_back(kv.key.substr(rr.key.size()));
  }
  return keys;
}

TEST_F(LeaseManagerTest, DualStackLeaseHoldsBothSubnetsInFlannelsKey) {
  Config(kDualStack);
  auto a = manager_->Acquire(DualNode(1));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(a->key.ipv4 && a->key.ipv6);
  EXPECT_TRUE(IPv4Net::Parse("10.1.0.0/16")->Contains(*a->key.ipv4));
  EXPECT_TRUE(IPv6Net::Parse("fd00:12::/48")->Contains(*a->key.ipv6));
  EXPECT_EQ(a->key.ipv6->prefix_len(), 64);
  // One key, flannel's dual-stack form, and flannel's JSON with PublicIPv6 and BackendV6Data.
  ASSERT_EQ(StoredKeys(store_.get()),
            std::vector<std::string>{a->key.ipv4->FlannelKey() + "&" + a->key.ipv6->FlannelKey()});
  storage::RangeRequest rr;
  rr.key = a->store_key;
  auto got = store_->Range(rr);
  ASSERT_TRUE(got.ok() && got->kvs.size() == 1);
  EXPECT_EQ(got->kvs[0].value,
            R"({"PublicIP":"192.0.2.1","PublicIPv6":"fd77::1","BackendType":"vxlan",)"
            R"("BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:01"},)"
            R"("BackendV6Data":{"VNI":1,"VtepMAC":"02:00:00:00:00:02"},"NodeName":"node-1"})");
  // The same node gets the same pair back.
  auto again = manager_->Acquire(DualNode(1));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->key.ipv4, a->key.ipv4);
  EXPECT_EQ(again->key.ipv6, a->key.ipv6);
  // Found, renewed and released by either of its subnets.
  auto by6 = manager_->Get(a->key.ipv6->ToString());
  ASSERT_TRUE(by6.ok()) << by6.status();
  EXPECT_EQ(by6->store_key, a->store_key);
  OwnerRef owner{a->key.ipv6->ToString(), "node-1", "", true};
  ASSERT_TRUE(manager_->Renew(owner).ok());
  // A second node's pair shares neither subnet.
  auto b = manager_->Acquire(DualNode(2));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_NE(b->key.ipv4, a->key.ipv4);
  EXPECT_NE(b->key.ipv6, a->key.ipv6);
  ASSERT_TRUE(manager_->Release(owner).ok());
  EXPECT_EQ(manager_->Get(a->key.ipv6->ToString()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(manager_->Get(a->key.ipv4->ToString()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(StoredKeys(store_.get()).size(), 1u);
  EXPECT_EQ(expired_.load(), 0);
}

TEST_F(LeaseManagerTest, DualStackNeedsThePublicIPv6AndHonoursThePreviousIPv6Subnet) {
  Config(kDualStack);
  AcquireRequest r = DualNode(1);
  r.public_ipv6.clear();
  auto refused = manager_->Acquire(r);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("public_ipv6"), std::string::npos) << refused.status();
  r = DualNode(1);
  r.previous_subnet = "10.1.42.0/24";
  r.previous_ipv6_subnet = "fd00:12:0:42::/64";
  auto a = manager_->Acquire(r);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->key.ipv4->ToString(), "10.1.42.0/24");
  EXPECT_EQ(a->key.ipv6->ToString(), "fd00:12:0:42::/64");
  AcquireRequest r2 = DualNode(2);
  r2.previous_ipv6_subnet = "fd00:12:0:42::/64";  // taken: another one
  auto b = manager_->Acquire(r2);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_NE(b->key.ipv6->ToString(), "fd00:12:0:42::/64");
  AcquireRequest r3 = DualNode(3);
  r3.previous_ipv6_subnet = "fd00:99::/64";  // outside the network: another one
  auto c = manager_->Acquire(r3);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(IPv6Net::Parse("fd00:12::/48")->Contains(*c->key.ipv6));
  AcquireRequest bad = DualNode(4);
  bad.previous_ipv6_subnet = "fd00:12:0:42::1/64";
  EXPECT_EQ(manager_->Acquire(bad).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(LeaseManagerTest, AFullIPv6PoolRefusesAndTakesNoIPv4Subnet) {
  // Two IPv6 subnets between Min and Max, hundreds of IPv4 ones.
  Config(R"({"Network":"10.1.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:12::/48",)"
         R"("IPv6SubnetMin":"fd00:12:0:10::","IPv6SubnetMax":"fd00:12:0:11::","Backend":{"Type":"vxlan"}})");
  ASSERT_TRUE(manager_->Acquire(DualNode(1)).ok());
  ASSERT_TRUE(manager_->Acquire(DualNode(2)).ok());
  const LeaseManager::PoolStats before = manager_->Stats();
  EXPECT_EQ(before.ipv6_size, 2);
  EXPECT_EQ(before.ipv6_free, 0);
  auto c = manager_->Acquire(DualNode(3));
  EXPECT_EQ(c.status().code(), absl::StatusCode::kResourceExhausted) << c.status();
  EXPECT_NE(c.status().message().find("no free IPv6 subnet: all 2 subnets of fd00:12::/48"), std::string::npos)
      << c.status();
  EXPECT_EQ(manager_->Stats().free, before.free) << "the IPv4 subnet picked with it went back";
  EXPECT_EQ(StoredKeys(store_.get()).size(), 2u);
  // A restarted manager rebuilds the IPv6 pool from the store.
  Open();
  EXPECT_EQ(manager_->Stats().ipv6_free, 0);
  EXPECT_EQ(manager_->Acquire(DualNode(3)).status().code(), absl::StatusCode::kResourceExhausted);
  auto one = manager_->Acquire(DualNode(1));
  ASSERT_TRUE(one.ok());
  ASSERT_TRUE(manager_->Release(OwnerRef{one->key.ipv4->ToString(), "node-1", "", true}).ok());
  EXPECT_EQ(manager_->List().size(), 1u);  // read-your-writes: the release is in the index
  EXPECT_EQ(manager_->Stats().ipv6_free, 1);
  EXPECT_TRUE(manager_->Acquire(DualNode(3)).ok());
}

TEST_F(LeaseManagerTest, AHugeIPv6PoolAllocatesWithoutEnumerating) {
  // A /32 with /64 subnets: 2^32 - 1 of them.
  Config(R"({"Network":"10.0.0.0/8","SubnetLen":24,"EnableIPv6":true,"IPv6Network":"2001:db8::/32",)"
         R"("Backend":{"Type":"vxlan"}})");
  std::set<std::string> seen;
  for (int i = 1; i <= 200; ++i) {
    AcquireRequest r = DualNode(i);
    r.public_ip = absl::StrCat("192.0.", 2 + i / 250, ".", i % 250 + 1);
    auto a = manager_->Acquire(r);
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_TRUE(IPv6Net::Parse("2001:db8::/32")->Contains(*a->key.ipv6));
    EXPECT_TRUE(seen.insert(a->key.ipv6->ToString()).second);
  }
  EXPECT_EQ(manager_->Stats().ipv6_size, (absl::uint128(1) << 32) - 1);
  EXPECT_EQ(manager_->Stats().ipv6_free, (absl::uint128(1) << 32) - 1 - 200);
}

TEST_F(LeaseManagerTest, IPv6OnlyNetworkAllocatesIPv6SubnetsInFlannelsKeyForm) {
  Config(R"({"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:12::/48","Backend":{"Type":"vxlan"}})");
  AcquireRequest r = DualNode(1);
  r.public_ip.clear();
  auto a = manager_->Acquire(r);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_FALSE(a->key.ipv4.has_value());
  ASSERT_TRUE(a->key.ipv6.has_value());
  EXPECT_EQ(StoredKeys(store_.get()), std::vector<std::string>{"0.0.0.0-0&" + a->key.ipv6->FlannelKey()});
  // The same node by name, or by its IPv6 address when it gives no name.
  EXPECT_EQ(manager_->Acquire(r)->key.ipv6, a->key.ipv6);
  AcquireRequest anon = r;
  anon.node_name.clear();
  anon.public_ipv6 = "fd77::9";
  auto b = manager_->Acquire(anon);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(manager_->Acquire(anon)->key.ipv6, b->key.ipv6);
  EXPECT_TRUE(manager_->Renew(OwnerRef{b->key.ipv6->ToString(), "", "fd77::9", false}).ok());
  EXPECT_EQ(manager_->Renew(OwnerRef{b->key.ipv6->ToString(), "", "fd77::8", false}).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(manager_->Stats().size, 0u);
  EXPECT_EQ(StoredKeys(store_.get()).size(), 2u);
}

TEST_F(LeaseManagerTest, EnablingIPv6GivesANodeAnIPv6SubnetBesideItsIPv4One) {
  Config(R"({"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}})");
  auto v4 = manager_->Acquire(Node(1));
  ASSERT_TRUE(v4.ok());
  // Enabling IPv6 strands no IPv4-only lease.
  Config(kDualStack);
  AcquireRequest r = DualNode(1);
  auto renewed = manager_->Renew(OwnerRef{v4->key.ipv4->ToString(), "node-1", "", true});
  EXPECT_EQ(renewed.status().code(), absl::StatusCode::kFailedPrecondition) << "told to acquire again";
  auto dual = manager_->Acquire(r);
  ASSERT_TRUE(dual.ok()) << dual.status();
  EXPECT_EQ(dual->key.ipv4, v4->key.ipv4) << "the IPv4 subnet is kept";
  ASSERT_TRUE(dual->key.ipv6.has_value());
  // The old key went in the same transaction: one lease for the node, no expiry counted.
  EXPECT_EQ(StoredKeys(store_.get()),
            std::vector<std::string>{v4->key.ipv4->FlannelKey() + "&" + dual->key.ipv6->FlannelKey()});
  EXPECT_EQ(manager_->List().size(), 1u);
  EXPECT_EQ(expired_.load(), 0);
  EXPECT_EQ(manager_->Acquire(r)->key.ipv6, dual->key.ipv6);
}

TEST_F(LeaseManagerTest, DualStackReservations) {
  Config(kDualStack);
  ReserveRequest rr;
  rr.subnet = "10.1.7.0/24";
  rr.public_ip = "192.0.2.1";
  rr.node_name = "node-1";
  auto missing = manager_->Reserve(rr);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("ipv6_subnet"), std::string::npos) << missing.status();
  rr.ipv6_subnet = "fd00:13::/64";  // outside IPv6Network
  EXPECT_EQ(manager_->Reserve(rr).status().code(), absl::StatusCode::kInvalidArgument);
  rr.ipv6_subnet = "fd00:12:0:7::/64";
  EXPECT_EQ(manager_->Reserve(rr).status().code(), absl::StatusCode::kInvalidArgument) << "no public_ipv6";
  rr.public_ipv6 = "fd77::1";
  auto res = manager_->Reserve(rr);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_TRUE(res->reserved());
  EXPECT_EQ(StoredKeys(store_.get()), std::vector<std::string>{"10.1.7.0-24&fd00:12:0:7::-64"});
  // Its node gets it; another node may not reserve its IPv6 subnet.
  auto a = manager_->Acquire(DualNode(1));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->key.ipv6->ToString(), "fd00:12:0:7::/64");
  ReserveRequest other = rr;
  other.subnet = "10.1.8.0/24";
  other.public_ip = "192.0.2.2";
  other.node_name = "node-2";
  EXPECT_EQ(manager_->Reserve(other).status().code(), absl::StatusCode::kFailedPrecondition);
  // An ordinary dual-stack lease becomes a reservation keeping its IPv6 subnet.
  auto b = manager_->Acquire(DualNode(2));
  ASSERT_TRUE(b.ok());
  ReserveRequest keep;
  keep.subnet = b->key.ipv4->ToString();
  keep.public_ip = "192.0.2.2";
  auto kept = manager_->Reserve(keep);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(kept->key.ipv6, b->key.ipv6);
  EXPECT_EQ(kept->attrs.public_ipv6->ToString(), "fd77::2");
  EXPECT_TRUE(manager_->Unreserve(b->key.ipv6->ToString()).ok()) << "unreserved by its IPv6 subnet";
  EXPECT_EQ(StoredKeys(store_.get()).size(), 2u);
}

}  // namespace
}  // namespace weft::controller
