// The real weft-agent binary with Backend.Type aws-vpc, against the real
// weft-controller and FakeAws (EC2 + IMDSv2), all on 127.0.0.1: the agent
// publishes its instance, disables the source/destination check, routes every
// lease to its instance and removes a route when its lease goes (after
// --cloud-route-removal-grace, here from WEFT_CLOUD_ROUTE_REMOVAL_GRACE).

#include <limits.h>
#include <stdlib.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "agent/cloud/http_client.h"
#include "common/testing.h"
#include "gtest/gtest.h"
#include "tests/bench/scrape.h"
#include "tests/cloud/fake_ec2.h"
#include "tests/integration/controller_fixture.h"

namespace weft::testing {
namespace {

constexpr char kTable[] = "rtb-0001";
constexpr char kPeerInstance[] = "i-0000000000000002";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// docs/ has no BUILD file: the runfile of README.md (a data dependency) is a
// link into the source tree, next to docs/.
std::string DocsMetricsPath() {
  char readme[PATH_MAX];
  if (realpath(Runfile("README.md").c_str(), readme) == nullptr) return "docs/metrics.md";
  return absl::StrCat(std::string(readme).substr(0, std::strlen(readme) - std::strlen("README.md")), "docs/metrics.md");
}

// How long the agent may take to act on the fake cloud (weft::Eventually).
constexpr absl::Duration kConverge = absl::Seconds(20);

TEST(AwsVpcAgentTest, AgentRoutesLeasesThroughFakeEc2) {
  FakeAws fake;
  fake.AcceptCredentials("AKIDAGENT", "agent-secret");
  fake.SetInstance(FakeInstance{});
  fake.AddRouteTable(FakeRouteTable{
      .id = kTable,
      .vpc_id = "vpc-0001",
      .routes = {FakeRoute{.destination = "172.31.0.0/16", .gateway_id = "local", .origin = "CreateRouteTable"}}});

  Controller controller(DataDir("controller"));
  ASSERT_NO_FATAL_FAILURE(controller.Start());
  {
    weft::v1::SetNetworkConfigRequest req;
    req.set_config(R"({"Network":"10.1.0.0/16","Backend":{"Type":"aws-vpc","RouteTableID":"rtb-0001"}})");
    weft::v1::SetNetworkConfigResponse resp;
    ASSERT_TRUE(controller.network()->SetNetworkConfig(Ctx().get(), req, &resp).ok());
  }
  // Another host's lease, as its agent would publish it.
  weft::v1::AcquireLeaseRequest peer;
  peer.set_node_name("peer");
  peer.set_public_ip("172.31.0.12");
  peer.set_backend_type("aws-vpc");
  peer.set_backend_data(absl::StrCat(R"({"InstanceID":")", kPeerInstance, R"("})"));
  weft::v1::AcquireLeaseResponse peer_lease;
  ASSERT_TRUE(controller.leases()->AcquireLease(Ctx().get(), peer, &peer_lease).ok());
  const std::string peer_subnet = peer_lease.lease().subnet();

  const std::string dir = std::getenv("TEST_TMPDIR");
  const int metrics_port = FreePort();
  setenv("AWS_ACCESS_KEY_ID", "AKIDAGENT", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "agent-secret", 1);
  setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/weft-test-credentials", 1);
  // --cloud-route-removal-grace from the environment; the default 30s would
  // outlast the wait for the departed lease's route below.
  setenv("WEFT_CLOUD_ROUTE_REMOVAL_GRACE", "2s", 1);
  Process agent;
  const std::string log = dir + "/agent.log";
  ASSERT_TRUE(agent.Start({Runfile("agent/weft-agent"), "--controller", controller.addr(), "--iface", "lo",
                           "--node-name", "self", "--subnet-file", dir + "/subnet.env", "--docker-opts-file",
                           dir + "/docker_opts.env", "--state-dir", dir + "/state", "--metrics-listen",
                           absl::StrCat("127.0.0.1:", metrics_port), "--resync-interval", "1s",
                           "--aws-ec2-endpoint", fake.endpoint(), "--aws-imds-endpoint", fake.endpoint()},
                          log));

  // Both leases get a route to their instance.
  ASSERT_TRUE(Eventually([&] {
    auto r = fake.Route(kTable, peer_subnet);
    return r && r->instance_id == kPeerInstance && fake.Routes(kTable).size() == 3;
  }, kConverge)) << "routes never appeared; agent log:\n"
      << ReadFile(log);
  std::string own_subnet;
  for (const FakeRoute& r : fake.Routes(kTable)) {
    if (r.instance_id == FakeInstance{}.instance_id) own_subnet = r.destination;
  }
  ASSERT_FALSE(own_subnet.empty()) << ReadFile(log);
  EXPECT_EQ(fake.SourceDestCheckDisabled(), std::set<std::string>{FakeInstance{}.instance_id});

  // The agent's lease says which instance it is; subnet.env has the full MTU.
  {
    weft::v1::ListLeasesRequest req;
    weft::v1::ListLeasesResponse resp;
    ASSERT_TRUE(controller.leases()->ListLeases(Ctx().get(), req, &resp).ok());
    bool found = false;
    for (const auto& l : resp.leases()) {
      if (l.node_name() != "self") continue;
      found = true;
      EXPECT_EQ(l.subnet(), own_subnet);
      EXPECT_EQ(l.backend_type(), "aws-vpc");
      EXPECT_EQ(l.backend_data(), R"({"InstanceID":"i-0a1b2c3d4e5f60001"})");
    }
    EXPECT_TRUE(found);
  }
  ASSERT_TRUE(Eventually([&] { return absl::StrContains(ReadFile(dir + "/subnet.env"), "FLANNEL_MTU="); }, kConverge));
  EXPECT_TRUE(absl::StrContains(ReadFile(dir + "/subnet.env"), "FLANNEL_MTU=65536")) << ReadFile(dir + "/subnet.env");

  // Steady state: resyncs cost one DescribeRouteTables each and write nothing
  // (over two passes; a third may have begun).
  const auto passes = [&] { return bench::Sample(bench::ScrapeMetrics(metrics_port), "weft_agent_reconciles_total "); };
  const double passes_before = passes();
  const int creates = fake.Calls("CreateRoute");
  const int describes = fake.Calls("DescribeRouteTables");
  EXPECT_TRUE(Eventually([&] { return passes() >= passes_before + 2; }, kConverge))
      << "agent not resyncing every second: " << passes() - passes_before;
  EXPECT_EQ(fake.Calls("CreateRoute"), creates);
  EXPECT_GE(fake.Calls("DescribeRouteTables") - describes, 1);
  EXPECT_LE(fake.Calls("DescribeRouteTables") - describes, 4);

  // The peer's lease goes: its route goes too.
  weft::v1::ReleaseLeaseRequest rel;
  rel.set_subnet(peer_subnet);
  rel.set_node_name("peer");
  rel.set_public_ip("172.31.0.12");
  weft::v1::ReleaseLeaseResponse rel_resp;
  ASSERT_TRUE(controller.leases()->ReleaseLease(Ctx().get(), rel, &rel_resp).ok());
  EXPECT_TRUE(Eventually([&] { return !fake.Route(kTable, peer_subnet).has_value(); }, kConverge)) << ReadFile(log);
  EXPECT_TRUE(fake.Route(kTable, own_subnet).has_value());
  // ...after the grace, which the agent logged once although it resyncs every second.
  const std::string held = absl::StrCat("removal grace ends (the lease may not have reached this agent yet)\" table=",
                                        kTable, " subnet=", peer_subnet, " ");
  const std::vector<std::string> around = absl::StrSplit(ReadFile(log), held);
  EXPECT_EQ(around.size(), 2u) << ReadFile(log);
  EXPECT_TRUE(fake.Route(kTable, "172.31.0.0/16").has_value());

  // The backend's metrics are on the agent's page.
  // The gauges are set at the end of the pass that deleted the route: poll.
  auto http = cloud::NewCurlHttpClient();
  absl::StatusOr<cloud::HttpResponse> page;
  EXPECT_TRUE(Eventually([&] {
    page = http->Do({.url = absl::StrCat("http://127.0.0.1:", metrics_port, "/metrics")});
    return page.ok() && absl::StrContains(page->body, "\nweft_agent_awsvpc_routes_held 0\n");
  }, kConverge)) << (page.ok() ? page->body : page.status().ToString());
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(absl::StrContains(page->body, "\nweft_agent_awsvpc_routes 1\n")) << page->body;
  EXPECT_TRUE(absl::StrContains(page->body, "\nweft_agent_awsvpc_unrouted_peers 0\n")) << page->body;
  EXPECT_TRUE(absl::StrContains(page->body, R"(weft_agent_awsvpc_api_calls_total{action="DeleteRoute",result="ok"} 1)"))
      << page->body;
  EXPECT_EQ(fake.SignatureFailures(), 0);
  EXPECT_EQ(fake.MalformedRequests(), 0);

  // Every aws-vpc family on the page has its row in docs/metrics.md, with its type.
  const std::string doc = ReadFile(DocsMetricsPath());
  ASSERT_TRUE(absl::StrContains(doc, "# Weft metrics")) << DocsMetricsPath();
  int documented = 0;
  for (absl::string_view line : absl::StrSplit(page->body, '\n')) {
    if (!absl::ConsumePrefix(&line, "# TYPE weft_agent_awsvpc_")) continue;
    std::vector<std::string> name_type = absl::StrSplit(line, ' ');
    ASSERT_EQ(name_type.size(), 2u) << line;
    EXPECT_TRUE(absl::StrContains(doc, absl::StrCat("| `weft_agent_awsvpc_", name_type[0], "` | ", name_type[1], " |")))
        << "weft_agent_awsvpc_" << name_type[0] << " has no row in docs/metrics.md";
    ++documented;
  }
  EXPECT_EQ(documented, 5);

  agent.Kill(SIGTERM);
  agent.Wait();
  unsetenv("WEFT_CLOUD_ROUTE_REMOVAL_GRACE");
  controller.Stop();
}

}  // namespace
}  // namespace weft::testing
