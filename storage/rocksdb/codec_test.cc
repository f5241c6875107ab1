#include "storage/rocksdb/codec.h"

#include <algorithm>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace weft::storage::rocksdb_codec {
namespace {

std::string RandomKey(std::mt19937& rng) {
  // Mostly NUL, 0x01 and 0xff bytes: the ones escaping must get right.
  static const char kAlphabet[] = {'\0', '\x01', '\xff', 'a', '/'};
  std::string s(rng() % 5, ' ');
  for (char& c : s) c = kAlphabet[rng() % sizeof(kAlphabet)];
  return s;
}

TEST(CodecTest, IndexKeysSortByKeyThenRevision) {
  std::mt19937 rng(1);
  std::vector<std::pair<std::string, int64_t>> plain;
  for (int i = 0; i < 2000; ++i) plain.emplace_back(RandomKey(rng), rng() % 300);
  std::vector<std::pair<std::string, int64_t>> by_encoding = plain;
  std::sort(plain.begin(), plain.end());
  std::sort(by_encoding.begin(), by_encoding.end(), [](const auto& a, const auto& b) {
    return IndexKey(a.first, a.second) < IndexKey(b.first, b.second);
  });
  EXPECT_EQ(plain, by_encoding);
}

TEST(CodecTest, IndexBoundsHoldExactlyTheRange) {
  std::mt19937 rng(2);
  const std::string all(1, '\0');
  for (int i = 0; i < 3000; ++i) {
    const std::string key = RandomKey(rng) + "a";
    std::string end;
    switch (i % 3) {
      case 0: end = ""; break;
      case 1: end = all; break;
      default: end = RandomKey(rng) + "b"; break;
    }
    const std::string probe = i % 7 == 0 ? key : RandomKey(rng);
    std::string lower, upper;
    IndexBounds(key, end, &lower, &upper);
    const std::string ik = IndexKey(probe, rng() % 1000);
    EXPECT_EQ(KeyInRange(probe, key, end), ik >= lower && ik < upper)
        << "key=" << key.size() << " end=" << end.size() << " probe=" << probe.size();
  }
}

TEST(CodecTest, IndexKeyRevision) {
  EXPECT_EQ(IndexKeyRevision(IndexKey(std::string("a\0b", 3), 123456789)), 123456789);
}

TEST(CodecTest, LogKeysSortByRevisionThenSub) {
  EXPECT_LT(LogKey(1, 7), LogKey(2, 0));
  EXPECT_LT(LogKey(256, 0), LogKey(256, 1));
  EXPECT_LT(LogKeyStart(5), LogKey(5, 0));
  EXPECT_LT(LogKey(5, 0xffffffff), LogKeyStart(6));
}

TEST(CodecTest, RecordRoundTrips) {
  Record r;
  r.type = Event::Type::kPut;
  r.sub = 3;
  r.kv = KeyValue{std::string("k\0ey", 4), std::string("va\0lue", 6), 2, 9, 4, 77};
  absl::StatusOr<Record> back = DecodeRecord(EncodeRecord(r));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->type, r.type);
  EXPECT_EQ(back->sub, 3u);
  EXPECT_EQ(back->kv.key, r.kv.key);
  EXPECT_EQ(back->kv.value, r.kv.value);
  EXPECT_EQ(back->kv.create_revision, 2);
  EXPECT_EQ(back->kv.mod_revision, 9);
  EXPECT_EQ(back->kv.version, 4);
  EXPECT_EQ(back->kv.lease, 77);
}

TEST(CodecTest, CorruptRecordsAreDataLoss) {
  EXPECT_TRUE(absl::IsDataLoss(DecodeRecord("p").status()));
  Record r;
  r.kv.key = "key";
  std::string bytes = EncodeRecord(r);
  bytes[0] = 'x';
  EXPECT_TRUE(absl::IsDataLoss(DecodeRecord(bytes).status()));
  bytes = EncodeRecord(r);
  bytes.resize(bytes.size() - 1);  // key cut short
  EXPECT_TRUE(absl::IsDataLoss(DecodeRecord(bytes).status()));
}

TEST(CodecTest, LeaseKeys) {
  absl::StatusOr<int64_t> id = LeaseIdFromKey(LeaseKey(0x1234567890));
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, 0x1234567890);
  EXPECT_FALSE(LeaseIdFromKey("k/whatever").ok());
}

}  // namespace
}  // namespace weft::storage::rocksdb_codec
