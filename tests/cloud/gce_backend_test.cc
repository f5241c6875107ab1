// The gce backend, built by the agent's factory with the real libcurl client,
// against the loopback GCE fake through --gce-api-endpoint/--gce-metadata-endpoint:
// routes follow the leases, foreign routes stay, quota is a clear error and a
// metric, throttling is retried, tokens are refreshed, drift is repaired.

#include <limits.h>
#include <stdlib.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "agent/backend/factory.h"
#include "agent/backend/gce/gce_backend.h"
#include "common/clock.h"
#include "common/testing.h"
#include "common/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cloud/fake_gce.h"

namespace weft::testing {
namespace {

using agent::Peer;
using agent::ReconcileStats;
using agent::gce::GceBackend;
using agent::gce::GceBackendOptions;
using agent::gce::GceConfig;
using agent::gce::GceLeaseDataJson;
using agent::gce::RouteName;
using ::testing::HasSubstr;

constexpr char kZone[] = "us-central1-a";
constexpr char kProject[] = "weft-test";

IPv4Net Net(const std::string& s) { return *IPv4Net::Parse(s); }
const IPv4Net kCluster = Net("10.1.0.0/16");

class GceBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FakeGce::Options o;
    o.max_page_size = 2;  // every list spans pages
    o.polls_until_done = 2;
    StartFake(o);
  }
  void StartFake(FakeGce::Options o, int vms = 4) {
    o.clock = &clock_;
    fake_ = std::make_unique<FakeGce>(o);
    ASSERT_TRUE(fake_->Start().ok());
    for (int i = 1; i <= vms; ++i) fake_->AddInstance(kZone, absl::StrCat("node-", i));
  }

  // `removal_grace`: the default unless a test needs routes of gone leases
  // deleted in the pass that first finds them unwanted.
  std::unique_ptr<GceBackend> Make(const std::string& vm, int quota = 100,
                                   absl::Duration removal_grace = GceBackendOptions{}.removal_grace) {
    GceBackendOptions o;
    o.api.api_endpoint = fake_->api_endpoint();
    o.api.metadata_endpoint = fake_->MetadataEndpoint(vm);
    o.api.clock = &clock_;
    o.check_interval = absl::Minutes(1);
    o.removal_grace = removal_grace;
    return std::make_unique<GceBackend>(cloud::NewCurlHttpClient(), GceConfig{quota}, o, &registry_);
  }
  // Init with `subnet` as this host's lease.
  void Init(agent::Backend& b, const std::string& subnet, const std::string& config = R"({"Type":"gce"})") {
    agent::LocalConfig local;
    local.iface_mtu = 1460;
    auto info = b.Init(local, agent::OwnLease{Net(subnet), kCluster}, config);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->type, "gce");
    EXPECT_EQ(info->mtu, 1460u);  // no encapsulation
  }
  static Peer Lease(const std::string& subnet, const std::string& vm) {
    return Peer{Net(subnet), {}, "gce", GceLeaseDataJson(FakeGce::InstanceUrl(kProject, kZone, vm))};
  }
  // name -> "destRange via instance-name", our routes and foreign ones alike.
  std::map<std::string, std::string> Table() const {
    std::map<std::string, std::string> out;
    for (const FakeGceRoute& r : fake_->Routes()) {
      out[r.name] = absl::StrCat(r.dest_range, " via ", r.next_hop_instance.substr(r.next_hop_instance.rfind('/') + 1));
    }
    return out;
  }
  std::string Name(const std::string& subnet) const { return RouteName(fake_->NetworkUrl(), kCluster, Net(subnet)); }
  double Metric(const std::string& series) const {
    for (absl::string_view line : absl::StrSplit(registry_.Serialize(), '\n')) {
      if (absl::ConsumePrefix(&line, series + " ")) return std::stod(std::string(line));
    }
    return -1;
  }

  SleepAdvancingClock clock_;  // retry pauses move it
  std::unique_ptr<FakeGce> fake_;
  metrics::Registry registry_;
};

TEST_F(GceBackendTest, FactoryWiresTheEndpointFlags) {
  agent::BackendEnv env;
  env.metrics = &registry_;
  env.flags.gce_api_endpoint = fake_->api_endpoint();
  env.flags.gce_metadata_endpoint = fake_->MetadataEndpoint("node-2");
  auto b = agent::CreateBackend("gce", R"({"Type":"gce","RouteQuota":10})", env);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*b)->device_name(), "");
  auto data = (*b)->LeaseData();
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(*data, R"({"Instance":"projects/weft-test/zones/us-central1-a/instances/node-2"})");
  EXPECT_EQ(agent::CreateBackend("gce", R"({"RouteQuota":-1})", env).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(GceBackendTest, RoutesFollowTheLeases) {
  auto b = Make("node-1", 100, /*removal_grace=*/absl::ZeroDuration());
  Init(*b, "10.1.1.0/24");
  auto stats = b->Reconcile({Lease("10.1.1.0/24", "node-1"), Lease("10.1.2.0/24", "node-2"),
                             Lease("10.1.3.0/24", "node-3")});
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->added, 3);
  EXPECT_EQ(Table(), (std::map<std::string, std::string>{{Name("10.1.1.0/24"), "10.1.1.0/24 via node-1"},
                                                         {Name("10.1.2.0/24"), "10.1.2.0/24 via node-2"},
                                                         {Name("10.1.3.0/24"), "10.1.3.0/24 via node-3"}}));
  for (const FakeGceRoute& r : fake_->Routes()) {
    EXPECT_EQ(r.network, fake_->NetworkUrl());
    EXPECT_EQ(r.priority, 1000);
    EXPECT_EQ(r.description, "weft: 10.1.0.0/16");
  }
  EXPECT_EQ(Metric("weft_agent_gce_routes"), 3);

  // node-3 leaves; node-2's subnet moves to node-4 (a replaced route).
  stats = b->Reconcile({Lease("10.1.1.0/24", "node-1"), Lease("10.1.2.0/24", "node-4")});
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->removed, 1);
  EXPECT_EQ(stats->updated, 1);
  EXPECT_EQ(stats->unchanged, 1);
  EXPECT_EQ(Table(), (std::map<std::string, std::string>{{Name("10.1.1.0/24"), "10.1.1.0/24 via node-1"},
                                                         {Name("10.1.2.0/24"), "10.1.2.0/24 via node-4"}}));
  EXPECT_EQ(stats->errors, 0);
}

TEST_F(GceBackendTest, ForeignRoutesAreLeftAlone) {
  const std::string net = fake_->NetworkUrl();
  const std::string other_vm = FakeGce::InstanceUrl(kProject, kZone, "node-4");
  // flannel's own route for a subnet we also route, another Weft cluster's route,
  // a default route, and a route with our description on another VPC network.
  const std::vector<FakeGceRoute> foreign = {
      {"flannel-10-1-2-0-24", net, "10.1.2.0/24", other_vm, 1000, ""},
      {"weft-0badc0de-10-2-1-0-24", net, "10.2.1.0/24", other_vm, 1000, "weft: 10.2.0.0/16"},
      {"default-route-abc", net, "0.0.0.0/0", "", 1000, "Default route to the Internet."},
      {"other-vpc-route", "projects/weft-test/global/networks/other", "10.1.7.0/24", other_vm, 1000,
       "weft: 10.1.0.0/16"},
  };
  for (const FakeGceRoute& r : foreign) fake_->PutRoute(r);
  auto b = Make("node-1", 100, /*removal_grace=*/absl::ZeroDuration());
  Init(*b, "10.1.1.0/24");
  ASSERT_TRUE(b->Reconcile({Lease("10.1.2.0/24", "node-2")}).ok());
  ASSERT_TRUE(b->Reconcile({}).ok());  // node-2 leaves: only our route for it goes
  std::map<std::string, std::string> table = Table();
  EXPECT_EQ(table.size(), foreign.size() + 1);  // + our own route
  EXPECT_EQ(table.count(Name("10.1.1.0/24")), 1u);
  for (const FakeGceRoute& f : foreign) {
    bool same = false;
    for (const FakeGceRoute& r : fake_->Routes()) {
      same |= r.name == f.name && r.dest_range == f.dest_range && r.next_hop_instance == f.next_hop_instance &&
              r.description == f.description && r.network == f.network;
    }
    EXPECT_TRUE(same) << f.name << " was changed";
  }
}

TEST_F(GceBackendTest, QuotaIsAClearErrorAndAMetric) {
  auto b = Make("node-1", /*quota=*/2);
  Init(*b, "10.1.3.0/24", R"({"Type":"gce","RouteQuota":2})");
  const std::vector<Peer> leases = {Lease("10.1.1.0/24", "node-1"), Lease("10.1.2.0/24", "node-2"),
                                    Lease("10.1.4.0/24", "node-4")};
  auto stats = b->Reconcile(leases);
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(stats.status().message(), HasSubstr("2 of 4 leased subnets have no route"));
  EXPECT_THAT(stats.status().message(), HasSubstr("Unrouted: 10.1.3.0/24, 10.1.4.0/24"));
  EXPECT_THAT(stats.status().message(), HasSubstr("RouteQuota is 2"));
  // Not a random half-state: the lowest subnets, as every other agent picks them.
  EXPECT_EQ(Table(), (std::map<std::string, std::string>{{Name("10.1.1.0/24"), "10.1.1.0/24 via node-1"},
                                                         {Name("10.1.2.0/24"), "10.1.2.0/24 via node-2"}}));
  EXPECT_EQ(Metric("weft_agent_gce_unrouted_subnets"), 2);
  const int lists = fake_->Count("list");
  EXPECT_EQ(b->Reconcile(leases).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(fake_->Count("list"), lists);  // same leases, same verdict, no API call
  // The quota raised in the config: everything routed, the metric back to 0.
  Init(*b, "10.1.3.0/24", R"({"Type":"gce","RouteQuota":10})");
  stats = b->Reconcile(leases);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(Table().size(), 4u);
  EXPECT_EQ(Metric("weft_agent_gce_unrouted_subnets"), 0);
}

TEST_F(GceBackendTest, ProjectQuotaRefusalIsReportedToo) {
  fake_->SetRouteQuota(2);  // the project's ROUTES quota, lower than RouteQuota
  auto b = Make("node-1");
  Init(*b, "10.1.1.0/24");
  auto stats = b->Reconcile({Lease("10.1.2.0/24", "node-2"), Lease("10.1.3.0/24", "node-3")});
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(stats.status().message(), HasSubstr("ROUTES quota refused"));
  EXPECT_THAT(stats.status().message(), HasSubstr("Unrouted: 10.1.3.0/24"));
  EXPECT_EQ(Metric("weft_agent_gce_unrouted_subnets"), 1);
  EXPECT_EQ(Table().size(), 2u);
  EXPECT_EQ(Metric("weft_agent_gce_api_requests_total{operation=\"insert\",result=\"quota\"}"), 1);
  // Resyncs before the next check keep the verdict without retrying the refused
  // insert; the check after the interval does retry it.
  const int inserts = fake_->Count("insert");
  stats = b->Reconcile({Lease("10.1.2.0/24", "node-2"), Lease("10.1.3.0/24", "node-3")});
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(stats.status().message(), HasSubstr("Unrouted: 10.1.3.0/24"));
  EXPECT_EQ(fake_->Count("insert"), inserts);
  fake_->SetRouteQuota(10);  // the operator raised the project's quota
  clock_.Advance(absl::Seconds(61));
  stats = b->Reconcile({Lease("10.1.2.0/24", "node-2"), Lease("10.1.3.0/24", "node-3")});
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->added, 1);
  EXPECT_EQ(Table().size(), 3u);
  EXPECT_EQ(Metric("weft_agent_gce_unrouted_subnets"), 0);
}

TEST_F(GceBackendTest, ThrottlingIsRetriedWithBackoff) {
  auto b = Make("node-1", 100, /*removal_grace=*/absl::ZeroDuration());
  Init(*b, "10.1.1.0/24");
  ASSERT_TRUE(b->LeaseData().ok());  // metadata fetched before the throttling starts
  fake_->InjectErrors(2, 429, "rateLimitExceeded");
  ASSERT_TRUE(b->Reconcile({Lease("10.1.2.0/24", "node-2")}).ok());
  fake_->InjectErrors(2, 403, "rateLimitExceeded");
  ASSERT_TRUE(b->Reconcile({Lease("10.1.2.0/24", "node-2"), Lease("10.1.3.0/24", "node-3")}).ok());
  fake_->InjectErrors(1, 503, "backendError");
  ASSERT_TRUE(b->Reconcile({Lease("10.1.3.0/24", "node-3")}).ok());
  EXPECT_EQ(fake_->Count("injected"), 5);
  const std::vector<absl::Duration> slept = clock_.sleeps();
  EXPECT_EQ(slept.size(), 5u);
  for (size_t i = 1; i < slept.size(); ++i) EXPECT_GT(slept[i], absl::ZeroDuration());
  EXPECT_EQ(Metric("weft_agent_gce_api_retries_total"), 5);
  EXPECT_EQ(Table().size(), 2u);  // 10.1.1 (own) and 10.1.3
}

TEST_F(GceBackendTest, ThrottlingBeyondTheRetriesFailsThePass) {
  auto b = Make("node-1");
  Init(*b, "10.1.1.0/24");
  fake_->InjectErrors(100, 429, "rateLimitExceeded");
  auto stats = b->Reconcile({Lease("10.1.2.0/24", "node-2")});
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(stats.status().message(), HasSubstr("HTTP 429"));
  fake_->InjectErrors(0, 0, "");
  ASSERT_TRUE(b->Reconcile({Lease("10.1.2.0/24", "node-2")}).ok());  // the next pass catches up
  EXPECT_EQ(Table().size(), 2u);
}

TEST_F(GceBackendTest, TokensAreRefreshedBeforeExpiryAndAfterA401) {
  auto b = Make("node-1");
  Init(*b, "10.1.1.0/24");
  ASSERT_TRUE(b->Reconcile({Lease("10.1.2.0/24", "node-2")}).ok());
  ASSERT_TRUE(b->Reconcile({Lease("10.1.3.0/24", "node-3")}).ok());
  EXPECT_EQ(fake_->Count("token"), 1);  // cached
  clock_.Advance(absl::Minutes(59) + absl::Seconds(30));  // inside the refresh margin
  ASSERT_TRUE(b->Reconcile({Lease("10.1.2.0/24", "node-2")}).ok());
  EXPECT_EQ(fake_->Count("token"), 2);
  EXPECT_EQ(fake_->Count("unauthorized"), 0);  // never sent an expired one
  fake_->RevokeTokens();
  ASSERT_TRUE(b->Reconcile({Lease("10.1.3.0/24", "node-3")}).ok());
  EXPECT_EQ(fake_->Count("unauthorized"), 1);
  EXPECT_EQ(fake_->Count("token"), 3);
  EXPECT_EQ(Table().count(Name("10.1.3.0/24")), 1u);
  EXPECT_EQ(fake_->Count("no_flavor"), 0);
}

TEST_F(GceBackendTest, UnchangedLeasesDoNotCallTheApiUntilTheCheckInterval) {
  auto b = Make("node-1");
  Init(*b, "10.1.1.0/24");
  const std::vector<Peer> leases = {Lease("10.1.2.0/24", "node-2")};
  ASSERT_TRUE(b->Reconcile(leases).ok());
  const int lists = fake_->Count("list");
  ASSERT_TRUE(b->Reconcile(leases).ok());
  EXPECT_EQ(fake_->Count("list"), lists);
  // Someone deletes our route; the next check puts it back.
  ASSERT_TRUE(fake_->RemoveRoute(Name("10.1.2.0/24")));
  clock_.Advance(absl::Seconds(61));
  auto stats = b->Reconcile(leases);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->added, 1);
  EXPECT_GT(fake_->Count("list"), lists);
  EXPECT_EQ(Table().count(Name("10.1.2.0/24")), 1u);
}

TEST_F(GceBackendTest, OperationErrorsAreCountedAndNamed) {
  auto b = Make("node-1");
  Init(*b, "10.1.1.0/24");
  auto stats = b->Reconcile({Lease("10.1.2.0/24", "node-2"), Lease("10.1.9.0/24", "ghost")});
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->errors, 1);
  ASSERT_EQ(stats->first_errors.size(), 1u);
  EXPECT_THAT(stats->first_errors[0].message(), HasSubstr("RESOURCE_NOT_FOUND"));
  EXPECT_THAT(stats->first_errors[0].message(), HasSubstr(Name("10.1.9.0/24")));
  EXPECT_EQ(Table().size(), 2u);
  // A failed pass is retried at once, not after the check interval.
  const int inserts = fake_->Count("insert");
  ASSERT_TRUE(b->Reconcile({Lease("10.1.2.0/24", "node-2"), Lease("10.1.9.0/24", "ghost")}).ok());
  EXPECT_EQ(fake_->Count("insert"), inserts + 1);
}

TEST_F(GceBackendTest, TwoAgentsConvergeOnOneTable) {
  auto a = Make("node-1");
  Init(*a, "10.1.1.0/24");
  metrics::Registry other_registry;
  GceBackendOptions o;
  o.api.api_endpoint = fake_->api_endpoint();
  o.api.metadata_endpoint = fake_->MetadataEndpoint("node-2");
  o.api.clock = &clock_;
  GceBackend b(cloud::NewCurlHttpClient(), GceConfig{}, o, &other_registry);
  Init(b, "10.1.2.0/24");
  const std::map<std::string, std::string> all = {{Name("10.1.1.0/24"), "10.1.1.0/24 via node-1"},
                                                  {Name("10.1.2.0/24"), "10.1.2.0/24 via node-2"},
                                                  {Name("10.1.3.0/24"), "10.1.3.0/24 via node-3"}};
  // Each agent sees the lease set through its own watch; b has not seen node-3 yet.
  ASSERT_TRUE(a->Reconcile({Lease("10.1.2.0/24", "node-2"), Lease("10.1.3.0/24", "node-3")}).ok());
  auto stats = b.Reconcile({Lease("10.1.1.0/24", "node-1")});
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->removed, 0);  // node-3's route is not b's to judge yet...
  EXPECT_EQ(Table(), all);
  clock_.Advance(absl::Seconds(5));
  stats = b.Reconcile({Lease("10.1.1.0/24", "node-1"), Lease("10.1.3.0/24", "node-3")});
  ASSERT_TRUE(stats.ok()) << stats.status();  // ...and b's watch catches up: nothing to do
  EXPECT_EQ(stats->changes(), 0);
  EXPECT_EQ(stats->unchanged, 3);
  EXPECT_EQ(fake_->Count("delete"), 0);
  clock_.Advance(absl::Minutes(2));
  stats = a->Reconcile({Lease("10.1.2.0/24", "node-2"), Lease("10.1.3.0/24", "node-3")});
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->changes(), 0);
  EXPECT_EQ(stats->unchanged, 3);

  // node-3 leaves for real, long after b first held its route: a fresh grace,
  // not the old one.
  stats = b.Reconcile({Lease("10.1.1.0/24", "node-1")});
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->removed, 0);
  EXPECT_EQ(Table(), all);
  clock_.Advance(absl::Seconds(30));
  stats = b.Reconcile({Lease("10.1.1.0/24", "node-1")});
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->removed, 1);
  EXPECT_EQ(Table().count(Name("10.1.3.0/24")), 0u);
}

// Another agent inserted a route for a lease this agent has not seen: it stays
// for the grace, then goes, even though the lease set never changes in between
// (the passes that would skip the API until the check interval list it when
// the grace ends). A route of a known lease that points elsewhere is replaced
// at once.
TEST_F(GceBackendTest, RouteOfNoKnownLeaseWaitsForTheRemovalGrace) {
  const std::string net = fake_->NetworkUrl();
  fake_->PutRoute({Name("10.1.3.0/24"), net, "10.1.3.0/24", FakeGce::InstanceUrl(kProject, kZone, "node-3"), 1000,
                   "weft: 10.1.0.0/16"});
  fake_->PutRoute({Name("10.1.2.0/24"), net, "10.1.2.0/24", FakeGce::InstanceUrl(kProject, kZone, "node-4"), 1000,
                   "weft: 10.1.0.0/16"});
  auto b = Make("node-1");  // the default grace, 30 s; the check interval is 1 min
  Init(*b, "10.1.1.0/24");
  const std::vector<Peer> leases = {Lease("10.1.2.0/24", "node-2")};
  auto stats = b->Reconcile(leases);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->added, 1);    // own
  EXPECT_EQ(stats->updated, 1);  // 10.1.2.0/24 pointed back to node-2, not delayed
  EXPECT_EQ(stats->removed, 0);
  EXPECT_EQ(Table(), (std::map<std::string, std::string>{{Name("10.1.1.0/24"), "10.1.1.0/24 via node-1"},
                                                         {Name("10.1.2.0/24"), "10.1.2.0/24 via node-2"},
                                                         {Name("10.1.3.0/24"), "10.1.3.0/24 via node-3"}}));
  EXPECT_EQ(Metric("weft_agent_gce_routes"), 3);  // the held route is still there
  EXPECT_EQ(Metric("weft_agent_gce_routes_held"), 1);
  const int deletes = fake_->Count("delete");

  clock_.Advance(absl::Seconds(29));
  stats = b->Reconcile(leases);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->removed, 0);
  EXPECT_EQ(Table().count(Name("10.1.3.0/24")), 1u);
  EXPECT_EQ(fake_->Count("delete"), deletes);
  EXPECT_EQ(Metric("weft_agent_gce_routes_held"), 1);

  clock_.Advance(absl::Seconds(1));
  const int lists = fake_->Count("list");
  stats = b->Reconcile(leases);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_GT(fake_->Count("list"), lists);
  EXPECT_EQ(stats->removed, 1);
  EXPECT_EQ(fake_->Count("delete"), deletes + 1);
  EXPECT_EQ(Table(), (std::map<std::string, std::string>{{Name("10.1.1.0/24"), "10.1.1.0/24 via node-1"},
                                                         {Name("10.1.2.0/24"), "10.1.2.0/24 via node-2"}}));
  EXPECT_EQ(Metric("weft_agent_gce_routes"), 2);
  EXPECT_EQ(Metric("weft_agent_gce_routes_held"), 0);
  // Converged: back to listing only every check interval.
  const int lists_after = fake_->Count("list");
  clock_.Advance(absl::Seconds(30));
  ASSERT_TRUE(b->Reconcile(leases).ok());
  EXPECT_EQ(fake_->Count("list"), lists_after);
}

// The grace never costs a known lease its route: a route the quota leaves out
// goes at once, and held routes go early when the quota needs their room.
TEST_F(GceBackendTest, HeldRoutesYieldToTheQuota) {
  auto b = Make("node-1", /*quota=*/2);
  Init(*b, "10.1.3.0/24", R"({"Type":"gce","RouteQuota":2})");
  ASSERT_EQ(b->Reconcile({Lease("10.1.1.0/24", "node-1"), Lease("10.1.2.0/24", "node-2")}).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Table().size(), 2u);  // 10.1.1 and 10.1.2; own 10.1.3 above the quota
  // A lower lease arrives: 10.1.2's lease is known but now above the quota.
  auto stats = b->Reconcile(
      {Lease("10.1.0.0/24", "node-4"), Lease("10.1.1.0/24", "node-1"), Lease("10.1.2.0/24", "node-2")});
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Table(), (std::map<std::string, std::string>{{Name("10.1.0.0/24"), "10.1.0.0/24 via node-4"},
                                                         {Name("10.1.1.0/24"), "10.1.1.0/24 via node-1"}}));
  // 10.1.0's lease is gone from this agent's view while 10.1.2's needs a route:
  // the held route would make three.
  stats = b->Reconcile({Lease("10.1.1.0/24", "node-1"), Lease("10.1.2.0/24", "node-2")});
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Table(), (std::map<std::string, std::string>{{Name("10.1.1.0/24"), "10.1.1.0/24 via node-1"},
                                                         {Name("10.1.2.0/24"), "10.1.2.0/24 via node-2"}}));
  EXPECT_EQ(Metric("weft_agent_gce_routes_held"), 0);  // deleted early, not held
}

TEST_F(GceBackendTest, TeardownRemovesOnlyTheOwnRoute) {
  auto b = Make("node-1");
  Init(*b, "10.1.1.0/24");
  ASSERT_TRUE(b->Reconcile({Lease("10.1.2.0/24", "node-2")}).ok());
  ASSERT_TRUE(b->Teardown().ok());
  EXPECT_EQ(Table(), (std::map<std::string, std::string>{{Name("10.1.2.0/24"), "10.1.2.0/24 via node-2"}}));
}

// GCE operations take seconds; a pass starts all of them, then waits: 100 new
// leases cost about one operation's latency, not 100 of them.
TEST_F(GceBackendTest, OperationsOfAPassOverlap) {
  FakeGce::Options o;
  o.polls_until_done = 1;
  o.operation_latency = absl::Milliseconds(50);
  StartFake(o, /*vms=*/100);
  auto b = Make("node-1");
  Init(*b, "10.1.1.0/24");
  std::vector<Peer> leases;
  for (int i = 1; i <= 100; ++i) leases.push_back(Lease(absl::StrCat("10.1.", i, ".0/24"), absl::StrCat("node-", i)));
  const absl::Time start = absl::Now();
  auto stats = b->Reconcile(leases);
  const absl::Duration took = absl::Now() - start;
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->added, 100);
  EXPECT_EQ(fake_->Routes().size(), 100u);
  EXPECT_EQ(fake_->Count("list"), 1);
  EXPECT_EQ(fake_->Count("insert"), 100);
  EXPECT_EQ(fake_->Count("wait"), 100);  // one blocking wait each
  EXPECT_LT(took, absl::Milliseconds(2500)) << "100 x 50 ms operations waited one after the other?";
  std::cout << "100 routes in one pass: " << absl::FormatDuration(took) << " (sequential: >= 5s)\n";
  // A check with nothing to change: one list page.
  clock_.Advance(absl::Minutes(2));
  const absl::Time check = absl::Now();
  stats = b->Reconcile(leases);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->unchanged, 100);
  EXPECT_EQ(fake_->Count("list"), 2);
  std::cout << "check of 100 unchanged routes: " << absl::FormatDuration(absl::Now() - check) << "\n";
}

// docs/metrics.md must list every metric the backend exports (its own section,
// outside the agent tables that the Prometheus test checks against a vxlan agent).
std::string MetricsDoc() {
  std::string path = "docs/metrics.md";
  if (const char* srcdir = std::getenv("TEST_SRCDIR"); srcdir != nullptr) {
    // docs/ has no BUILD file; README.md's runfile links into the source tree.
    char root[PATH_MAX];
    if (realpath(absl::StrCat(srcdir, "/weft/README.md").c_str(), root) != nullptr) {
      path = absl::StrCat(absl::string_view(root).substr(0, std::strlen(root) - std::strlen("README.md")), path);
    }
  }
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST_F(GceBackendTest, EveryMetricIsDocumented) {
  auto b = Make("node-1");
  Init(*b, "10.1.1.0/24");
  ASSERT_TRUE(b->Reconcile({}).ok());
  const std::string doc = MetricsDoc();
  ASSERT_THAT(doc, HasSubstr("# Weft metrics"));
  int checked = 0;
  for (absl::string_view line : absl::StrSplit(registry_.Serialize(), '\n')) {
    if (!absl::ConsumePrefix(&line, "# TYPE ")) continue;
    std::vector<std::string> w = absl::StrSplit(line, ' ');
    ASSERT_EQ(w.size(), 2u);
    EXPECT_TRUE(absl::StrContains(doc, absl::StrCat("| `", w[0], "` | ", w[1], " |")))
        << w[0] << " (" << w[1] << ") has no row in docs/metrics.md";
    ++checked;
  }
  EXPECT_EQ(checked, 5);
}

}  // namespace
}  // namespace weft::testing
