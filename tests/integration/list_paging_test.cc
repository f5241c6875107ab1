// ListLeases pages through a large lease set at one revision, and weftctl lists
// 65,000 leases (one unpaged answer stopped at ~35,000: gRPC's 4 MiB default).

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "storage/rocksdb/rocksdb_store.h"
#include "tests/integration/controller_fixture.h"

namespace weft::testing {
namespace {

constexpr int kLeases = 65000;

// 65,000 reservations written into the store before the controller starts
// (fsync off: this is test set-up, not what is tested).
void Seed(const std::string& dir) {
  storage::RocksDbStore::Options so;
  so.path = dir;
  so.sync = false;
  so.lease_expiry_interval = absl::ZeroDuration();
  auto store = storage::RocksDbStore::Open(so);
  ASSERT_TRUE(store.ok()) << store.status();
  storage::PutRequest config;
  config.key = "/coreos.com/network/config";
  config.value = R"({"Network":"10.0.0.0/8","SubnetLen":24,"Backend":{"Type":"vxlan"}})";
  ASSERT_TRUE((*store)->Put(config).ok());
  constexpr int kPerTxn = 1000;
  for (int base = 0; base < kLeases; base += kPerTxn) {
    storage::TxnRequest txn;
    for (int i = base; i < base + kPerTxn && i < kLeases; ++i) {
      const int n = i + 1;  // 10.0.1.0/24 onwards
      storage::RequestOp op;
      op.type = storage::RequestOp::Type::kPut;
      op.put.key = absl::StrFormat("/coreos.com/network/subnets/10.%d.%d.0-24", n >> 8, n & 0xff);
      op.put.value = absl::StrFormat(
          R"({"PublicIP":"172.%d.%d.%d","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:%02x:%02x:01"},"NodeName":"node-%d"})",
          16 + (n >> 16), (n >> 8) & 0xff, n & 0xff, (n >> 8) & 0xff, n & 0xff, n);
      txn.success.push_back(std::move(op));
    }
    ASSERT_TRUE((*store)->Txn(txn).ok());
  }
}

TEST(ListPagingTest, PagesShareOneRevisionAndWeftctlListsThemAll) {
  const std::string dir = DataDir("paging");
  Seed(dir);
  Controller c(dir);
  c.Start();

  // Page by hand, and change the lease set in the middle: the listing still
  // shows the set of its first page's revision.
  weft::v1::ListLeasesRequest req;
  req.set_page_size(5000);
  std::set<std::string> seen;
  int64_t revision = 0;
  int pages = 0;
  do {
    weft::v1::ListLeasesResponse page;
    grpc::Status s = c.leases()->ListLeases(Ctx(30).get(), req, &page);
    ASSERT_TRUE(s.ok()) << s.error_message();
    if (pages == 0) {
      revision = page.revision();
      weft::v1::ReleaseLeaseRequest release;  // a lease not yet listed goes away
      release.set_subnet("10.253.232.0/24");
      release.set_node_name(absl::StrCat("node-", (253 << 8) + 232));
      weft::v1::ReleaseLeaseResponse released;
      grpc::Status r = c.leases()->ReleaseLease(Ctx().get(), release, &released);
      ASSERT_TRUE(r.ok()) << r.error_message();
    }
    EXPECT_EQ(page.revision(), revision);
    EXPECT_LE(page.leases_size(), 5000);
    for (const auto& l : page.leases()) EXPECT_TRUE(seen.insert(l.subnet()).second) << l.subnet() << " twice";
    req.set_page_token(page.next_page_token());
    ++pages;
  } while (!req.page_token().empty());
  EXPECT_EQ(seen.size(), static_cast<size_t>(kLeases));
  EXPECT_TRUE(seen.count("10.253.232.0/24"));
  EXPECT_GE(pages, 13);

  // Bad input to paging: a short clear error.
  weft::v1::ListLeasesRequest bad;
  bad.set_page_token(std::string(10000, 'x'));
  weft::v1::ListLeasesResponse none;
  grpc::Status s = c.leases()->ListLeases(Ctx().get(), bad, &none);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_LT(s.error_message().size(), 200u);
  bad.clear_page_token();
  bad.set_page_size(100000);
  EXPECT_EQ(c.leases()->ListLeases(Ctx().get(), bad, &none).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // weftctl follows the pages: every lease now (one fewer), in numeric order.
  std::string out;
  ASSERT_EQ(RunCommand({Runfile("tools/weftctl/weftctl"), "--controller", c.addr(), "leases", "list"}, &out), 0);
  size_t lines = 0;
  for (char ch : out) lines += ch == '\n';
  EXPECT_EQ(lines, static_cast<size_t>(kLeases - 1 + 1)) << out.substr(0, 300);  // + the header
  EXPECT_LT(out.find("\n10.0.9.0/24 "), out.find("\n10.0.10.0/24 "));
  ASSERT_EQ(RunCommand({Runfile("tools/weftctl/weftctl"), "--controller", c.addr(), "leases", "list", "-o", "json"},
                       &out),
            0);
  size_t subnets = 0;
  for (size_t p = out.find("\"subnet\":"); p != std::string::npos; p = out.find("\"subnet\":", p + 1)) ++subnets;
  EXPECT_EQ(subnets, static_cast<size_t>(kLeases - 1));
  c.Stop();
}

}  // namespace
}  // namespace weft::testing
