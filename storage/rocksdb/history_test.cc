#include "storage/rocksdb/history.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/testing.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"
#include "storage/rocksdb/codec.h"
#include "storage/store.h"

namespace weft::storage {
namespace {

namespace codec = rocksdb_codec;

// A database holding, at revisions 2..5: put a=1, put a=2, put b=x, delete a.
class DiskHistoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string dir = tmp_.Join("db");
    rocksdb::Options o;
    o.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(o, dir, &raw).ok());
    db_.reset(raw);
    Record(2, Event::Type::kPut, "a", "1");
    Record(3, Event::Type::kPut, "a", "2");
    Record(4, Event::Type::kPut, "b", "x");
    Record(5, Event::Type::kDelete, "a", "");
  }

  // One change at `revision`, as the store writes it: under its log key and its index key.
  void Record(int64_t revision, Event::Type type, const std::string& key, const std::string& value) {
    codec::Record r;
    r.type = type;
    r.kv = KeyValue{key, value, /*create_revision=*/2, revision, /*version=*/1, /*lease=*/0};
    const std::string encoded = codec::EncodeRecord(r);
    rocksdb::WriteBatch batch;
    batch.Put(codec::IndexKey(key, revision), encoded);
    batch.Put(codec::LogKey(revision, r.sub), encoded);
    ASSERT_TRUE(db_->Write(rocksdb::WriteOptions(), &batch).ok());
  }

  std::vector<std::string> Read(DiskHistory& h, int64_t revision) {
    RangeRequest req;
    req.key = "a";
    req.range_end = "c";
    req.revision = revision;
    auto resp = h.Range(req, nullptr);
    EXPECT_TRUE(resp.ok()) << resp.status();
    std::vector<std::string> out;
    if (resp.ok()) {
      for (const KeyValue& kv : resp->kvs) out.push_back(kv.key + "=" + kv.value);
    }
    return out;
  }

  std::vector<std::string> Watch(DiskHistory& h, int64_t from, int64_t to) {
    WatchRequest req;
    req.key = "a";
    req.range_end = "c";
    req.prev_kv = true;
    auto events = h.Events(req, from, to, nullptr);
    EXPECT_TRUE(events.ok()) << events.status();
    std::vector<std::string> out;
    if (events.ok()) {
      for (const Event& e : *events) {
        out.push_back(absl::StrCat(e.type == Event::Type::kPut ? "put " : "delete ", e.kv.key, "@",
                                   e.kv.mod_revision, e.prev_kv ? " prev " + e.prev_kv->value : ""));
      }
    }
    return out;
  }

  int LogEntriesBelow(int64_t revision) {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    int n = 0;
    for (it->Seek(std::string(codec::kLogPrefix)); it->Valid() && it->key().compare(codec::LogKeyStart(revision)) < 0;
         it->Next()) {
      ++n;
    }
    return n;
  }

  weft::TempDir tmp_{"history_test"};  // declared first: removed after db_ is closed
  std::unique_ptr<rocksdb::DB> db_;
};

TEST_F(DiskHistoryTest, RangeSeesEachKeysNewestPutAtTheRevision) {
  DiskHistory h(db_.get(), false, 0);
  EXPECT_EQ(Read(h, 2), std::vector<std::string>{"a=1"});
  EXPECT_EQ(Read(h, 3), std::vector<std::string>{"a=2"});
  EXPECT_EQ(Read(h, 4), (std::vector<std::string>{"a=2", "b=x"}));
  EXPECT_EQ(Read(h, 5), std::vector<std::string>{"b=x"});

  RangeRequest req;
  req.key = "a";
  req.range_end = "c";
  req.revision = 4;
  req.limit = 1;
  req.keys_only = true;
  auto resp = h.Range(req, nullptr);
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->count, 2);
  EXPECT_TRUE(resp->more);
  ASSERT_EQ(resp->kvs.size(), 1u);
  EXPECT_EQ(resp->kvs[0].value, "");
}

TEST_F(DiskHistoryTest, CurrentKeysAreTheNewestPuts) {
  DiskHistory h(db_.get(), false, 0);
  std::vector<std::string> keys;
  ASSERT_TRUE(h.ForEachCurrentKey([&](KeyValue&& kv) { keys.push_back(kv.key + "=" + kv.value); }).ok());
  EXPECT_EQ(keys, std::vector<std::string>{"b=x"});
}

TEST_F(DiskHistoryTest, EventsCarryThePreviousValues) {
  DiskHistory h(db_.get(), false, 0);
  EXPECT_EQ(Watch(h, 3, 5), (std::vector<std::string>{"put a@3 prev 1", "put b@4", "delete a@5 prev 2"}));
  EXPECT_EQ(Watch(h, 6, 9), std::vector<std::string>{});
}

TEST_F(DiskHistoryTest, EventsOverTheByteBoundAreRefused) {
  DiskHistory h(db_.get(), false, /*max_event_bytes=*/4);
  WatchRequest req;
  req.key = "a";
  req.range_end = "c";
  auto events = h.Events(req, 2, 5, nullptr);
  EXPECT_EQ(events.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(events.status().message().find("(revisions 2 to 5) is over 4 bytes"), std::string::npos)
      << events.status();
}

TEST_F(DiskHistoryTest, CompactionKeepsWhatReadsAtOrAboveItNeed) {
  DiskHistory h(db_.get(), true, 0);
  ASSERT_TRUE(h.Load().ok());
  ASSERT_TRUE(h.Compact(4).ok());
  EXPECT_EQ(LogEntriesBelow(4), 0);
  EXPECT_EQ(Read(h, 4), (std::vector<std::string>{"a=2", "b=x"}));  // a@3 stays: it is a's state at 4
  EXPECT_EQ(Watch(h, 4, 5), (std::vector<std::string>{"put b@4", "delete a@5 prev 2"}));
  std::string done;
  ASSERT_TRUE(db_->Get(rocksdb::ReadOptions(), std::string(codec::kMetaCompactDone), &done).ok());
  EXPECT_EQ(codec::DecodeInt64(done).value(), 4);

  // A delete as the newest entry goes too: nothing is left of `a`.
  DiskHistory reopened(db_.get(), true, 0);
  ASSERT_TRUE(reopened.Load().ok());
  ASSERT_TRUE(reopened.Compact(6).ok());
  EXPECT_EQ(Read(reopened, 6), std::vector<std::string>{"b=x"});
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  it->Seek(codec::IndexPrefix("a"));
  EXPECT_FALSE(it->Valid() && it->key().starts_with(codec::IndexPrefix("a")));
  // Compacting below what is done changes nothing.
  EXPECT_TRUE(reopened.Compact(3).ok());
  EXPECT_EQ(Read(reopened, 6), std::vector<std::string>{"b=x"});
}

}  // namespace
}  // namespace weft::storage
