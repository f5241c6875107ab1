// ControllerServer started in process on loopback, with the embedded store in
// a fresh directory: real gRPC calls, a restart on the same directory, and bad
// options that must come back as errors.

#include "controller/server.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <httplib.h>

#include "absl/strings/str_cat.h"
#include "common/testing.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/weft/v1/weft.grpc.pb.h"

namespace weft::controller {
namespace {

constexpr char kNetworkConfig[] = R"({"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}})";

// A directory of this test's own under TEST_TMPDIR (not created).
std::string TestDir(const std::string& suffix = "") {
  return absl::StrCat(std::getenv("TEST_TMPDIR"), "/",
                      ::testing::UnitTest::GetInstance()->current_test_info()->name(), suffix);
}

// Loopback only, free ports, the embedded store in `dir`, no drain pauses.
ControllerServerOptions TestOptions(const std::string& dir) {
  ControllerServerOptions o;
  o.grpc_listen = "127.0.0.1:0";
  o.metrics_listen = "127.0.0.1:0";
  o.rocksdb.path = dir;
  o.initial_network_config = kNetworkConfig;
  o.shutdown_drain = absl::ZeroDuration();
  o.watch_drain_window = absl::ZeroDuration();
  return o;
}

std::unique_ptr<ControllerServer> StartOrDie(ControllerServerOptions options) {
  absl::StatusOr<std::unique_ptr<ControllerServer>> server = ControllerServer::Start(std::move(options));
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

std::unique_ptr<grpc::ClientContext> Ctx() {
  auto c = std::make_unique<grpc::ClientContext>();
  c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return c;
}

// A client of the server's gRPC port.
struct Client {
  explicit Client(const ControllerServer& server)
      : channel(grpc::CreateChannel(absl::StrCat("127.0.0.1:", server.grpc_port()),
                                    grpc::InsecureChannelCredentials())),
        leases(weft::v1::LeaseService::NewStub(channel)),
        network(weft::v1::NetworkService::NewStub(channel)) {}

  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<weft::v1::LeaseService::Stub> leases;
  std::unique_ptr<weft::v1::NetworkService::Stub> network;
};

weft::v1::AcquireLeaseRequest Node1() {
  weft::v1::AcquireLeaseRequest r;
  r.set_node_name("node-1");
  r.set_public_ip("192.0.2.1");
  r.set_backend_type("vxlan");
  r.set_backend_data(R"({"VNI":1,"VtepMAC":"02:00:00:00:00:01"})");
  return r;
}

TEST(ControllerServerTest, ServesLeasesThatSurviveARestartOnTheSameDirectory) {
  const std::string dir = TestDir();
  std::string subnet;
  {
    std::unique_ptr<ControllerServer> server = StartOrDie(TestOptions(dir));
    ASSERT_NE(server, nullptr);
    EXPECT_GT(server->grpc_port(), 0);
    EXPECT_GT(server->metrics_port(), 0);
    EXPECT_EQ(server->etcd_api_port(), 0);  // off
    EXPECT_TRUE(Eventually([&] { return server->Ready().ok(); })) << server->Ready();
    httplib::Client http("127.0.0.1", server->metrics_port());
    httplib::Result readyz = http.Get("/readyz");
    ASSERT_TRUE(readyz) << httplib::to_string(readyz.error());
    EXPECT_EQ(readyz->status, 200) << readyz->body;

    Client client(*server);
    weft::v1::AcquireLeaseResponse acquired;
    grpc::Status s = client.leases->AcquireLease(Ctx().get(), Node1(), &acquired);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(acquired.network(), "10.1.0.0/16");
    subnet = acquired.lease().subnet();
    EXPECT_EQ(subnet.rfind("10.1.", 0), 0u) << subnet;

    weft::v1::GetStatusResponse status;
    ASSERT_TRUE(client.network->GetStatus(Ctx().get(), {}, &status).ok());
    EXPECT_EQ(status.store(), "rocksdb");
    EXPECT_EQ(status.store_location(), dir);
    EXPECT_TRUE(status.leader());  // the lone replica leads from the start

    server->Shutdown();
    server->Wait();  // returns at once: the shutdown is over
    // Once drained, calls are no longer served.
    weft::v1::ListLeasesResponse after;
    EXPECT_FALSE(client.leases->ListLeases(Ctx().get(), {}, &after).ok());
  }  // the store is closed with the server

  std::unique_ptr<ControllerServer> server = StartOrDie(TestOptions(dir));
  ASSERT_NE(server, nullptr);
  EXPECT_TRUE(Eventually([&] { return server->Ready().ok(); })) << server->Ready();
  Client client(*server);
  weft::v1::ListLeasesResponse listed;
  grpc::Status s = client.leases->ListLeases(Ctx().get(), {}, &listed);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(listed.leases_size(), 1);
  EXPECT_EQ(listed.leases(0).subnet(), subnet);
  EXPECT_EQ(listed.leases(0).node_name(), "node-1");
  EXPECT_EQ(listed.leases(0).public_ip(), "192.0.2.1");
}

weft::v1::AcquireLeaseRequest Node(int i) {
  weft::v1::AcquireLeaseRequest r = Node1();
  r.set_node_name(absl::StrCat("node-", i));
  r.set_public_ip(absl::StrCat("192.0.2.", i));
  return r;
}

// The first message of a WatchLeases stream from `start_revision`, and the
// events that follow until the subnets in `want` have all come (none if the
// first message is a snapshot).
struct Resumed {
  weft::v1::WatchLeasesResponse first;
  std::vector<weft::v1::LeaseEvent> events;
};
Resumed Resume(Client& client, int64_t start_revision, std::vector<std::string> want) {
  Resumed out;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  weft::v1::WatchLeasesRequest req;
  req.set_start_revision(start_revision);
  std::unique_ptr<grpc::ClientReader<weft::v1::WatchLeasesResponse>> reader = client.leases->WatchLeases(&ctx, req);
  weft::v1::WatchLeasesResponse msg;
  for (bool first = true; !want.empty() && reader->Read(&msg); first = false) {
    if (first) out.first = msg;
    if (msg.has_snapshot()) break;
    for (const auto& e : msg.events().events()) {
      out.events.push_back(e);
      want.erase(std::remove(want.begin(), want.end(), e.lease().subnet()), want.end());
    }
  }
  ctx.TryCancel();
  return out;
}

// An agent that had not got the last changes when the controller stopped (or
// died) resumes from its revision after the restart and gets those changes,
// not a snapshot: the new controller replays the store's recent history into
// its fan-out's.
TEST(ControllerServerTest, ResumesFromBeforeARestartGetTheChangesNotASnapshot) {
  const std::string dir = TestDir();
  int64_t seen = 0;  // the agent's revision: node-1's lease and nothing after
  std::vector<std::string> missed;
  {
    std::unique_ptr<ControllerServer> server = StartOrDie(TestOptions(dir));
    ASSERT_NE(server, nullptr);
    Client client(*server);
    weft::v1::AcquireLeaseResponse acquired;
    ASSERT_TRUE(client.leases->AcquireLease(Ctx().get(), Node(1), &acquired).ok());
    const Resumed now = Resume(client, 0, {acquired.lease().subnet()});
    ASSERT_TRUE(now.first.has_snapshot());
    ASSERT_EQ(now.first.snapshot().leases_size(), 1);
    seen = now.first.revision();
    for (int i = 2; i <= 3; ++i) {
      grpc::Status s = client.leases->AcquireLease(Ctx().get(), Node(i), &acquired);
      ASSERT_TRUE(s.ok()) << s.error_message();
      missed.push_back(acquired.lease().subnet());
    }
    server->Shutdown();
  }
  std::unique_ptr<ControllerServer> server = StartOrDie(TestOptions(dir));
  ASSERT_NE(server, nullptr);
  Client client(*server);
  const Resumed resumed = Resume(client, seen, missed);
  EXPECT_FALSE(resumed.first.has_snapshot())
      << "a snapshot (reason " << resumed.first.snapshot().reason() << ") instead of the missed changes";
  std::vector<std::string> got;
  for (const auto& e : resumed.events) {
    EXPECT_GT(e.revision(), seen);
    EXPECT_EQ(e.type(), weft::v1::LeaseEvent::TYPE_PUT);
    got.push_back(e.lease().subnet());
  }
  for (const std::string& subnet : missed) {
    EXPECT_NE(std::find(got.begin(), got.end(), subnet), got.end()) << subnet << " not among the events";
  }
}

// A replay the store refuses (its history over --max-watch-history-bytes)
// does not keep the controller from starting: it starts from the current
// state, and a resume from before the start gets a snapshot, as before.
TEST(ControllerServerTest, ARefusedReplayStartsFromTheCurrentState) {
  const std::string dir = TestDir();
  int64_t seen = 0;
  {
    std::unique_ptr<ControllerServer> server = StartOrDie(TestOptions(dir));
    ASSERT_NE(server, nullptr);
    Client client(*server);
    weft::v1::AcquireLeaseResponse acquired;
    ASSERT_TRUE(client.leases->AcquireLease(Ctx().get(), Node(1), &acquired).ok());
    seen = Resume(client, 0, {acquired.lease().subnet()}).first.revision();
    ASSERT_TRUE(client.leases->AcquireLease(Ctx().get(), Node(2), &acquired).ok());
    server->Shutdown();
  }
  ControllerServerOptions o = TestOptions(dir);
  o.rocksdb.max_watch_history_bytes = 16;  // less than one lease
  std::unique_ptr<ControllerServer> server = StartOrDie(o);
  ASSERT_NE(server, nullptr);
  EXPECT_TRUE(Eventually([&] { return server->Ready().ok(); })) << server->Ready();
  Client client(*server);
  weft::v1::ListLeasesResponse listed;
  ASSERT_TRUE(client.leases->ListLeases(Ctx().get(), {}, &listed).ok());
  EXPECT_EQ(listed.leases_size(), 2);
  const Resumed resumed = Resume(client, seen, {"none: the first message is what counts"});
  ASSERT_TRUE(resumed.first.has_snapshot());
  EXPECT_EQ(resumed.first.snapshot().reason(), weft::v1::WatchLeasesResponse::Snapshot::REASON_COMPACTED);
  EXPECT_EQ(resumed.first.snapshot().leases_size(), 2);
}

TEST(ControllerServerTest, ShutdownFromAnotherThreadReleasesWait) {
  std::unique_ptr<ControllerServer> server = StartOrDie(TestOptions(TestDir()));
  ASSERT_NE(server, nullptr);
  std::thread stopper([&] { server->Shutdown(); });
  server->Wait();
  stopper.join();
  server->Shutdown();  // again: nothing left to do
}

TEST(ControllerServerTest, UnusableDataDirectoryIsAnErrorToStart) {
  // A regular file where the store's parent directory should be.
  const std::string file = TestDir(".file");
  std::ofstream(file) << "not a directory";
  absl::StatusOr<std::unique_ptr<ControllerServer>> server =
      ControllerServer::Start(TestOptions(absl::StrCat(file, "/store")));
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(StartFailureOf(server.status()), StartFailure::kCannotStart);
  EXPECT_NE(server.status().message().find("cannot open the store"), std::string::npos) << server.status();
}

TEST(ControllerServerTest, PortInUseIsAnErrorToStart) {
  std::unique_ptr<ControllerServer> first = StartOrDie(TestOptions(TestDir("-1")));
  ASSERT_NE(first, nullptr);
  ControllerServerOptions o = TestOptions(TestDir("-2"));
  o.grpc_listen = absl::StrCat("127.0.0.1:", first->grpc_port());
  absl::StatusOr<std::unique_ptr<ControllerServer>> second = ControllerServer::Start(o);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(StartFailureOf(second.status()), StartFailure::kCannotStart);
  EXPECT_NE(second.status().message().find("cannot listen"), std::string::npos) << second.status();

  // The failed start let go of its store: the directory serves again.
  o.grpc_listen = "127.0.0.1:0";
  EXPECT_NE(StartOrDie(o), nullptr);
}

TEST(ControllerServerTest, BadSettingsAreErrorsNamingTheFlag) {
  struct Case {
    const char* name;
    std::function<void(ControllerServerOptions&)> spoil;
    const char* flag;
  };
  const Case cases[] = {
      {"half of TLS", [](ControllerServerOptions& o) { o.tls.cert_file = "/nonexistent.crt"; }, "--tls-key-file"},
      {"plaintext on every address", [](ControllerServerOptions& o) { o.grpc_listen = "0.0.0.0:0"; }, "--insecure"},
      {"unknown store", [](ControllerServerOptions& o) { o.store_kind = "sqlite"; }, "--store"},
      {"too many transactions", [](ControllerServerOptions& o) { o.lease_txns_in_flight = 17; },
       "--lease-txns-in-flight"},
      {"bad config", [](ControllerServerOptions& o) { o.initial_network_config = "{"; }, "--initial-config"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ControllerServerOptions o = TestOptions(TestDir());
    c.spoil(o);
    absl::StatusOr<std::unique_ptr<ControllerServer>> server = ControllerServer::Start(o);
    ASSERT_FALSE(server.ok());
    EXPECT_EQ(StartFailureOf(server.status()), StartFailure::kBadSettings) << server.status();
    EXPECT_NE(server.status().message().find(c.flag), std::string::npos) << server.status();
  }
}

}  // namespace
}  // namespace weft::controller
