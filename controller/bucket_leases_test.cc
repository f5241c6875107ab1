// BucketLeases against the real RocksDB store, with a simulated clock.

#include "controller/bucket_leases.h"

#include <cstdlib>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "storage/forwarding_store.h"
#include "storage/rocksdb/rocksdb_store.h"

namespace weft::controller {
namespace {

// The real store, counting lease grants, whose grants can be made to fail.
class GrantCountingStore : public storage::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  absl::StatusOr<storage::LeaseGrantResponse> LeaseGrant(int64_t ttl_seconds, int64_t id) override {
    ++grants;
    if (!fail.ok()) return fail;
    return next_->LeaseGrant(ttl_seconds, id);
  }
  int grants = 0;
  absl::Status fail;
};

class BucketLeasesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    storage::RocksDbStore::Options so;
    so.path = absl::StrCat(std::getenv("TEST_TMPDIR"), "/",
                           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    so.clock = &clock_;
    so.lease_expiry_interval = absl::ZeroDuration();
    auto s = storage::RocksDbStore::Open(so);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
    counting_ = std::make_unique<GrantCountingStore>(store_.get());
    buckets_ = std::make_unique<BucketLeases>(counting_.get(), &clock_,
                                              [this](const BucketLeases::Lease& l, absl::Time now) {
                                                granted_.push_back(l);
                                                EXPECT_EQ(now, clock_.Now());
                                              });
  }

  int64_t GrantedTtl(int64_t id) {
    auto ttl = store_->LeaseTimeToLive(id, false);
    EXPECT_TRUE(ttl.ok()) << ttl.status();
    return ttl.ok() ? ttl->granted_ttl_seconds : -1;
  }

  SimulatedClock clock_;
  std::unique_ptr<storage::RocksDbStore> store_;
  std::unique_ptr<GrantCountingStore> counting_;
  std::unique_ptr<BucketLeases> buckets_;
  std::vector<BucketLeases::Lease> granted_;
};

TEST(BucketWidthTest, IsAHundredthOfTheTtlBetweenOneSecondAndOneMinute) {
  EXPECT_EQ(BucketLeases::Width(absl::Hours(24)), absl::Seconds(60));
  EXPECT_EQ(BucketLeases::Width(absl::Seconds(1000)), absl::Seconds(10));
  EXPECT_EQ(BucketLeases::Width(absl::Seconds(60)), absl::Seconds(1));
}

TEST_F(BucketLeasesTest, OneStoreLeasePerBucketLivingTheTtlPlusTheWidth) {
  const absl::Time start = clock_.Now();
  EXPECT_FALSE(buckets_->Cached(absl::Seconds(1000)).has_value()) << "nothing granted yet";
  auto first = buckets_->Get(absl::Seconds(1000));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->expiration, start + absl::Seconds(1010));
  EXPECT_EQ(GrantedTtl(first->id), 1010);
  ASSERT_EQ(granted_.size(), 1u);
  EXPECT_EQ(granted_[0].id, first->id);
  EXPECT_EQ(granted_[0].expiration, first->expiration);
  // Within the bucket's 10 s: the same lease, from the cache, no store call.
  clock_.Advance(absl::Seconds(10) - absl::Nanoseconds(1));
  auto cached = buckets_->Cached(absl::Seconds(1000));
  ASSERT_TRUE(cached.has_value());
  EXPECT_EQ(cached->id, first->id);
  EXPECT_EQ(cached->expiration, first->expiration) << "the bucket's start, not now, plus the TTL";
  auto again = buckets_->Get(absl::Seconds(1000));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->id, first->id);
  EXPECT_EQ(counting_->grants, 1);
  // The next bucket: a new lease.
  clock_.Advance(absl::Nanoseconds(1));
  EXPECT_FALSE(buckets_->Cached(absl::Seconds(1000)).has_value());
  auto next = buckets_->Get(absl::Seconds(1000));
  ASSERT_TRUE(next.ok());
  EXPECT_NE(next->id, first->id);
  EXPECT_EQ(next->expiration, start + absl::Seconds(10) + absl::Seconds(1010));
  EXPECT_EQ(counting_->grants, 2);
  EXPECT_EQ(granted_.size(), 2u);
}

TEST_F(BucketLeasesTest, ATtlRoundsUpToWholeSeconds) {
  auto l = buckets_->Get(absl::Milliseconds(60500));  // + 1 s width
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(GrantedTtl(l->id), 62);
  EXPECT_EQ(l->expiration, clock_.Now() + absl::Seconds(62));
}

TEST_F(BucketLeasesTest, AnotherTtlAClockGoneBackOrAForgottenLeaseGrantsANewOne) {
  auto a = buckets_->Get(absl::Hours(24));
  ASSERT_TRUE(a.ok());
  auto b = buckets_->Get(absl::Hours(1));
  ASSERT_TRUE(b.ok());
  EXPECT_NE(b->id, a->id) << "another TTL";
  clock_.Advance(-absl::Seconds(1));
  EXPECT_FALSE(buckets_->Cached(absl::Hours(1)).has_value()) << "the clock went back";
  auto c = buckets_->Get(absl::Hours(1));
  ASSERT_TRUE(c.ok());
  EXPECT_NE(c->id, b->id);
  buckets_->Forget();
  EXPECT_FALSE(buckets_->Cached(absl::Hours(1)).has_value()) << "forgotten";
  auto d = buckets_->Get(absl::Hours(1));
  ASSERT_TRUE(d.ok());
  EXPECT_NE(d->id, c->id);
  EXPECT_EQ(counting_->grants, 4);
}

TEST_F(BucketLeasesTest, AFailedGrantIsTheStoresErrorAndCachesNothing) {
  counting_->fail = absl::ResourceExhaustedError("NOSPACE");
  auto failed = buckets_->Get(absl::Hours(24));
  EXPECT_EQ(failed.status(), absl::ResourceExhaustedError("NOSPACE"));
  EXPECT_FALSE(buckets_->Cached(absl::Hours(24)).has_value());
  EXPECT_TRUE(granted_.empty());
  counting_->fail = absl::OkStatus();
  auto ok = buckets_->Get(absl::Hours(24));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(granted_.size(), 1u);
}

}  // namespace
}  // namespace weft::controller
