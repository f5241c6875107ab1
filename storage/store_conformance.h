#pragma once
// The Store contract (storage/store.h) as one GoogleTest suite, run against
// every implementation. An implementation's test instantiates it with a
// factory that makes a fresh, empty store (revision 1) for each test:
//
//   INSTANTIATE_TEST_SUITE_P(RocksDb, StoreConformanceTest,
//                            ::testing::Values(StoreFactory{"rocksdb", caps, make}),
//                            StoreFactoryName);
//
// The suite covers what the rest of Weft relies on: ranges (single key, prefix,
// limit, count and keys only, past and compacted revisions), puts and deletes
// with prev_kv, transactions (every compare target, both branches, several ops
// as one revision), leases (grant, keep-alive, time to live, revoke, expiry),
// watches (history then live, prefixes, compacted starts, cancel) and
// compaction, with one global revision that every write moves by exactly one.
// Where implementations legitimately differ, StoreCapabilities says how, and
// the tests assert each variant; nothing is skipped.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "storage/store.h"

namespace weft::storage {

// One fresh store for one test, and the means to make its lease time pass.
class StoreUnderTest {
 public:
  virtual ~StoreUnderTest() = default;
  virtual Store& store() = 0;
  // Called between two polls of a condition on leases (a TTL dropping, a lease
  // expiring). On a simulated clock: moves it by `step` and revokes the leases
  // then due, before returning. On the wall clock: waits one poll interval.
  virtual void LetLeaseTimePass(absl::Duration step) = 0;
};

// How an implementation differs where the contract leaves room.
struct StoreCapabilities {
  // Whose time leases run on. kSimulated: the test's (LetLeaseTimePass moves
  // it), so a lease expires exactly at its deadline. kWall: real time (etcd's
  // own clock): the suite uses short TTLs and polls with a deadline.
  enum class LeaseClock { kSimulated, kWall };
  LeaseClock lease_clock = LeaseClock::kSimulated;
  // LeaseTimeToLive's remaining seconds: rounded up (the RocksDB store: a fresh
  // 10 s lease has 10 s left) or truncated, as etcd does (9 s left).
  bool remaining_ttl_rounds_up = true;
  // The shortest TTL granted; a shorter one is granted at this. etcd's is 1.5
  // election timeouts rounded up (2 s with its default timing); the RocksDB
  // store grants any TTL from 1 s.
  int64_t min_lease_ttl_seconds = 1;
};

struct StoreFactory {
  std::string name;  // the tests' parameter name, e.g. "rocksdb"
  StoreCapabilities capabilities;
  // A fresh, empty store; nullptr (after reporting why with ADD_FAILURE) when it
  // cannot be made.
  std::function<std::unique_ptr<StoreUnderTest>()> make;
};

// For INSTANTIATE_TEST_SUITE_P: names each instantiation after its factory.
std::string StoreFactoryName(const ::testing::TestParamInfo<StoreFactory>& info);
void PrintTo(const StoreFactory& factory, std::ostream* os);

class StoreConformanceTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override;
  void TearDown() override;

  Store& store() { return under_test_->store(); }
  const StoreCapabilities& capabilities() const { return GetParam().capabilities; }

  // Each returns the write's revision, or -1 after a failed expectation.
  int64_t MustPut(const std::string& key, const std::string& value, int64_t lease = 0);
  int64_t MustDelete(const std::string& key);
  std::optional<KeyValue> Get(const std::string& key, int64_t revision = 0);
  RangeResponse MustRange(const RangeRequest& req);
  int64_t RemainingTtl(int64_t lease);
  // Polls `done`, letting lease time pass by `step` between two polls (see
  // StoreUnderTest::LetLeaseTimePass); false if it does not hold within 30 s
  // of wall time.
  bool PollWhileLeaseTimePasses(const std::function<bool()>& done, absl::Duration step);

 private:
  std::unique_ptr<StoreUnderTest> under_test_;
};

}  // namespace weft::storage
