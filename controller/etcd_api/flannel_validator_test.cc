#include "controller/etcd_api/flannel_validator.h"

#include <cstdlib>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "storage/rocksdb/rocksdb_store.h"

namespace weft::controller::etcd_api {
namespace {

constexpr char kPrefix[] = "/coreos.com/network";
constexpr char kLease[] = R"({"PublicIP":"192.168.64.3","BackendType":"vxlan","BackendData":{"VNI":1}})";
constexpr char kDualLease[] =
    R"({"PublicIP":"192.168.64.3","PublicIPv6":"fd01::3","BackendType":"vxlan","BackendData":null})";

std::string Subnet(const std::string& s) { return absl::StrCat(kPrefix, "/subnets/", s); }

FlannelState StateWith(const std::string& config_json, std::vector<std::string> subnets = {}) {
  FlannelState st;
  auto c = ParseNetworkConfig(config_json);
  EXPECT_TRUE(c.ok()) << c.status();
  st.config = *c;
  for (const std::string& s : subnets) {
    auto k = ParseSubnetKeySuffix(s);
    EXPECT_TRUE(k.ok()) << k.status();
    st.subnets.emplace_back(Subnet(s), *k);
  }
  return st;
}

FlannelValidator With(FlannelState st) {
  return FlannelValidator(kPrefix, [st]() -> absl::StatusOr<FlannelState> { return st; });
}

void ExpectRefused(const absl::Status& s, const std::string& fragment) {
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), fragment)) << s;
}

TEST(FlannelValidatorTest, ConfigMustParse) {
  FlannelValidator v = With(FlannelState());
  EXPECT_TRUE(v.Validate(absl::StrCat(kPrefix, "/config"), R"({"Network":"10.1.0.0/16"})").ok());
  ExpectRefused(v.Validate(absl::StrCat(kPrefix, "/config"), "{"), "invalid network config");
  ExpectRefused(v.Validate(absl::StrCat(kPrefix, "/config"), R"({"Network":"10.1.0.0/16","SubnetLen":31})"),
                "SubnetLen");
  // A trailing slash on the prefix changes nothing; other keys are not checked.
  FlannelValidator slash(absl::StrCat(kPrefix, "/"), [] { return absl::StatusOr<FlannelState>(FlannelState()); });
  ExpectRefused(slash.Validate(absl::StrCat(kPrefix, "/config"), "nope"), "invalid network config");
  EXPECT_TRUE(v.Validate(absl::StrCat(kPrefix, "/anything"), "nope").ok());
  EXPECT_TRUE(v.Validate("/elsewhere/subnets/x", "nope").ok());
}

TEST(FlannelValidatorTest, LeasesNeedAConfig) {
  FlannelState st;
  st.config_error = "Network: missing";
  absl::Status s = With(st).Validate(Subnet("10.1.19.0-24"), kLease);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "Network: missing")) << s;
}

TEST(FlannelValidatorTest, SubnetsMustBePoolSubnets) {
  FlannelValidator v = With(StateWith(R"({"Network":"10.1.0.0/16","SubnetMax":"10.1.200.0"})"));
  EXPECT_TRUE(v.Validate(Subnet("10.1.19.0-24"), kLease).ok());
  ExpectRefused(v.Validate(Subnet("10.2.19.0-24"), kLease), "outside the network 10.1.0.0/16");
  ExpectRefused(v.Validate(Subnet("10.1.19.0-25"), kLease), "is not a /24");
  ExpectRefused(v.Validate(Subnet("10.1.0.0-24"), kLease), "SubnetMin..SubnetMax");  // the first is skipped
  ExpectRefused(v.Validate(Subnet("10.1.201.0-24"), kLease), "SubnetMin..SubnetMax");
  ExpectRefused(v.Validate(Subnet("10.1.19.1-24"), kLease), "not a subnet key");
  ExpectRefused(v.Validate(Subnet("10.1.19.0/24"), kLease), "not a subnet key");
  ExpectRefused(v.Validate(Subnet("10.1.19.0-24&fd00::-64"), kDualLease), "IPv6 is disabled");
}

TEST(FlannelValidatorTest, LeaseValuesMustBeWellFormed) {
  FlannelValidator v = With(StateWith(R"({"Network":"10.1.0.0/16"})"));
  ExpectRefused(v.Validate(Subnet("10.1.19.0-24"), "not json"), "malformed lease");
  ExpectRefused(v.Validate(Subnet("10.1.19.0-24"), R"({"PublicIP":"1.2.3","BackendType":"vxlan"})"),
                "malformed lease");
  ExpectRefused(v.Validate(Subnet("10.1.19.0-24"), R"({"PublicIP":"1.2.3.4","BackendType":"vxlan","BackendData":5})"),
                "malformed lease");
  ExpectRefused(v.Validate(Subnet("10.1.19.0-24"), R"({"PublicIP":"1.2.3.4","BackendType":""})"), "BackendType");
}

TEST(FlannelValidatorTest, DualStack) {
  FlannelValidator v = With(StateWith(
      R"({"Network":"10.1.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:12::/48","IPv6SubnetLen":64})",
      {"10.1.19.0-24&fd00:12:0:13::-64"}));
  EXPECT_TRUE(v.Validate(Subnet("10.1.20.0-24&fd00:12:0:14::-64"), kDualLease).ok());
  ExpectRefused(v.Validate(Subnet("10.1.20.0-24"), kLease), "an IPv6 subnet is required");
  ExpectRefused(v.Validate(Subnet("10.1.20.0-24&fd00:12:0:14::-64"), kLease), "PublicIPv6 is required");
  ExpectRefused(v.Validate(Subnet("10.1.20.0-24&fd00:99::-64"), kDualLease), "outside the network fd00:12::/48");
  ExpectRefused(v.Validate(Subnet("10.1.20.0-24&fd00:12:0:13::-64"), kDualLease), "overlaps the lease at");
  ExpectRefused(v.Validate(Subnet("10.1.19.0-24&fd00:12:0:20::-64"), kDualLease), "overlaps the lease at");
}

TEST(FlannelValidatorTest, OverlapsWithOtherLeasesAreRefused) {
  // A lease of an older, larger SubnetLen still blocks the subnets inside it.
  FlannelValidator v = With(StateWith(R"({"Network":"10.1.0.0/16"})", {"10.1.19.0-24", "10.1.32.0-20"}));
  EXPECT_TRUE(v.Validate(Subnet("10.1.19.0-24"), kLease).ok());  // the same lease, rewritten
  EXPECT_TRUE(v.Validate(Subnet("10.1.20.0-24"), kLease).ok());
  ExpectRefused(v.Validate(Subnet("10.1.33.0-24"), kLease), "overlaps the lease at /coreos.com/network/subnets/10.1.32.0-20");
}

TEST(FlannelValidatorTest, StateFromTheStoreSeesEveryAcknowledgedWrite) {
  const std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/flannel_state");
  std::filesystem::remove_all(dir);
  storage::RocksDbStore::Options so;
  so.path = dir;
  so.lease_expiry_interval = absl::ZeroDuration();
  auto store = storage::RocksDbStore::Open(so);
  ASSERT_TRUE(store.ok()) << store.status();
  FlannelValidator v(kPrefix, FlannelStateFromStore(store->get(), kPrefix));

  EXPECT_TRUE(absl::IsFailedPrecondition(v.Validate(Subnet("10.1.19.0-24"), kLease)));
  storage::PutRequest put;
  put.key = absl::StrCat(kPrefix, "/config");
  put.value = R"({"Network":"10.1.0.0/16"})";
  ASSERT_TRUE((*store)->Put(put).ok());
  put.key = Subnet("10.1.19.0-24");
  put.value = kLease;
  ASSERT_TRUE(v.Validate(put.key, put.value).ok());
  ASSERT_TRUE((*store)->Put(put).ok());
  put.key = Subnet("garbage");  // ignored by the state, not an error
  ASSERT_TRUE((*store)->Put(put).ok());

  auto st = FlannelStateFromStore(store->get(), kPrefix)();
  ASSERT_TRUE(st.ok()) << st.status();
  ASSERT_TRUE(st->config);
  ASSERT_EQ(st->subnets.size(), 1u);
  EXPECT_EQ(st->subnets[0].first, Subnet("10.1.19.0-24"));
  EXPECT_TRUE(v.Validate(Subnet("10.1.20.0-24"), kLease).ok());
  EXPECT_TRUE(absl::IsInvalidArgument(
      v.Validate(Subnet("10.1.19.0-24&fd00::-64"), kDualLease)));  // IPv6 off, and it overlaps
}

}  // namespace
}  // namespace weft::controller::etcd_api
