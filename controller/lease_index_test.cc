// LeaseIndex fed by hand-made store events: no store, no threads.

#include "controller/lease_index.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace weft::controller {
namespace {

constexpr char kPrefix[] = "/coreos.com/network";
constexpr char kSmall[] = R"({"Network":"10.1.0.0/28","SubnetLen":30,"Backend":{"Type":"vxlan"}})";
constexpr char kDualStack[] =
    R"({"Network":"10.1.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:12::/48","Backend":{"Type":"vxlan"}})";

class LeaseIndexTest : public ::testing::Test {
 protected:
  LeaseIndexTest() : index_(LeaseIndex::Options{kPrefix, [this](const char* kind) { corrupt_.push_back(kind); }}) {}

  // A put of `key` (below the prefix) at the next revision.
  void Put(const std::string& key, const std::string& value, int64_t store_lease = 0) {
    storage::Event ev;
    ev.type = storage::Event::Type::kPut;
    ev.kv.key = absl::StrCat(kPrefix, "/", key);
    ev.kv.value = value;
    ev.kv.lease = store_lease;
    ev.kv.mod_revision = ++revision_;
    ev.kv.create_revision = revision_;
    Apply(ev);
  }
  void Delete(const std::string& key) {
    storage::Event ev;
    ev.type = storage::Event::Type::kDelete;
    ev.kv.key = absl::StrCat(kPrefix, "/", key);
    ev.kv.mod_revision = ++revision_;
    Apply(ev);
  }
  void Apply(const storage::Event& ev) {
    index_.Apply(ev, &changes_, &expired_);
    index_.SetAppliedRevision(revision_);
  }
  static std::string Lease(const std::string& ip, const std::string& node = "", const std::string& ipv6 = "") {
    return absl::StrCat(R"({"PublicIP":")", ip, R"(",)", ipv6.empty() ? "" : absl::StrCat(R"("PublicIPv6":")", ipv6, R"(",)"),
                        R"("BackendType":"vxlan","BackendData":null)",
                        node.empty() ? "" : absl::StrCat(R"(,"NodeName":")", node, R"(")"), "}");
  }

  LeaseIndex index_;
  int64_t revision_ = 0;
  std::vector<LeaseChange> changes_;
  int expired_ = 0;
  std::vector<std::string> corrupt_;
};

TEST_F(LeaseIndexTest, LeasesAreFoundBySubnetNodeAndPublicIpAndTakeTheirSubnet) {
  Put("config", kSmall);
  ASSERT_TRUE(index_.config().has_value());
  EXPECT_EQ(index_.config_json(), kSmall);
  EXPECT_EQ(index_.config_revision(), 1);
  ASSERT_NE(index_.pool(), nullptr);
  EXPECT_EQ(index_.pool6(), nullptr);
  const uint64_t free = index_.pool()->free_count();
  Put("subnets/10.1.0.4-30", Lease("192.0.2.1", "node-1"), 77);
  Put("subnets/10.1.0.8-30", Lease("192.0.2.2"));  // a reservation: no store lease
  EXPECT_EQ(index_.pool()->free_count(), free - 2);
  EXPECT_EQ(index_.reservations(), 1u);
  EXPECT_EQ(index_.leases().size(), 2u);
  const LeaseRecord* one = index_.FindByNode("node-1");
  ASSERT_NE(one, nullptr);
  EXPECT_EQ(SubnetText(one->key), "10.1.0.4/30");
  EXPECT_EQ(one->store_lease, 77);
  EXPECT_EQ(one->store_key, "/coreos.com/network/subnets/10.1.0.4-30");
  EXPECT_EQ(one, index_.FindByPublicIp("192.0.2.1"));
  EXPECT_EQ(one, index_.Find("10.1.0.4/30"));
  EXPECT_TRUE(index_.FindByPublicIp("192.0.2.2")->reserved());
  EXPECT_EQ(index_.FindByNode("node-2"), nullptr);
  EXPECT_EQ(*index_.LeaseText("10.1.0.8/30"), "10.1.0.8/30");
  EXPECT_EQ(index_.LeaseText("10.1.0.12/30").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(index_.LeaseText("nonsense").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(index_.applied_revision(), 3);
  EXPECT_EQ(index_.lease_set_revision(), 3);
  // Keys that are not leases change nothing.
  Put("subnets/not-a-subnet", "{}");
  Put("elsewhere", "{}");
  EXPECT_EQ(index_.leases().size(), 2u);
  EXPECT_EQ(index_.lease_set_revision(), 3);
  EXPECT_EQ(changes_.size(), 2u);
}

TEST_F(LeaseIndexTest, ADeleteFreesTheSubnetAndOnlyUnaskedDeletesOfTtlLeasesAreExpiries) {
  Put("config", kSmall);
  const uint64_t free = index_.pool()->free_count();
  Put("subnets/10.1.0.4-30", Lease("192.0.2.1", "node-1"), 77);
  Put("subnets/10.1.0.8-30", Lease("192.0.2.2", "node-2"), 77);
  Put("subnets/10.1.0.12-30", Lease("192.0.2.3"));
  index_.MarkReleasing("10.1.0.8/30");
  Delete("subnets/10.1.0.4-30");   // expired
  Delete("subnets/10.1.0.8-30");   // released by us
  Delete("subnets/10.1.0.12-30");  // a reservation removed
  Delete("subnets/10.1.0.4-30");   // nothing left to delete
  EXPECT_EQ(expired_, 1);
  EXPECT_TRUE(index_.leases().empty());
  EXPECT_EQ(index_.pool()->free_count(), free);
  EXPECT_EQ(index_.reservations(), 0u);
  EXPECT_EQ(index_.FindByNode("node-1"), nullptr);
  EXPECT_EQ(index_.FindByPublicIp("192.0.2.2"), nullptr);
  ASSERT_EQ(changes_.size(), 6u);
  EXPECT_TRUE(changes_[3].deleted);
  EXPECT_EQ(changes_[3].record.attrs.node_name, "node-1") << "a delete carries the lease as it was";
  EXPECT_EQ(changes_[3].revision, 5);
  EXPECT_EQ(index_.lease_set_revision(), 7);
}

TEST_F(LeaseIndexTest, UnreadableValuesAreReportedAndTheirSubnetStaysTaken) {
  Put("config", kSmall);
  const uint64_t free = index_.pool()->free_count();
  Put("subnets/10.1.0.4-30", "garbage", 77);
  const LeaseRecord* bad = index_.Find("10.1.0.4/30");
  ASSERT_NE(bad, nullptr);
  EXPECT_FALSE(bad->valid);
  EXPECT_EQ(index_.pool()->free_count(), free - 1);
  EXPECT_EQ(corrupt_, std::vector<std::string>{"lease"});
  // A config written around the API: no pools, nothing to allocate from.
  Put("config", R"({"Network":"10.1.0.0/28","Backend":)");
  EXPECT_FALSE(index_.config().has_value());
  EXPECT_EQ(index_.pool(), nullptr);
  EXPECT_EQ(index_.config_json(), R"({"Network":"10.1.0.0/28","Backend":)") << "kept as stored";
  EXPECT_EQ(corrupt_, (std::vector<std::string>{"lease", "config"}));
  // Its delete leaves no config at all.
  Delete("config");
  EXPECT_TRUE(index_.config_json().empty());
}

TEST_F(LeaseIndexTest, DualStackLeasesAreFoundByEitherSubnetAndTakeBothPools) {
  Put("config", kDualStack);
  ASSERT_NE(index_.pool6(), nullptr);
  const absl::uint128 free6 = index_.pool6()->free_count();
  Put("subnets/10.1.7.0-24&fd00:12:0:7::-64", Lease("192.0.2.1", "node-1", "fd77::1"), 77);
  EXPECT_EQ(*index_.LeaseText("fd00:12:0:7::/64"), "10.1.7.0/24");
  EXPECT_EQ(*index_.LeaseText("10.1.7.0/24"), "10.1.7.0/24");
  EXPECT_EQ(index_.FindByPublicIp("fd77::1"), index_.FindByNode("node-1"));
  EXPECT_EQ(index_.pool6()->free_count(), free6 - 1);
  Delete("subnets/10.1.7.0-24&fd00:12:0:7::-64");
  EXPECT_EQ(index_.LeaseText("fd00:12:0:7::/64").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(index_.pool6()->free_count(), free6);
}

TEST_F(LeaseIndexTest, AConfigChangeRebuildsThePoolsFromTheLeasesAndPendingPicks) {
  Put("config", kSmall);
  Put("subnets/10.1.0.4-30", Lease("192.0.2.1", "node-1"), 77);
  SubnetKey k;
  PendingPick pick;
  ASSERT_TRUE(index_.PickSubnets("10.1.0.8/30", "", &k, &pick).ok());
  EXPECT_EQ(SubnetText(k), "10.1.0.8/30");
  const uint64_t free = index_.pool()->free_count();
  // A wider network: both stay taken in the new pool.
  Put("config", R"({"Network":"10.1.0.0/27","SubnetLen":30,"Backend":{"Type":"vxlan"}})");
  ASSERT_NE(index_.pool(), nullptr);
  EXPECT_EQ(index_.pool()->size(), free + 2 + 4);
  EXPECT_EQ(index_.pool()->free_count(), free + 4);
  EXPECT_FALSE(index_.pool()->IsFree(*index_.config()->PoolIndex(*IPv4Net::Parse("10.1.0.8/30"))));
}

TEST_F(LeaseIndexTest, PicksArePendingUntilTheirWriteIsIndexedOrReturned) {
  Put("config", kSmall);  // 3 subnets: .4, .8, .12
  ASSERT_EQ(index_.pool()->size(), 3u);
  SubnetKey a, b;
  PendingPick pa, pb;
  ASSERT_TRUE(index_.PickSubnets("10.1.0.8/30", "", &a, &pa).ok());
  EXPECT_EQ(SubnetText(a), "10.1.0.8/30") << "the previous subnet when free";
  ASSERT_TRUE(index_.PickSubnets("10.1.0.8/30", "", &b, &pb).ok());
  EXPECT_NE(SubnetText(b), "10.1.0.8/30") << "pending: not handed out twice";
  EXPECT_EQ(index_.pool()->free_count(), 1u);
  // a's write lands: no longer pending, and returning it keeps it taken.
  Put("subnets/10.1.0.8-30", Lease("192.0.2.1", "node-1"), 77);
  index_.ReturnPick(&pa, "10.1.0.8/30");
  EXPECT_TRUE(pa.empty());
  EXPECT_EQ(index_.pool()->free_count(), 1u);
  // b's write lost: its subnet is free again.
  index_.ReturnPick(&pb, SubnetText(b));
  EXPECT_EQ(index_.pool()->free_count(), 2u);
  SubnetKey c;
  PendingPick pc;
  ASSERT_TRUE(index_.PickSubnets("", "", &c, &pc).ok());
  SubnetKey d;
  PendingPick pd;
  ASSERT_TRUE(index_.PickSubnets("", "", &d, &pd).ok());
  SubnetKey e;
  PendingPick pe;
  absl::Status full = index_.PickSubnets("", "", &e, &pe);
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(full.message(), "no free subnet: all 3 subnets of 10.1.0.0/28 between 10.1.0.4 and 10.1.0.12 "
                            "are leased or reserved");
  EXPECT_TRUE(pe.empty());
}

TEST_F(LeaseIndexTest, AFullIPv6PoolGivesBackTheIPv4SubnetPickedWithIt) {
  Put("config", R"({"Network":"10.1.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:12::/48",)"
                R"("IPv6SubnetMin":"fd00:12:0:10::","IPv6SubnetMax":"fd00:12:0:10::","Backend":{"Type":"vxlan"}})");
  SubnetKey a;
  PendingPick pa;
  ASSERT_TRUE(index_.PickSubnets("", "", &a, &pa).ok());
  ASSERT_TRUE(pa.ipv4 && pa.ipv6);
  EXPECT_EQ(a.ipv6->ToString(), "fd00:12:0:10::/64");
  const uint64_t free = index_.pool()->free_count();
  SubnetKey b;
  PendingPick pb;
  absl::Status full = index_.PickSubnets("", "", &b, &pb);
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(full.message().find("no free IPv6 subnet: all 1 subnets of fd00:12::/48"), std::string::npos) << full;
  EXPECT_TRUE(pb.empty());
  EXPECT_EQ(index_.pool()->free_count(), free);
}

TEST_F(LeaseIndexTest, RecordsTakeTheExpirationOfTheStoreLeaseTheyUse) {
  Put("config", kSmall);
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  index_.NoteStoreLease(77, t0 + absl::Hours(24), t0);
  Put("subnets/10.1.0.4-30", Lease("192.0.2.1", "node-1"), 77);
  EXPECT_EQ(index_.Find("10.1.0.4/30")->expiration, t0 + absl::Hours(24));
  // A store lease granted after 77 expired: 77 is forgotten, but a record
  // rewritten with the same store lease keeps what it knew.
  index_.NoteStoreLease(78, t0 + absl::Hours(49), t0 + absl::Hours(25));
  Put("subnets/10.1.0.4-30", Lease("192.0.2.1", "node-1"), 77);
  EXPECT_EQ(index_.Find("10.1.0.4/30")->expiration, t0 + absl::Hours(24));
  Put("subnets/10.1.0.8-30", Lease("192.0.2.2", "node-2"), 77);
  EXPECT_EQ(index_.Find("10.1.0.8/30")->expiration, absl::InfiniteFuture()) << "unknown";
  EXPECT_EQ(index_.Find("10.1.0.12/30"), nullptr);
  Put("subnets/10.1.0.12-30", Lease("192.0.2.3", "node-3"), 78);
  EXPECT_EQ(index_.Find("10.1.0.12/30")->expiration, t0 + absl::Hours(49));
  index_.SetExpiration("10.1.0.12/30", t0);
  EXPECT_EQ(index_.Find("10.1.0.12/30")->expiration, t0);
  // The same decoding for a listing read from the store.
  storage::KeyValue kv;
  kv.key = "/coreos.com/network/subnets/10.1.0.12-30";
  kv.value = "garbage";
  kv.lease = 78;
  absl::Status why;
  LeaseRecord rec = index_.RecordOf(*ParseSubnetKeySuffix("10.1.0.12-30"), kv, &why);
  EXPECT_FALSE(rec.valid);
  EXPECT_FALSE(why.ok());
  EXPECT_EQ(rec.expiration, t0 + absl::Hours(49));
}

}  // namespace
}  // namespace weft::controller
