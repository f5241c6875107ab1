// Writes to a RocksDbStore from many threads until killed, printing one line per
// acknowledged write to stdout (one write(2) each, so lines never interleave):
//   put <key> <revision>          a create (If version==0 Then Put), value = key
//   ctr <key> <n> <revision>      the n-th overwrite of a per-thread counter key
//   lease <id>                    a granted lease; the thread's keys attach to it
// Usage: crash_writer <dir> <tag> <threads>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "storage/rocksdb/rocksdb_store.h"

namespace {

void Emit(const std::string& line) {
  const std::string out = line + "\n";
  if (write(STDOUT_FILENO, out.data(), out.size()) != static_cast<ssize_t>(out.size())) std::_Exit(3);
}

void Fail(const absl::Status& s) {
  std::fprintf(stderr, "crash_writer: %s\n", s.ToString().c_str());
  std::_Exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace weft::storage;
  if (argc != 4) {
    std::fprintf(stderr, "usage: crash_writer <dir> <tag> <threads>\n");
    return 2;
  }
  RocksDbStore::Options options;
  options.path = argv[1];
  options.lease_expiry_interval = absl::ZeroDuration();
  const std::string tag = argv[2];
  const int threads = std::atoi(argv[3]);
  absl::StatusOr<std::unique_ptr<RocksDbStore>> store = RocksDbStore::Open(options);
  if (!store.ok()) Fail(store.status());
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      absl::StatusOr<LeaseGrantResponse> lease = (*store)->LeaseGrant(3600);
      if (!lease.ok()) Fail(lease.status());
      Emit(absl::StrCat("lease ", lease->id));
      const std::string counter = absl::StrCat(tag, "/ctr/", t);
      for (int i = 0;; ++i) {
        const std::string key = absl::StrCat(tag, "/t", t, "/", i);
        TxnRequest txn;
        Compare c;
        c.key = key;
        c.target = Compare::Target::kVersion;
        c.result = Compare::Result::kEqual;
        c.operand = 0;
        txn.compares.push_back(c);
        RequestOp op;
        op.type = RequestOp::Type::kPut;
        op.put.key = key;
        op.put.value = key;
        op.put.lease = i % 2 == 0 ? lease->id : 0;
        txn.success.push_back(op);
        absl::StatusOr<TxnResponse> r = (*store)->Txn(txn);
        if (!r.ok()) Fail(r.status());
        if (!r->succeeded) Fail(absl::InternalError("create lost a race it cannot lose"));
        Emit(absl::StrCat("put ", key, " ", r->revision));
        PutRequest put;
        put.key = counter;
        put.value = absl::StrCat(i);
        absl::StatusOr<PutResponse> p = (*store)->Put(put);
        if (!p.ok()) Fail(p.status());
        Emit(absl::StrCat("ctr ", counter, " ", i, " ", p->revision));
      }
    });
  }
  for (std::thread& w : workers) w.join();
  return 0;
}
