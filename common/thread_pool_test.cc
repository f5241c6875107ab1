#include "common/thread_pool.h"

#include <atomic>
#include <memory>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace weft {
namespace {

TEST(ThreadPoolTest, RunsEveryTaskOnItsThreads) {
  std::atomic<int> ran{0};
  absl::BlockingCounter left(100);
  ThreadPool pool(3);
  for (int i = 0; i < 100; ++i) {
    pool.Schedule([&] {
      ran.fetch_add(1);
      left.DecrementCount();
    });
  }
  left.Wait();
  EXPECT_EQ(ran.load(), 100);
}

TEST(ThreadPoolTest, TasksBlockingEachOtherProgressOnSeveralThreads) {
  // The first task waits for the second: with one thread this would never end.
  absl::Notification second_ran, first_done;
  ThreadPool pool(2);
  pool.Schedule([&] {
    second_ran.WaitForNotification();
    first_done.Notify();
  });
  pool.Schedule([&] { second_ran.Notify(); });
  EXPECT_TRUE(first_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
}

TEST(ThreadPoolTest, DestructorRunsWhatIsQueued) {
  std::atomic<int> ran{0};
  {
    ThreadPool pool(1);
    absl::Notification go;
    pool.Schedule([&] { go.WaitForNotification(); });
    for (int i = 0; i < 10; ++i) pool.Schedule([&] { ran.fetch_add(1); });
    go.Notify();
  }
  EXPECT_EQ(ran.load(), 10);
}

}  // namespace
}  // namespace weft
