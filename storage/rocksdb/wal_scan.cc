#include "storage/rocksdb/wal_scan.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace weft::storage::rocksdb_wal {

namespace {

constexpr size_t kBlockSize = 32768;
constexpr size_t kHeaderSize = 7;
constexpr size_t kRecyclableHeaderSize = 11;
constexpr uint32_t kMaskDelta = 0xa282ead8u;
// Record types (db/log_format.h).
enum : uint8_t {
  kZeroType = 0,
  kFullType = 1,
  kFirstType = 2,
  kMiddleType = 3,
  kLastType = 4,
  kRecyclableFullType = 5,
  kRecyclableFirstType = 6,
  kRecyclableMiddleType = 7,
  kRecyclableLastType = 8,
  kSetCompressionType = 9,
  kMaxKnownType = 10,
};

uint32_t Unmask(uint32_t masked) {
  const uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

uint32_t Fixed32(const unsigned char* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

bool StartsBatch(uint8_t type) {
  return type == kFullType || type == kFirstType || type == kRecyclableFullType || type == kRecyclableFirstType;
}

}  // namespace

uint32_t Crc32c(uint32_t init_crc, const char* data, size_t n) {
  static const auto* table = [] {
    auto* t = new uint32_t[256];
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t crc = ~init_crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ static_cast<unsigned char>(data[i])) & 0xff] ^ (crc >> 8);
  return ~crc;
}

WalScan ScanWalFile(const std::string& path) {
  WalScan scan;
  scan.file = path;
  std::ifstream in(path, std::ios::binary);
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  scan.size_bytes = data.size();
  size_t pos = 0;
  auto mark_corrupt = [&](size_t at, std::string what) {
    if (scan.corrupt) return;
    scan.corrupt = true;
    scan.corrupt_offset = at;
    scan.what = std::move(what);
    scan.bytes_dropped = data.size() - at;
    ++scan.batches_dropped;  // the batch the bad record belongs to
  };
  while (pos < data.size()) {
    const size_t block_left = kBlockSize - pos % kBlockSize;
    if (block_left < kHeaderSize) {  // zero-filled trailer of a block
      pos += block_left;
      continue;
    }
    if (data.size() - pos < kHeaderSize) break;  // a header cut short at the end: a torn tail
    const unsigned char* h = bytes + pos;
    const uint32_t length = uint32_t(h[4]) | uint32_t(h[5]) << 8;
    const uint8_t type = h[6];
    if (type == kZeroType && length == 0) {  // preallocated, never written: skip the block
      pos += block_left;
      continue;
    }
    const size_t header = type >= kRecyclableFullType && type <= kRecyclableLastType ? kRecyclableHeaderSize
                                                                                        : kHeaderSize;
    if (header + length > block_left) {
      if (pos + header + length > data.size() && data.size() - pos < block_left) break;  // torn tail
      mark_corrupt(pos, absl::StrCat("bad record length ", length));
      pos += block_left;
      continue;
    }
    if (pos + header + length > data.size()) break;  // torn tail
    const uint32_t expected = Unmask(Fixed32(h));
    const uint32_t actual = Crc32c(0, reinterpret_cast<const char*>(h + 6), length + header - 6);
    if (type >= kMaxKnownType || expected != actual) {
      mark_corrupt(pos, type >= kMaxKnownType ? absl::StrCat("unknown record type ", int{type})
                                              : std::string("checksum mismatch"));
      // RocksDB gives up on the rest of the block; for counting what follows,
      // trust the length (it fits the block) and go on with the next record.
      pos += header + length;
      continue;
    }
    if (StartsBatch(type)) {
      uint64_t count = 0;
      if (length >= 12) count = Fixed32(h + header + 8);
      if (scan.corrupt) {
        ++scan.batches_dropped;
        scan.operations_dropped += count;
      } else {
        ++scan.batches_ok;
      }
    }
    pos += header + length;
  }
  return scan;
}

std::vector<WalScan> ScanWalDir(const std::string& dir) {
  std::vector<std::pair<uint64_t, std::string>> logs;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    uint64_t number = 0;
    if (!absl::EndsWith(name, ".log") || !absl::SimpleAtoi(name.substr(0, name.size() - 4), &number)) continue;
    logs.emplace_back(number, entry.path().string());
  }
  std::sort(logs.begin(), logs.end());
  std::vector<WalScan> scans;
  for (const auto& [number, path] : logs) scans.push_back(ScanWalFile(path));
  return scans;
}

}  // namespace weft::storage::rocksdb_wal
