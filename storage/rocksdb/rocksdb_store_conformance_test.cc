// The store contract (storage/store_conformance.h) on the RocksDB store: a real
// database in the test's temporary directory, leases on a simulated clock.

#include <atomic>
#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/testing.h"
#include "storage/rocksdb/rocksdb_store.h"
#include "storage/store_conformance.h"

namespace weft::storage {
namespace {

class RocksDbUnderTest : public StoreUnderTest {
 public:
  static std::unique_ptr<StoreUnderTest> Make() {
    auto t = std::unique_ptr<RocksDbUnderTest>(new RocksDbUnderTest());
    RocksDbStore::Options o;
    o.path = t->dir_.path();
    o.clock = &t->clock_;
    o.lease_expiry_interval = absl::ZeroDuration();  // LetLeaseTimePass expires
    o.history_revisions = 0;                         // only explicit compaction
    absl::StatusOr<std::unique_ptr<RocksDbStore>> s = RocksDbStore::Open(o);
    if (!s.ok()) {
      ADD_FAILURE() << s.status();
      return nullptr;
    }
    t->store_ = *std::move(s);
    return t;
  }

  Store& store() override { return *store_; }
  void LetLeaseTimePass(absl::Duration step) override {
    clock_.Advance(step);
    absl::StatusOr<int> expired = store_->ExpireDueLeases();
    EXPECT_TRUE(expired.ok()) << expired.status();
  }

 private:
  RocksDbUnderTest() = default;
  const TempDir dir_{"store-"};  // outlives the store
  SimulatedClock clock_;
  std::unique_ptr<RocksDbStore> store_;
};

StoreCapabilities RocksDbCapabilities() {
  StoreCapabilities c;
  c.lease_clock = StoreCapabilities::LeaseClock::kSimulated;
  c.remaining_ttl_rounds_up = true;
  c.min_lease_ttl_seconds = 1;
  return c;
}

INSTANTIATE_TEST_SUITE_P(RocksDb, StoreConformanceTest,
                         ::testing::Values(StoreFactory{"rocksdb", RocksDbCapabilities(), RocksDbUnderTest::Make}),
                         StoreFactoryName);

}  // namespace
}  // namespace weft::storage
