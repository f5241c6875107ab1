#include "storage/rocksdb/group_commit.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "gtest/gtest.h"
#include "rocksdb/write_batch.h"

namespace weft::storage {
namespace {

// What the committer wrote and told, with a gate that can hold the first write.
class GroupCommitTest : public ::testing::Test {
 protected:
  struct Written {
    int ops;  // RocksDB mutations in the group
    int64_t revision;
    bool revision_moved;
  };

  GroupCommitter::Options CommitterOptions() {
    GroupCommitter::Options o;
    o.write = [this](rocksdb::WriteBatch* group, int64_t revision, bool revision_moved) -> absl::Status {
      if (hold_first_ && !entered_.HasBeenNotified()) {
        entered_.Notify();
        release_.WaitForNotification();
      }
      clock_.Advance(absl::Milliseconds(3));  // the write's latency
      absl::MutexLock l(&mu_);
      written_.push_back({static_cast<int>(group->Count()), revision, revision_moved});
      if (!fail_next_.ok()) return std::exchange(fail_next_, absl::OkStatus());
      return absl::OkStatus();
    };
    o.on_durable = [this](std::vector<Event> events, int64_t revision, absl::Duration took, int writes) {
      absl::MutexLock l(&mu_);
      for (Event& e : events) published_.push_back(e.kv.key + "@" + std::to_string(revision));
      latencies_.push_back(took);
    };
    o.on_failure = [this](const std::string& error) {
      absl::MutexLock l(&mu_);
      failures_.push_back(error);
      // As the store does: fail what is pending, then carry on from the disk's state.
      const uint64_t last = last_seq_;
      committer_->Discard(last, absl::UnavailableError("store cannot write (" + error + ")"));
      committer_->ResetDurable(++last_seq_, durable_revision_on_disk_);
    };
    return o;
  }

  // Submits one operation putting `key` at `revision` (0: no key change).
  uint64_t Submit(const std::string& key, int64_t revision) {
    absl::MutexLock l(&mu_);
    std::vector<GroupCommitter::Mutation> mutations{{false, key, "v"}};
    std::vector<Event> events;
    if (revision != 0) {
      Event e;
      e.kv.key = key;
      events.push_back(e);
    }
    committer_->Submit(++last_seq_, mutations, std::move(events), revision);
    return last_seq_;
  }

  void Open() {
    committer_ = std::make_unique<GroupCommitter>(clock_, CommitterOptions());
    committer_->ResetDurable(0, 1);
    committer_->Start();
  }

  SimulatedClock clock_;
  bool hold_first_ = false;
  absl::Notification entered_, release_;
  absl::Mutex mu_;
  uint64_t last_seq_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t durable_revision_on_disk_ ABSL_GUARDED_BY(mu_) = 1;
  absl::Status fail_next_ ABSL_GUARDED_BY(mu_);
  std::vector<Written> written_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> published_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Duration> latencies_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> failures_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<GroupCommitter> committer_;
};

TEST_F(GroupCommitTest, WritersArrivingDuringAWriteShareTheNextOne) {
  hold_first_ = true;
  Open();
  const uint64_t first = Submit("/a", 2);
  entered_.WaitForNotification();
  Submit("/b", 3);
  Submit("/c", 4);
  const uint64_t last = Submit("/d", 5);
  release_.Notify();
  EXPECT_TRUE(committer_->WaitDurable(first).ok());
  EXPECT_TRUE(committer_->WaitDurable(last).ok());
  EXPECT_EQ(committer_->durable_revision(), 5);
  const GroupCommitter::Stats stats = committer_->stats();
  EXPECT_EQ(stats.group_commits, 2u);
  EXPECT_EQ(stats.writes, 4u);
  EXPECT_EQ(stats.syncs, 2u);
  EXPECT_EQ(stats.max_group_size, 3u);
  EXPECT_EQ(stats.commit_time, absl::Milliseconds(6));  // on the clock
  committer_->Stop();
  absl::MutexLock l(&mu_);
  ASSERT_EQ(written_.size(), 2u);
  EXPECT_EQ(written_[1].ops, 3);
  EXPECT_EQ(written_[1].revision, 5);
  EXPECT_TRUE(written_[1].revision_moved);
  EXPECT_EQ(published_, (std::vector<std::string>{"/a@2", "/b@5", "/c@5", "/d@5"}));
  EXPECT_EQ(latencies_, (std::vector<absl::Duration>{absl::Milliseconds(3), absl::Milliseconds(3)}));
}

TEST_F(GroupCommitTest, AGroupWithoutKeyChangesKeepsTheRevision) {
  Open();
  EXPECT_TRUE(committer_->WaitDurable(Submit("/lease", 0)).ok());
  EXPECT_EQ(committer_->durable_revision(), 1);
  committer_->Stop();
  absl::MutexLock l(&mu_);
  ASSERT_EQ(written_.size(), 1u);
  EXPECT_EQ(written_[0].revision, 1);
  EXPECT_FALSE(written_[0].revision_moved);
  EXPECT_TRUE(published_.empty());
}

TEST_F(GroupCommitTest, AFailedWriteFailsItsOperationsAndLaterOnesGoOn) {
  Open();
  EXPECT_TRUE(committer_->WaitDurable(Submit("/ok", 2)).ok());
  {
    absl::MutexLock l(&mu_);
    durable_revision_on_disk_ = 2;
    fail_next_ = absl::UnavailableError("IO error: No space left on device");
  }
  const uint64_t lost = Submit("/lost", 3);
  const absl::Status s = committer_->WaitDurable(lost);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "store cannot write (IO error: No space left on device)");
  EXPECT_EQ(committer_->durable_revision(), 2);
  // Operations before the failure stay durable, and the failure is remembered.
  EXPECT_TRUE(committer_->WaitDurable(1).ok());
  EXPECT_EQ(committer_->WaitDurable(lost).message(), s.message());
  const uint64_t after = Submit("/after", 3);
  EXPECT_TRUE(committer_->WaitDurable(after).ok());
  EXPECT_EQ(committer_->durable_revision(), 3);
  committer_->Stop();
  absl::MutexLock l(&mu_);
  EXPECT_EQ(failures_, std::vector<std::string>{"IO error: No space left on device"});
  EXPECT_EQ(published_, (std::vector<std::string>{"/ok@2", "/after@3"}));
}

TEST_F(GroupCommitTest, StopCommitsWhatWasSubmitted) {
  hold_first_ = true;
  Open();
  Submit("/a", 2);
  entered_.WaitForNotification();
  const uint64_t last = Submit("/b", 3);
  release_.Notify();
  committer_->Stop();
  committer_->Stop();  // idempotent
  EXPECT_TRUE(committer_->WaitDurable(last).ok());
  EXPECT_EQ(committer_->durable_revision(), 3);
}

}  // namespace
}  // namespace weft::storage
