// CallbackQueueWaker on a simulated clock: each period starts its calls, they
// complete (failed in the client) on gRPC's callback queue threads, and Stop()
// leaves none in flight.

#include "controller/callback_queue_waker.h"

#include <pthread.h>

#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace weft::controller {
namespace {

// What the waker's calls reported as they completed.
struct Completions {
  absl::Mutex mu;
  std::vector<grpc::StatusCode> codes ABSL_GUARDED_BY(mu);
  std::set<std::string> thread_names ABSL_GUARDED_BY(mu);
  std::set<std::thread::id> threads ABSL_GUARDED_BY(mu);

  void Add(const grpc::Status& s) {
    char name[32] = {};
    pthread_getname_np(pthread_self(), name, sizeof(name));
    absl::MutexLock l(&mu);
    codes.push_back(s.error_code());
    thread_names.insert(name);
    threads.insert(std::this_thread::get_id());
  }
};

class CallbackQueueWakerTest : public ::testing::Test {
 protected:
  CallbackQueueWaker::Options WakerOptions(int calls_per_period) {
    CallbackQueueWaker::Options o;
    o.period = absl::Milliseconds(250);
    o.calls_per_period = calls_per_period;
    o.clock = &clock_;
    o.on_complete = [this](const grpc::Status& s) { completions_.Add(s); };
    return o;
  }
  // One period of a waker, stopped after it.
  void RunOnePeriod(int calls_per_period) {
    CallbackQueueWaker waker(WakerOptions(calls_per_period));
    waker.Start();
    clock_.Advance(absl::Milliseconds(250));
    waker.Stop();
  }

  SimulatedClock clock_;
  Completions completions_;
};

TEST_F(CallbackQueueWakerTest, EachPeriodsCallsComplete) {
  CallbackQueueWaker waker(WakerOptions(3));
  waker.Start();
  clock_.Advance(absl::Milliseconds(249));  // not a period yet
  clock_.Advance(absl::Milliseconds(1));    // the first period: 3 calls
  clock_.Advance(absl::Milliseconds(250));  // the second: 3 more
  waker.Stop();  // waits for them

  absl::MutexLock l(&completions_.mu);
  ASSERT_EQ(completions_.codes.size(), 6u);
  for (grpc::StatusCode c : completions_.codes) EXPECT_NE(c, grpc::StatusCode::OK);
  EXPECT_EQ(completions_.threads.count(std::this_thread::get_id()), 0u)
      << "a completion ran on the thread that started it, not on the callback queue's";
}

TEST_F(CallbackQueueWakerTest, StopEndsThePeriods) {
  CallbackQueueWaker waker(WakerOptions(2));
  waker.Start();
  clock_.Advance(absl::Milliseconds(250));
  waker.Stop();
  waker.Stop();  // a second Stop is harmless
  clock_.Advance(absl::Seconds(10));
  absl::MutexLock l(&completions_.mu);
  EXPECT_EQ(completions_.codes.size(), 2u);
}

TEST_F(CallbackQueueWakerTest, OneCallPerNextingThreadByDefault) {
  RunOnePeriod(0);
  absl::MutexLock l(&completions_.mu);
  EXPECT_GE(CallbackQueueWaker::NextingThreads(), 2);
  EXPECT_EQ(completions_.codes.size(), static_cast<size_t>(CallbackQueueWaker::NextingThreads()));
}

// The reason for the waker: the completions run on the threads that sleep when
// idle. If this fails after a gRPC upgrade, the callback queue has changed
// (the EventEngine's has no idle sleep): check whether the waker is still needed.
TEST_F(CallbackQueueWakerTest, CompletionsRunOnTheCallbackAlternativeQueuesThreads) {
  RunOnePeriod(4);
  absl::MutexLock l(&completions_.mu);
  EXPECT_EQ(completions_.thread_names, std::set<std::string>{"nexting_thread"});
}

TEST_F(CallbackQueueWakerTest, StopWithoutStart) {
  CallbackQueueWaker waker(WakerOptions(1));
  waker.Stop();
  waker.Start();  // after Stop: stays stopped
  clock_.Advance(absl::Seconds(1));
  absl::MutexLock l(&completions_.mu);
  EXPECT_TRUE(completions_.codes.empty());
}

}  // namespace
}  // namespace weft::controller
