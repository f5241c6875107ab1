// Leader election and the duties it guards, on the real RocksDB store with a
// simulated clock (lease expiry driven by the test).

#include "controller/leader_election.h"

#include <cstdlib>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "controller/background_duties.h"
#include "gtest/gtest.h"
#include "storage/rocksdb/rocksdb_store.h"

namespace weft::controller {
namespace {

class LeaderElectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    storage::RocksDbStore::Options so;
    so.path = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    so.clock = &clock_;
    so.lease_expiry_interval = absl::ZeroDuration();
    so.history_revisions = 0;  // only the compactions the test asks for
    auto s = storage::RocksDbStore::Open(so);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
  }

  std::unique_ptr<LeaderElection> Replica(const std::string& name) {
    LeaderElection::Options o;
    o.identity = name;
    o.ttl = absl::Seconds(9);
    o.clock = &clock_;
    o.on_change = [this, name](bool leader) { changes_.push_back(absl::StrCat(name, leader ? "+" : "-")); };
    return std::make_unique<LeaderElection>(store_.get(), o);
  }

  void Expire() { ASSERT_TRUE(store_->ExpireDueLeases().ok()); }

  void Write(int n) {
    for (int i = 0; i < n; ++i) {
      storage::PutRequest p;
      p.key = absl::StrCat("/k/", i);
      p.value = "v";
      ASSERT_TRUE(store_->Put(p).ok());
    }
  }

  SimulatedClock clock_;
  std::unique_ptr<storage::RocksDbStore> store_;
  std::vector<std::string> changes_;
};

TEST_F(LeaderElectionTest, ExactlyOneReplicaLeads) {
  auto a = Replica("a"), b = Replica("b"), c = Replica("c");
  for (int round = 0; round < 3; ++round) {
    a->Step();
    b->Step();
    c->Step();
    clock_.Advance(absl::Seconds(3));
  }
  EXPECT_TRUE(a->leader());
  EXPECT_FALSE(b->leader());
  EXPECT_FALSE(c->leader());
  EXPECT_EQ(b->current_leader(), "a");
  EXPECT_EQ(changes_, (std::vector<std::string>{"a+"})) << "no flapping while the leader renews";
}

TEST_F(LeaderElectionTest, ADeadLeadersLeaseExpiresAndAnotherTakesOver) {
  auto a = Replica("a"), b = Replica("b");
  a->Step();
  b->Step();
  ASSERT_TRUE(a->leader());
  // a stops renewing (killed); b keeps campaigning.
  for (int i = 0; i < 2; ++i) {
    clock_.Advance(absl::Seconds(3));
    b->Step();
    Expire();
    EXPECT_FALSE(b->leader()) << "a's lease has not expired yet";
  }
  clock_.Advance(absl::Seconds(4));  // past a's 9 s TTL
  b->Step();  // renews b's own lease first, so it survives the expiry below
  Expire();
  b->Step();
  EXPECT_TRUE(b->leader());
  EXPECT_EQ(b->current_leader(), "b");
}

TEST_F(LeaderElectionTest, ResigningHandsOverAtOnce) {
  auto a = Replica("a"), b = Replica("b");
  a->Step();
  b->Step();
  ASSERT_TRUE(a->leader());
  a->Stop();
  EXPECT_FALSE(a->leader());
  b->Step();
  EXPECT_TRUE(b->leader()) << "no TTL wait after a clean resignation";
  EXPECT_EQ(changes_, (std::vector<std::string>{"a+", "a-", "b+"}));
}

TEST_F(LeaderElectionTest, ALeaderWhoseLeaseVanishedRetakesTheFreeKey) {
  auto a = Replica("a");
  a->Step();
  ASSERT_TRUE(a->leader());
  auto leases = store_->Leases();
  ASSERT_TRUE(leases.ok());
  for (int64_t id : *leases) ASSERT_TRUE(store_->LeaseRevoke(id).ok());
  a->Step();  // keep-alive says NOT_FOUND: takes a new lease and the key again
  EXPECT_TRUE(a->leader());
  EXPECT_EQ(changes_, (std::vector<std::string>{"a+"}));
  auto b = Replica("b");
  b->Step();
  EXPECT_FALSE(b->leader()) << "a holds the key again under its new lease";
}

TEST_F(LeaderElectionTest, OnlyTheLeaderCompactsToTheRevisionOfTheRoundBefore) {
  auto a = Replica("a"), b = Replica("b");
  a->Step();
  b->Step();
  BackgroundDuties::Options o;
  std::vector<int64_t> compacted;
  o.on_compaction = [&](const absl::Status& s, int64_t rev) {
    EXPECT_TRUE(s.ok()) << s;
    compacted.push_back(rev);
  };
  BackgroundDuties da(store_.get(), a.get(), o), db(store_.get(), b.get(), o);
  Write(5);
  da.Tick();
  db.Tick();
  EXPECT_TRUE(compacted.empty()) << "the first round only notes the revision";
  const int64_t noted = store_->CurrentRevision();
  Write(5);
  db.Tick();  // a follower never compacts
  EXPECT_TRUE(compacted.empty());
  da.Tick();
  EXPECT_EQ(compacted, (std::vector<int64_t>{noted}));
  EXPECT_EQ(store_->CompactRevision(), noted);
  EXPECT_TRUE(da.Expired());
  EXPECT_FALSE(db.Expired());
}

TEST_F(LeaderElectionTest, StartedReplicasCampaignOnTheClock) {
  auto a = Replica("a"), b = Replica("b");
  a->Start();
  clock_.Advance(absl::ZeroDuration());  // the first round is due at once
  EXPECT_TRUE(a->leader());
  b->Start();
  clock_.Advance(absl::Seconds(3));  // b's first round, then one more each, a third of the TTL apart
  EXPECT_FALSE(b->leader());
  EXPECT_EQ(b->current_leader(), "a");
  a->Stop();  // resigns
  clock_.Advance(absl::Seconds(2));
  EXPECT_FALSE(b->leader()) << "b's next round is not due yet";
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(b->leader());
  EXPECT_EQ(changes_, (std::vector<std::string>{"a+", "a-", "b+"}));
}

TEST_F(LeaderElectionTest, StartedDutiesCompactEveryIntervalOnTheClock) {
  auto a = Replica("a");
  a->Step();
  BackgroundDuties::Options o;
  o.compaction_interval = absl::Minutes(5);
  o.clock = &clock_;
  std::vector<int64_t> compacted;
  o.on_compaction = [&](const absl::Status&, int64_t rev) { compacted.push_back(rev); };
  BackgroundDuties duties(store_.get(), a.get(), o);
  duties.Start();
  Write(5);
  clock_.Advance(absl::Minutes(5));
  EXPECT_TRUE(compacted.empty()) << "the first round only notes the revision";
  const int64_t noted = store_->CurrentRevision();
  Write(5);
  clock_.Advance(absl::Minutes(4));
  EXPECT_TRUE(compacted.empty());
  clock_.Advance(absl::Minutes(1));
  EXPECT_EQ(compacted, (std::vector<int64_t>{noted}));
  duties.Stop();
  Write(5);
  clock_.Advance(absl::Minutes(30));
  EXPECT_EQ(compacted.size(), 1u);
}

}  // namespace
}  // namespace weft::controller
