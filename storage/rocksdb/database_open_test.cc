#include "storage/rocksdb/database_open.h"

#include <fstream>
#include <string>
#include <vector>

#include "common/testing.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "storage/rocksdb/wal_scan.h"

namespace weft::storage {
namespace {


TEST(DatabaseOpenTest, CreatesThenReopensWithNothingToReport) {
  const weft::TempDir tmp("database_open_test");
  const std::string dir = tmp.Join("reopen");
  {
    auto opened = OpenDatabase(dir, /*recover_from_corruption=*/false);
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(opened->recovery_report, "");
    rocksdb::WriteOptions wo;
    wo.sync = true;
    ASSERT_TRUE(opened->db->Put(wo, "k", "v").ok());
  }
  auto opened = OpenDatabase(dir, /*recover_from_corruption=*/true);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->recovery_report, "");
  std::string v;
  ASSERT_TRUE(opened->db->Get(rocksdb::ReadOptions(), "k", &v).ok());
  EXPECT_EQ(v, "v");
}

TEST(DatabaseOpenTest, APathItCannotCreateIsUnavailable) {
  const weft::TempDir tmp("database_open_test");
  const std::string file = tmp.Join("file");
  std::ofstream(file) << "not a directory";
  auto opened = OpenDatabase(file + "/db", false);
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kUnavailable) << opened.status();
  EXPECT_NE(opened.status().message().find("open store at " + file + "/db"), std::string::npos)
      << opened.status();
}

TEST(DatabaseOpenTest, DropReportNamesTheBadRecordAndEveryLaterLog) {
  rocksdb_wal::WalScan good;
  good.file = "/d/000003.log";
  rocksdb_wal::WalScan bad;
  bad.file = "/d/000004.log";
  bad.corrupt = true;
  bad.what = "checksum mismatch";
  bad.corrupt_offset = 4096;
  bad.bytes_dropped = 900;
  bad.batches_dropped = 3;
  bad.operations_dropped = 12;
  bad.batches_ok = 40;
  rocksdb_wal::WalScan later;
  later.file = "/d/000005.log";
  later.size_bytes = 512;
  EXPECT_EQ(DropReport({good, bad, later}),
            "/d/000004.log: checksum mismatch at offset 4096, dropping 900 bytes (3 write batches, at least 12 "
            "operations; 40 batches before it kept); /d/000005.log: after the corruption, dropping all 512 bytes");
}

TEST(DatabaseOpenTest, DropReportWithoutABadRecordSaysSo) {
  rocksdb_wal::WalScan good;
  good.file = "/d/000003.log";
  EXPECT_EQ(DropReport({good}),
            "no bad write-ahead log record found (table file corruption cannot be recovered this way)");
  EXPECT_EQ(DropReport({}), DropReport({good}));
}

}  // namespace
}  // namespace weft::storage
