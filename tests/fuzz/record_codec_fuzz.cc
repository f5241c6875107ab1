// The RocksDB store's record codec (storage/rocksdb/codec): decoding arbitrary
// bytes never crashes, and a decoded record encodes and decodes to itself.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "storage/rocksdb/codec.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view s(reinterpret_cast<const char*>(data), size);
  if (auto v = weft::storage::rocksdb_codec::DecodeInt64(s); v.ok()) {
    auto again = weft::storage::rocksdb_codec::DecodeInt64(weft::storage::rocksdb_codec::EncodeInt64(*v));
    FUZZ_CHECK(again.ok() && *again == *v);
  }
  (void)weft::storage::rocksdb_codec::LeaseIdFromKey(s);
  if (auto r = weft::storage::rocksdb_codec::DecodeRecord(s); r.ok()) {
    const std::string enc = weft::storage::rocksdb_codec::EncodeRecord(*r);
    auto r2 = weft::storage::rocksdb_codec::DecodeRecord(enc);
    FUZZ_CHECK(r2.ok());
    FUZZ_CHECK(weft::storage::rocksdb_codec::EncodeRecord(*r2) == enc);
  }
  return 0;
}
