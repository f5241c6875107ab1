// kill -9 of a process in the middle of a burst of writes: every write it had
// acknowledged must be there after reopening (twice, the second run starting
// from the crashed database).

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "storage/rocksdb/rocksdb_store.h"

namespace weft::storage {
namespace {

struct Acked {
  std::map<std::string, int64_t> puts;                         // key -> revision
  std::map<std::string, std::pair<int64_t, int64_t>> counters;  // key -> (n, revision)
  std::vector<int64_t> leases;
  int64_t max_revision = 0;
  int lines = 0;
};

std::string WriterPath() {
  return absl::StrCat(std::getenv("TEST_SRCDIR"), "/", std::getenv("TEST_WORKSPACE"),
                      "/storage/rocksdb/crash_writer");
}

void Parse(const std::string& line, Acked* acked) {
  std::vector<std::string> f = absl::StrSplit(line, ' ');
  int64_t a = 0, b = 0;
  if (f[0] == "put" && f.size() == 3 && absl::SimpleAtoi(f[2], &a)) {
    acked->puts[f[1]] = a;
    acked->max_revision = std::max(acked->max_revision, a);
  } else if (f[0] == "ctr" && f.size() == 4 && absl::SimpleAtoi(f[2], &a) && absl::SimpleAtoi(f[3], &b)) {
    auto& c = acked->counters[f[1]];
    if (a >= c.first) c = {a, b};
    acked->max_revision = std::max(acked->max_revision, b);
  } else if (f[0] == "lease" && f.size() == 2 && absl::SimpleAtoi(f[1], &a)) {
    acked->leases.push_back(a);
  } else {
    ADD_FAILURE() << "bad line from writer: " << line;
    return;
  }
  ++acked->lines;
}

// Runs the writer until it has acknowledged `min_acks` writes, kills it with
// SIGKILL, and collects every line it had written.
void RunAndKill(const std::string& dir, const std::string& tag, int min_acks, Acked* acked) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const std::string writer = WriterPath();
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    execl(writer.c_str(), writer.c_str(), dir.c_str(), tag.c_str(), "16", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  std::string pending;
  char buf[65536];
  bool killed = false;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (true) {
    const ssize_t n = read(fds[0], buf, sizeof(buf));
    if (n <= 0) break;  // EOF: the writer is gone
    pending.append(buf, n);
    size_t nl;
    while ((nl = pending.find('\n')) != std::string::npos) {
      Parse(pending.substr(0, nl), acked);
      pending.erase(0, nl + 1);
    }
    if (!killed && (acked->lines >= min_acks || absl::Now() > deadline)) {
      ASSERT_EQ(kill(pid, SIGKILL), 0);  // mid-burst: the threads are all writing
      killed = true;
    }
  }
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "writer exited by itself, status " << status;
  EXPECT_TRUE(pending.empty()) << "torn line: " << pending;
  ASSERT_GE(acked->lines, min_acks);
}

void Verify(const std::string& dir, const Acked& acked) {
  RocksDbStore::Options options;
  options.path = dir;
  options.lease_expiry_interval = absl::ZeroDuration();
  absl::StatusOr<std::unique_ptr<RocksDbStore>> store = RocksDbStore::Open(options);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_GE((*store)->CurrentRevision(), acked.max_revision);
  for (const auto& [key, revision] : acked.puts) {
    RangeRequest r;
    r.key = key;
    absl::StatusOr<RangeResponse> got = (*store)->Range(r);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->kvs.size(), 1u) << "acknowledged key lost: " << key;
    EXPECT_EQ(got->kvs[0].value, key);
    EXPECT_EQ(got->kvs[0].mod_revision, revision);
    EXPECT_EQ(got->kvs[0].create_revision, revision);
    EXPECT_EQ(got->kvs[0].version, 1);
  }
  for (const auto& [key, last] : acked.counters) {
    RangeRequest r;
    r.key = key;
    absl::StatusOr<RangeResponse> got = (*store)->Range(r);
    ASSERT_TRUE(got.ok());
    ASSERT_EQ(got->kvs.size(), 1u) << key;
    int64_t n = -1;
    ASSERT_TRUE(absl::SimpleAtoi(got->kvs[0].value, &n));
    // A later, unacknowledged write may have made it too; never an older one.
    EXPECT_GE(n, last.first) << key;
    EXPECT_GE(got->kvs[0].mod_revision, last.second) << key;
  }
  absl::StatusOr<std::vector<int64_t>> leases = (*store)->Leases();
  ASSERT_TRUE(leases.ok());
  for (int64_t id : acked.leases) {
    EXPECT_TRUE(std::binary_search(leases->begin(), leases->end(), id)) << "lease lost: " << id;
  }
}

TEST(CrashTest, AcknowledgedWritesSurviveKill9) {
  const std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/crash");
  std::filesystem::remove_all(dir);
  Acked acked;
  RunAndKill(dir, "first", 3000, &acked);
  Verify(dir, acked);
  RunAndKill(dir, "second", acked.lines + 3000, &acked);
  Verify(dir, acked);
  EXPECT_GT(acked.puts.size(), 1000u);
}

}  // namespace
}  // namespace weft::storage
