#include "agent/lease_set.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace weft::agent {
namespace {

using ::testing::ElementsAre;

weft::v1::Lease V4Lease(const std::string& subnet, const std::string& node) {
  weft::v1::Lease l;
  l.set_subnet(subnet);
  l.set_public_ip("192.0.2.7");
  l.set_node_name(node);
  l.set_backend_type("vxlan");
  l.set_backend_data(R"({"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"})");
  l.mutable_expiration()->set_seconds(1764979200);
  l.mutable_expiration()->set_nanos(5);
  l.set_revision(42);
  return l;
}

weft::v1::Lease V6OnlyLease(const std::string& subnet) {
  weft::v1::Lease l;
  l.set_ipv6_subnet(subnet);
  l.set_public_ipv6("2001:db8::7");
  l.set_backend_type("vxlan");
  l.set_backend_v6_data(R"({"VNI":1,"VtepMAC":"c2:d2:32:6f:8f:44"})");
  l.set_reserved(true);
  return l;
}

// The leases as Visit hands them, each as its text form (every field, by value).
std::vector<std::string> Visited(const LeaseSet& set) {
  std::vector<std::string> out;
  set.Visit([&](const weft::v1::Lease& l) { out.push_back(l.DebugString()); });
  return out;
}

TEST(LeaseSetTest, ReplaceConsumesTheSnapshotAndVisitGivesEveryFieldBackByName) {
  google::protobuf::RepeatedPtrField<weft::v1::Lease> snapshot;
  *snapshot.Add() = V4Lease("10.1.9.0/24", "b");
  *snapshot.Add() = V6OnlyLease("fd42:0:13::/64");
  *snapshot.Add() = V4Lease("10.1.10.0/24", "a");
  LeaseSet set;
  set.Replace(&snapshot);
  EXPECT_TRUE(snapshot.empty());
  EXPECT_EQ(set.size(), 3u);
  EXPECT_THAT(Visited(set), ElementsAre(V4Lease("10.1.10.0/24", "a").DebugString(),
                                        V4Lease("10.1.9.0/24", "b").DebugString(),
                                        V6OnlyLease("fd42:0:13::/64").DebugString()));
}

TEST(LeaseSetTest, AFieldOfOneLeaseNeverShowsInTheNextOne) {
  // Visit decodes every lease into the same message: what one lease has and the
  // next has not must not carry over.
  LeaseSet set;
  set.Put(V4Lease("10.1.1.0/24", "full"));
  weft::v1::Lease bare;
  bare.set_subnet("10.1.2.0/24");
  set.Put(bare);
  EXPECT_THAT(Visited(set), ElementsAre(V4Lease("10.1.1.0/24", "full").DebugString(), bare.DebugString()));
}

TEST(LeaseSetTest, PutOverwritesByNameAndEraseRemoves) {
  LeaseSet set;
  set.Put(V4Lease("10.1.1.0/24", "old"));
  set.Put(V4Lease("10.1.2.0/24", "other"));
  set.Put(V4Lease("10.1.1.0/24", "new"));
  EXPECT_THAT(Visited(set), ElementsAre(V4Lease("10.1.1.0/24", "new").DebugString(),
                                        V4Lease("10.1.2.0/24", "other").DebugString()));
  weft::v1::Lease name_only;
  name_only.set_subnet("10.1.2.0/24");
  set.Erase(name_only);
  set.Erase(V6OnlyLease("fd42:0:99::/64"));  // not there: nothing happens
  EXPECT_THAT(Visited(set), ElementsAre(V4Lease("10.1.1.0/24", "new").DebugString()));
}

TEST(LeaseSetTest, ReplaceDropsWhatTheSnapshotDoesNotHave) {
  LeaseSet set;
  set.Put(V4Lease("10.1.1.0/24", "gone"));
  google::protobuf::RepeatedPtrField<weft::v1::Lease> snapshot;
  *snapshot.Add() = V4Lease("10.1.2.0/24", "kept");
  set.Replace(&snapshot);
  EXPECT_THAT(Visited(set), ElementsAre(V4Lease("10.1.2.0/24", "kept").DebugString()));
  google::protobuf::RepeatedPtrField<weft::v1::Lease> empty;
  set.Replace(&empty);
  EXPECT_EQ(set.size(), 0u);
  EXPECT_TRUE(Visited(set).empty());
}

}  // namespace
}  // namespace weft::agent
