// The store contract (storage/store_conformance.h) on the etcd store: a fresh
// real etcd 3.4 member (Debian's) on loopback for each test; leases run on
// etcd's own clock.

#include <algorithm>

#include "absl/time/clock.h"
#include "storage/etcd/etcd_store.h"
#include "storage/store_conformance.h"
#include "tests/etcd/etcd_cluster.h"

namespace weft::storage {
namespace {

using weft::testing::EtcdCluster;

class EtcdUnderTest : public StoreUnderTest {
 public:
  static std::unique_ptr<StoreUnderTest> Make() {
    auto t = std::unique_ptr<EtcdUnderTest>(new EtcdUnderTest());
    EtcdCluster::Options co;
    co.dir = weft::testing::TestDir("etcd");
    co.log_dir = weft::testing::TestOutputDir();
    std::string error;
    t->etcd_ = EtcdCluster::Start(co, &error);
    if (t->etcd_ == nullptr) {
      ADD_FAILURE() << error;
      return nullptr;
    }
    EtcdStore::Options so;
    so.endpoints = t->etcd_->urls();
    absl::StatusOr<std::unique_ptr<EtcdStore>> s = EtcdStore::Open(so);
    if (!s.ok()) {
      ADD_FAILURE() << s.status();
      return nullptr;
    }
    t->store_ = *std::move(s);
    return t;
  }
  ~EtcdUnderTest() override { store_.reset(); }  // before the member goes

  Store& store() override { return *store_; }
  void LetLeaseTimePass(absl::Duration step) override { absl::SleepFor(std::min(step, absl::Milliseconds(100))); }

 private:
  EtcdUnderTest() = default;
  std::unique_ptr<EtcdCluster> etcd_;
  std::unique_ptr<EtcdStore> store_;
};

StoreCapabilities EtcdCapabilities() {
  StoreCapabilities c;
  c.lease_clock = StoreCapabilities::LeaseClock::kWall;
  c.remaining_ttl_rounds_up = false;  // etcd truncates
  c.min_lease_ttl_seconds = 2;       // default election timing (1 s)
  return c;
}

INSTANTIATE_TEST_SUITE_P(Etcd, StoreConformanceTest,
                         ::testing::Values(StoreFactory{"etcd", EtcdCapabilities(), EtcdUnderTest::Make}),
                         StoreFactoryName);

}  // namespace
}  // namespace weft::storage
