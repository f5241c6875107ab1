#include "storage/store.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace weft::storage {

namespace {
constexpr char kCompactedMessage[] = "required revision has been compacted";
}  // namespace

std::string PrefixEnd(const std::string& prefix) {
  // As etcd's GetPrefixRangeEnd: bump the last byte that is not 0xff and cut
  // the rest; a prefix of only 0xff bytes (or none) has no end: every key >= it.
  std::string end = prefix;
  while (!end.empty()) {
    const unsigned char last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

bool KeyInRange(const std::string& key, const std::string& range_key, const std::string& range_end) {
  if (range_end.empty()) return key == range_key;
  if (key < range_key) return false;
  if (range_end.size() == 1 && range_end[0] == '\0') return true;
  return key < range_end;
}

absl::Status CompactedError(int64_t compact_revision) {
  return absl::OutOfRangeError(
      absl::StrCat(kCompactedMessage, " (compact revision ", compact_revision, ")"));
}

bool IsCompacted(const absl::Status& s) {
  return absl::IsOutOfRange(s) && absl::StartsWith(s.message(), kCompactedMessage);
}

TxnRequest PutIf(const std::string& key, Compare::Target target, int64_t operand, const std::string& value,
                 int64_t lease) {
  TxnRequest txn;
  Compare c;
  c.key = key;
  c.target = target;
  c.result = Compare::Result::kEqual;
  c.operand = operand;
  txn.compares.push_back(c);
  RequestOp op;
  op.type = RequestOp::Type::kPut;
  op.put.key = key;
  op.put.value = value;
  op.put.lease = lease;
  txn.success.push_back(op);
  return txn;
}

}  // namespace weft::storage
