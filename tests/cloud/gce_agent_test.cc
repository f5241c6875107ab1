// Two real weft-agent binaries with Backend.Type gce, the real weft-controller
// and the GCE fake (one VM metadata server each), all on 127.0.0.1 through
// --gce-api-endpoint/--gce-metadata-endpoint: each agent publishes its VM, both
// converge on one route per lease, a foreign route stays, a departed lease's
// route goes after --cloud-route-removal-grace, and the backend's metrics are
// on /metrics.

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "agent/backend/gce/gce_backend.h"
#include "agent/cloud/http_client.h"
#include "common/testing.h"
#include "gtest/gtest.h"
#include "tests/bench/scrape.h"
#include "tests/cloud/fake_gce.h"
#include "tests/integration/controller_fixture.h"

namespace weft::testing {
namespace {

constexpr char kZone[] = "europe-west1-b";

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// dest range -> next hop VM name, for routes carrying `description`.
std::map<std::string, std::string> RoutesMarked(const FakeGce& fake, const std::string& description) {
  std::map<std::string, std::string> out;
  for (const FakeGceRoute& r : fake.Routes()) {
    if (r.description == description) out[r.dest_range] = r.next_hop_instance.substr(r.next_hop_instance.rfind('/') + 1);
  }
  return out;
}

struct Agent {
  std::string vm;
  std::string dir;
  int metrics_port = 0;
  Process proc;
  std::string log() const { return dir + "/agent.log"; }
};

class GceAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fake_.Start().ok());
    controller_ = std::make_unique<Controller>(DataDir("controller"));
    ASSERT_NO_FATAL_FAILURE(controller_->Start());
    weft::v1::SetNetworkConfigRequest req;
    req.set_config(R"({"Network":"10.7.0.0/16","Backend":{"Type":"gce","RouteQuota":10}})");
    weft::v1::SetNetworkConfigResponse resp;
    ASSERT_TRUE(controller_->network()->SetNetworkConfig(Ctx().get(), req, &resp).ok());
  }
  void TearDown() override {
    for (auto& a : agents_) {
      a->proc.Kill(SIGTERM);
      a->proc.Wait();
    }
    if (controller_) controller_->Stop();
  }
  Agent& StartAgent(const std::string& vm, const std::string& public_ip) {
    auto a = std::make_unique<Agent>();
    a->vm = vm;
    a->dir = DataDir(vm.c_str());
    a->metrics_port = FreePort();
    const std::string metadata = fake_.AddInstance(kZone, vm);
    std::filesystem::create_directories(a->dir);
    EXPECT_TRUE(a->proc.Start({Runfile("agent/weft-agent"), "--controller", controller_->addr(), "--iface", "lo",
                               "--public-ip", public_ip, "--node-name", vm, "--subnet-file", a->dir + "/subnet.env",
                               "--docker-opts-file", a->dir + "/docker_opts.env", "--state-dir", a->dir + "/state",
                               "--metrics-listen", absl::StrCat("127.0.0.1:", a->metrics_port),
                               "--resync-interval", "1s", "--gce-api-endpoint", fake_.api_endpoint(),
                               "--gce-metadata-endpoint", metadata, "--cloud-route-removal-grace", "2s"},
                              a->log()));
    agents_.push_back(std::move(a));
    return *agents_.back();
  }
  static bool Within20s(const std::function<bool()>& cond) { return Eventually(cond, absl::Seconds(20)); }
  std::string Logs() const {
    std::string out;
    for (const auto& a : agents_) absl::StrAppend(&out, "--- ", a->vm, "\n", Slurp(a->log()));
    return out;
  }
  std::map<std::string, weft::v1::Lease> Leases() {
    weft::v1::ListLeasesRequest req;
    weft::v1::ListLeasesResponse resp;
    EXPECT_TRUE(controller_->leases()->ListLeases(Ctx().get(), req, &resp).ok());
    std::map<std::string, weft::v1::Lease> out;
    for (const auto& l : resp.leases()) out[l.node_name()] = l;
    return out;
  }

  FakeGce fake_{FakeGce::Options{.project = "weft-test", .network = "default", .route_quota = 100,
                                 .max_page_size = 2, .polls_until_done = 2}};
  std::unique_ptr<Controller> controller_;
  std::vector<std::unique_ptr<Agent>> agents_;
};

TEST_F(GceAgentTest, AgentsRouteEveryLeaseToItsVm) {
  const std::string mark = "weft: 10.7.0.0/16";
  fake_.PutRoute(FakeGceRoute{"someone-elses", fake_.NetworkUrl(), "192.168.0.0/24", "", 500, "keep me"});
  StartAgent("vm-a", "10.128.0.2");
  StartAgent("vm-b", "10.128.0.3");
  ASSERT_TRUE(Within20s([&] {
    auto l = Leases();
    return l.size() == 2 && RoutesMarked(fake_, mark).size() == 2;
  })) << Logs();

  // Each lease publishes its VM, and its route leads there.
  const auto leases = Leases();
  std::map<std::string, std::string> want;
  for (const auto& [node, lease] : leases) {
    EXPECT_EQ(lease.backend_type(), "gce");
    EXPECT_EQ(lease.backend_data(),
              agent::gce::GceLeaseDataJson(FakeGce::InstanceUrl("weft-test", kZone, node)));
    want[lease.subnet()] = node;
  }
  EXPECT_EQ(RoutesMarked(fake_, mark), want);
  // No encapsulation: containers get the interface's full MTU.
  EXPECT_TRUE(absl::StrContains(Slurp(agents_[0]->dir + "/subnet.env"), "FLANNEL_MTU=65536"))
      << Slurp(agents_[0]->dir + "/subnet.env");

  // Steady state: two agents resyncing every second write nothing and list
  // rarely (every check interval, not every resync), over three passes each.
  const auto passes = [&](int agent) {
    return bench::Sample(bench::ScrapeMetrics(agents_[agent]->metrics_port), "weft_agent_reconciles_total ");
  };
  const double passes_a = passes(0), passes_b = passes(1);
  const int inserts = fake_.Count("insert");
  const int deletes = fake_.Count("delete");
  const int lists = fake_.Count("list");
  EXPECT_TRUE(Within20s([&] { return passes(0) >= passes_a + 3 && passes(1) >= passes_b + 3; }))
      << "agents not resyncing every second: " << passes(0) - passes_a << ", " << passes(1) - passes_b;
  EXPECT_EQ(fake_.Count("insert"), inserts);
  EXPECT_EQ(fake_.Count("delete"), deletes);
  EXPECT_LE(fake_.Count("list") - lists, 2);

  // vm-b's lease goes (its agent stopped, the lease released): its route goes.
  Agent& b = *agents_[1];
  b.proc.Kill(SIGTERM);
  b.proc.Wait();
  const size_t log_before = Slurp(agents_[0]->log()).size();
  weft::v1::ReleaseLeaseRequest rel;
  rel.set_subnet(leases.at("vm-b").subnet());
  rel.set_node_name("vm-b");
  rel.set_public_ip("10.128.0.3");
  weft::v1::ReleaseLeaseResponse rel_resp;
  ASSERT_TRUE(controller_->leases()->ReleaseLease(Ctx().get(), rel, &rel_resp).ok());
  ASSERT_TRUE(Within20s([&] { return RoutesMarked(fake_, mark).size() == 1; })) << Logs();
  EXPECT_EQ(RoutesMarked(fake_, mark).begin()->second, "vm-a");
  // ...after vm-a held it for --cloud-route-removal-grace (2s; the default 30s
  // would outlast the wait above), saying so once although it resyncs every second.
  const std::string held = absl::StrCat("removal grace ends (the lease may not have reached this agent yet)\" route=",
                                        agent::gce::RouteName(fake_.NetworkUrl(), *IPv4Net::Parse("10.7.0.0/16"),
                                                              *IPv4Net::Parse(leases.at("vm-b").subnet())));
  const std::vector<std::string> around = absl::StrSplit(Slurp(agents_[0]->log()).substr(log_before), held);
  EXPECT_EQ(around.size(), 2u) << Slurp(agents_[0]->log());
  EXPECT_EQ(RoutesMarked(fake_, "keep me").size(), 1u);

  // The backend's metrics are on the agent's page (once the pass that deleted
  // the route has recorded it).
  auto http = cloud::NewCurlHttpClient();
  cloud::HttpRequest get;
  get.url = absl::StrCat("http://127.0.0.1:", agents_[0]->metrics_port, "/metrics");
  absl::StatusOr<cloud::HttpResponse> page;
  EXPECT_TRUE(Within20s([&] {
    page = http->Do(get);
    return page.ok() && absl::StrContains(page->body, "\nweft_agent_gce_routes 1\n");
  })) << (page.ok() ? page->body : page.status().ToString());
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(absl::StrContains(page->body, "\nweft_agent_gce_unrouted_subnets 0\n")) << page->body;
  EXPECT_TRUE(absl::StrContains(page->body, "\nweft_agent_gce_routes_held 0\n")) << page->body;
  EXPECT_TRUE(absl::StrContains(page->body, R"(weft_agent_gce_api_requests_total{operation="delete",result="ok"} )"))
      << page->body;
  EXPECT_TRUE(absl::StrContains(page->body, "\nweft_agent_ready 1\n")) << page->body;
  EXPECT_EQ(fake_.Count("unauthorized"), 0);
  EXPECT_EQ(fake_.Count("bad_request"), 0);
  EXPECT_EQ(fake_.Count("no_flavor"), 0);
}

}  // namespace
}  // namespace weft::testing
