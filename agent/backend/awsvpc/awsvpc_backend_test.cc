// The pure parts of the aws-vpc backend: config and lease data parsing, which
// routes are ours, the per-table plan, EC2's XML. The backend against EC2 (a
// local fake) is tested in tests/cloud/awsvpc_backend_test.cc.

#include "agent/backend/awsvpc/awsvpc_backend.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace weft::agent {
namespace {

using awsvpc::Ec2Route;
using awsvpc::Ec2RouteTable;

IPv4Net Net(absl::string_view s) { return *IPv4Net::Parse(s); }
const IPv4Net kNetwork = Net("10.1.0.0/16");

TEST(AwsVpcConfigTest, RouteTableIdStringOrListAndLimit) {
  auto c = ParseAwsVpcConfig(R"({"Type":"aws-vpc","RouteTableID":"rtb-1"})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->route_table_ids, std::vector<std::string>{"rtb-1"});
  EXPECT_EQ(c->route_limit, 50);
  c = ParseAwsVpcConfig(R"({"routetableid":["rtb-2","rtb-1","rtb-2"],"RouteLimit":200})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->route_table_ids, (std::vector<std::string>{"rtb-1", "rtb-2"}));
  EXPECT_EQ(c->route_limit, 200);
  c = ParseAwsVpcConfig("");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->route_table_ids.empty());
  for (const char* bad : {R"({"RouteTableID":1})", R"({"RouteTableID":["rtb-1",2]})", R"({"RouteTableID":"vpc-1"})",
                          R"({"RouteLimit":0})", R"({"RouteLimit":"50"})", R"([1])", "{"}) {
    EXPECT_TRUE(absl::IsInvalidArgument(ParseAwsVpcConfig(bad).status())) << bad;
  }
}

TEST(AwsVpcLeaseDataTest, InstanceIdRoundTripAndFlannelLeases) {
  EXPECT_EQ(*ParseAwsVpcLeaseInstance(AwsVpcLeaseDataJson("i-0abc")), "i-0abc");
  EXPECT_EQ(*ParseAwsVpcLeaseInstance(R"({"instanceid":"i-1"})"), "i-1");
  // flannel's aws-vpc publishes no BackendData at all.
  for (const char* none : {"", "null", "{}", R"({"InstanceID":null})"}) {
    EXPECT_TRUE(absl::IsNotFound(ParseAwsVpcLeaseInstance(none).status())) << none;
  }
  EXPECT_TRUE(absl::IsInvalidArgument(ParseAwsVpcLeaseInstance(R"({"InstanceID":"eni-1"})").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseAwsVpcLeaseInstance("[").status()));
}

TEST(AwsVpcOwnershipTest, OnlyLeaseShapedInstanceRoutesWeCreated) {
  const Ec2Route ours{"10.1.2.0/24", "i-1", "eni-1", "", "active", "CreateRoute"};
  EXPECT_TRUE(awsvpc::IsOurRoute(ours, kNetwork, 24, {}));
  Ec2Route blackhole = ours;
  blackhole.state = "blackhole";
  EXPECT_TRUE(awsvpc::IsOurRoute(blackhole, kNetwork, 24, {}));
  Ec2Route r = ours;
  r.destination = "10.2.2.0/24";  // outside the cluster network
  EXPECT_FALSE(awsvpc::IsOurRoute(r, kNetwork, 24, {}));
  r = ours;
  r.destination = "10.1.2.0/25";  // not a lease
  EXPECT_FALSE(awsvpc::IsOurRoute(r, kNetwork, 24, {}));
  r = ours;
  r.other_target = "igw-1";
  r.instance_id = "";
  EXPECT_FALSE(awsvpc::IsOurRoute(r, kNetwork, 24, {}));
  r = ours;
  r.origin = "CreateRouteTable";
  EXPECT_FALSE(awsvpc::IsOurRoute(r, kNetwork, 24, {}));
  r = ours;
  r.instance_id = "";  // an ENI route: made by someone else
  EXPECT_FALSE(awsvpc::IsOurRoute(r, kNetwork, 24, {}));
  EXPECT_FALSE(awsvpc::IsOurRoute(ours, kNetwork, 24, {Net("10.1.2.0/24")}));  // a flannel node's own
}

TEST(AwsVpcPlanTest, CreatesReplacesRemovesAndLeavesTheRest) {
  Ec2RouteTable t{"rtb-1", "vpc-1", {
      {"172.31.0.0/16", "", "", "local", "active", "CreateRouteTable"},
      {"10.1.1.0/24", "i-1", "eni-1", "", "active", "CreateRoute"},      // right
      {"10.1.2.0/24", "i-9", "eni-9", "", "active", "CreateRoute"},      // wrong instance
      {"10.1.3.0/24", "i-3", "eni-3", "", "blackhole", "CreateRoute"},   // dead target
      {"10.1.4.0/24", "i-4", "eni-4", "", "active", "CreateRoute"},      // lease gone
  }};
  std::map<IPv4Net, std::string> desired{{Net("10.1.1.0/24"), "i-1"}, {Net("10.1.2.0/24"), "i-2"},
                                         {Net("10.1.3.0/24"), "i-3"}, {Net("10.1.5.0/24"), "i-5"}};
  awsvpc::TablePlan p = awsvpc::PlanTable(t, desired, {}, kNetwork, 24, 50);
  EXPECT_EQ(p.unchanged, 1);
  ASSERT_EQ(p.replace.size(), 2u);
  EXPECT_EQ(p.replace[0], std::make_pair(Net("10.1.2.0/24"), std::string("i-2")));
  EXPECT_EQ(p.replace[1], std::make_pair(Net("10.1.3.0/24"), std::string("i-3")));
  EXPECT_EQ(p.remove, std::vector<IPv4Net>{Net("10.1.4.0/24")});
  ASSERT_EQ(p.create.size(), 1u);
  EXPECT_EQ(p.create[0].first, Net("10.1.5.0/24"));
  EXPECT_EQ(p.foreign, 1);
  EXPECT_TRUE(p.over_limit.empty());
}

TEST(AwsVpcPlanTest, LimitKeepsTheLowestSubnetsAndPropagatedRoutesAreFree) {
  Ec2RouteTable t{"rtb-1", "vpc-1", {
      {"172.31.0.0/16", "", "", "local", "active", "CreateRouteTable"},
      {"10.1.9.0/24", "i-9", "eni-9", "", "active", "CreateRoute"},  // ours, but now over the limit
      {"192.168.0.0/16", "", "", "vgw-1", "active", "EnableVgwRoutePropagation"},
      {"10.1.3.0/24", "", "", "pcx-1", "active", "CreateRoute"},  // foreign, holds a lease subnet
  }};
  std::map<IPv4Net, std::string> desired;
  for (int i = 1; i <= 9; ++i) desired.emplace(Net(absl::StrCat("10.1.", i, ".0/24")), absl::StrCat("i-", i));
  awsvpc::TablePlan p = awsvpc::PlanTable(t, desired, {}, kNetwork, 24, /*route_limit=*/5);
  EXPECT_EQ(p.foreign, 2);  // local + peering; the propagated route is not counted
  EXPECT_EQ(p.conflicts, std::vector<IPv4Net>{Net("10.1.3.0/24")});
  // Room for 3: 10.1.1, 10.1.2, 10.1.4; the rest, 10.1.9 included, waits.
  ASSERT_EQ(p.create.size(), 3u);
  EXPECT_EQ(p.create[0].first, Net("10.1.1.0/24"));
  EXPECT_EQ(p.create[2].first, Net("10.1.4.0/24"));
  EXPECT_EQ(p.remove, std::vector<IPv4Net>{Net("10.1.9.0/24")});
  EXPECT_EQ(p.over_limit.size(), 5u);
  EXPECT_EQ(p.over_limit.front(), Net("10.1.5.0/24"));
  EXPECT_EQ(p.ours_after, 3);
}

TEST(Ec2XmlTest, ParsesDescribeRouteTablesAsEc2SendsIt) {
  constexpr char kXml[] = R"(<?xml version="1.0" encoding="UTF-8"?>
<DescribeRouteTablesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>6f570b0b-9c18-4b07-bdec-73740dcf861a</requestId>
  <routeTableSet>
    <item>
      <routeTableId>rtb-1a2b3c4d</routeTableId>
      <vpcId>vpc-11223344</vpcId>
      <ownerId>123456789012</ownerId>
      <routeSet>
        <item><destinationCidrBlock>10.0.0.0/22</destinationCidrBlock><gatewayId>local</gatewayId>
          <state>active</state><origin>CreateRouteTable</origin></item>
        <item><destinationCidrBlock>10.1.2.0/24</destinationCidrBlock><instanceId>i-0123</instanceId>
          <instanceOwnerId>123456789012</instanceOwnerId><networkInterfaceId>eni-0123</networkInterfaceId>
          <state>blackhole</state><origin>CreateRoute</origin></item>
        <item><destinationIpv6CidrBlock>::/0</destinationIpv6CidrBlock><gatewayId>igw-1</gatewayId>
          <state>active</state><origin>CreateRoute</origin></item>
        <item><destinationCidrBlock>0.0.0.0/0</destinationCidrBlock><natGatewayId>nat-1</natGatewayId>
          <state>active</state><origin>CreateRoute</origin></item>
      </routeSet>
      <associationSet><item><main>true</main></item></associationSet>
      <propagatingVgwSet/>
      <tagSet/>
    </item>
  </routeTableSet>
</DescribeRouteTablesResponse>)";
  auto tables = awsvpc::ParseDescribeRouteTables(kXml);
  ASSERT_TRUE(tables.ok()) << tables.status();
  ASSERT_EQ(tables->size(), 1u);
  const Ec2RouteTable& t = (*tables)[0];
  EXPECT_EQ(t.id, "rtb-1a2b3c4d");
  EXPECT_EQ(t.vpc_id, "vpc-11223344");
  ASSERT_EQ(t.routes.size(), 4u);
  EXPECT_EQ(t.routes[0].other_target, "local");
  EXPECT_EQ(t.routes[1].instance_id, "i-0123");
  EXPECT_EQ(t.routes[1].network_interface_id, "eni-0123");
  EXPECT_EQ(t.routes[1].state, "blackhole");
  EXPECT_EQ(t.routes[2].destination, "");  // IPv6: never ours
  EXPECT_EQ(t.routes[3].other_target, "nat-1");
  EXPECT_FALSE(awsvpc::ParseDescribeRouteTables("<Other/>").ok());
  EXPECT_FALSE(awsvpc::ParseDescribeRouteTables("not xml").ok());
}

TEST(Ec2XmlTest, ErrorAnswersBecomePreciseStatuses) {
  auto err = [](const char* code, int http = 400) {
    return awsvpc::Ec2ErrorStatus("CreateRoute", http,
                                  absl::StrCat("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>",
                                               code, "</Code><Message>msg</Message></Error></Errors>",
                                               "<RequestID>req-1</RequestID></Response>"));
  };
  EXPECT_TRUE(absl::IsNotFound(err("InvalidRoute.NotFound")));
  EXPECT_TRUE(absl::IsAlreadyExists(err("RouteAlreadyExists")));
  EXPECT_TRUE(absl::IsResourceExhausted(err("RouteLimitExceeded")));
  EXPECT_TRUE(absl::IsUnavailable(err("RequestLimitExceeded", 503)));
  EXPECT_TRUE(absl::IsPermissionDenied(err("UnauthorizedOperation", 403)));
  EXPECT_TRUE(absl::IsUnauthenticated(err("AuthFailure", 401)));
  EXPECT_TRUE(absl::IsInvalidArgument(err("InvalidParameterValue")));
  EXPECT_TRUE(absl::IsUnavailable(err("InternalError", 500)));
  absl::Status s = err("RouteLimitExceeded");
  EXPECT_TRUE(absl::StrContains(s.message(), "EC2 CreateRoute: RouteLimitExceeded: msg (request req-1)")) << s;
  EXPECT_TRUE(absl::IsUnavailable(awsvpc::Ec2ErrorStatus("X", 502, "<html>bad gateway</html>")));
}

TEST(Ec2EndpointTest, RegionalEndpoints) {
  EXPECT_EQ(awsvpc::DefaultEc2Endpoint("eu-west-1"), "https://ec2.eu-west-1.amazonaws.com");
  EXPECT_EQ(awsvpc::DefaultEc2Endpoint("cn-north-1"), "https://ec2.cn-north-1.amazonaws.com.cn");
}

}  // namespace
}  // namespace weft::agent
