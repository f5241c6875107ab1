#include "storage/rocksdb/checkpoint.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "common/testing.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "storage/rocksdb/snapshot_archive.h"

namespace weft::storage {
namespace {

std::unique_ptr<rocksdb::DB> OpenDb(const std::string& path) {
  rocksdb::Options o;
  o.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  EXPECT_TRUE(rocksdb::DB::Open(o, path, &raw).ok()) << path;
  return std::unique_ptr<rocksdb::DB>(raw);
}

TEST(CheckpointTest, ArchiveRestoresTheDatabaseAndLeavesNoStagingBehind) {
  const weft::TempDir tmp("checkpoint_test");
  const std::string dir = tmp.Join("db");
  std::unique_ptr<rocksdb::DB> db = OpenDb(dir);
  ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "k", "v").ok());  // in the memtable only
  std::string archive;
  ASSERT_TRUE(WriteCheckpointArchive(db.get(), dir, [&](absl::string_view chunk) {
                archive.append(chunk.data(), chunk.size());
                return absl::OkStatus();
              }).ok());
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    EXPECT_EQ(e.path().filename().string().find("weft-snapshot.tmp-"), std::string::npos) << e.path();
  }

  const std::string file = tmp.Join("archive");
  std::ofstream(file, std::ios::binary) << archive;
  const std::string restored = tmp.Join("restored");
  auto info = snapshot_archive::RestoreArchive(file, restored, /*force=*/false);
  ASSERT_TRUE(info.ok()) << info.status();
  std::unique_ptr<rocksdb::DB> copy = OpenDb(restored);
  std::string v;
  ASSERT_TRUE(copy->Get(rocksdb::ReadOptions(), "k", &v).ok());
  EXPECT_EQ(v, "v");
}

TEST(CheckpointTest, ASinkErrorStopsTheArchive) {
  const weft::TempDir tmp("checkpoint_test");
  const std::string dir = tmp.Join("sink");
  std::unique_ptr<rocksdb::DB> db = OpenDb(dir);
  const absl::Status s =
      WriteCheckpointArchive(db.get(), dir, [](absl::string_view) { return absl::CancelledError("client left"); });
  EXPECT_EQ(s, absl::CancelledError("client left"));
}

TEST(CheckpointTest, LeftoversAreRemovedAndNothingElse) {
  const weft::TempDir tmp("checkpoint_test");
  const std::string dir = tmp.Join("leftovers");
  std::filesystem::create_directories(dir + "/weft-snapshot.tmp-42-0");
  std::ofstream(dir + "/weft-snapshot.tmp-42-0/000007.sst") << "x";
  std::ofstream(dir + "/CURRENT") << "MANIFEST-000001\n";
  RemoveCheckpointLeftovers(dir);
  EXPECT_FALSE(std::filesystem::exists(dir + "/weft-snapshot.tmp-42-0"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/CURRENT"));
  RemoveCheckpointLeftovers(dir + "/missing");  // no directory: nothing to do
}

}  // namespace
}  // namespace weft::storage
