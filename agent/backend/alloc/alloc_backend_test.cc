#include "agent/backend/alloc/alloc_backend.h"

#include "gtest/gtest.h"

namespace weft::agent {
namespace {

IPv4Net Net(const char* s) { return *IPv4Net::Parse(s); }

TEST(AllocBackendTest, AcceptsItsTypeOnlyAndProgramsNothing) {
  EXPECT_TRUE(ValidateAllocConfig("").ok());
  EXPECT_TRUE(ValidateAllocConfig(R"({"Type":"alloc"})").ok());
  EXPECT_TRUE(ValidateAllocConfig(R"({"type":"ALLOC","Whatever":1})").ok());
  EXPECT_FALSE(ValidateAllocConfig(R"({"Type":"vxlan"})").ok());
  EXPECT_FALSE(ValidateAllocConfig(R"([1])").ok());

  AllocBackend b;
  LocalConfig local;
  local.iface_mtu = 9000;
  absl::StatusOr<BackendInfo> info = b.Init(local, OwnLease{Net("10.1.2.0/24"), Net("10.1.0.0/16")}, "{}");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->type, "alloc");
  EXPECT_EQ(info->data_json, "");
  EXPECT_EQ(info->mtu, 9000u);
  EXPECT_EQ(*b.LeaseData(), "");
  EXPECT_EQ(b.device_name(), "");
  absl::StatusOr<ReconcileStats> s = b.Reconcile({Peer{Net("10.1.2.0/24"), IPv4Addr(), "alloc", ""},
                                                  Peer{Net("10.1.3.0/24"), IPv4Addr(), "alloc", ""}});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->changes(), 0);
  EXPECT_EQ(s->unchanged, 1);
  EXPECT_TRUE(b.Teardown().ok());
}

}  // namespace
}  // namespace weft::agent
