// The gce backend's pure parts: config, lease data, route names, the desired
// route set with its quota, and the diff. The backend against a GCE fake is in
// tests/cloud/gce_backend_test.cc.

#include "agent/backend/gce/gce_backend.h"

#include <regex>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace weft::agent::gce {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

IPv4Net Net(const char* s) { return *IPv4Net::Parse(s); }

constexpr char kNetworkUrl[] = "projects/p/global/networks/default";

Peer GcePeer(const char* subnet, const std::string& instance) {
  return Peer{Net(subnet), {}, "gce", GceLeaseDataJson(instance)};
}

RouteSetup ClusterSetup(int quota = 100) {
  RouteSetup s;
  s.network_url = kNetworkUrl;
  s.cluster_network = Net("10.1.0.0/16");
  s.own_subnet = Net("10.1.5.0/24");
  s.own_instance = "projects/p/zones/z/instances/self";
  s.route_quota = quota;
  return s;
}

TEST(GceConfigTest, DefaultsAndQuota) {
  auto c = ParseGceConfig(R"({"Type":"gce"})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->route_quota, 100);
  c = ParseGceConfig(R"({"type":"GCE","routequota":250})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->route_quota, 250);
  EXPECT_TRUE(ParseGceConfig("").ok());
}

TEST(GceConfigTest, RefusesBadValues) {
  EXPECT_THAT(ParseGceConfig(R"({"Type":"vxlan"})").status().message(), HasSubstr("not \"gce\""));
  EXPECT_THAT(ParseGceConfig(R"({"RouteQuota":0})").status().message(), HasSubstr("RouteQuota"));
  EXPECT_THAT(ParseGceConfig(R"({"RouteQuota":"100"})").status().message(), HasSubstr("RouteQuota"));
  EXPECT_EQ(ParseGceConfig("[1]").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(GceLeaseDataTest, RoundTripAndFullUrl) {
  const std::string inst = "projects/p/zones/us-central1-a/instances/n1";
  EXPECT_EQ(GceLeaseDataJson(inst), R"({"Instance":"projects/p/zones/us-central1-a/instances/n1"})");
  EXPECT_EQ(*ParseGceLeaseData(GceLeaseDataJson(inst)), inst);
  EXPECT_EQ(*ParseGceLeaseData(R"({"instance":"https://www.googleapis.com/compute/v1/)" + inst + "\"}"), inst);
}

TEST(GceLeaseDataTest, RefusesWhatIsNoInstance) {
  EXPECT_FALSE(ParseGceLeaseData(R"({"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"})").ok());
  EXPECT_FALSE(ParseGceLeaseData(R"({"Instance":"projects/p/instances/n1"})").ok());
  EXPECT_FALSE(ParseGceLeaseData(R"({"Instance":"projects/p/zones//instances/n1"})").ok());
  EXPECT_FALSE(ParseGceLeaseData("not json").ok());
}

TEST(RouteNameTest, DeterministicValidAndScopedToNetworks) {
  const std::string a = RouteName(kNetworkUrl, Net("10.1.0.0/16"), Net("10.1.19.0/24"));
  EXPECT_EQ(a, RouteName("https://www.googleapis.com/compute/v1/projects/p/global/networks/default",
                         Net("10.1.0.0/16"), Net("10.1.19.0/24")));
  EXPECT_TRUE(std::regex_match(a, std::regex("^weft-[0-9a-f]{8}-10-1-19-0-24$"))) << a;
  EXPECT_LT(a.size(), 64u);
  // Another VPC or another cluster network: another name, so they never collide.
  EXPECT_NE(a, RouteName("projects/p/global/networks/other", Net("10.1.0.0/16"), Net("10.1.19.0/24")));
  EXPECT_NE(a, RouteName(kNetworkUrl, Net("10.0.0.0/8"), Net("10.1.19.0/24")));
  EXPECT_NE(a, RouteName(kNetworkUrl, Net("10.1.0.0/16"), Net("10.1.20.0/24")));
  EXPECT_EQ(RouteDescription(Net("10.1.0.0/16")), "weft: 10.1.0.0/16");
}

TEST(PlanRoutesTest, OneRoutePerLeaseOwnIncludedSorted) {
  const std::vector<Peer> peers = {GcePeer("10.1.9.0/24", "projects/p/zones/z/instances/nine"),
                                   GcePeer("10.1.5.0/24", "projects/p/zones/z/instances/impostor"),
                                   GcePeer("10.1.2.0/24", "projects/p/zones/z/instances/two")};
  RoutePlan plan = PlanRoutes(ClusterSetup(), peers);
  ASSERT_EQ(plan.routes.size(), 3u);
  EXPECT_EQ(plan.routes[0].dest_range, "10.1.2.0/24");
  EXPECT_EQ(plan.routes[1].dest_range, "10.1.5.0/24");
  EXPECT_EQ(plan.routes[1].next_hop_instance, "projects/p/zones/z/instances/self");  // own lease wins
  EXPECT_EQ(plan.routes[2].next_hop_instance, "projects/p/zones/z/instances/nine");
  for (const Route& r : plan.routes) {
    EXPECT_EQ(r.network, kNetworkUrl);
    EXPECT_EQ(r.priority, 1000);
    EXPECT_EQ(r.description, "weft: 10.1.0.0/16");
    EXPECT_EQ(r.name, RouteName(kNetworkUrl, Net("10.1.0.0/16"), Net(r.dest_range.c_str())));
  }
  EXPECT_TRUE(plan.unrouted.empty());
}

TEST(PlanRoutesTest, SkipsOtherTypesAndBadData) {
  std::vector<Peer> peers = {GcePeer("10.1.2.0/24", "projects/p/zones/z/instances/two"),
                             Peer{Net("10.1.3.0/24"), {}, "vxlan", R"({"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"})"},
                             Peer{Net("10.1.4.0/24"), {}, "gce", R"({"Instance":42})"}};
  RoutePlan plan = PlanRoutes(ClusterSetup(), peers);
  EXPECT_EQ(plan.routes.size(), 2u);
  ASSERT_EQ(plan.skipped.size(), 2u);
  EXPECT_EQ(plan.skipped[0].subnet, Net("10.1.3.0/24"));
  EXPECT_THAT(plan.skipped[1].reason, HasSubstr("Instance"));
}

TEST(PlanRoutesTest, QuotaKeepsTheLowestSubnetsOnEveryAgent) {
  std::vector<Peer> peers;
  for (int i = 9; i >= 1; --i) {
    peers.push_back(GcePeer(absl::StrCat("10.1.", i, ".0/24").c_str(), absl::StrCat("projects/p/zones/z/instances/n", i)));
  }
  RoutePlan plan = PlanRoutes(ClusterSetup(/*quota=*/4), peers);
  ASSERT_EQ(plan.routes.size(), 4u);
  EXPECT_EQ(plan.routes.back().dest_range, "10.1.4.0/24");
  // 10.1.5.0/24 (own) is the fifth: unrouted like any other.
  EXPECT_THAT(plan.unrouted, ElementsAre(Net("10.1.5.0/24"), Net("10.1.6.0/24"), Net("10.1.7.0/24"),
                                         Net("10.1.8.0/24"), Net("10.1.9.0/24")));
  // Another agent, with the peers in another order, picks the same set.
  std::reverse(peers.begin(), peers.end());
  EXPECT_EQ(PlanRoutes(ClusterSetup(4), peers).routes, plan.routes);
}

TEST(DiffRoutesTest, InsertsDeletesReplacesKeeps) {
  RoutePlan plan = PlanRoutes(ClusterSetup(), {GcePeer("10.1.2.0/24", "projects/p/zones/z/instances/two"),
                                        GcePeer("10.1.3.0/24", "projects/p/zones/z/instances/three")});
  ASSERT_EQ(plan.routes.size(), 3u);
  std::vector<Route> actual = {plan.routes[0], plan.routes[1]};  // 10.1.2, 10.1.3; own 10.1.5 missing
  actual[1].next_hop_instance = "projects/p/zones/z/instances/old";  // points elsewhere
  Route departed = plan.routes[0];
  departed.name = "weft-00000000-10-1-7-0-24";
  departed.dest_range = "10.1.7.0/24";
  actual.push_back(departed);
  RouteDiff diff = DiffRoutes(actual, plan.routes);
  EXPECT_EQ(diff.unchanged, 1);
  EXPECT_EQ(diff.replaced, 1);
  EXPECT_THAT(diff.deletes, ElementsAre(departed.name, plan.routes[1].name));  // by name
  ASSERT_EQ(diff.inserts.size(), 2u);
  EXPECT_EQ(diff.inserts[0], plan.routes[1]);
  EXPECT_EQ(diff.inserts[1], plan.routes[2]);
  EXPECT_TRUE(DiffRoutes(plan.routes, plan.routes).deletes.empty());
  EXPECT_EQ(DiffRoutes(plan.routes, plan.routes).unchanged, 3);
}

}  // namespace
}  // namespace weft::agent::gce
