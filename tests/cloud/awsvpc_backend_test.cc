// The aws-vpc backend, through the real libcurl client and its SigV4 signing,
// against FakeAws on 127.0.0.1 (EC2 + IMDSv2). Nothing leaves the loopback.

#include <cstdio>
#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "agent/backend/awsvpc/awsvpc_backend.h"
#include "common/clock.h"
#include "common/testing.h"
#include "gtest/gtest.h"
#include "tests/cloud/fake_ec2.h"

namespace weft::agent {
namespace {

using testing::FakeAws;
using testing::FakeInstance;
using testing::FakeRoute;
using testing::FakeRouteTable;

constexpr char kKey[] = "AKIDWEFTTEST";
constexpr char kSecret[] = "weft/test+secret";
constexpr char kTable[] = "rtb-0001";
const FakeInstance kSelf;  // i-0a1b2c3d4e5f60001 in us-east-1

IPv4Net Net(absl::string_view s) { return *IPv4Net::Parse(s); }

Peer AwsPeer(absl::string_view subnet, absl::string_view instance) {
  return Peer{Net(subnet), *IPv4Addr::Parse("172.31.0.99"), kAwsVpcBackendType,
              AwsVpcLeaseDataJson(instance)};
}

// The value of an unlabelled sample of `registry`, or -1.
double Sample(const metrics::Registry& registry, absl::string_view series) {
  for (absl::string_view line : absl::StrSplit(registry.Serialize(), '\n')) {
    if (absl::StartsWith(line, absl::StrCat(series, " "))) {
      double v = -1;
      if (absl::SimpleAtod(line.substr(series.size() + 1), &v)) return v;
    }
  }
  return -1;
}

class AwsVpcBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Credentials from the environment; no shared file is read by accident.
    setenv("AWS_ACCESS_KEY_ID", kKey, 1);
    setenv("AWS_SECRET_ACCESS_KEY", kSecret, 1);
    unsetenv("AWS_SESSION_TOKEN");
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/weft-test-credentials", 1);
    fake_.AcceptCredentials(kKey, kSecret);
    fake_.SetInstance(kSelf);
    FakeRouteTable t{.id = kTable, .vpc_id = "vpc-0001", .subnet_ids = {"subnet-0001"}};
    // What a real table holds besides ours: the local route, an internet
    // gateway default route, a NAT route, and an instance route outside the
    // cluster network.
    t.routes = {FakeRoute{.destination = "172.31.0.0/16", .gateway_id = "local", .origin = "CreateRouteTable"},
                FakeRoute{.destination = "0.0.0.0/0", .gateway_id = "igw-0001"},
                FakeRoute{.destination = "192.168.0.0/16", .nat_gateway_id = "nat-0001"},
                FakeRoute{.destination = "10.99.0.0/24", .instance_id = "i-0ffffffffffffffff"}};
    fake_.AddRouteTable(t);
    foreign_ = t.routes;
  }
  void TearDown() override {
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
  }

  // The first backend of a test reports to registry_; later ones to their own.
  // `removal_grace`: the default unless a test needs routes of gone leases
  // deleted in the pass that first finds them unwanted.
  std::unique_ptr<AwsVpcBackend> MakeBackend(std::unique_ptr<cloud::AwsCredentialsProvider> creds = nullptr,
                                             absl::Duration removal_grace = AwsVpcOptions{}.removal_grace) {
    AwsVpcOptions o;
    o.ec2_endpoint = fake_.endpoint();
    o.imds_endpoint = fake_.endpoint();
    o.credentials = std::move(creds);
    o.retry = cloud::RetryPolicy{.max_attempts = 5, .initial = absl::Milliseconds(1), .max = absl::Milliseconds(4)};
    o.removal_grace = removal_grace;
    metrics::Registry* r = backends_made_++ == 0 ? &registry_ : nullptr;
    return std::make_unique<AwsVpcBackend>(cloud::NewCurlHttpClient(), std::move(o), r, &clock_);
  }

  absl::StatusOr<BackendInfo> InitBackend(AwsVpcBackend& b, absl::string_view config) {
    LocalConfig local;
    local.iface_mtu = 9001;
    OwnLease lease{Net("10.1.1.0/24"), Net("10.1.0.0/16")};
    return b.Init(local, lease, config);
  }

  void ExpectForeignRoutesUntouched() {
    for (const FakeRoute& f : foreign_) {
      std::optional<FakeRoute> r = fake_.Route(kTable, f.destination);
      ASSERT_TRUE(r.has_value()) << f.destination << " was removed";
      EXPECT_EQ(r->instance_id, f.instance_id) << f.destination;
      EXPECT_EQ(r->gateway_id, f.gateway_id) << f.destination;
      EXPECT_EQ(r->nat_gateway_id, f.nat_gateway_id) << f.destination;
    }
  }

  // Starts at the real time: FakeAws refuses signatures more than 5 minutes off.
  SleepAdvancingClock clock_{absl::Now()};  // retry pauses move it
  FakeAws fake_;
  metrics::Registry registry_;
  std::vector<FakeRoute> foreign_;
  int backends_made_ = 0;
};

TEST_F(AwsVpcBackendTest, InitPublishesInstanceDisablesSourceDestCheckAndKeepsMtu) {
  auto b = MakeBackend();
  absl::StatusOr<std::string> data = b->LeaseData();
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(*data, R"({"InstanceID":"i-0a1b2c3d4e5f60001"})");
  auto info = InitBackend(*b, R"({"Type":"aws-vpc","RouteTableID":"rtb-0001"})");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->type, "aws-vpc");
  EXPECT_EQ(info->mtu, 9001u);  // no encapsulation
  EXPECT_EQ(fake_.SourceDestCheckDisabled(), std::set<std::string>{kSelf.instance_id});
  EXPECT_EQ(b->route_tables(), std::vector<std::string>{kTable});
  EXPECT_EQ(fake_.SignatureFailures(), 0);
  EXPECT_EQ(fake_.MalformedRequests(), 0);
  EXPECT_GE(fake_.ImdsTokensIssued(), 1);
}

TEST_F(AwsVpcBackendTest, RoutesFollowLeasesAndForeignRoutesStay) {
  auto b = MakeBackend(nullptr, /*removal_grace=*/absl::ZeroDuration());
  ASSERT_TRUE(InitBackend(*b, R"({"Type":"aws-vpc","RouteTableID":["rtb-0001"]})").ok());

  // Two peers come: own subnet and theirs get routes.
  auto s = b->Reconcile({AwsPeer("10.1.2.0/24", "i-0000000000000002"), AwsPeer("10.1.3.0/24", "i-0000000000000003")});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->added, 3);
  EXPECT_EQ(s->errors, 0);
  EXPECT_EQ(fake_.Route(kTable, "10.1.1.0/24")->instance_id, kSelf.instance_id);
  EXPECT_EQ(fake_.Route(kTable, "10.1.2.0/24")->instance_id, "i-0000000000000002");
  EXPECT_EQ(fake_.Route(kTable, "10.1.3.0/24")->instance_id, "i-0000000000000003");
  EXPECT_EQ(Sample(registry_, "weft_agent_awsvpc_routes"), 3);

  // Steady state: one DescribeRouteTables, no writes.
  const int before = fake_.TotalCalls();
  s = b->Reconcile({AwsPeer("10.1.2.0/24", "i-0000000000000002"), AwsPeer("10.1.3.0/24", "i-0000000000000003")});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->changes(), 0);
  EXPECT_EQ(s->unchanged, 3);
  EXPECT_EQ(fake_.TotalCalls() - before, 1);

  // 10.1.2.0/24 moves to another instance; 10.1.3.0/24's lease goes.
  s = b->Reconcile({AwsPeer("10.1.2.0/24", "i-0000000000000004")});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->updated, 1);
  EXPECT_EQ(s->removed, 1);
  EXPECT_EQ(fake_.Route(kTable, "10.1.2.0/24")->instance_id, "i-0000000000000004");
  EXPECT_FALSE(fake_.Route(kTable, "10.1.3.0/24").has_value());
  EXPECT_EQ(fake_.Calls("ReplaceRoute"), 1);
  EXPECT_EQ(fake_.Calls("DeleteRoute"), 1);
  ExpectForeignRoutesUntouched();
  EXPECT_EQ(fake_.SignatureFailures(), 0);
  EXPECT_EQ(fake_.MalformedRequests(), 0);
}

TEST_F(AwsVpcBackendTest, RepairsDriftAndBlackholesAndLeavesFlannelNodesAlone) {
  // A table as a pass may find it: our route pointed elsewhere by hand, a
  // blackhole left by a gone lease's terminated instance, a flannel node's own
  // route, an instance route that is not lease-shaped, a propagated VPN route.
  FakeRouteTable drift{.id = "rtb-0002", .vpc_id = "vpc-0001"};
  drift.routes = {FakeRoute{.destination = "10.1.2.0/24", .instance_id = "i-0000000000000009"},
                  FakeRoute{.destination = "10.1.5.0/24", .instance_id = "i-0000000000000005", .state = "blackhole"},
                  FakeRoute{.destination = "10.1.7.0/24", .instance_id = "i-0000000000000007"},
                  FakeRoute{.destination = "10.1.8.0/25", .instance_id = "i-0000000000000008"},
                  FakeRoute{.destination = "10.1.9.0/24", .gateway_id = "vgw-0001",
                            .origin = "EnableVgwRoutePropagation"}};
  fake_.AddRouteTable(drift);
  // flannel's aws-vpc publishes no BackendData: that node routes itself.
  Peer flannel{Net("10.1.7.0/24"), *IPv4Addr::Parse("172.31.0.7"), kAwsVpcBackendType, ""};
  Peer vxlan{Net("10.1.6.0/24"), *IPv4Addr::Parse("172.31.0.6"), "vxlan", R"({"VNI":1})"};
  auto b = MakeBackend(nullptr, /*removal_grace=*/absl::ZeroDuration());
  ASSERT_TRUE(InitBackend(*b, R"({"Type":"aws-vpc","RouteTableID":"rtb-0002"})").ok());
  auto s = b->Reconcile({AwsPeer("10.1.2.0/24", "i-0000000000000002"), flannel, vxlan});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->updated, 1);  // 10.1.2.0/24 pointed back
  EXPECT_EQ(s->removed, 1);  // the blackhole of a gone lease
  EXPECT_EQ(s->added, 1);    // own subnet
  EXPECT_EQ(s->skipped_peers, 2);
  EXPECT_EQ(fake_.Route("rtb-0002", "10.1.2.0/24")->instance_id, "i-0000000000000002");
  EXPECT_FALSE(fake_.Route("rtb-0002", "10.1.5.0/24").has_value());
  EXPECT_EQ(fake_.Route("rtb-0002", "10.1.7.0/24")->instance_id, "i-0000000000000007");  // flannel's
  EXPECT_TRUE(fake_.Route("rtb-0002", "10.1.8.0/25").has_value());  // not lease-shaped: not ours
  EXPECT_TRUE(fake_.Route("rtb-0002", "10.1.9.0/24").has_value());  // propagated
  EXPECT_FALSE(fake_.Route("rtb-0002", "10.1.6.0/24").has_value());  // another backend's lease
}

TEST_F(AwsVpcBackendTest, RouteLimitIsAClearErrorAndAMetricNeverAPartialMess) {
  fake_.SetRouteLimit(8);  // 4 foreign routes + 4 of ours
  auto b = MakeBackend();
  ASSERT_TRUE(InitBackend(*b, R"({"Type":"aws-vpc","RouteTableID":"rtb-0001","RouteLimit":8})").ok());
  std::vector<Peer> peers;
  for (int i = 9; i >= 2; --i) {  // 8 peers + own = 9 leases, given in reverse order
    peers.push_back(AwsPeer(absl::StrCat("10.1.", i, ".0/24"), absl::StrCat("i-000000000000000", i)));
  }
  auto s = b->Reconcile(peers);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->added, 4);
  ASSERT_GE(s->errors, 1);
  ASSERT_FALSE(s->first_errors.empty());
  EXPECT_TRUE(absl::IsResourceExhausted(s->first_errors.back())) << s->first_errors.back();
  EXPECT_TRUE(absl::StrContains(s->first_errors.back().message(), "rtb-0001 is full")) << s->first_errors.back();
  EXPECT_EQ(Sample(registry_, "weft_agent_awsvpc_unrouted_peers"), 5);
  // The lowest subnets win, whatever the order of the leases: every agent agrees.
  for (int i = 1; i <= 4; ++i) EXPECT_TRUE(fake_.Route(kTable, absl::StrCat("10.1.", i, ".0/24"))) << i;
  for (int i = 5; i <= 9; ++i) EXPECT_FALSE(fake_.Route(kTable, absl::StrCat("10.1.", i, ".0/24"))) << i;
  EXPECT_EQ(fake_.Calls("CreateRoute"), 4);  // no call the fake had to refuse
  ExpectForeignRoutesUntouched();

  // A lease below the cut arrives: it takes the place of the highest one, at
  // once (the removal grace does not hold a route whose room a lease needs).
  peers.push_back(AwsPeer("10.1.0.0/24", "i-000000000000000a"));
  s = b->Reconcile(peers);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(fake_.Route(kTable, "10.1.0.0/24"));
  EXPECT_FALSE(fake_.Route(kTable, "10.1.4.0/24"));
  EXPECT_EQ(Sample(registry_, "weft_agent_awsvpc_unrouted_peers"), 6);

  // Leases go away: nothing is left over the limit. Their routes wait for the
  // removal grace (the table has room for them), then go.
  for (const bool grace_over : {false, true}) {
    if (grace_over) clock_.Advance(absl::Seconds(30));
    s = b->Reconcile({AwsPeer("10.1.2.0/24", "i-0000000000000002")});
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ(s->errors, 0);
    EXPECT_EQ(s->removed, grace_over ? 2 : 0);
    for (const char* gone : {"10.1.0.0/24", "10.1.3.0/24"}) {
      EXPECT_EQ(fake_.Route(kTable, gone).has_value(), !grace_over) << gone << (grace_over ? " stayed" : " went");
    }
    EXPECT_EQ(Sample(registry_, "weft_agent_awsvpc_unrouted_peers"), 0);
    EXPECT_EQ(Sample(registry_, "weft_agent_awsvpc_routes"), 2);  // routes for leases; held ones are not
    EXPECT_EQ(Sample(registry_, "weft_agent_awsvpc_routes_held"), grace_over ? 0 : 2);
  }
}

// A route another agent created for a lease this agent has not seen yet (a
// joining node's) stays for the grace, then goes; a route of a known lease that
// points at the wrong instance is replaced at once.
TEST_F(AwsVpcBackendTest, RouteOfNoKnownLeaseWaitsForTheRemovalGrace) {
  FakeRouteTable shared{.id = "rtb-0002", .vpc_id = "vpc-0001"};
  shared.routes = {FakeRoute{.destination = "10.1.3.0/24", .instance_id = "i-0000000000000003"},
                   FakeRoute{.destination = "10.1.2.0/24", .instance_id = "i-0000000000000009"}};
  fake_.AddRouteTable(shared);
  auto b = MakeBackend();  // the default grace, 30 s
  ASSERT_TRUE(InitBackend(*b, R"({"RouteTableID":["rtb-0001","rtb-0002"]})").ok());
  const std::vector<Peer> peers = {AwsPeer("10.1.2.0/24", "i-0000000000000002")};
  auto s = b->Reconcile(peers);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->errors, 0);
  EXPECT_EQ(s->updated, 1);  // 10.1.2.0/24 in rtb-0002 pointed back, not delayed
  EXPECT_EQ(s->removed, 0);
  EXPECT_EQ(fake_.Route("rtb-0002", "10.1.2.0/24")->instance_id, "i-0000000000000002");
  EXPECT_EQ(fake_.Route("rtb-0002", "10.1.3.0/24")->instance_id, "i-0000000000000003");
  EXPECT_EQ(fake_.Calls("DeleteRoute"), 0);
  EXPECT_EQ(Sample(registry_, "weft_agent_awsvpc_routes"), 4);  // own and 10.1.2 in both tables
  EXPECT_EQ(Sample(registry_, "weft_agent_awsvpc_routes_held"), 1);

  clock_.Advance(absl::Seconds(29));
  s = b->Reconcile(peers);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->changes(), 0);
  EXPECT_TRUE(fake_.Route("rtb-0002", "10.1.3.0/24"));
  EXPECT_EQ(fake_.Calls("DeleteRoute"), 0);
  EXPECT_EQ(Sample(registry_, "weft_agent_awsvpc_routes_held"), 1);

  clock_.Advance(absl::Seconds(1));
  s = b->Reconcile(peers);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->removed, 1);
  EXPECT_FALSE(fake_.Route("rtb-0002", "10.1.3.0/24"));
  EXPECT_EQ(fake_.Calls("DeleteRoute"), 1);
  EXPECT_EQ(Sample(registry_, "weft_agent_awsvpc_routes"), 4);
  EXPECT_EQ(Sample(registry_, "weft_agent_awsvpc_routes_held"), 0);
  ExpectForeignRoutesUntouched();
}

// The grace never costs a known lease its route: when the table is full, a
// held route goes at once to make room.
TEST_F(AwsVpcBackendTest, HeldRoutesYieldWhenTheTableIsFull) {
  fake_.SetRouteLimit(8);  // 4 foreign routes + 4 of ours
  auto b = MakeBackend();
  ASSERT_TRUE(InitBackend(*b, R"({"RouteTableID":"rtb-0001","RouteLimit":8})").ok());
  auto s = b->Reconcile({AwsPeer("10.1.2.0/24", "i-0000000000000002"), AwsPeer("10.1.3.0/24", "i-0000000000000003"),
                         AwsPeer("10.1.4.0/24", "i-0000000000000004")});
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->added, 4);  // the table is full
  // This agent's view: 10.1.4's lease gone, 10.1.5's come.
  s = b->Reconcile({AwsPeer("10.1.2.0/24", "i-0000000000000002"), AwsPeer("10.1.3.0/24", "i-0000000000000003"),
                    AwsPeer("10.1.5.0/24", "i-0000000000000005")});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->errors, 0) << (s->first_errors.empty() ? absl::OkStatus() : s->first_errors[0]);
  EXPECT_EQ(s->removed, 1);
  EXPECT_EQ(s->added, 1);
  EXPECT_FALSE(fake_.Route(kTable, "10.1.4.0/24"));
  EXPECT_EQ(fake_.Route(kTable, "10.1.5.0/24")->instance_id, "i-0000000000000005");
  EXPECT_EQ(Sample(registry_, "weft_agent_awsvpc_unrouted_peers"), 0);
  EXPECT_EQ(Sample(registry_, "weft_agent_awsvpc_routes_held"), 0);  // deleted early, not held
}

// What a resync costs at AWS's default table size: the first pass writes every
// route, later passes read the table once and write nothing.
TEST_F(AwsVpcBackendTest, ApiCallsPerPassNearTheDefaultLimit) {
  auto b = MakeBackend();
  ASSERT_TRUE(InitBackend(*b, R"({"RouteTableID":"rtb-0001"})").ok());
  std::vector<Peer> peers;
  for (int i = 2; i <= 46; ++i) {  // 45 peers + own = 46 routes, + 4 foreign = 50
    peers.push_back(AwsPeer(absl::StrCat("10.1.", i, ".0/24"), absl::StrFormat("i-%017x", i)));
  }
  int calls = fake_.TotalCalls();
  absl::Time start = absl::Now();
  auto s = b->Reconcile(peers);
  const absl::Duration first = absl::Now() - start;
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->added, 46);
  EXPECT_EQ(s->errors, 0);
  EXPECT_EQ(fake_.TotalCalls() - calls, 1 + 46);
  calls = fake_.TotalCalls();
  start = absl::Now();
  s = b->Reconcile(peers);
  const absl::Duration steady = absl::Now() - start;
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->changes(), 0);
  EXPECT_EQ(fake_.TotalCalls() - calls, 1);
  std::fprintf(stderr, "aws-vpc pass over 46 leases against the loopback fake: first %s (47 calls), steady %s (1 call)\n",
               absl::FormatDuration(first).c_str(), absl::FormatDuration(steady).c_str());
}

TEST_F(AwsVpcBackendTest, ThrottlingIsRetriedWithBackoff) {
  auto b = MakeBackend();
  ASSERT_TRUE(InitBackend(*b, R"({"Type":"aws-vpc","RouteTableID":"rtb-0001"})").ok());
  fake_.ThrottleNext(3);
  auto s = b->Reconcile({AwsPeer("10.1.2.0/24", "i-0000000000000002")});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->errors, 0);
  EXPECT_EQ(s->added, 2);
  EXPECT_EQ(fake_.Throttled(), 3);
  EXPECT_GT(clock_.slept(), absl::ZeroDuration());
  EXPECT_TRUE(absl::StrContains(registry_.Serialize(), "weft_agent_awsvpc_api_retries_total{action=\"DescribeRouteTables\"} 3"))
      << registry_.Serialize();

  // Throttled for longer than the policy allows: the pass fails and says why.
  fake_.ThrottleNext(100);
  auto failed = b->Reconcile({AwsPeer("10.1.2.0/24", "i-0000000000000002")});
  EXPECT_TRUE(absl::IsUnavailable(failed.status())) << failed.status();
  EXPECT_TRUE(absl::StrContains(failed.status().message(), "RequestLimitExceeded")) << failed.status();
}

TEST_F(AwsVpcBackendTest, DetectsTheSubnetsTableElseTheMainTable) {
  fake_.AddRouteTable(FakeRouteTable{.id = "rtb-main", .vpc_id = "vpc-0001", .main = true});
  auto b = MakeBackend();
  ASSERT_TRUE(InitBackend(*b, R"({"Type":"aws-vpc"})").ok());
  EXPECT_EQ(b->route_tables(), std::vector<std::string>{kTable});  // associated with subnet-0001

  FakeInstance other = kSelf;
  other.subnet_id = "subnet-without-table";
  fake_.SetInstance(other);
  auto b2 = MakeBackend();
  ASSERT_TRUE(InitBackend(*b2, R"({"Type":"aws-vpc"})").ok());
  EXPECT_EQ(b2->route_tables(), std::vector<std::string>{"rtb-main"});
}

TEST_F(AwsVpcBackendTest, BadConfigAndUnknownTable) {
  auto b = MakeBackend();
  EXPECT_TRUE(absl::IsInvalidArgument(InitBackend(*b, R"({"RouteTableID":42})").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(InitBackend(*b, R"({"RouteTableID":"igw-1"})").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(InitBackend(*b, R"({"RouteLimit":0})").status()));
  ASSERT_TRUE(InitBackend(*b, R"({"RouteTableID":"rtb-nope"})").ok());
  auto s = b->Reconcile({});
  EXPECT_TRUE(absl::IsNotFound(s.status())) << s.status();
  EXPECT_TRUE(absl::StrContains(s.status().message(), "InvalidRouteTableID.NotFound")) << s.status();
}

TEST_F(AwsVpcBackendTest, TeardownRemovesOnlyThisHostsRoute) {
  auto b = MakeBackend();
  ASSERT_TRUE(InitBackend(*b, R"({"RouteTableID":"rtb-0001"})").ok());
  ASSERT_TRUE(b->Reconcile({AwsPeer("10.1.2.0/24", "i-0000000000000002")}).ok());
  ASSERT_TRUE(b->Teardown().ok());
  EXPECT_FALSE(fake_.Route(kTable, "10.1.1.0/24"));
  EXPECT_TRUE(fake_.Route(kTable, "10.1.2.0/24"));
  ExpectForeignRoutesUntouched();
}

// --- credentials: each source, end to end through EC2's signature check ----

class AwsVpcCredentialsTest : public AwsVpcBackendTest {};

TEST_F(AwsVpcCredentialsTest, SharedFileProfile) {
  unsetenv("AWS_ACCESS_KEY_ID");
  unsetenv("AWS_SECRET_ACCESS_KEY");
  const std::string path = absl::StrCat(std::getenv("TEST_TMPDIR"), "/credentials");
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("[default]\naws_access_key_id = AKIDWRONG\naws_secret_access_key = wrong\n\n"
             "[weft]\naws_access_key_id = AKIDFILE\naws_secret_access_key = file/secret\n",
             f);
  std::fclose(f);
  setenv("AWS_SHARED_CREDENTIALS_FILE", path.c_str(), 1);
  setenv("AWS_PROFILE", "weft", 1);
  fake_.AcceptCredentials("AKIDFILE", "file/secret");
  auto b = MakeBackend();
  ASSERT_TRUE(InitBackend(*b, R"({"RouteTableID":"rtb-0001"})").ok());
  ASSERT_TRUE(b->Reconcile({}).ok());
  unsetenv("AWS_PROFILE");
  EXPECT_EQ(fake_.SignatureFailures(), 0);
  EXPECT_GT(fake_.CallsByAccessKey()["AKIDFILE"], 0);
  EXPECT_EQ(fake_.CallsByAccessKey().count("AKIDWRONG"), 0u);
}

TEST_F(AwsVpcCredentialsTest, InstanceRoleThroughImdsWithSessionToken) {
  unsetenv("AWS_ACCESS_KEY_ID");
  unsetenv("AWS_SECRET_ACCESS_KEY");
  fake_.SetRole({.name = "weft-node",
                 .access_key_id = "ASIAROLE",
                 .secret_access_key = "role/secret",
                 .token = "role-session-token",
                 .expiration = absl::Now() + absl::Hours(6)});
  auto b = MakeBackend();
  ASSERT_TRUE(InitBackend(*b, R"({"RouteTableID":"rtb-0001"})").ok());
  ASSERT_TRUE(b->Reconcile({AwsPeer("10.1.2.0/24", "i-0000000000000002")}).ok());
  EXPECT_EQ(fake_.SignatureFailures(), 0);
  EXPECT_GT(fake_.CallsByAccessKey()["ASIAROLE"], 0);
  EXPECT_TRUE(fake_.Route(kTable, "10.1.2.0/24"));
}

TEST_F(AwsVpcCredentialsTest, EnvironmentWinsOverTheRole) {
  fake_.SetRole({.name = "weft-node", .access_key_id = "ASIAROLE", .secret_access_key = "s", .token = "t",
                 .expiration = absl::Now() + absl::Hours(6)});
  auto b = MakeBackend();
  ASSERT_TRUE(InitBackend(*b, R"({"RouteTableID":"rtb-0001"})").ok());
  EXPECT_GT(fake_.CallsByAccessKey()[kKey], 0);
  EXPECT_EQ(fake_.CallsByAccessKey().count("ASIAROLE"), 0u);
}

TEST_F(AwsVpcCredentialsTest, WrongSecretIsRefusedByTheFake) {
  setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret", 1);
  auto b = MakeBackend();
  ASSERT_TRUE(InitBackend(*b, R"({"RouteTableID":"rtb-0001"})").ok());  // src/dst failure is only logged
  auto s = b->Reconcile({});
  EXPECT_TRUE(absl::IsUnauthenticated(s.status())) << s.status();
  EXPECT_GT(fake_.SignatureFailures(), 0);
  EXPECT_TRUE(fake_.SourceDestCheckDisabled().empty());
}

}  // namespace
}  // namespace weft::agent
