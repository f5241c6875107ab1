// Agent::Run against an in-process fake controller and a fake backend, in a
// network namespace of the test process's own (iptables included): what the agent
// asks for, gives the backend and writes, for IPv4-only and dual-stack networks.

#include "agent/agent.h"

#include <sched.h>

#include <functional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "agent/masq.h"
#include "agent/subprocess.h"
#include "common/atomic_file.h"
#include "common/testing.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/weft/v1/weft.grpc.pb.h"

namespace weft::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kDualStack[] =
    R"({"Network":"10.7.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:7::/48","Backend":{"Type":"fake"}})";
constexpr char kIPv4Only[] = R"({"Network":"10.7.0.0/16","Backend":{"Type":"fake"}})";

// Hands out 10.7.3.0/24 (and fd00:7:0:3::/64 when asked for IPv6) and streams
// one snapshot of `peers` plus the caller's lease.
class FakeController final : public weft::v1::LeaseService::Service, public weft::v1::NetworkService::Service {
 public:
  explicit FakeController(std::string config) : config_(std::move(config)) {}

  grpc::Status GetNetworkConfig(grpc::ServerContext*, const weft::v1::GetNetworkConfigRequest*,
                                weft::v1::GetNetworkConfigResponse* resp) override {
    resp->set_config(config_);
    return grpc::Status::OK;
  }
  grpc::Status AcquireLease(grpc::ServerContext*, const weft::v1::AcquireLeaseRequest* req,
                            weft::v1::AcquireLeaseResponse* resp) override {
    absl::MutexLock l(&mu_);
    acquired_ = *req;
    weft::v1::Lease* lease = resp->mutable_lease();
    if (!req->public_ip().empty()) {  // an IPv6-only network's agent sends none
      lease->set_subnet("10.7.3.0/24");
      lease->set_public_ip(req->public_ip());
      lease->set_backend_data(req->backend_data());
      resp->set_network("10.7.0.0/16");
    }
    lease->set_node_name(req->node_name());
    lease->set_backend_type(req->backend_type());
    lease->mutable_expiration()->set_seconds(absl::ToUnixSeconds(absl::Now() + absl::Hours(24)));
    if (!req->public_ipv6().empty()) {
      lease->set_ipv6_subnet("fd00:7:0:3::/64");
      lease->set_public_ipv6(req->public_ipv6());
      lease->set_backend_v6_data(req->backend_v6_data());
      resp->set_ipv6_network("fd00:7::/48");
    }
    resp->mutable_ttl()->set_seconds(24 * 3600);
    own_ = *lease;
    return grpc::Status::OK;
  }
  grpc::Status WatchLeases(grpc::ServerContext* ctx, const weft::v1::WatchLeasesRequest*,
                           grpc::ServerWriter<weft::v1::WatchLeasesResponse>* writer) override {
    weft::v1::WatchLeasesResponse msg;
    {
      absl::MutexLock l(&mu_);
      auto* snapshot = msg.mutable_snapshot();
      snapshot->set_reason(weft::v1::WatchLeasesResponse::Snapshot::REASON_NEW_STREAM);
      *snapshot->add_leases() = own_;
      for (const weft::v1::Lease& p : peers_) *snapshot->add_leases() = p;
    }
    msg.set_revision(1);
    writer->Write(msg);
    // Open until the agent goes: a sync handler learns of that only by looking.
    Eventually([ctx] { return ctx->IsCancelled(); }, absl::InfiniteDuration());
    return grpc::Status::OK;
  }

  void AddPeer(weft::v1::Lease lease) {
    absl::MutexLock l(&mu_);
    peers_.push_back(std::move(lease));
  }
  weft::v1::AcquireLeaseRequest acquired() {
    absl::MutexLock l(&mu_);
    return acquired_;
  }

 private:
  const std::string config_;
  absl::Mutex mu_;
  weft::v1::AcquireLeaseRequest acquired_ ABSL_GUARDED_BY(mu_);
  weft::v1::Lease own_ ABSL_GUARDED_BY(mu_);
  std::vector<weft::v1::Lease> peers_ ABSL_GUARDED_BY(mu_);
};

// What the agent gave the backend.
struct BackendRecord {
  absl::Mutex mu;
  std::optional<LocalConfig> local ABSL_GUARDED_BY(mu);
  std::optional<OwnLease> lease ABSL_GUARDED_BY(mu);
  std::vector<Peer> peers ABSL_GUARDED_BY(mu);
  int reconciles ABSL_GUARDED_BY(mu) = 0;
  // The number of reconciles done at each release of the freed heap.
  std::vector<int> heap_released_after ABSL_GUARDED_BY(mu);
};

class FakeBackend final : public Backend {
 public:
  FakeBackend(BackendRecord* record, bool ipv6) : record_(record), ipv6_(ipv6) {}
  absl::StatusOr<BackendInfo> Init(const LocalConfig& local, const OwnLease& lease, absl::string_view) override {
    absl::MutexLock l(&record_->mu);
    record_->local = local;
    record_->lease = lease;
    return BackendInfo{"fake", R"({"V":4})", 1400, R"({"V":6})"};
  }
  absl::StatusOr<ReconcileStats> Reconcile(std::vector<Peer> peers) override {
    absl::MutexLock l(&record_->mu);
    record_->peers = std::move(peers);
    ++record_->reconciles;
    return ReconcileStats{};
  }
  absl::Status Teardown() override { return absl::OkStatus(); }
  absl::StatusOr<std::string> LeaseData() override { return std::string(R"({"V":4})"); }
  absl::StatusOr<std::string> LeaseV6Data() override {
    if (!ipv6_) return Backend::LeaseV6Data();
    return std::string(R"({"V":6})");
  }
  std::string device_name() const override { return ""; }

 private:
  BackendRecord* record_;
  const bool ipv6_;
};

// Runs a program (looked up in the sbin directories too); what it prints.
std::string Output(const std::vector<std::string>& argv) {
  absl::StatusOr<CommandResult> r = RunCommand(argv);
  return r.ok() ? r->output : r.status().ToString();
}

// The NAT chain as `iptables` (or `ip6tables`) prints it.
std::string Chain(const char* iptables) { return Output({iptables, "-w", "-t", "nat", "-S", kMasqChain}); }

weft::v1::Lease PeerLease(const char* subnet, const char* ipv6_subnet, const char* public_ipv6) {
  weft::v1::Lease l;
  l.set_subnet(subnet);
  l.set_public_ip("192.0.2.9");
  l.set_backend_type("fake");
  l.set_backend_data(R"({"V":4})");
  l.set_ipv6_subnet(ipv6_subnet);
  l.set_public_ipv6(public_ipv6);
  l.set_backend_v6_data(R"({"V":6})");
  return l;
}

class AgentTest : public ::testing::Test {
 protected:
  // One namespace for the whole process, entered before any thread exists, so
  // gRPC's threads and the iptables the agent runs are all in it.
  static void SetUpTestSuite() {
    ASSERT_EQ(unshare(CLONE_NEWNET), 0) << "needs root (CAP_SYS_ADMIN)";
    ASSERT_EQ(Output({"ip", "link", "set", "lo", "up"}), "");
  }

  void TearDown() override {
    Masquerade m;
    EXPECT_TRUE(m.Remove().ok());
    EXPECT_TRUE(m.RemoveIPv6().ok());
  }

  // Runs an agent with the fake backend against `controller` until it is ready
  // and `until` holds (or Run returns); then stops it. Returns what Run returned.
  absl::Status RunAgent(FakeController& controller, bool backend_ipv6, const std::string& public_ipv6 = "",
                        const std::function<bool()>& until = nullptr) {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(static_cast<weft::v1::LeaseService::Service*>(&controller));
    builder.RegisterService(static_cast<weft::v1::NetworkService::Service*>(&controller));
    std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
    EXPECT_NE(port, 0);

    AgentConfig cfg;
    cfg.controllers = {absl::StrCat("127.0.0.1:", port)};
    cfg.iface.ifaces = {"lo"};
    cfg.iface.public_ipv6 = public_ipv6;
    cfg.node_name = "n1";
    cfg.subnet_file = dir_ + "/subnet.env";
    cfg.docker_opts_file = dir_ + "/docker_opts.env";
    cfg.state_dir = dir_ + "/state";
    cfg.ip_masq = true;
    cfg.resync_interval = absl::Milliseconds(100);
    cfg.backend_factory = [&](absl::string_view, absl::string_view,
                              const BackendEnv&) -> absl::StatusOr<std::unique_ptr<Backend>> {
      return std::make_unique<FakeBackend>(&record_, backend_ipv6);
    };
    cfg.release_freed_heap = [this] {
      absl::MutexLock l(&record_.mu);
      record_.heap_released_after.push_back(record_.reconciles);
    };
    metrics::Registry registry;
    Agent agent(cfg, &registry);
    absl::Notification stop, done;
    absl::Status status;
    std::thread run([&] {
      status = agent.Run(&stop);
      done.Notify();
    });
    if (!Eventually([&] { return (agent.ready() && (!until || until())) || done.HasBeenNotified(); },
                    absl::Seconds(20))) {
      ADD_FAILURE() << "agent not ready (or `until` false) in 20 s";
    }
    metrics_ = registry.Serialize();
    stop.Notify();
    run.join();
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    return status;
  }
  std::string File(const char* name) { return ReadFileIfExists(dir_ + "/" + name)->value_or("(none)"); }

  const TempDir tmp_{"ag"};
  const std::string dir_ = tmp_.path();
  BackendRecord record_;
  std::string metrics_;
};

TEST_F(AgentTest, IPv4OnlyNetworkHasNoIPv6Anywhere) {
  FakeController controller(kIPv4Only);
  controller.AddPeer(PeerLease("10.7.4.0/24", "", ""));
  ASSERT_TRUE(RunAgent(controller, /*backend_ipv6=*/true).ok());

  const weft::v1::AcquireLeaseRequest req = controller.acquired();
  EXPECT_EQ(req.public_ip(), "127.0.0.1");
  EXPECT_EQ(req.public_ipv6(), "");
  EXPECT_EQ(req.backend_v6_data(), "");
  EXPECT_EQ(req.previous_ipv6_subnet(), "");
  absl::MutexLock l(&record_.mu);
  ASSERT_TRUE(record_.local && record_.lease);
  EXPECT_FALSE(record_.local->public_ipv6.has_value());
  EXPECT_FALSE(record_.lease->ipv6_subnet.has_value());
  ASSERT_EQ(record_.peers.size(), 1u);
  EXPECT_FALSE(record_.peers[0].ipv6_subnet.has_value());
  EXPECT_EQ(File("subnet.env"),
            "FLANNEL_NETWORK=10.7.0.0/16\nFLANNEL_SUBNET=10.7.3.1/24\nFLANNEL_MTU=1400\nFLANNEL_IPMASQ=true\n");
  EXPECT_THAT(File("docker_opts.env"), Not(HasSubstr("ipv6")));
  EXPECT_THAT(Chain("iptables"), HasSubstr("-s 10.7.0.0/16"));
  EXPECT_THAT(Chain("ip6tables"), Not(HasSubstr("-A WEFT-POSTRTG")));
}

TEST_F(AgentTest, FreedHeapIsReleasedAfterTheSnapshotsReconcileOnly) {
  FakeController controller(kIPv4Only);
  controller.AddPeer(PeerLease("10.7.4.0/24", "", ""));
  // Resyncs every 100 ms: three more reconciles of the same lease set.
  ASSERT_TRUE(RunAgent(controller, /*backend_ipv6=*/false, "", [this] {
                absl::MutexLock l(&record_.mu);
                return record_.reconciles >= 4;
              }).ok());
  absl::MutexLock l(&record_.mu);
  EXPECT_THAT(record_.heap_released_after, ElementsAre(1));
}

TEST_F(AgentTest, DualStackLeaseReachesTheBackendTheFilesAndTheNat) {
  // A previous run's subnet.env: both subnets are asked for again.
  ASSERT_TRUE(WriteFileAtomically(dir_ + "/subnet.env", "FLANNEL_SUBNET=10.7.9.1/24\n"
                                                        "FLANNEL_IPV6_SUBNET=fd00:7:0:9::1/64\n")
                  .ok());
  FakeController controller(kDualStack);
  controller.AddPeer(PeerLease("10.7.4.0/24", "fd00:7:0:4::/64", "2001:db8::4"));
  controller.AddPeer(PeerLease("10.7.5.0/24", "fd00:7:0:5::1/64", "2001:db8::5"));  // v6 host bits set
  ASSERT_TRUE(RunAgent(controller, /*backend_ipv6=*/true, "2001:db8::7").ok());

  const weft::v1::AcquireLeaseRequest req = controller.acquired();
  EXPECT_EQ(req.public_ip(), "127.0.0.1");
  EXPECT_EQ(req.public_ipv6(), "2001:db8::7");
  EXPECT_EQ(req.backend_data(), R"({"V":4})");
  EXPECT_EQ(req.backend_v6_data(), R"({"V":6})");
  EXPECT_EQ(req.previous_subnet(), "10.7.9.0/24");
  EXPECT_EQ(req.previous_ipv6_subnet(), "fd00:7:0:9::/64");
  {
    absl::MutexLock l(&record_.mu);
    ASSERT_TRUE(record_.local && record_.lease);
    EXPECT_EQ(record_.local->public_ipv6->ToString(), "2001:db8::7");
    EXPECT_FALSE(record_.local->iface_ipv6.has_value()) << "lo's ::1 is no global address";
    EXPECT_EQ(record_.lease->ipv6_subnet->ToString(), "fd00:7:0:3::/64");
    EXPECT_EQ(record_.lease->ipv6_network->ToString(), "fd00:7::/48");
    ASSERT_EQ(record_.peers.size(), 2u);
    EXPECT_EQ(record_.peers[0].ipv6_subnet->ToString(), "fd00:7:0:4::/64");
    EXPECT_EQ(record_.peers[0].public_ipv6->ToString(), "2001:db8::4");
    EXPECT_EQ(record_.peers[0].backend_v6_data_json, R"({"V":6})");
    EXPECT_EQ(record_.peers[1].subnet.ToString(), "10.7.5.0/24") << "the IPv4 part stays";
    EXPECT_FALSE(record_.peers[1].ipv6_subnet.has_value());
  }
  EXPECT_THAT(metrics_, HasSubstr("weft_agent_skipped_peers 1"));
  EXPECT_EQ(File("subnet.env"),
            "FLANNEL_NETWORK=10.7.0.0/16\nFLANNEL_SUBNET=10.7.3.1/24\nFLANNEL_MTU=1400\nFLANNEL_IPMASQ=true\n"
            "FLANNEL_IPV6_NETWORK=fd00:7::/48\nFLANNEL_IPV6_SUBNET=fd00:7:0:3::1/64\n");
  EXPECT_THAT(File("docker_opts.env"), HasSubstr("--ipv6 --fixed-cidr-v6=fd00:7:0:3::/64"));
  EXPECT_THAT(Chain("iptables"), HasSubstr("-s 10.7.0.0/16"));
  EXPECT_THAT(Chain("ip6tables"), HasSubstr("-s fd00:7::/48 ! -d ff00::/8"));
}

TEST_F(AgentTest, DualStackNeedsABackendWithAnIPv6DataPath) {
  FakeController controller(kDualStack);
  absl::Status s = RunAgent(controller, /*backend_ipv6=*/false, "2001:db8::7");
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("backend fake has no IPv6 data path; dual-stack networks need vxlan, host-gw, wireguard or alloc"));
  EXPECT_EQ(controller.acquired().node_name(), "") << "no lease asked for";
}

TEST_F(AgentTest, DualStackNeedsAGlobalIPv6Address) {
  FakeController controller(kDualStack);
  absl::Status s = RunAgent(controller, /*backend_ipv6=*/true);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("interface lo has no usable global IPv6 address"));
}

constexpr char kIPv6Only[] = R"({"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:7::/48","Backend":{"Type":"fake"}})";

// An IPv6-only network: no IPv4 address asked for, published, given to the
// backend or written; peers named by their IPv6 subnets; this host's own lease
// (named by its IPv6 subnet) is not a peer.
TEST_F(AgentTest, IPv6OnlyNetworkHasNoIPv4Anywhere) {
  // lo's global address for the test: the interface an IPv6-only network needs.
  ASSERT_EQ(Output({"ip", "-6", "addr", "add", "2001:db8::77/128", "dev", "lo", "nodad"}), "");
  FakeController controller(kIPv6Only);
  weft::v1::Lease peer = PeerLease("", "fd00:7:0:4::/64", "2001:db8::4");
  peer.clear_public_ip();
  peer.clear_backend_data();
  controller.AddPeer(peer);
  weft::v1::Lease unreadable = peer;
  unreadable.set_ipv6_subnet("fd00:7:0:5::1/64");  // host bits: all it has is unreadable
  controller.AddPeer(unreadable);
  const absl::Status run = RunAgent(controller, /*backend_ipv6=*/true);
  Output({"ip", "-6", "addr", "del", "2001:db8::77/128", "dev", "lo"});
  ASSERT_TRUE(run.ok()) << run;

  const weft::v1::AcquireLeaseRequest req = controller.acquired();
  EXPECT_EQ(req.public_ip(), "");
  EXPECT_EQ(req.backend_data(), "");
  EXPECT_EQ(req.public_ipv6(), "2001:db8::77");
  EXPECT_EQ(req.backend_v6_data(), R"({"V":6})");
  {
    absl::MutexLock l(&record_.mu);
    ASSERT_TRUE(record_.local && record_.lease);
    EXPECT_EQ(record_.local->iface_ip, IPv4Addr());
    EXPECT_EQ(record_.local->iface_ipv6->ToString(), "2001:db8::77");
    EXPECT_FALSE(record_.lease->ipv4);
    EXPECT_EQ(record_.lease->ipv6_subnet->ToString(), "fd00:7:0:3::/64");
    ASSERT_EQ(record_.peers.size(), 1u) << "own lease and the unreadable one are not peers";
    EXPECT_FALSE(record_.peers[0].ipv4);
    EXPECT_EQ(record_.peers[0].ipv6_subnet->ToString(), "fd00:7:0:4::/64");
  }
  EXPECT_THAT(metrics_, HasSubstr("weft_agent_skipped_peers 1"));
  EXPECT_EQ(File("subnet.env"),
            "FLANNEL_MTU=1400\nFLANNEL_IPMASQ=true\n"
            "FLANNEL_IPV6_NETWORK=fd00:7::/48\nFLANNEL_IPV6_SUBNET=fd00:7:0:3::1/64\n");
  EXPECT_THAT(File("docker_opts.env"), Not(HasSubstr("--bip")));
  EXPECT_THAT(Chain("iptables"), Not(HasSubstr("-A WEFT-POSTRTG")));
  EXPECT_THAT(Chain("ip6tables"), HasSubstr("-s fd00:7::/48 ! -d ff00::/8"));
}

TEST_F(AgentTest, IPv6OnlyNeedsABackendWithAnIPv6DataPath) {
  ASSERT_EQ(Output({"ip", "-6", "addr", "add", "2001:db8::77/128", "dev", "lo", "nodad"}), "");
  FakeController controller(kIPv6Only);
  absl::Status s = RunAgent(controller, /*backend_ipv6=*/false);
  Output({"ip", "-6", "addr", "del", "2001:db8::77/128", "dev", "lo"});
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("IPv6-only networks need vxlan, host-gw, wireguard or alloc"));
}

TEST_F(AgentTest, IPv6OnlyNeedsAGlobalIPv6Address) {
  FakeController controller(kIPv6Only);
  absl::Status s = RunAgent(controller, /*backend_ipv6=*/true);
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("usable global IPv6 address (an IPv6-only network)"));
}

}  // namespace
}  // namespace weft::agent
