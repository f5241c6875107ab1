// Integration tests against the real weft-controller binary on loopback: leases
// survive a restart, and after kill -9 or SIGTERM in the middle of a burst of
// concurrent acquisitions every acknowledged lease is there and no subnet is
// held twice.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <cstdlib>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/testing.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "proto/weft/v1/weft.grpc.pb.h"
#include "tests/integration/controller_fixture.h"

namespace weft::testing {
namespace {

constexpr char kSeedConfig[] = R"({"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}})";

grpc::Status SetConfig(Controller& c, const std::string& json, bool force = false) {
  weft::v1::SetNetworkConfigRequest req;
  req.set_config(json);
  req.set_force(force);
  weft::v1::SetNetworkConfigResponse resp;
  return c.network()->SetNetworkConfig(Ctx().get(), req, &resp);
}

weft::v1::AcquireLeaseRequest Node(int i) {
  weft::v1::AcquireLeaseRequest r;
  r.set_node_name(absl::StrCat("node-", i));
  r.set_public_ip(absl::StrCat("192.0.2.", i % 250 + 1));
  if (i >= 250) r.set_public_ip(absl::StrCat("198.51.", i / 250, ".", i % 250 + 1));
  r.set_backend_type("vxlan");
  r.set_backend_data(absl::StrFormat(R"({"VNI":1,"VtepMAC":"02:00:00:00:%02x:%02x"})", (i >> 8) & 0xff, i & 0xff));
  return r;
}

std::map<std::string, weft::v1::Lease> List(Controller& c) {
  std::map<std::string, weft::v1::Lease> out;
  for (const auto& l : ListAll(c.leases())) out[l.subnet()] = l;
  return out;
}


TEST(ControllerIntegrationTest, LeasesSurviveRestartAndNodesKeepTheirSubnet) {
  Controller c(DataDir("restart"));
  c.Start();
  ASSERT_TRUE(SetConfig(c, kSeedConfig).ok());
  std::map<std::string, std::string> subnet_of;
  for (int i = 1; i <= 5; ++i) {
    weft::v1::AcquireLeaseResponse resp;
    grpc::Status s = c.leases()->AcquireLease(Ctx().get(), Node(i), &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.network(), "10.1.0.0/16");
    subnet_of[Node(i).node_name()] = resp.lease().subnet();
  }
  c.Stop();
  c.Start();
  auto leases = List(c);
  EXPECT_EQ(leases.size(), 5u);
  for (int i = 1; i <= 5; ++i) {
    weft::v1::AcquireLeaseResponse resp;
    ASSERT_TRUE(c.leases()->AcquireLease(Ctx().get(), Node(i), &resp).ok());
    EXPECT_EQ(resp.lease().subnet(), subnet_of[Node(i).node_name()]) << "node " << i << " moved";
  }
  weft::v1::GetNetworkConfigResponse cfg;
  ASSERT_TRUE(c.network()->GetNetworkConfig(Ctx().get(), {}, &cfg).ok());
  EXPECT_EQ(cfg.config(), kSeedConfig);
}

TEST(ControllerIntegrationTest, BadInputIsRefusedAndChangesNothing) {
  Controller c(DataDir("badinput"));
  c.Start();
  // No config yet: acquisition explains what is missing.
  weft::v1::AcquireLeaseResponse resp;
  grpc::Status s = c.leases()->AcquireLease(Ctx().get(), Node(1), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(SetConfig(c, R"({"Network":"10.1.0.0/16","SubnetLen":31})").error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(SetConfig(c, kSeedConfig).ok());
  auto bad = Node(1);
  bad.set_public_ip("300.1.2.3");
  s = c.leases()->AcquireLease(Ctx().get(), bad, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("public_ip"), std::string::npos) << s.error_message();
  bad = Node(1);
  bad.set_node_name("Not A Name");
  s = c.leases()->AcquireLease(Ctx().get(), bad, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("node_name"), std::string::npos) << s.error_message();
  bad = Node(1);
  bad.set_backend_data("{not json");
  s = c.leases()->AcquireLease(Ctx().get(), bad, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("backend_data"), std::string::npos) << s.error_message();
  EXPECT_TRUE(List(c).empty());
  // A lease of one node cannot be released by another.
  ASSERT_TRUE(c.leases()->AcquireLease(Ctx().get(), Node(1), &resp).ok());
  weft::v1::ReleaseLeaseRequest rel;
  rel.set_subnet(resp.lease().subnet());
  rel.set_node_name("node-2");
  weft::v1::ReleaseLeaseResponse rr;
  EXPECT_EQ(c.leases()->ReleaseLease(Ctx().get(), rel, &rr).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(List(c).size(), 1u);
  // A config that would strand the lease is refused unless forced.
  s = SetConfig(c, R"({"Network":"10.2.0.0/16","Backend":{"Type":"vxlan"}})");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find(resp.lease().subnet()), std::string::npos) << s.error_message();
}

TEST(ControllerIntegrationTest, PoolExhaustionSaysSo) {
  Controller c(DataDir("exhaust"));
  c.Start();
  ASSERT_TRUE(SetConfig(c, R"({"Network":"10.1.0.0/28","SubnetLen":30,"Backend":{"Type":"vxlan"}})").ok());
  weft::v1::AcquireLeaseResponse resp;
  std::set<std::string> got;
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(c.leases()->AcquireLease(Ctx().get(), Node(i), &resp).ok());
    got.insert(resp.lease().subnet());
  }
  EXPECT_EQ(got, (std::set<std::string>{"10.1.0.4/30", "10.1.0.8/30", "10.1.0.12/30"}));
  grpc::Status s = c.leases()->AcquireLease(Ctx().get(), Node(4), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(s.error_message().find("no free subnet"), std::string::npos) << s.error_message();
}

// 16 clients acquire leases for new nodes back to back; once 100 are
// acknowledged (twice what ExpectAcknowledgedLeasesKept needs to mean
// anything) `interrupt` stops the controller mid-burst. Returns what was
// acknowledged (node -> subnet).
std::map<std::string, std::string> BurstThen(Controller& c, const std::function<void()>& interrupt) {
  absl::Mutex mu;
  std::map<std::string, std::string> acked;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  std::atomic<int> next{1};
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&] {
      while (!stop.load()) {
        int i = next.fetch_add(1);
        weft::v1::AcquireLeaseResponse resp;
        grpc::Status s = c.leases()->AcquireLease(Ctx(5).get(), Node(i), &resp);
        if (!s.ok()) break;  // the controller stopped
        absl::MutexLock l(&mu);
        acked[Node(i).node_name()] = resp.lease().subnet();
      }
    });
  }
  const bool burst = Eventually([&] {
    absl::MutexLock l(&mu);
    return acked.size() >= 100;
  }, absl::Seconds(30));
  EXPECT_TRUE(burst) << "fewer than 100 acquisitions in 30 s";
  interrupt();
  stop.store(true);
  for (auto& t : threads) t.join();
  return acked;
}

// After a restart: every acknowledged lease is there, held by its node, and
// no node holds two subnets.
void ExpectAcknowledgedLeasesKept(Controller& c, const std::map<std::string, std::string>& acked) {
  ASSERT_GT(acked.size(), 50u) << "too few acquisitions before the stop to mean anything";
  c.Start();
  auto leases = List(c);
  std::map<std::string, std::string> holder;  // subnet -> node
  for (const auto& [subnet, l] : leases) holder[subnet] = l.node_name();
  EXPECT_EQ(holder.size(), leases.size());
  for (const auto& [node, subnet] : acked) {
    auto it = holder.find(subnet);
    ASSERT_NE(it, holder.end()) << "acknowledged lease " << subnet << " of " << node << " lost";
    EXPECT_EQ(it->second, node) << subnet << " held by the wrong node";
  }
  std::set<std::string> nodes;
  for (const auto& [subnet, node] : holder) EXPECT_TRUE(nodes.insert(node).second) << node << " holds two subnets";
}

TEST(ControllerIntegrationTest, KillNineDuringBurstLosesNoAcknowledgedLease) {
  Controller c(DataDir("crash"));
  c.Start();
  ASSERT_TRUE(SetConfig(c, R"({"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}})").ok());
  auto acked = BurstThen(c, [&] { c.Kill9(); });
  ExpectAcknowledgedLeasesKept(c, acked);
}

// SIGTERM in the middle of a burst: the controller answers or refuses what is in
// flight, exits cleanly (status 0) within its 5 s shutdown deadline plus margin,
// and what it acknowledged is kept.
TEST(ControllerIntegrationTest, SigtermDuringBurstExitsCleanlyAndKeepsAcknowledgedLeases) {
  Controller c(DataDir("sigterm"));
  c.Start();
  ASSERT_TRUE(SetConfig(c, R"({"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}})").ok());
  absl::Duration took;
  auto acked = BurstThen(c, [&] {
    const absl::Time t0 = absl::Now();
    c.Stop();  // SIGTERM; EXPECTs exit status 0
    took = absl::Now() - t0;
  });
  EXPECT_LT(took, absl::Seconds(15)) << "shutdown held up";
  ExpectAcknowledgedLeasesKept(c, acked);
}

TEST(ControllerIntegrationTest, WeftctlDrivesTheController) {
  Controller c(DataDir("weftctl"));
  c.Start();
  const std::string ctl = Runfile("tools/weftctl/weftctl");
  std::string out;
  EXPECT_EQ(RunCommand({ctl, "--controller", c.addr(), "config", "set", "-"}, &out, kSeedConfig), 0);
  EXPECT_EQ(RunCommand({ctl, "--controller", c.addr(), "config", "get"}, &out), 0);
  EXPECT_NE(out.find("10.1.0.0/16"), std::string::npos);
  EXPECT_EQ(RunCommand({ctl, "--controller", c.addr(), "config", "set", "-"}, &out, R"({"Network":"nope"})"), 2);
  EXPECT_EQ(RunCommand({ctl, "--controller", c.addr(), "reserve", "10.1.7.0/24", "--public-ip", "192.0.2.9"}, &out), 0);
  EXPECT_EQ(RunCommand({ctl, "--controller", c.addr(), "leases", "list", "-o", "json"}, &out), 0);
  EXPECT_NE(out.find("\"subnet\":\"10.1.7.0/24\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"reserved\":true"), std::string::npos) << out;
  // The reserved subnet goes to its public IP, and to nobody else.
  weft::v1::AcquireLeaseRequest r = Node(9);  // public IP 192.0.2.10
  r.set_public_ip("192.0.2.9");
  r.clear_node_name();
  weft::v1::AcquireLeaseResponse resp;
  ASSERT_TRUE(c.leases()->AcquireLease(Ctx().get(), r, &resp).ok());
  EXPECT_EQ(resp.lease().subnet(), "10.1.7.0/24");
  EXPECT_EQ(RunCommand({ctl, "--controller", c.addr(), "lease", "show", "10.1.99.0/24"}, &out), 1);
  EXPECT_EQ(RunCommand({ctl, "--controller", c.addr(), "lease", "show", "banana"}, &out), 2);
  EXPECT_EQ(RunCommand({ctl, "--controller", c.addr(), "unreserve", "10.1.7.0/24"}, &out), 0);
  EXPECT_EQ(RunCommand({ctl, "--controller", c.addr(), "bogus"}, &out), 2);
}

}  // namespace
}  // namespace weft::testing

namespace weft::testing {
namespace {

// stdout and stderr of `argv` together, and its exit code.
int RunBoth(const std::vector<std::string>& argv, std::string* out, const std::string& stdin_text = "") {
  std::string cmd;
  for (const std::string& a : argv) absl::StrAppend(&cmd, "'", a, "' ");
  return RunCommand({"/bin/sh", "-c", cmd + "2>&1"}, out, stdin_text);
}

// Column where `word` starts on the line of `text` that contains `line_with`.
size_t ColumnOf(const std::string& text, const std::string& line_with, const std::string& word) {
  const size_t at = text.find(line_with);
  if (at == std::string::npos) return std::string::npos;
  const size_t start = text.rfind('\n', at) == std::string::npos ? 0 : text.rfind('\n', at) + 1;
  const size_t w = text.find(word, start);
  return w == std::string::npos ? w : w - start;
}

TEST(ControllerIntegrationTest, WeftctlStatusFormatsAndErrorsInWords) {
  Controller c(DataDir("weftctl-status"));
  c.Start();
  const std::string ctl = Runfile("tools/weftctl/weftctl");
  std::string out;
  // A config file's trailing newline is not stored; `config get` adds none of its own.
  const std::string config = R"({"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"},"LeaseTTL":"30m"})";
  ASSERT_EQ(RunBoth({ctl, "--controller", c.addr(), "config", "set", "-"}, &out, config + "\n\n"), 0) << out;
  ASSERT_EQ(RunCommand({ctl, "--controller", c.addr(), "config", "get"}, &out), 0);
  EXPECT_EQ(out, config + "\n");
  weft::v1::GetNetworkConfigResponse stored;
  ASSERT_TRUE(c.network()->GetNetworkConfig(Ctx().get(), {}, &stored).ok());
  EXPECT_EQ(stored.config(), config);

  // Subnets in flannel's key form; a long node name keeps the table aligned.
  const std::string long_node = "a-node-with-a-rather-long-name-0123456789.rack-17.example.com";
  ASSERT_EQ(RunBoth({ctl, "--controller", c.addr(), "reserve", "10.1.7.0-24", "--public-ip", "192.0.2.9", "--node",
                     long_node},
                    &out),
            0)
      << out;
  weft::v1::AcquireLeaseResponse acquired;
  ASSERT_TRUE(c.leases()->AcquireLease(Ctx().get(), Node(1), &acquired).ok());
  ASSERT_EQ(RunCommand({ctl, "--controller", c.addr(), "leases", "list"}, &out), 0);
  EXPECT_EQ(ColumnOf(out, "SUBNET", "NODE"), ColumnOf(out, "10.1.7.0/24", long_node)) << out;
  EXPECT_EQ(ColumnOf(out, "SUBNET", "BACKEND"), ColumnOf(out, "10.1.7.0/24", "vxlan")) << out;
  // The expiry is the only field of that line with a word starting "20" (a subnet such as 10.1.204.0/24 has
  // "20" inside a word, so search for it after a space).
  const size_t expiry = ColumnOf(out, acquired.lease().subnet(), " 20");
  ASSERT_NE(expiry, std::string::npos) << out;
  EXPECT_EQ(ColumnOf(out, "SUBNET", "EXPIRES"), expiry + 1) << out;
  ASSERT_EQ(RunCommand({ctl, "--controller", c.addr(), "leases", "list", "-o", "wide"}, &out), 0);
  EXPECT_NE(out.find("BACKEND-DATA"), std::string::npos) << out;
  EXPECT_NE(out.find("VtepMAC"), std::string::npos) << out;
  ASSERT_EQ(RunCommand({ctl, "--controller", c.addr(), "lease", "show", "10.1.7.0-24", "-o", "yaml"}, &out), 0);
  EXPECT_EQ(out.rfind("---\n", 0), 0u) << out;
  EXPECT_NE(out.find("subnet: \"10.1.7.0/24\"\n"), std::string::npos) << out;
  EXPECT_NE(out.find("reserved: true\n"), std::string::npos) << out;

  // status: one screen, and the same as JSON.
  ASSERT_EQ(RunBoth({ctl, "--controller", c.addr(), "status"}, &out), 0) << out;
  for (const std::string& want : std::vector<std::string>{c.addr(), "rocksdb", "Subnets:", "255 in the network: 1 leased, 1 reserved, 253 free",
                                 "Expiring within the hour:  1", "Backend:", "vxlan"}) {
    EXPECT_NE(out.find(want), std::string::npos) << want << " missing from:\n" << out;
  }
  ASSERT_EQ(RunCommand({ctl, "--controller", c.addr(), "status", "-o", "json"}, &out), 0);
  auto j = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << out;
  EXPECT_EQ(j["endpoints"][0]["reachable"], true);
  EXPECT_EQ(j["endpoints"][0]["leader"], true);
  EXPECT_EQ(j["endpoints"][0]["version"], "0.1.0");
  EXPECT_EQ(j["endpoints"][0]["store_healthy"], true);
  EXPECT_EQ(j["backend_type"], "vxlan");
  EXPECT_EQ(j["reserved"], 1);
  EXPECT_EQ(j["leases"], 1);
  EXPECT_EQ(j["expiring_within_hour"], 1);
  EXPECT_EQ(j["network_config"]["Network"], "10.1.0.0/16");

  // Errors in words: the code's name, what it means, the controller's address.
  EXPECT_EQ(RunBoth({ctl, "--controller", c.addr(), "lease", "show", "10.1.99.0/24"}, &out), 1);
  EXPECT_NE(out.find("controller " + c.addr() + ": NOT_FOUND (no such thing)"), std::string::npos) << out;
  // A peer that accepts connections and never answers: --timeout, then exit 3.
  const int silent = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(silent, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  ASSERT_EQ(listen(silent, 16), 0);
  socklen_t len = sizeof(sa);
  ASSERT_EQ(getsockname(silent, reinterpret_cast<sockaddr*>(&sa), &len), 0);
  const std::string silent_addr = absl::StrCat("127.0.0.1:", ntohs(sa.sin_port));
  const absl::Time t0 = absl::Now();
  EXPECT_EQ(RunBoth({ctl, "--controller", silent_addr, "--timeout", "1s", "config", "get"}, &out), 3);
  EXPECT_LT(absl::Now() - t0, absl::Seconds(8));
  EXPECT_NE(out.find("controller " + silent_addr + ": DEADLINE_EXCEEDED"), std::string::npos) << out;
  EXPECT_NE(out.find("--timeout 1s"), std::string::npos) << out;
  close(silent);
  // status over two endpoints, one of them down: both shown, exit 3.
  const std::string closed = absl::StrCat("127.0.0.1:", FreePort());
  EXPECT_EQ(RunBoth({ctl, "--controller", c.addr() + "," + closed, "--timeout", "2s", "status"}, &out), 3);
  EXPECT_NE(out.find(closed + ": UNAVAILABLE"), std::string::npos) << out;
  EXPECT_NE(out.find("Subnets:"), std::string::npos) << out;
  EXPECT_EQ(RunBoth({ctl, "--controller", c.addr(), "-o", "xml", "leases", "list"}, &out), 2);
}

}  // namespace
}  // namespace weft::testing

namespace weft::testing {
namespace {

// Dual-stack through the real binary, listening on IPv6 loopback only: both
// subnets in one lease, kept across a restart, shown and reserved by weftctl
// over IPv6.
TEST(ControllerIntegrationTest, DualStackLeasesOverAnIPv6Listener) {
  Controller c(DataDir("dualstack"));
  c.ListenOn("::1");
  c.Start();
  ASSERT_EQ(c.addr().rfind("[::1]:", 0), 0u) << c.addr();
  ASSERT_TRUE(SetConfig(c, R"({"Network":"10.1.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:12::/48",)"
                           R"("Backend":{"Type":"vxlan"}})")
                  .ok());
  std::map<std::string, std::pair<std::string, std::string>> held;
  for (int i = 1; i <= 3; ++i) {
    weft::v1::AcquireLeaseRequest r = Node(i);
    r.set_public_ipv6(absl::StrCat("fd77::", i));
    r.set_backend_v6_data(R"({"VNI":1,"VtepMAC":"02:00:00:00:01:01"})");
    weft::v1::AcquireLeaseResponse resp;
    grpc::Status s = c.leases()->AcquireLease(Ctx().get(), r, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.ipv6_network(), "fd00:12::/48");
    EXPECT_EQ(resp.lease().public_ipv6(), absl::StrCat("fd77::", i));
    EXPECT_NE(resp.lease().ipv6_subnet().find("/64"), std::string::npos) << resp.lease().ipv6_subnet();
    held[r.node_name()] = {resp.lease().subnet(), resp.lease().ipv6_subnet()};
  }
  weft::v1::AcquireLeaseRequest no_v6 = Node(4);
  weft::v1::AcquireLeaseResponse refused;
  EXPECT_EQ(c.leases()->AcquireLease(Ctx().get(), no_v6, &refused).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  c.Stop();
  c.Start();
  for (int i = 1; i <= 3; ++i) {
    weft::v1::AcquireLeaseRequest r = Node(i);
    r.set_public_ipv6(absl::StrCat("fd77::", i));
    weft::v1::AcquireLeaseResponse resp;
    ASSERT_TRUE(c.leases()->AcquireLease(Ctx().get(), r, &resp).ok());
    EXPECT_EQ(resp.lease().subnet(), held[r.node_name()].first);
    EXPECT_EQ(resp.lease().ipv6_subnet(), held[r.node_name()].second);
  }
  const std::string ctl = Runfile("tools/weftctl/weftctl");
  std::string out;
  ASSERT_EQ(RunCommand({ctl, "--controller", c.addr(), "reserve", "10.1.200.0/24", "--public-ip", "192.0.2.200",
                        "--ipv6-subnet", "fd00:12:0:200::-64", "--public-ipv6", "fd77::200"},
                       &out),
            0);
  EXPECT_NE(out.find("reserved 10.1.200.0/24 and fd00:12:0:200::/64 for 192.0.2.200"), std::string::npos) << out;
  ASSERT_EQ(RunCommand({ctl, "--controller", c.addr(), "lease", "show", "fd00:12:0:200::/64", "-o", "json"}, &out),
            0);
  EXPECT_NE(out.find("\"subnet\":\"10.1.200.0/24\""), std::string::npos) << out;
  ASSERT_EQ(RunCommand({ctl, "--controller", c.addr(), "status"}, &out), 0);
  EXPECT_NE(out.find("65535 in the network, 65531 free"), std::string::npos) << out;
  c.Stop();
}

}  // namespace
}  // namespace weft::testing
