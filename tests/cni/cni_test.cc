// weft-cni with the real plugins from Debian's containernetworking-plugins
// (/usr/lib/cni: bridge, host-local, loopback, portmap), run as a runtime runs
// them, in network namespaces this test makes (tests/netns): one "host" per test,
// with its containers. Everything (namespaces, cni0, host-local's and weft-cni's
// files) is removed after each test, pass or fail; namespaces of a crashed run by
// the next one.

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "absl/strings/str_cat.h"
#include "common/net.h"
#include "gtest/gtest.h"
#include "tests/cni/cni_runtime.h"
#include "tests/netns/netns.h"

namespace weft::testing {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr char kNetwork[] = "10.244.0.0/16";

struct Container {
  std::unique_ptr<NetNs> ns;
  CniCall call;
};

// What a command printed, or why it failed (for EXPECTs on the output).
std::string Out(const absl::StatusOr<std::string>& r) {
  return r.ok() ? *r : std::string(r.status().message());
}

// `ip link show <name>` in the test process's own namespace.
bool RootHasLink(absl::string_view name) {
  absl::StatusOr<CommandResult> r =
      RunCommand({"sh", "-c", absl::StrCat("PATH=\"$PATH:/usr/sbin:/sbin\"; ip link show ", name)});
  return r.ok() && r->exit_code == 0;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// "10.244.7.2" from a result's first IP ("10.244.7.2/24").
std::string FirstIPv4(const json& result) {
  const std::string cidr = result["ips"][0]["address"].get<std::string>();
  return cidr.substr(0, cidr.find('/'));
}

class CniTest : public ::testing::Test {
 protected:
  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);
    root_had_cni0_ = RootHasLink("cni0");
    auto host = NetNs::Create("host");
    ASSERT_TRUE(host.ok()) << host.status();
    host_ = *std::move(host);

    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", info->name());
    fs::create_directories(dir_);
    subnet_file_ = dir_ + "/subnet.env";
    data_dir_ = dir_ + "/flannel";
    ipam_dir_ = dir_ + "/ipam";
    WriteSubnetEnv("10.244.7.1/24");

    // The shipped example, pointed at this test's files.
    conflist_ = json::parse(ReadFile(Runfile("deploy/cni/10-weft.conflist")));
    json& weft = conflist_["plugins"][0];
    weft["subnetFile"] = subnet_file_;
    weft["dataDir"] = data_dir_;
    weft["delegate"]["ipam"] = {{"dataDir", ipam_dir_}};

    const std::string plugin = Runfile("cni/weft-cni");
    runtime_ = std::make_unique<CniRuntime>(host_->name(),
                                            std::vector<std::string>{plugin.substr(0, plugin.rfind('/')),
                                                                     "/usr/lib/cni"});
  }

  void TearDown() override {
    containers_.clear();
    host_.reset();  // takes cni0, the veths and the iptables rules with it
    std::error_code ec;
    fs::remove_all(dir_, ec);
    EXPECT_EQ(RootHasLink("cni0"), root_had_cni0_)
        << "cni0 appeared in (or vanished from) the test machine's own namespace";
  }

  void WriteSubnetEnv(const std::string& subnet, bool agent_masquerades = true) {
    std::ofstream(subnet_file_) << "FLANNEL_NETWORK=" << kNetwork << "\nFLANNEL_SUBNET=" << subnet
                                << "\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ="
                                << (agent_masquerades ? "true" : "false") << "\n";
  }

  // A container namespace, its lo also set up by the loopback plugin as runtimes do.
  Container& NewContainer(const std::string& tag) {
    auto ns = NetNs::Create(tag);
    EXPECT_TRUE(ns.ok()) << ns.status();
    auto c = std::make_unique<Container>();
    c->ns = *std::move(ns);
    c->call.container_id = absl::StrCat("wcni-", getpid(), "-", tag);
    c->call.netns = c->ns->path();
    const PluginOutput lo = runtime_->Exec(
        "loopback", "ADD", CniCall{c->call.container_id, c->call.netns, "lo"},
        R"({"cniVersion":"1.0.0","name":"lo","type":"loopback"})");
    EXPECT_EQ(lo.exit_code, 0) << lo.out << lo.err;
    containers_.push_back(std::move(c));
    return *containers_.back();
  }

  // The config weft-cni gets when run alone, as the first plugin of the list.
  std::string WeftConfig() const { return CniRuntime::PluginConfig(conflist_, 0, json(), json::object()).dump(); }

  PluginOutput RunWeft(const char* command, const Container& c, const std::string& config) {
    return runtime_->Exec("weft-cni", command, c.call, config);
  }

  json AddOk(Container& c, const json& runtime_config = json::object()) {
    const PluginOutput out = runtime_->AddList(conflist_, c.call, runtime_config);
    EXPECT_EQ(out.exit_code, 0) << out.out << out.err;
    return out.Json();
  }

  bool Saved(const Container& c) const { return access((data_dir_ + "/" + c.call.container_id).c_str(), F_OK) == 0; }

  bool HasEth0(const Container& c) const { return c.ns->Sh("ip link show eth0").ok(); }

  // A CNI error object on stdout with `code`, and a failing exit.
  static void ExpectCniError(const PluginOutput& out, int code) {
    EXPECT_NE(out.exit_code, 0);
    const json j = out.Json();
    ASSERT_TRUE(j.is_object()) << "stdout is not a CNI error object: " << out.out;
    EXPECT_EQ(j["code"], code) << out.out;
    EXPECT_TRUE(j["msg"].is_string() && !j["msg"].get<std::string>().empty()) << out.out;
    EXPECT_TRUE(j["cniVersion"].is_string()) << out.out;
  }

  // After a refused ADD: no saved config, no reservation, no interface, and the
  // delegate never ran (no bridge on the host).
  void ExpectUntouched(const Container& c) {
    EXPECT_FALSE(Saved(c));
    EXPECT_TRUE(FilesIn(data_dir_).empty());
    EXPECT_TRUE(Reservations(ipam_dir_).empty());
    EXPECT_FALSE(HasEth0(c));
    EXPECT_FALSE(host_->Sh("ip link show cni0").ok()) << "the delegate ran";
  }

  bool root_had_cni0_ = false;
  std::unique_ptr<NetNs> host_;
  std::vector<std::unique_ptr<Container>> containers_;
  std::unique_ptr<CniRuntime> runtime_;
  std::string dir_, subnet_file_, data_dir_, ipam_dir_;
  json conflist_;
};

TEST_F(CniTest, AddGivesAnAddressInTheLeaseWithARouteToTheNetwork) {
  Container& c = NewContainer("c1");
  const json result = AddOk(c);
  ASSERT_TRUE(result.is_object());
  EXPECT_EQ(result["cniVersion"], "1.0.0");

  // The result.
  const std::string ip = FirstIPv4(result);
  const auto addr = IPv4Addr::Parse(ip);
  ASSERT_TRUE(addr.ok()) << ip;
  EXPECT_TRUE(IPv4Net::Parse("10.244.7.0/24")->Contains(*addr)) << ip;
  EXPECT_NE(ip, "10.244.7.1");  // the gateway, on cni0
  EXPECT_EQ(result["ips"][0]["gateway"], "10.244.7.1");
  bool route_in_result = false;
  for (const json& r : result["routes"]) route_in_result = route_in_result || r["dst"] == kNetwork;
  EXPECT_TRUE(route_in_result) << result.dump();

  // The kernel: the address and MTU on eth0, the route to the cluster network
  // through the bridge, the gateway address on cni0 in the host.
  EXPECT_TRUE(absl::StrContains(Out(c.ns->Sh("ip -4 -o addr show dev eth0")), ip + "/24"));
  EXPECT_TRUE(absl::StrContains(Out(c.ns->Sh("ip link show eth0")), "mtu 1450"));
  const std::string route = Out(c.ns->Sh(absl::StrCat("ip route show ", kNetwork)));
  EXPECT_TRUE(absl::StrContains(route, "via 10.244.7.1 dev eth0")) << route;
  EXPECT_TRUE(absl::StrContains(Out(host_->Sh("ip -4 -o addr show dev cni0")), "10.244.7.1/24"));
  EXPECT_TRUE(absl::StrContains(Out(host_->Sh("ip -d link show cni0")), "bridge"));
  const absl::StatusOr<std::string> gw = c.ns->Sh("ping -c 1 -W 2 10.244.7.1");
  EXPECT_TRUE(gw.ok()) << gw.status();

  // The files: host-local's reservation in this test's directory, and the saved
  // delegate config flannel's way (bridge cni0, ipMasq off since the agent masquerades).
  EXPECT_EQ(Reservations(ipam_dir_), std::vector<std::string>{ip});
  ASSERT_TRUE(Saved(c));
  const json saved = json::parse(ReadFile(data_dir_ + "/" + c.call.container_id));
  EXPECT_EQ(saved["type"], "bridge");
  EXPECT_EQ(saved["bridge"], "cni0");
  EXPECT_EQ(saved["ipMasq"], false);
  EXPECT_EQ(saved["hairpinMode"], true);
  EXPECT_EQ(saved["ipam"]["ranges"][0][0]["subnet"], "10.244.7.0/24");

  EXPECT_EQ(runtime_->DelList(conflist_, c.call).exit_code, 0);
}

TEST_F(CniTest, TwoContainersOnOneHostPingEachOther) {
  Container& a = NewContainer("a");
  Container& b = NewContainer("b");
  const std::string ip_a = FirstIPv4(AddOk(a));
  const std::string ip_b = FirstIPv4(AddOk(b));
  EXPECT_NE(ip_a, ip_b);
  const absl::StatusOr<std::string> ab = a.ns->Sh("ping -c 2 -i 0.2 -W 2 " + ip_b);
  EXPECT_TRUE(ab.ok()) << ab.status();
  const absl::StatusOr<std::string> ba = b.ns->Sh("ping -c 2 -i 0.2 -W 2 " + ip_a);
  EXPECT_TRUE(ba.ok()) << ba.status();
  EXPECT_EQ(Reservations(ipam_dir_).size(), 2u);
  EXPECT_EQ(runtime_->DelList(conflist_, a.call).exit_code, 0);
  EXPECT_EQ(runtime_->DelList(conflist_, b.call).exit_code, 0);
  EXPECT_TRUE(Reservations(ipam_dir_).empty());
}

// Dual-stack (issue 15): subnet.env with flannel's IPv6 lines gives each
// container an address from both subnets (host-local with two ranges), routes to
// both cluster networks through cni0, and the containers reach each other over IPv6.
TEST_F(CniTest, DualStackLeaseGivesBothFamilies) {
  std::ofstream(subnet_file_) << "FLANNEL_NETWORK=" << kNetwork << "\nFLANNEL_SUBNET=10.244.7.1/24\n"
                              << "FLANNEL_IPV6_NETWORK=fd00:244::/48\nFLANNEL_IPV6_SUBNET=fd00:244:0:7::1/64\n"
                              << "FLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";
  Container& a = NewContainer("a");
  Container& b = NewContainer("b");
  const json ra = AddOk(a);
  const json rb = AddOk(b);
  auto v6_of = [](const json& result) {
    for (const json& ip : result["ips"]) {
      const std::string cidr = ip["address"].get<std::string>();
      if (cidr.find(':') != std::string::npos) return cidr;
    }
    return std::string();
  };
  const std::string a6 = v6_of(ra), b6 = v6_of(rb);
  ASSERT_TRUE(absl::StartsWith(a6, "fd00:244:0:7::") && absl::EndsWith(a6, "/64")) << ra.dump();
  ASSERT_TRUE(absl::StartsWith(b6, "fd00:244:0:7::")) << rb.dump();
  EXPECT_NE(a6, b6);
  EXPECT_NE(a6, "fd00:244:0:7::1/64");  // the gateway, on cni0
  EXPECT_TRUE(IPv4Net::Parse("10.244.7.0/24")->Contains(*IPv4Addr::Parse(FirstIPv4(ra))));
  bool v6_route = false;
  for (const json& r : ra["routes"]) v6_route = v6_route || r["dst"] == "fd00:244::/48";
  EXPECT_TRUE(v6_route) << ra.dump();
  // The kernel: both addresses on eth0, the IPv6 route via the gateway on cni0.
  EXPECT_TRUE(absl::StrContains(Out(a.ns->Sh("ip -6 -o addr show dev eth0")), a6)) << a6;
  const std::string route = Out(a.ns->Sh("ip -6 route show fd00:244::/48"));
  EXPECT_TRUE(absl::StrContains(route, "via fd00:244:0:7::1 dev eth0")) << route;
  EXPECT_TRUE(absl::StrContains(Out(host_->Sh("ip -6 -o addr show dev cni0")), "fd00:244:0:7::1/64"));
  // Over IPv6, once duplicate address detection has let the addresses go.
  const std::string b6_ip = b6.substr(0, b6.find('/'));
  absl::Status ping = absl::DeadlineExceededError("not tried");
  for (const absl::Time deadline = absl::Now() + absl::Seconds(15); absl::Now() < deadline;) {
    absl::StatusOr<std::string> r = a.ns->Sh("ping -6 -c 1 -W 1 " + b6_ip);
    ping = r.status();
    if (ping.ok()) break;
  }
  EXPECT_TRUE(ping.ok()) << ping;
  EXPECT_EQ(Reservations(ipam_dir_).size(), 4u) << "an IPv4 and an IPv6 address per container";
  EXPECT_EQ(runtime_->DelList(conflist_, a.call).exit_code, 0);
  EXPECT_EQ(runtime_->DelList(conflist_, b.call).exit_code, 0);
  EXPECT_TRUE(Reservations(ipam_dir_).empty());
}

TEST_F(CniTest, DelFreesTheAddressForTheNextContainerAndIsIdempotent) {
  // A /30 lease holds exactly one container address (.2: .1 is the gateway).
  WriteSubnetEnv("10.244.7.1/30");
  Container& a = NewContainer("a");
  Container& b = NewContainer("b");
  EXPECT_EQ(FirstIPv4(AddOk(a)), "10.244.7.2");

  // The pool is exhausted: bridge fails after making b's veth, and weft-cni's
  // rollback leaves nothing of b behind.
  const PluginOutput full = runtime_->AddList(conflist_, b.call);
  EXPECT_NE(full.exit_code, 0);
  EXPECT_TRUE(full.Json().is_object() && full.Json()["code"].is_number()) << full.out;
  EXPECT_FALSE(Saved(b));
  EXPECT_FALSE(HasEth0(b));
  EXPECT_EQ(Reservations(ipam_dir_), std::vector<std::string>{"10.244.7.2"});

  const PluginOutput del = runtime_->DelList(conflist_, a.call);
  EXPECT_EQ(del.exit_code, 0) << del.out << del.err;
  EXPECT_EQ(del.out, "");
  EXPECT_TRUE(Reservations(ipam_dir_).empty());
  EXPECT_FALSE(Saved(a));
  EXPECT_FALSE(HasEth0(a));

  const PluginOutput again = runtime_->DelList(conflist_, a.call);
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
  const PluginOutput weft_again = RunWeft("DEL", a, WeftConfig());
  EXPECT_EQ(weft_again.exit_code, 0) << weft_again.out << weft_again.err;

  EXPECT_EQ(FirstIPv4(AddOk(b)), "10.244.7.2");  // the freed address serves again
  EXPECT_EQ(runtime_->DelList(conflist_, b.call).exit_code, 0);
}

TEST_F(CniTest, DelAfterTheContainersNamespaceIsGone) {
  Container& c = NewContainer("c1");
  AddOk(c);
  c.ns.reset();
  c.call.netns = "";  // what a runtime passes once the sandbox is gone
  const PluginOutput del = runtime_->DelList(conflist_, c.call);
  EXPECT_EQ(del.exit_code, 0) << del.out << del.err;
  EXPECT_TRUE(Reservations(ipam_dir_).empty());
  EXPECT_FALSE(Saved(c));
}

TEST_F(CniTest, DelWorksWithoutSubnetEnv) {
  Container& c = NewContainer("c1");
  AddOk(c);
  ASSERT_EQ(unlink(subnet_file_.c_str()), 0);  // agent stopped, lease gone
  const PluginOutput del = runtime_->DelList(conflist_, c.call);
  EXPECT_EQ(del.exit_code, 0) << del.out << del.err;
  EXPECT_TRUE(Reservations(ipam_dir_).empty());
}

TEST_F(CniTest, CheckPassesThenReportsAMissingInterface) {
  Container& c = NewContainer("c1");
  AddOk(c);
  const PluginOutput ok = runtime_->CheckList(conflist_, c.call);
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_EQ(ok.out, "");

  ASSERT_TRUE(c.ns->Sh("ip link del eth0").ok());
  const PluginOutput broken = runtime_->CheckList(conflist_, c.call);
  ExpectCniError(broken, broken.Json().value("code", -1));
  EXPECT_TRUE(absl::StrContains(broken.Json().value("msg", ""), "delegate bridge CHECK failed"))
      << broken.out;
  EXPECT_TRUE(absl::StrContains(broken.out, "eth0")) << broken.out;
  EXPECT_TRUE(Saved(c));  // CHECK changes nothing

  EXPECT_EQ(runtime_->DelList(conflist_, c.call).exit_code, 0);
  EXPECT_TRUE(Reservations(ipam_dir_).empty());
}

TEST_F(CniTest, CheckOfAContainerNeverAdded) {
  Container& c = NewContainer("c1");
  json conf = json::parse(WeftConfig());
  conf["prevResult"] = {{"cniVersion", "1.0.0"}, {"ips", json::array()}};
  ExpectCniError(RunWeft("CHECK", c, conf.dump()), 3);
}

TEST_F(CniTest, PortmapChainedAfterWeftMapsTheHostPort) {
  Container& c = NewContainer("c1");
  const json mappings = {{"portMappings", {{{"hostPort", 18080}, {"containerPort", 80}, {"protocol", "tcp"}}}}};
  const json result = AddOk(c, mappings);
  const std::string ip = FirstIPv4(result);
  const std::string nat = Out(host_->Sh("iptables -t nat -S"));
  EXPECT_TRUE(absl::StrContains(nat, "--dport 18080")) << nat;
  EXPECT_TRUE(absl::StrContains(nat, ip + ":80")) << nat;
  // No CHECK here: Debian 12's portmap fails CHECK of an IPv4-only container with
  // port mappings, looking for IPv6 rules it never made (containernetworking/plugins#819).
  const PluginOutput del = runtime_->DelList(conflist_, c.call, mappings);
  EXPECT_EQ(del.exit_code, 0) << del.out << del.err;
  EXPECT_FALSE(absl::StrContains(Out(host_->Sh("iptables -t nat -S")), "--dport 18080"));
}

TEST_F(CniTest, BridgeMasqueradesWhenTheAgentDoesNot) {
  WriteSubnetEnv("10.244.7.1/24", /*agent_masquerades=*/false);
  Container& c = NewContainer("c1");
  const std::string ip = FirstIPv4(AddOk(c));
  const std::string nat = Out(host_->Sh("iptables -t nat -S POSTROUTING"));
  EXPECT_TRUE(absl::StrContains(nat, "-s " + ip + "/32")) << nat;
  EXPECT_EQ(runtime_->DelList(conflist_, c.call).exit_code, 0);
  EXPECT_FALSE(absl::StrContains(Out(host_->Sh("iptables -t nat -S POSTROUTING")), ip));
}

TEST_F(CniTest, MalformedStdinIsCode6AndLeavesNothing) {
  Container& c = NewContainer("c1");
  ExpectCniError(RunWeft("ADD", c, "{\"cniVersion\":\"1.0.0\",\"name\":"), 6);
  ExpectCniError(RunWeft("ADD", c, ""), 6);
  ExpectUntouched(c);
}

TEST_F(CniTest, MissingSubnetEnvIsCode11NamingTheFileAndLeavesNothing) {
  Container& c = NewContainer("c1");
  ASSERT_EQ(unlink(subnet_file_.c_str()), 0);
  const PluginOutput out = RunWeft("ADD", c, WeftConfig());
  ExpectCniError(out, 11);
  EXPECT_TRUE(absl::StrContains(out.Json().value("msg", ""), subnet_file_)) << out.out;
  ExpectUntouched(c);
}

TEST_F(CniTest, UnsupportedVersionIsCode1AndLeavesNothing) {
  Container& c = NewContainer("c1");
  for (const char* version : {"0.2.0", "2.0.0"}) {
    json conf = json::parse(WeftConfig());
    conf["cniVersion"] = version;
    const PluginOutput out = RunWeft("ADD", c, conf.dump());
    ExpectCniError(out, 1);
    EXPECT_TRUE(absl::StrContains(out.out, version)) << out.out;
  }
  ExpectUntouched(c);
}

TEST_F(CniTest, InvalidConfigAndEnvironment) {
  Container& c = NewContainer("c1");
  json conf = json::parse(WeftConfig());
  conf["delegate"]["type"] = "../../bin/sh";
  ExpectCniError(RunWeft("ADD", c, conf.dump()), 7);
  Container bad = {nullptr, c.call};
  bad.call.container_id = "../escape";
  ExpectCniError(runtime_->Exec("weft-cni", "ADD", bad.call, WeftConfig()), 4);
  ExpectCniError(runtime_->Exec("weft-cni", "STATUS", c.call, WeftConfig()), 4);
  ExpectUntouched(c);
}

TEST_F(CniTest, VersionAnswersTheSupportedVersions) {
  Container& c = NewContainer("c1");
  const PluginOutput out = runtime_->Exec("weft-cni", "VERSION", c.call, R"({"cniVersion":"1.0.0"})");
  EXPECT_EQ(out.exit_code, 0) << out.err;
  EXPECT_EQ(out.Json()["supportedVersions"], json({"0.3.0", "0.3.1", "0.4.0", "1.0.0"}));
}

TEST_F(CniTest, OlderConfigVersionsWorkEndToEnd) {
  for (const char* version : {"0.3.1", "0.4.0"}) {
    SCOPED_TRACE(version);
    conflist_["cniVersion"] = version;
    Container& c = NewContainer(absl::StrCat("v", std::string(1, version[2]), std::string(1, version[4])));
    const json result = AddOk(c);
    EXPECT_EQ(result["cniVersion"], version);
    EXPECT_EQ(runtime_->DelList(conflist_, c.call).exit_code, 0);
  }
  EXPECT_TRUE(Reservations(ipam_dir_).empty());
}

}  // namespace
}  // namespace weft::testing
