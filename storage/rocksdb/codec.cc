#include "storage/rocksdb/codec.h"

#include "absl/strings/str_cat.h"

namespace weft::storage::rocksdb_codec {

namespace {

void AppendU64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>((v >> shift) & 0xff));
}

void AppendU32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>((v >> shift) & 0xff));
}

uint64_t ReadU64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

uint32_t ReadU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// Record layout: type(1) sub(4) create(8) mod(8) version(8) lease(8) key_len(4) key value.
constexpr size_t kRecordHeader = 1 + 4 + 8 * 4 + 4;
constexpr char kTypePut = 'p';
constexpr char kTypeDelete = 'd';

}  // namespace

std::string EncodeInt64(int64_t v) {
  std::string s;
  AppendU64(&s, static_cast<uint64_t>(v));
  return s;
}

absl::StatusOr<int64_t> DecodeInt64(absl::string_view s) {
  if (s.size() != 8) return absl::DataLossError(absl::StrCat("bad int64 of ", s.size(), " bytes"));
  return static_cast<int64_t>(ReadU64(s.data()));
}

std::string LogKey(int64_t revision, uint32_t sub) {
  std::string k = LogKeyStart(revision);
  AppendU32(&k, sub);
  return k;
}

std::string LogKeyStart(int64_t revision) {
  std::string k(kLogPrefix);
  AppendU64(&k, static_cast<uint64_t>(revision));
  return k;
}

std::string EscapeKey(absl::string_view key) {
  // 0x00 -> 0x00 0xff, terminator 0x00 0x01: order-preserving and prefix-free.
  std::string out;
  out.reserve(key.size() + 2);
  for (char c : key) {
    out.push_back(c);
    if (c == '\0') out.push_back('\xff');
  }
  out.push_back('\0');
  out.push_back('\x01');
  return out;
}

std::string IndexPrefix(absl::string_view key) { return absl::StrCat(kIndexPrefix, EscapeKey(key)); }

std::string IndexKey(absl::string_view key, int64_t revision) {
  std::string k = IndexPrefix(key);
  AppendU64(&k, static_cast<uint64_t>(revision));
  return k;
}

int64_t IndexKeyRevision(absl::string_view index_key) {
  return static_cast<int64_t>(ReadU64(index_key.data() + index_key.size() - 8));
}

void IndexBounds(const std::string& key, const std::string& range_end, std::string* lower,
                 std::string* upper) {
  *lower = IndexPrefix(key);
  if (range_end.empty()) {
    // Only `key`: its entries are lower + 8 bytes; lower + 0xff.. is past them.
    *upper = *lower + std::string(9, '\xff');
  } else if (range_end == std::string(1, '\0')) {
    *upper = std::string(PrefixEnd(std::string(kIndexPrefix)));
  } else {
    *upper = IndexPrefix(range_end);
  }
}

std::string LeaseKey(int64_t id) { return absl::StrCat(kLeasePrefix, EncodeInt64(id)); }

absl::StatusOr<int64_t> LeaseIdFromKey(absl::string_view key) {
  if (key.substr(0, kLeasePrefix.size()) != kLeasePrefix) {
    return absl::DataLossError("not a lease key");
  }
  return DecodeInt64(key.substr(kLeasePrefix.size()));
}

std::string EncodeRecord(const Record& r) {
  std::string out;
  out.reserve(kRecordHeader + r.kv.key.size() + r.kv.value.size());
  out.push_back(r.type == Event::Type::kPut ? kTypePut : kTypeDelete);
  AppendU32(&out, r.sub);
  AppendU64(&out, static_cast<uint64_t>(r.kv.create_revision));
  AppendU64(&out, static_cast<uint64_t>(r.kv.mod_revision));
  AppendU64(&out, static_cast<uint64_t>(r.kv.version));
  AppendU64(&out, static_cast<uint64_t>(r.kv.lease));
  AppendU32(&out, static_cast<uint32_t>(r.kv.key.size()));
  out.append(r.kv.key);
  out.append(r.kv.value);
  return out;
}

absl::StatusOr<Record> DecodeRecord(absl::string_view s) {
  if (s.size() < kRecordHeader) return absl::DataLossError("record too short");
  Record r;
  const char* p = s.data();
  if (p[0] == kTypePut) {
    r.type = Event::Type::kPut;
  } else if (p[0] == kTypeDelete) {
    r.type = Event::Type::kDelete;
  } else {
    return absl::DataLossError("bad record type");
  }
  r.sub = ReadU32(p + 1);
  r.kv.create_revision = static_cast<int64_t>(ReadU64(p + 5));
  r.kv.mod_revision = static_cast<int64_t>(ReadU64(p + 13));
  r.kv.version = static_cast<int64_t>(ReadU64(p + 21));
  r.kv.lease = static_cast<int64_t>(ReadU64(p + 29));
  const uint32_t key_len = ReadU32(p + 37);
  if (s.size() - kRecordHeader < key_len) return absl::DataLossError("record key overruns record");
  r.kv.key.assign(p + kRecordHeader, key_len);
  r.kv.value.assign(p + kRecordHeader + key_len, s.size() - kRecordHeader - key_len);
  return r;
}

}  // namespace weft::storage::rocksdb_codec
