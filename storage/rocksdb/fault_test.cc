// The RocksDB store under faults, against the real RocksDB: a full disk (its
// free-space check, faked), corrupted write-ahead logs and table files (real
// bytes flipped in real files), the quota alarm, and snapshot round trips.

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "common/testing.h"
#include "gtest/gtest.h"
#include "storage/rocksdb/rocksdb_store.h"
#include "storage/rocksdb/snapshot_archive.h"
#include "storage/rocksdb/wal_scan.h"

namespace weft::storage {
namespace {

std::string TestDir(const std::string& suffix = "") {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/", info->name(), suffix);
  std::filesystem::remove_all(dir);
  return dir;
}

PutRequest Put(const std::string& key, const std::string& value) {
  PutRequest r;
  r.key = key;
  r.value = value;
  return r;
}

int64_t CountKeys(Store& s, const std::string& prefix) {
  RangeRequest r;
  r.key = prefix;
  r.range_end = PrefixEnd(prefix);
  r.count_only = true;
  auto resp = s.Range(r);
  EXPECT_TRUE(resp.ok()) << resp.status();
  return resp.ok() ? resp->count : -1;
}

std::string FileWithSuffix(const std::string& dir, const std::string& suffix) {
  std::string found;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      if (found.empty() || e.path().string() > found) found = e.path().string();
    }
  }
  return found;
}

void FlipByte(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f.good()) << path;
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

// A store in a fresh directory whose free space is what `free_bytes` says, and
// whose recovery retries fast.
RocksDbStore::Options FaultyDiskOptions(std::atomic<int64_t>* free_bytes) {
  RocksDbStore::Options o;
  o.path = TestDir();
  o.lease_expiry_interval = absl::ZeroDuration();
  o.free_bytes = [free_bytes] { return free_bytes->load(); };
  o.resume_backoff_min = absl::Milliseconds(5);
  o.resume_backoff_max = absl::Milliseconds(20);
  return o;
}

TEST(StoreFaultTest, FullDiskRefusesWritesKeepsReadsAndRecovers) {
  std::atomic<int64_t> free_bytes{int64_t{1} << 30};
  RocksDbStore::Options o = FaultyDiskOptions(&free_bytes);
  auto store = RocksDbStore::Open(o);
  ASSERT_TRUE(store.ok()) << store.status();
  RocksDbStore& s = **store;

  std::vector<int64_t> acked;
  for (int i = 0; i < 10; ++i) {
    auto r = s.Put(Put(absl::StrCat("/k/", i), "v"));
    ASSERT_TRUE(r.ok()) << r.status();
    acked.push_back(r->revision);
  }
  absl::Mutex mu;
  std::vector<std::string> seen;
  WatchRequest wr;
  wr.key = "/k/";
  wr.range_end = PrefixEnd("/k/");
  auto watch = s.Watch(wr, [&](const WatchBatch& b) {
    absl::MutexLock l(&mu);
    for (const Event& e : b.events) seen.push_back(e.kv.key);
  });
  ASSERT_TRUE(watch.ok());
  const int64_t before = s.CurrentRevision();

  free_bytes = 1000;  // the disk fills up
  auto refused = s.Put(Put("/k/lost", "v"));
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  EXPECT_NE(refused.status().message().find("No space left"), std::string::npos) << refused.status();
  // Later writes fail fast, lease grants too; reads and keep-alives still work.
  EXPECT_EQ(s.Put(Put("/k/lost2", "v")).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(s.LeaseGrant(60).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(CountKeys(s, "/k/"), 10);
  EXPECT_EQ(s.CurrentRevision(), before);
  StoreHealth h = s.Health();
  EXPECT_FALSE(h.writable);
  EXPECT_NE(h.reason.find("No space left"), std::string::npos) << h.reason;
  EXPECT_GE(h.write_errors, 1u);
  // A read-only transaction is fine.
  TxnRequest ro;
  ro.success.resize(1);
  ro.success[0].range.key = "/k/0";
  EXPECT_TRUE(s.Txn(ro).ok());

  free_bytes = int64_t{1} << 30;  // space returns
  ASSERT_TRUE(Eventually([&] { return s.Health().writable; }, absl::Seconds(20))) << s.Health().reason;
  auto after = s.Put(Put("/k/after", "v"));
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->revision, before + 1);  // the refused writes took no revision
  EXPECT_EQ(CountKeys(s, "/k/"), 11);
  RangeRequest lost;
  lost.key = "/k/lost";
  EXPECT_EQ(s.Range(lost)->count, 0);
  // The watch goes on, with the change after recovery and nothing refused.
  ASSERT_TRUE(Eventually([&] {
    absl::MutexLock l(&mu);
    return !seen.empty() && seen.back() == "/k/after";
  }, absl::Seconds(20)));
  {
    absl::MutexLock l(&mu);
    for (const auto& k : seen) EXPECT_EQ(k.find("/k/lost"), std::string::npos) << k;
  }
  watch->reset();
  store->reset();

  // Everything acknowledged is on disk.
  o.free_bytes = nullptr;
  auto reopened = RocksDbStore::Open(o);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ(CountKeys(**reopened, "/k/"), 11);
  EXPECT_EQ((*reopened)->CurrentRevision(), before + 1);
}

TEST(StoreFaultTest, WritesInFlightWhenTheDiskFillsFailAndNothingAckedIsLost) {
  std::atomic<int64_t> free_bytes{int64_t{1} << 30};
  RocksDbStore::Options o = FaultyDiskOptions(&free_bytes);
  std::vector<std::string> acked;
  absl::Mutex mu;
  {
    auto store = RocksDbStore::Open(o);
    ASSERT_TRUE(store.ok()) << store.status();
    std::vector<std::thread> writers;
    std::atomic<int> failures{0};
    for (int t = 0; t < 4; ++t) {
      writers.emplace_back([&, t] {
        for (int i = 0; i < 300; ++i) {
          if (t == 0 && i == 100) free_bytes = 0;
          if (t == 0 && i == 200) free_bytes = int64_t{1} << 30;
          const std::string key = absl::StrCat("/w/", t, "/", i);
          auto r = (*store)->Put(Put(key, "v"));
          if (r.ok()) {
            absl::MutexLock l(&mu);
            acked.push_back(key);
          } else {
            EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
            ++failures;
          }
        }
      });
    }
    for (auto& w : writers) w.join();
    EXPECT_GT(failures.load(), 0);
    // Memory agrees with what was acknowledged.
    EXPECT_EQ(CountKeys(**store, "/w/"), static_cast<int64_t>(acked.size()));
  }
  o.free_bytes = nullptr;
  auto reopened = RocksDbStore::Open(o);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ(CountKeys(**reopened, "/w/"), static_cast<int64_t>(acked.size()));
  for (const std::string& key : acked) {
    RangeRequest r;
    r.key = key;
    ASSERT_EQ((*reopened)->Range(r)->count, 1) << key;
  }
}

TEST(StoreFaultTest, CorruptWalRecordRefusesToOpenThenRecoversOnRequest) {
  RocksDbStore::Options o;
  o.path = TestDir();
  o.lease_expiry_interval = absl::ZeroDuration();
  {
    auto store = RocksDbStore::Open(o);
    ASSERT_TRUE(store.ok());
    for (int i = 0; i < 20; ++i) ASSERT_TRUE((*store)->Put(Put(absl::StrCat("/c/", i), std::string(200, 'x'))).ok());
  }
  const std::string wal = FileWithSuffix(o.path, ".log");
  ASSERT_FALSE(wal.empty());
  const uint64_t size = std::filesystem::file_size(wal);
  FlipByte(wal, size / 2);
  const rocksdb_wal::WalScan scan = rocksdb_wal::ScanWalFile(wal);
  ASSERT_TRUE(scan.corrupt);
  EXPECT_GT(scan.batches_dropped, 1u);
  EXPECT_GT(scan.batches_ok, 1u);

  auto refused = RocksDbStore::Open(o);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kDataLoss) << refused.status();
  const std::string msg(refused.status().message());
  EXPECT_NE(msg.find(wal), std::string::npos) << msg;
  EXPECT_NE(msg.find("--recover-from-corruption"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--restore-from"), std::string::npos) << msg;
  EXPECT_EQ(std::filesystem::file_size(wal), size);  // refusing changed nothing

  o.recover_from_corruption = true;
  auto recovered = RocksDbStore::Open(o);
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  const std::string report = (*recovered)->recovery_report();
  EXPECT_NE(report.find(wal), std::string::npos) << report;
  EXPECT_NE(report.find(absl::StrCat("dropping ", scan.bytes_dropped, " bytes")), std::string::npos) << report;
  const int64_t kept = CountKeys(**recovered, "/c/");
  EXPECT_GT(kept, 0);
  EXPECT_LT(kept, 20);
  // What is kept is a prefix: the first `kept` puts, nothing after a gap.
  for (int i = 0; i < kept; ++i) {
    RangeRequest r;
    r.key = absl::StrCat("/c/", i);
    EXPECT_EQ((*recovered)->Range(r)->count, 1) << r.key;
  }
  EXPECT_EQ((*recovered)->CurrentRevision(), kept + 1);
}

TEST(StoreFaultTest, CorruptTableFileRefusesToOpen) {
  RocksDbStore::Options o;
  o.path = TestDir();
  o.lease_expiry_interval = absl::ZeroDuration();
  {
    auto store = RocksDbStore::Open(o);
    ASSERT_TRUE(store.ok());
    for (int i = 0; i < 200; ++i) {
      ASSERT_TRUE((*store)->Put(Put(absl::StrCat("/t/", i), std::string(100, 'a' + i % 26))).ok());
    }
    ASSERT_TRUE((*store)->Defragment().ok());  // flushes and compacts into a table file
  }
  const std::string sst = FileWithSuffix(o.path, ".sst");
  ASSERT_FALSE(sst.empty());
  FlipByte(sst, 100);  // inside the first data block
  auto refused = RocksDbStore::Open(o);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kDataLoss) << refused.status();
  const std::string msg(refused.status().message());
  EXPECT_NE(msg.find(std::filesystem::path(sst).filename().string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("Restore a backup"), std::string::npos) << msg;
}

TEST(StoreFaultTest, QuotaRaisesNospaceAlarmUntilDisarmed) {
  SimulatedClock clock;
  RocksDbStore::Options o;
  o.clock = &clock;
  o.path = TestDir();
  o.lease_expiry_interval = absl::ZeroDuration();
  o.quota_bytes = 64 << 10;
  auto store = RocksDbStore::Open(o);
  ASSERT_TRUE(store.ok());
  RocksDbStore& s = **store;
  absl::Status last;
  int i = 0;
  for (; i < 1000 && last.ok(); ++i) {
    last = s.Put(Put(absl::StrCat("/q/", i), std::string(1000, 'q'))).status();
    if (last.ok()) clock.Advance(absl::Milliseconds(1));  // the size is sampled every 100 ms of it
  }
  ASSERT_EQ(last.code(), absl::StatusCode::kResourceExhausted) << last;
  EXPECT_EQ(last.message(), "etcdserver: mvcc: database space exceeded");
  EXPECT_TRUE(s.Health().space_alarm);
  EXPECT_EQ(s.LeaseGrant(60).status().code(), absl::StatusCode::kResourceExhausted);
  // Deleting is allowed, and reads.
  DeleteRangeRequest del;
  del.key = "/q/";
  del.range_end = PrefixEnd("/q/");
  ASSERT_TRUE(s.DeleteRange(del).ok());
  // Still over quota on disk: disarm refuses until history goes and space is reclaimed.
  EXPECT_EQ(s.DisarmSpaceAlarm().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(s.Compact(s.CurrentRevision()).ok());
  ASSERT_TRUE(s.Defragment().ok());
  absl::Status disarm = s.DisarmSpaceAlarm();
  ASSERT_TRUE(disarm.ok()) << disarm << " size " << s.Health().db_size_bytes;
  EXPECT_FALSE(s.Health().space_alarm);
  EXPECT_TRUE(s.Put(Put("/q/again", "v")).ok());
}

TEST(StoreFaultTest, SnapshotRestoresEveryKeyLeaseAndRevision) {
  RocksDbStore::Options o;
  o.path = TestDir();
  o.lease_expiry_interval = absl::ZeroDuration();
  std::string archive;
  int64_t revision = 0;
  int64_t lease = 0;
  {
    auto store = RocksDbStore::Open(o);
    ASSERT_TRUE(store.ok());
    auto g = (*store)->LeaseGrant(3600);
    ASSERT_TRUE(g.ok());
    lease = g->id;
    for (int i = 0; i < 100; ++i) {
      PutRequest p = Put(absl::StrCat("/s/", i), absl::StrCat("v", i));
      if (i % 2 == 0) p.lease = lease;
      ASSERT_TRUE((*store)->Put(p).ok());
    }
    revision = (*store)->CurrentRevision();
    ASSERT_TRUE((*store)->WriteSnapshot([&](absl::string_view c) {
      archive.append(c.data(), c.size());
      return absl::OkStatus();
    }).ok());
    // A write after the snapshot is not in it.
    ASSERT_TRUE((*store)->Put(Put("/s/later", "x")).ok());
  }
  EXPECT_EQ(archive.size() % 512, 0u);
  const std::string file = TestDir(".snap");
  std::ofstream(file, std::ios::binary) << archive;
  const std::string restored_dir = TestDir(".restored");
  auto info = snapshot_archive::RestoreArchive(file, restored_dir, false);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_FALSE(info->checksum_verified);
  // Not over a store that exists, unless forced.
  EXPECT_EQ(snapshot_archive::RestoreArchive(file, restored_dir, false).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // With etcd's SHA-256 trailer; and a damaged one is refused.
  snapshot_archive::Sha256 sha;
  sha.Update(archive);
  std::ofstream(file, std::ios::binary) << archive << sha.Final();
  auto forced = snapshot_archive::RestoreArchive(file, restored_dir, true);
  ASSERT_TRUE(forced.ok()) << forced.status();
  EXPECT_TRUE(forced->checksum_verified);
  EXPECT_FALSE(forced->moved_aside.empty());
  std::string damaged = archive;
  damaged[damaged.size() / 2] ^= 1;
  std::ofstream(file, std::ios::binary) << damaged << sha.Final();
  EXPECT_EQ(snapshot_archive::RestoreArchive(file, TestDir(".other"), false).status().code(),
            absl::StatusCode::kInvalidArgument);

  RocksDbStore::Options ro = o;
  ro.path = restored_dir;
  auto restored = RocksDbStore::Open(ro);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ((*restored)->CurrentRevision(), revision);
  EXPECT_EQ(CountKeys(**restored, "/s/"), 100);
  auto ttl = (*restored)->LeaseTimeToLive(lease, true);
  ASSERT_TRUE(ttl.ok());
  EXPECT_EQ(ttl->granted_ttl_seconds, 3600);
  EXPECT_EQ(ttl->keys.size(), 50u);
}

}  // namespace
}  // namespace weft::storage
