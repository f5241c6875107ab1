// StoreHealthMonitor on a simulated clock: polls at once and every interval,
// reports each flip once.

#include "controller/store_health.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "gtest/gtest.h"
#include "storage/forwarding_store.h"

namespace weft::controller {
namespace {

// A store whose health the test sets; the monitor calls nothing else.
class HealthOnlyStore : public storage::ForwardingStore {
 public:
  HealthOnlyStore() : ForwardingStore(nullptr) {}
  storage::StoreHealth health;
  storage::StoreHealth Health() override { return health; }
};

TEST(StoreHealthMonitorTest, PollsOnTheClockAndReportsEachFlipOnce) {
  SimulatedClock clock;
  HealthOnlyStore store;
  metrics::Registry registry;
  std::vector<std::string> changes;
  StoreHealthMonitor::Options o;
  o.interval = absl::Milliseconds(500);
  o.clock = &clock;
  o.on_change = [&](bool serving, const std::string& reason) {
    changes.push_back(absl::StrCat(serving ? "serving" : "not serving", reason.empty() ? "" : ": ", reason));
  };
  StoreHealthMonitor monitor(&store, registry, o);
  monitor.Start();
  clock.Advance(absl::ZeroDuration());  // the first poll: healthy, nothing to report
  EXPECT_TRUE(changes.empty());

  store.health.writable = false;
  store.health.reason = "disk full";
  clock.Advance(absl::Milliseconds(499));
  EXPECT_TRUE(changes.empty()) << "the next poll is not due yet";
  clock.Advance(absl::Milliseconds(1));
  EXPECT_EQ(changes, (std::vector<std::string>{"not serving: store: disk full"}));
  clock.Advance(absl::Seconds(10));
  EXPECT_EQ(changes.size(), 1u) << "reported once, not at every poll";

  store.health.writable = true;
  clock.Advance(absl::Milliseconds(500));
  EXPECT_EQ(changes.back(), "serving");
  monitor.Stop();
  store.health.space_alarm = true;
  clock.Advance(absl::Seconds(10));
  EXPECT_EQ(changes.size(), 2u) << "no poll after Stop";
}

}  // namespace
}  // namespace weft::controller
