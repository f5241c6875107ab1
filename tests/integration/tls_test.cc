// The controller's security against the real binary, with real certificates
// made here by tools/certs.sh: mutual TLS on both listeners (plaintext, a
// foreign CA and an expired certificate refused, with the reason in the
// controller's log), every row of the authorization table through gRPC and
// through the real etcdctl, rotation of the server certificate without a
// restart, and the refusal to listen in plaintext beyond loopback.

#include <unistd.h>

#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/testing.h"
#include "gtest/gtest.h"
#include "tests/integration/controller_fixture.h"

namespace weft::testing {
namespace {

constexpr char kConfig[] = R"({"Network":"10.9.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}})";

// Runs tools/certs.sh in `dir` with `args`; fails the test on error.
void Certs(const std::string& dir, std::vector<std::string> args) {
  std::vector<std::string> argv = {Runfile("tools/certs.sh"), "--dir", dir};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string out;
  ASSERT_EQ(RunCommand(argv, &out), 0) << absl::StrJoin(args, " ") << ": " << out;
}

// A CA, the controller's certificate, nodes n1 and n2, an operator, a reader,
// an expired node certificate and a node certificate from another CA.
std::string MakeCerts(const std::string& name) {
  const std::string dir = DataDir(name.c_str());
  Certs(dir, {"ca"});
  Certs(dir, {"server", "server", "IP:127.0.0.1,DNS:localhost"});
  Certs(dir, {"node", "n1"});
  Certs(dir, {"node", "n2"});
  Certs(dir, {"admin"});
  Certs(dir, {"client", "reader"});
  Certs(dir, {"--expired", "node", "old"});
  Certs(dir, {"--ca", "other", "ca"});
  Certs(dir, {"--ca", "other", "node", "evil"});
  return dir;
}

std::string ReadLog(const Controller& c) { return Controller::ReadFile(c.log_path()); }

// How long a test waits for what a controller does on its own (weft::Eventually).
constexpr absl::Duration kPatience = absl::Seconds(30);

struct Client {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<weft::v1::LeaseService::Stub> leases;
  std::unique_ptr<weft::v1::NetworkService::Stub> network;
  explicit Client(std::shared_ptr<grpc::Channel> ch)
      : channel(ch), leases(weft::v1::LeaseService::NewStub(ch)), network(weft::v1::NetworkService::NewStub(ch)) {}

  grpc::Status Acquire(const std::string& node, const std::string& ip, weft::v1::Lease* out = nullptr) {
    weft::v1::AcquireLeaseRequest r;
    r.set_node_name(node);
    r.set_public_ip(ip);
    r.set_backend_type("vxlan");
    r.set_backend_data(R"({"VNI":1,"VtepMAC":"02:00:00:00:00:01"})");
    weft::v1::AcquireLeaseResponse resp;
    grpc::Status s = leases->AcquireLease(Ctx(5).get(), r, &resp);
    if (out) *out = resp.lease();
    return s;
  }
  grpc::Status Renew(const std::string& subnet, const std::string& node, const std::string& ip = "") {
    weft::v1::RenewLeaseRequest r;
    r.set_subnet(subnet);
    r.set_node_name(node);
    r.set_public_ip(ip);
    weft::v1::RenewLeaseResponse resp;
    return leases->RenewLease(Ctx(5).get(), r, &resp);
  }
  grpc::Status Release(const std::string& subnet, const std::string& node, const std::string& ip = "") {
    weft::v1::ReleaseLeaseRequest r;
    r.set_subnet(subnet);
    r.set_node_name(node);
    r.set_public_ip(ip);
    weft::v1::ReleaseLeaseResponse resp;
    return leases->ReleaseLease(Ctx(5).get(), r, &resp);
  }
  grpc::Status Get(const std::string& subnet) {
    weft::v1::GetLeaseRequest r;
    r.set_subnet(subnet);
    weft::v1::GetLeaseResponse resp;
    return leases->GetLease(Ctx(5).get(), r, &resp);
  }
  grpc::Status List() {
    weft::v1::ListLeasesResponse resp;
    return leases->ListLeases(Ctx(5).get(), weft::v1::ListLeasesRequest(), &resp);
  }
  // Opens a watch and reads its first message (the snapshot).
  grpc::Status Watch() {
    auto ctx = Ctx(5);
    auto reader = leases->WatchLeases(ctx.get(), weft::v1::WatchLeasesRequest());
    weft::v1::WatchLeasesResponse msg;
    if (reader->Read(&msg)) {
      ctx->TryCancel();
      reader->Finish();
      return grpc::Status::OK;
    }
    return reader->Finish();
  }
  grpc::Status GetConfig() {
    weft::v1::GetNetworkConfigResponse resp;
    return network->GetNetworkConfig(Ctx(5).get(), weft::v1::GetNetworkConfigRequest(), &resp);
  }
  grpc::Status SetConfig(const std::string& json) {
    weft::v1::SetNetworkConfigRequest r;
    r.set_config(json);
    weft::v1::SetNetworkConfigResponse resp;
    return network->SetNetworkConfig(Ctx(5).get(), r, &resp);
  }
  grpc::Status Reserve(const std::string& subnet, const std::string& ip, const std::string& node = "") {
    weft::v1::ReserveRequest r;
    r.set_subnet(subnet);
    r.set_public_ip(ip);
    r.set_node_name(node);
    weft::v1::ReserveResponse resp;
    return network->Reserve(Ctx(5).get(), r, &resp);
  }
  grpc::Status Unreserve(const std::string& subnet) {
    weft::v1::UnreserveRequest r;
    r.set_subnet(subnet);
    weft::v1::UnreserveResponse resp;
    return network->Unreserve(Ctx(5).get(), r, &resp);
  }
};

#define EXPECT_CODE(expr, code)                                          \
  do {                                                                   \
    grpc::Status s_ = (expr);                                            \
    EXPECT_EQ(s_.error_code(), code) << #expr << ": " << s_.error_message(); \
  } while (0)
constexpr grpc::StatusCode kOk = grpc::StatusCode::OK;
constexpr grpc::StatusCode kDenied = grpc::StatusCode::PERMISSION_DENIED;

TEST(TlsTest, OnlyClientsWithAValidCertificateOfTheCaGetIn) {
  const std::string dir = MakeCerts("certs-transport");
  Controller c(DataDir("transport"));
  c.UseTls(dir);
  c.Start({"--initial-config", kConfig});
  Client admin(c.channel());
  EXPECT_CODE(admin.GetConfig(), kOk);

  // Plaintext: the handshake fails, the call never reaches a handler.
  Client plain(grpc::CreateChannel(c.addr(), grpc::InsecureChannelCredentials()));
  EXPECT_CODE(plain.GetConfig(), grpc::StatusCode::UNAVAILABLE);
  // Another CA's certificate, an expired one.
  Client evil(c.Channel("node-evil"));
  EXPECT_CODE(evil.GetConfig(), grpc::StatusCode::UNAVAILABLE);
  Client old(c.Channel("node-old"));
  EXPECT_CODE(old.GetConfig(), grpc::StatusCode::UNAVAILABLE);
  // The controller says why.
  EXPECT_TRUE(Eventually([&] {
    const std::string log = ReadLog(c);
    return absl::StrContains(log, R"(msg="client certificate refused" reason="certificate has expired" subject="CN=system:node:old,O=system:nodes")") &&
           absl::StrContains(log, R"(reason="unable to get local issuer certificate" subject="CN=system:node:evil)");
  }, kPatience)) << ReadLog(c);
  // And still serves the good ones.
  Client n1(c.Channel("node-n1"));
  EXPECT_CODE(n1.GetConfig(), kOk);
  c.Stop();
}

TEST(TlsTest, AuthorizationTableThroughGrpc) {
  const std::string dir = MakeCerts("certs-authz");
  Controller c(DataDir("authz"));
  c.UseTls(dir);
  const int metrics_port = FreePort();
  c.Start({"--initial-config", kConfig, "--metrics-listen", absl::StrCat("127.0.0.1:", metrics_port)});
  Client admin(c.channel());
  Client n1(c.Channel("node-n1"));
  Client n2(c.Channel("node-n2"));
  Client reader(c.Channel("reader"));

  // AcquireLease: a node as itself (named or not), never as another; readers never.
  weft::v1::Lease l1, l2, l3;
  EXPECT_CODE(n1.Acquire("", "192.0.2.1", &l1), kOk);
  EXPECT_EQ(l1.node_name(), "n1");  // taken from the certificate
  EXPECT_CODE(n1.Acquire("n1", "192.0.2.1", &l3), kOk);
  EXPECT_EQ(l3.subnet(), l1.subnet());
  EXPECT_CODE(n1.Acquire("n2", "192.0.2.2"), kDenied);
  EXPECT_CODE(reader.Acquire("r", "192.0.2.9"), kDenied);
  EXPECT_CODE(n2.Acquire("", "192.0.2.2", &l2), kOk);
  EXPECT_CODE(admin.Acquire("n3", "192.0.2.3"), kOk);  // operators act for anyone
  // n1 claiming n2's public IP does not get n2's lease (its own stays its own).
  weft::v1::Lease again;
  EXPECT_CODE(n1.Acquire("", "192.0.2.2", &again), kOk);
  EXPECT_EQ(again.subnet(), l1.subnet());
  // A lease that names no node is not handed over by public IP.
  // (Subnets are handed out at random: reserve one that is free.)
  std::string reserved;
  for (int i = 200; i < 256 && reserved.empty(); ++i) {
    const std::string subnet = absl::StrCat("10.9.", i, ".0/24");
    if (admin.Reserve(subnet, "192.0.2.50").ok()) reserved = subnet;
  }
  ASSERT_FALSE(reserved.empty());
  Certs(dir, {"node", "n4"});
  Client n4(c.Channel("node-n4"));
  grpc::Status takeover = n4.Acquire("", "192.0.2.50");
  EXPECT_EQ(takeover.error_code(), kDenied) << takeover.error_message();
  EXPECT_TRUE(absl::StrContains(takeover.error_message(), "names no node")) << takeover.error_message();

  // RenewLease / ReleaseLease: only one's own lease, by name or by public IP.
  EXPECT_CODE(n1.Renew(l1.subnet(), ""), kOk);
  EXPECT_CODE(n1.Renew(l1.subnet(), "n1"), kOk);
  EXPECT_CODE(n1.Renew(l2.subnet(), ""), kDenied);
  EXPECT_CODE(n1.Renew(l2.subnet(), "", "192.0.2.2"), kDenied);
  EXPECT_CODE(n1.Renew(l2.subnet(), "n2"), kDenied);
  EXPECT_CODE(reader.Renew(l1.subnet(), "n1"), kDenied);
  EXPECT_CODE(admin.Renew(l2.subnet(), "n2"), kOk);
  EXPECT_CODE(n1.Release(l2.subnet(), ""), kDenied);
  EXPECT_CODE(n1.Release(l2.subnet(), "", "192.0.2.2"), kDenied);
  EXPECT_CODE(n1.Release(l2.subnet(), "n2"), kDenied);
  EXPECT_CODE(reader.Release(l2.subnet(), "n2"), kDenied);
  EXPECT_CODE(n4.Release(reserved, "", "192.0.2.50"), kDenied);
  EXPECT_CODE(n2.Get(l2.subnet()), kOk);  // still there
  EXPECT_CODE(n2.Release(l2.subnet(), ""), kOk);

  // Reads: everyone.
  for (Client* who : {&admin, &n1, &reader}) {
    EXPECT_CODE(who->Get(l1.subnet()), kOk);
    EXPECT_CODE(who->List(), kOk);
    EXPECT_CODE(who->Watch(), kOk);
    EXPECT_CODE(who->GetConfig(), kOk);
  }
  // Network changes: operators only.
  for (Client* who : {&n1, &reader}) {
    EXPECT_CODE(who->SetConfig(kConfig), kDenied);
    EXPECT_CODE(who->Reserve("10.9.199.0/24", "192.0.2.60"), kDenied);
    EXPECT_CODE(who->Unreserve(reserved), kDenied);
  }
  EXPECT_CODE(admin.SetConfig(kConfig), kOk);
  EXPECT_CODE(admin.Unreserve(reserved), kOk);
  EXPECT_CODE(admin.Reserve(reserved, "192.0.2.50"), kOk);  // a reservation again

  std::string metrics;
  ASSERT_EQ(RunCommand({"/usr/bin/curl", "-sf", absl::StrCat("http://127.0.0.1:", metrics_port, "/metrics")},
                       &metrics),
            0);
  EXPECT_TRUE(absl::StrContains(metrics, R"(weft_controller_denied_requests_total{method="SetNetworkConfig"} 2)"))
      << metrics;
  // The table's denials (a node naming another node, a reader); those of a lease
  // held by another node are PERMISSION_DENIED from the lease manager.
  EXPECT_TRUE(absl::StrContains(metrics, R"(weft_controller_denied_requests_total{method="RenewLease"} 2)"))
      << metrics;
  EXPECT_TRUE(absl::StrContains(ReadLog(c), R"(why="node n1 may act only as itself, not as node n2")"));
  c.Stop();
}

int Etcdctl(const std::string& dir, const std::string& endpoint, const std::string& cert,
            std::vector<std::string> args, std::string* out) {
  std::vector<std::string> argv = {"/usr/bin/env", "ETCDCTL_API=3", "/usr/bin/etcdctl", "--endpoints", endpoint,
                                   "--command-timeout=5s", "--dial-timeout=3s"};
  if (!cert.empty()) {
    argv.insert(argv.end(), {"--cacert", dir + "/ca.crt", "--cert", dir + "/" + cert + ".crt", "--key",
                             dir + "/" + cert + ".key"});
  }
  argv.insert(argv.end(), args.begin(), args.end());
  // etcdctl's errors go to stderr: merged so the test can show them.
  std::vector<std::string> sh = {"/bin/sh", "-c", "\"$@\" 2>&1", "sh"};
  sh.insert(sh.end(), argv.begin(), argv.end());
  return RunCommand(sh, out);
}

TEST(TlsTest, EtcdApiWithEtcdctlAndClientCertificates) {
  const std::string dir = MakeCerts("certs-etcd");
  Controller c(DataDir("etcd"));
  c.UseTls(dir);
  const std::string etcd_addr = absl::StrCat("127.0.0.1:", FreePort());
  const std::string url = "https://" + etcd_addr;
  c.Start({"--initial-config", kConfig, "--etcd-listen", etcd_addr});
  std::string out;
  const std::string config_key = "/coreos.com/network/config";
  const std::string subnet_key = "/coreos.com/network/subnets/10.9.7.0-24";
  const std::string lease = R"({"PublicIP":"192.0.2.7","BackendType":"vxlan"})";

  // Plaintext and foreign certificates are refused.
  EXPECT_NE(Etcdctl(dir, "http://" + etcd_addr, "", {"get", config_key}, &out), 0) << out;
  EXPECT_NE(Etcdctl(dir, url, "node-evil", {"get", config_key}, &out), 0) << out;
  EXPECT_NE(Etcdctl(dir, url, "node-old", {"get", config_key}, &out), 0) << out;

  // Nodes and readers: reads and watches inside the prefix, status, member list.
  for (const std::string who : {"node-n1", "reader"}) {
    SCOPED_TRACE(who);
    ASSERT_EQ(Etcdctl(dir, url, who, {"get", config_key}, &out), 0) << out;
    EXPECT_TRUE(absl::StrContains(out, "10.9.0.0/16")) << out;
    EXPECT_EQ(Etcdctl(dir, url, who, {"get", "--prefix", "/coreos.com/network/"}, &out), 0) << out;
    EXPECT_EQ(Etcdctl(dir, url, who, {"endpoint", "status"}, &out), 0) << out;
    EXPECT_EQ(Etcdctl(dir, url, who, {"member", "list"}, &out), 0) << out;
    EXPECT_EQ(Etcdctl(dir, url, who, {"alarm", "list"}, &out), 0) << out;
    // Everything else is for operators.
    for (std::vector<std::string> denied : std::vector<std::vector<std::string>>{
             {"put", subnet_key, lease},
             {"del", config_key},
             {"del", "--prefix", "/"},
             {"get", "--prefix", "/"},
             {"get", "/weft.io/controller/leader"},
             {"get", "--prefix", "/coreos.com/network"},  // takes in /coreos.com/networkX too
             {"lease", "grant", "60"},
             {"lease", "revoke", "1234"},
             {"compaction", "1"},
             {"defrag"},
             {"snapshot", "save", dir + "/" + who + ".snap"},
             {"txn"},
         }) {
      SCOPED_TRACE(absl::StrJoin(denied, " "));
      int rc;
      if (denied[0] == "txn") {
        // A Txn whose compare reads inside the prefix but whose success branch writes.
        const std::string script = absl::StrCat("printf '%s\\n\\n%s\\n\\n\\n' 'value(\"", config_key,
                                                "\") = \"x\"' 'put ", subnet_key, " x' | \"$@\" 2>&1");
        rc = RunCommand({"/bin/sh", "-c", script, "sh", "/usr/bin/env", "ETCDCTL_API=3", "/usr/bin/etcdctl",
                         "--endpoints", url, "--cacert", dir + "/ca.crt", "--cert", dir + "/" + who + ".crt",
                         "--key", dir + "/" + who + ".key", "txn"},
                        &out);
      } else {
        rc = Etcdctl(dir, url, who, denied, &out);
      }
      EXPECT_NE(rc, 0) << out;
      EXPECT_TRUE(absl::StrContains(out, "permission denied")) << out;
    }
    EXPECT_NE(Etcdctl(dir, url, who, {"watch", "/weft.io/controller/leader"}, &out), 0) << out;
    EXPECT_TRUE(absl::StrContains(out, "permission denied")) << out;
  }

  // Operators: everything.
  ASSERT_EQ(Etcdctl(dir, url, "admin", {"put", subnet_key, lease}, &out), 0) << out;
  ASSERT_EQ(Etcdctl(dir, url, "admin", {"get", "/weft.io/controller/leader"}, &out), 0) << out;
  ASSERT_EQ(Etcdctl(dir, url, "admin", {"get", "--prefix", "/"}, &out), 0) << out;
  EXPECT_TRUE(absl::StrContains(out, subnet_key)) << out;
  ASSERT_EQ(Etcdctl(dir, url, "admin", {"lease", "grant", "60"}, &out), 0) << out;
  ASSERT_EQ(Etcdctl(dir, url, "admin", {"del", subnet_key}, &out), 0) << out;
  ASSERT_EQ(Etcdctl(dir, url, "admin", {"compaction", "2"}, &out), 0) << out;
  ASSERT_EQ(Etcdctl(dir, url, "admin", {"defrag"}, &out), 0) << out;
  ASSERT_EQ(Etcdctl(dir, url, "admin", {"snapshot", "save", dir + "/admin.snap"}, &out), 0) << out;
  c.Stop();
}

// The common name of the certificate the controller served on `ch`'s connection.
std::string ServedName(Client& client) {
  auto ctx = Ctx(5);
  weft::v1::GetNetworkConfigResponse resp;
  if (!client.network->GetNetworkConfig(ctx.get(), weft::v1::GetNetworkConfigRequest(), &resp).ok()) return "";
  auto auth = ctx->auth_context();
  auto cn = auth ? auth->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME) : std::vector<grpc::string_ref>();
  return cn.empty() ? "" : std::string(cn[0].data(), cn[0].size());
}

TEST(TlsTest, ServerCertificateRotatesWithoutRestart) {
  const std::string dir = MakeCerts("certs-rotate");
  Controller c(DataDir("rotate"));
  c.UseTls(dir);
  c.Start({"--initial-config", kConfig, "--tls-refresh-interval", "1s"});
  Client kept(c.Channel("node-n1"));
  ASSERT_EQ(ServedName(kept), "server");

  // A new certificate (same addresses), swapped in by rename: key, then certificate.
  Certs(dir, {"server", "server2", "IP:127.0.0.1,DNS:localhost"});
  ASSERT_EQ(rename((dir + "/server2.key").c_str(), (dir + "/server.key").c_str()), 0);
  ASSERT_EQ(rename((dir + "/server2.crt").c_str(), (dir + "/server.crt").c_str()), 0);
  EXPECT_TRUE(Eventually([&] {
    Client fresh(c.Channel("node-n1"));
    return ServedName(fresh) == "server2";
  }, kPatience)) << ReadLog(c);
  // The connected client keeps working, and so does any new connection.
  EXPECT_CODE(kept.GetConfig(), kOk);
  EXPECT_TRUE(Eventually([&] { return absl::StrContains(ReadLog(c), "server certificate reloaded"); }, kPatience));
  EXPECT_TRUE(absl::StrContains(ReadLog(c), "CN=server2,O=weft")) << ReadLog(c);
  c.Stop();
}

// Runs the controller with `flags` until it exits or logs that it serves.
struct ControllerRun {
  int status = -1;  // wait status; -1 while it still runs
  std::string log;
};
ControllerRun RunController(const std::string& name, std::vector<std::string> prefix, std::vector<std::string> flags) {
  const std::string log = DataDir((name + ".log").c_str());
  std::vector<std::string> argv = std::move(prefix);
  argv.insert(argv.end(), {Runfile("controller/weft-controller"), "--data-dir", DataDir(name.c_str()),
                           "--metrics-listen", ""});
  argv.insert(argv.end(), flags.begin(), flags.end());
  Process p;
  ControllerRun r;
  if (!p.Start(argv, log)) return r;
  Eventually([&] {
    r.log = Controller::ReadFile(log);
    if (absl::StrContains(r.log, "weft-controller serving")) return true;
    int st = 0;
    if (waitpid(p.pid(), &st, WNOHANG) == p.pid()) {
      r.status = st;
      return true;
    }
    return false;
  }, kPatience);
  r.log = Controller::ReadFile(log);
  return r;  // Process's destructor kills it if it still runs
}

TEST(TlsTest, PlaintextBeyondLoopbackNeedsInsecure) {
  const std::string dir = MakeCerts("certs-listen");
  const std::string port = absl::StrCat(FreePort());
  ControllerRun refused = RunController("plain", {}, {"--listen", "0.0.0.0:" + port});
  ASSERT_TRUE(WIFEXITED(refused.status)) << refused.log;
  EXPECT_EQ(WEXITSTATUS(refused.status), 2);
  EXPECT_TRUE(absl::StrContains(refused.log, "use TLS")) << refused.log;
  EXPECT_TRUE(absl::StrContains(refused.log, "--insecure")) << refused.log;
  // The etcd-API listener too.
  ControllerRun refused_etcd = RunController("plain-etcd", {}, {"--listen", "127.0.0.1:" + port, "--etcd-listen", "[::]:" + port});
  EXPECT_TRUE(WIFEXITED(refused_etcd.status) && WEXITSTATUS(refused_etcd.status) == 2) << refused_etcd.log;

  // Bad TLS files: exit 2 with the reason.
  ControllerRun expired = RunController("expired", {},
                              {"--listen", "127.0.0.1:" + port, "--tls-cert-file", dir + "/node-old.crt",
                               "--tls-key-file", dir + "/node-old.key", "--tls-client-ca-file", dir + "/ca.crt"});
  EXPECT_TRUE(WIFEXITED(expired.status) && WEXITSTATUS(expired.status) == 2) << expired.log;
  EXPECT_TRUE(absl::StrContains(expired.log, "expired at")) << expired.log;
  ControllerRun mismatch = RunController("mismatch", {},
                               {"--listen", "127.0.0.1:" + port, "--tls-cert-file", dir + "/server.crt",
                                "--tls-key-file", dir + "/admin.key", "--tls-client-ca-file", dir + "/ca.crt"});
  EXPECT_TRUE(WIFEXITED(mismatch.status) && WEXITSTATUS(mismatch.status) == 2) << mismatch.log;
  EXPECT_TRUE(absl::StrContains(mismatch.log, "is not the key of")) << mismatch.log;
  ControllerRun missing = RunController("missing", {}, {"--listen", "127.0.0.1:" + port, "--tls-cert-file", dir + "/none.crt",
                                              "--tls-key-file", dir + "/server.key", "--tls-client-ca-file",
                                              dir + "/ca.crt"});
  EXPECT_TRUE(WIFEXITED(missing.status) && WEXITSTATUS(missing.status) == 2) << missing.log;
  EXPECT_TRUE(absl::StrContains(missing.log, "none.crt: No such file")) << missing.log;

  // --insecure: starts, with a warning. In a network namespace of its own, so
  // that nothing outside this test can reach the plaintext listener.
  std::string out;
  if (RunCommand({"/usr/bin/unshare", "--net", "/bin/true"}, &out) != 0) {
    GTEST_SKIP() << "no network namespaces here (needs root or user namespaces)";
  }
  ControllerRun allowed = RunController("insecure", {"/usr/bin/unshare", "--net"},
                              {"--listen", "0.0.0.0:" + port, "--insecure"});
  EXPECT_EQ(allowed.status, -1) << allowed.log;
  EXPECT_TRUE(absl::StrContains(allowed.log, "weft-controller serving")) << allowed.log;
  EXPECT_TRUE(absl::StrContains(allowed.log, R"(level=warn msg="--insecure: plaintext listener)")) << allowed.log;
}

}  // namespace
}  // namespace weft::testing
