// weftctl end to end in one process: Main() against a real gRPC server on
// 127.0.0.1 that implements weft.v1 (and etcd's Maintenance.Snapshot) with
// canned answers.
#include "tools/weftctl/commands.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/reflection.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/json.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/etcd/rpc.grpc.pb.h"
#include "proto/weft/v1/weft.grpc.pb.h"
#include "storage/rocksdb/snapshot_archive.h"
#include "tools/weftctl/test_env.h"

namespace weft::weftctl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

v1::Lease MakeLease(int third_octet) {
  v1::Lease l;
  l.set_subnet(absl::StrCat("10.1.", third_octet, ".0/24"));
  l.set_public_ip(absl::StrCat("192.0.2.", third_octet));
  l.set_node_name(absl::StrCat("n", third_octet));
  l.set_backend_type("vxlan");
  l.set_revision(third_octet);
  return l;
}

// What the fake controller was asked, under its lock.
struct Requests {
  absl::Mutex mu;
  std::vector<v1::ListLeasesRequest> list ABSL_GUARDED_BY(mu);
  std::vector<std::string> get_lease ABSL_GUARDED_BY(mu);
  std::vector<v1::SetNetworkConfigRequest> set_config ABSL_GUARDED_BY(mu);
  std::vector<v1::ReserveRequest> reserve ABSL_GUARDED_BY(mu);
};

// Leases 10.1.{10,9,8,7,6}.0/24 in pages of two; the first listing's second
// page is ABORTED (its revision compacted), so weftctl must start over.
class FakeLeases final : public v1::LeaseService::Service {
 public:
  explicit FakeLeases(Requests* r) : r_(r) {}

  grpc::Status ListLeases(grpc::ServerContext*, const v1::ListLeasesRequest* req,
                          v1::ListLeasesResponse* resp) override {
    absl::MutexLock lock(&r_->mu);
    r_->list.push_back(*req);
    if (req->page_token() == "2" && !aborted_once_) {
      aborted_once_ = true;
      return grpc::Status(grpc::StatusCode::ABORTED, "revision compacted");
    }
    const int start = req->page_token().empty() ? 0 : std::stoi(req->page_token());
    const int third_octets[] = {10, 9, 8, 7, 6};
    for (int i = start; i < start + 2 && i < 5; ++i) *resp->add_leases() = MakeLease(third_octets[i]);
    if (start + 2 < 5) resp->set_next_page_token(std::to_string(start + 2));
    resp->set_revision(77);
    return grpc::Status::OK;
  }

  grpc::Status GetLease(grpc::ServerContext*, const v1::GetLeaseRequest* req, v1::GetLeaseResponse* resp) override {
    absl::MutexLock lock(&r_->mu);
    r_->get_lease.push_back(req->subnet());
    if (req->subnet() != "10.1.7.0/24") return grpc::Status(grpc::StatusCode::NOT_FOUND, "no lease for that subnet");
    *resp->mutable_lease() = MakeLease(7);
    return grpc::Status::OK;
  }

 private:
  Requests* const r_;
  bool aborted_once_ ABSL_GUARDED_BY(r_->mu) = false;
};

class FakeNetwork final : public v1::NetworkService::Service {
 public:
  explicit FakeNetwork(Requests* r) : r_(r) {}

  grpc::Status GetNetworkConfig(grpc::ServerContext*, const v1::GetNetworkConfigRequest*,
                                v1::GetNetworkConfigResponse* resp) override {
    resp->set_config(R"({"Network":"10.1.0.0/16"})");
    return grpc::Status::OK;
  }

  grpc::Status SetNetworkConfig(grpc::ServerContext*, const v1::SetNetworkConfigRequest* req,
                                v1::SetNetworkConfigResponse* resp) override {
    absl::MutexLock lock(&r_->mu);
    r_->set_config.push_back(*req);
    if (req->config() == "nope") return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "not JSON");
    resp->set_revision(8);
    if (req->force()) resp->add_stranded_subnets("10.2.0.0/24");
    return grpc::Status::OK;
  }

  grpc::Status Reserve(grpc::ServerContext*, const v1::ReserveRequest* req, v1::ReserveResponse* resp) override {
    absl::MutexLock lock(&r_->mu);
    r_->reserve.push_back(*req);
    if (req->public_ip() == "192.0.2.66") return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "not an admin");
    v1::Lease* l = resp->mutable_lease();
    l->set_subnet(req->subnet());
    l->set_ipv6_subnet(req->ipv6_subnet());
    l->set_public_ip(req->public_ip());
    l->set_reserved(true);
    return grpc::Status::OK;
  }

  grpc::Status Unreserve(grpc::ServerContext*, const v1::UnreserveRequest*, v1::UnreserveResponse*) override {
    return grpc::Status::OK;
  }

  grpc::Status GetStatus(grpc::ServerContext*, const v1::GetStatusRequest*, v1::GetStatusResponse* resp) override {
    resp->set_version("0.1.0");
    resp->set_commit("unknown");
    resp->set_leader(true);
    resp->set_store("rocksdb");
    resp->mutable_pool()->set_subnets(255);
    resp->mutable_pool()->set_free(255);
    return grpc::Status::OK;
  }

 private:
  Requests* const r_;
};

// Streams "hello " "world" then their SHA-256 (or, when `damaged`, a wrong one).
class FakeMaintenance final : public etcdserverpb::Maintenance::Service {
 public:
  grpc::Status Snapshot(grpc::ServerContext*, const etcdserverpb::SnapshotRequest*,
                        grpc::ServerWriter<etcdserverpb::SnapshotResponse>* writer) override {
    storage::snapshot_archive::Sha256 sha;
    for (const char* part : {"hello ", "world"}) {
      etcdserverpb::SnapshotResponse msg;
      msg.set_blob(part);
      sha.Update(part);
      writer->Write(msg);
    }
    etcdserverpb::SnapshotResponse sum;
    sum.set_blob(damaged ? std::string(32, 'x') : sha.Final());
    writer->Write(sum);
    return grpc::Status::OK;
  }
  std::atomic<bool> damaged{false};
};

// A port on 127.0.0.1 that nothing listens on (connections are refused), or,
// with `listen`, one whose connections are accepted by the kernel and never
// answered (a hung controller).
class DeadPort {
 public:
  explicit DeadPort(bool listen) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), len), 0);
    EXPECT_EQ(getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len), 0);
    port_ = ntohs(a.sin_port);
    if (listen) {
      EXPECT_EQ(::listen(fd_, 16), 0);
    } else {
      close(fd_);
      fd_ = -1;
    }
  }
  ~DeadPort() {
    if (fd_ >= 0) close(fd_);
  }
  std::string addr() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

class CommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(&leases_);
    b.RegisterService(&network_);
    b.RegisterService(&maintenance_);
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    addr_ = absl::StrCat("127.0.0.1:", port);
  }
  void TearDown() override { server_->Shutdown(); }

  // weftctl `args` against the fake (first), with `stdin_text`: its exit status;
  // out_ and err_ hold what it printed.
  int Weftctl(std::vector<std::string> args, const std::string& stdin_text = "") {
    args.insert(args.begin(), {"--controller", addr_, "--timeout", "10s"});
    return WeftctlAsIs(args, stdin_text);
  }
  int WeftctlAsIs(const std::vector<std::string>& args, const std::string& stdin_text = "") {
    std::istringstream in(stdin_text);
    std::ostringstream out, err;
    const int code = Main(args, {in, out, err});
    out_ = out.str();
    err_ = err.str();
    return code;
  }

  absl::FlagSaver flags_;
  CleanWeftEnvironment env_;
  Requests requests_;
  FakeLeases leases_{&requests_};
  FakeNetwork network_{&requests_};
  FakeMaintenance maintenance_;
  std::unique_ptr<grpc::Server> server_;
  std::string addr_;
  std::string out_, err_;
};

TEST_F(CommandsTest, LeasesListFollowsPagesStartsOverWhenAbortedAndSorts) {
  ASSERT_EQ(Weftctl({"leases", "list", "-o", "json"}), kOk) << err_;
  absl::StatusOr<json::Json> j = json::Parse(out_, "weftctl output");
  ASSERT_TRUE(j.ok()) << j.status() << out_;
  EXPECT_EQ((*j)["revision"], 77);
  std::vector<std::string> subnets;
  for (const json::Json& l : (*j)["leases"]) subnets.push_back(l["subnet"]);
  // Each lease once (the aborted listing's first page is not kept), in numeric order.
  EXPECT_THAT(subnets, ElementsAre("10.1.6.0/24", "10.1.7.0/24", "10.1.8.0/24", "10.1.9.0/24", "10.1.10.0/24"));
  absl::MutexLock lock(&requests_.mu);
  std::vector<std::string> tokens;
  for (const v1::ListLeasesRequest& r : requests_.list) {
    EXPECT_EQ(r.page_size(), 5000);
    tokens.push_back(r.page_token());
  }
  EXPECT_THAT(tokens, ElementsAre("", "2", "", "2", "4"));
  EXPECT_EQ(err_, "");
}

TEST_F(CommandsTest, LeaseShowTakesFlannelsKeyAndFailsInWords) {
  ASSERT_EQ(Weftctl({"lease", "show", "10.1.7.0-24"}), kOk) << err_;
  EXPECT_EQ(out_,
            "SUBNET       PUBLIC-IP  NODE  BACKEND  EXPIRES\n"
            "10.1.7.0/24  192.0.2.7  n7    vxlan    -\n");

  EXPECT_EQ(Weftctl({"lease", "show", "10.1.99.0/24", "-o", "yaml"}), kFailed);
  EXPECT_EQ(out_, "");
  EXPECT_EQ(err_, absl::StrCat("weftctl: controller ", addr_,
                               ": NOT_FOUND (no such thing): no lease for that subnet\n"))
      << err_;
  absl::MutexLock lock(&requests_.mu);
  EXPECT_THAT(requests_.get_lease, ElementsAre("10.1.7.0/24", "10.1.99.0/24"));
}

TEST_F(CommandsTest, ConfigSetFromStdinAndRefusedInput) {
  ASSERT_EQ(Weftctl({"config", "set", "-", "--force"}, "{\"Network\":\"10.1.0.0/16\"}\n\n"), kOk) << err_;
  EXPECT_EQ(out_, "config set at revision 8\nstranded (outside the new config): 10.2.0.0/24\n");
  // Malformed input the controller refuses is a usage error.
  EXPECT_EQ(Weftctl({"config", "set", "-"}, "nope"), kUsage);
  EXPECT_THAT(err_, HasSubstr("INVALID_ARGUMENT"));
  {
    absl::MutexLock lock(&requests_.mu);
    ASSERT_EQ(requests_.set_config.size(), 2u);
    EXPECT_EQ(requests_.set_config[0].config(), R"({"Network":"10.1.0.0/16"})");  // trailing newlines dropped
    EXPECT_TRUE(requests_.set_config[0].force());
    EXPECT_FALSE(requests_.set_config[1].force());
  }
  EXPECT_EQ(Weftctl({"config", "set", "/nonexistent/net.json"}), kUsage);
  EXPECT_THAT(err_, HasSubstr("weftctl: cannot read /nonexistent/net.json\n"));
  ASSERT_EQ(Weftctl({"config", "get"}), kOk);
  EXPECT_EQ(out_, "{\"Network\":\"10.1.0.0/16\"}\n");
}

TEST_F(CommandsTest, ReserveSendsEveryOptionAndRefusalIsExitOne) {
  ASSERT_EQ(Weftctl({"reserve", "10.1.200.0-24", "--public-ip", "192.0.2.200", "--ipv6-subnet", "fd00::-64",
                     "--node", "edge"}),
            kOk)
      << err_;
  EXPECT_EQ(out_, "reserved 10.1.200.0/24 and fd00::/64 for 192.0.2.200\n");
  EXPECT_EQ(Weftctl({"reserve", "10.1.201.0/24", "--public-ip", "192.0.2.66"}), kFailed);
  EXPECT_THAT(err_, HasSubstr("PERMISSION_DENIED"));
  EXPECT_THAT(err_, HasSubstr("refused this identity"));
  absl::MutexLock lock(&requests_.mu);
  ASSERT_EQ(requests_.reserve.size(), 2u);
  EXPECT_EQ(requests_.reserve[0].subnet(), "10.1.200.0/24");
  EXPECT_EQ(requests_.reserve[0].ipv6_subnet(), "fd00::/64");
  EXPECT_EQ(requests_.reserve[0].node_name(), "edge");
  EXPECT_EQ(Weftctl({"unreserve", "10.1.200.0-24"}), kOk);
  EXPECT_EQ(out_, "unreserved 10.1.200.0/24 (now an ordinary lease that expires unless renewed)\n");
}

TEST_F(CommandsTest, UnreachableControllerIsExitThree) {
  const DeadPort refused(/*listen=*/false);
  EXPECT_EQ(WeftctlAsIs({"--controller", refused.addr(), "--timeout", "5s", "leases", "list"}), kUnreachable);
  EXPECT_THAT(err_, StartsWith(absl::StrCat("weftctl: controller ", refused.addr(), ": UNAVAILABLE (")));
  EXPECT_EQ(out_, "");

  // A controller that accepts the connection and never answers: --timeout.
  const DeadPort hung(/*listen=*/true);
  EXPECT_EQ(WeftctlAsIs({"--controller", hung.addr(), "--timeout", "300ms", "config", "get"}), kUnreachable);
  EXPECT_THAT(err_, HasSubstr("DEADLINE_EXCEEDED"));
  EXPECT_THAT(err_, HasSubstr("no answer within --timeout 300ms"));
}

TEST_F(CommandsTest, FirstControllerThatAnswersAndStatusOfEach) {
  const DeadPort refused(/*listen=*/false);
  // The dead endpoint first: the command goes to the one that answers.
  ASSERT_EQ(WeftctlAsIs({"--controller", absl::StrCat(refused.addr(), ",", addr_), "--timeout", "300ms", "config",
                         "get"}),
            kOk)
      << err_;
  EXPECT_EQ(out_, "{\"Network\":\"10.1.0.0/16\"}\n");

  // status asks each; one down is exit 3, with both shown.
  EXPECT_EQ(WeftctlAsIs({"--controller", absl::StrCat(addr_, ",", refused.addr()), "--timeout", "5s", "status",
                         "-o", "json"}),
            kUnreachable);
  absl::StatusOr<json::Json> j = json::Parse(out_, "status");
  ASSERT_TRUE(j.ok()) << j.status() << out_;
  ASSERT_EQ((*j)["endpoints"].size(), 2u);
  EXPECT_EQ((*j)["endpoints"][0]["reachable"], true);
  EXPECT_EQ((*j)["endpoints"][1]["reachable"], false);
  EXPECT_THAT((*j)["endpoints"][1]["error"].get<std::string>(), HasSubstr("UNAVAILABLE"));
  EXPECT_EQ((*j)["free"], 255);

  ASSERT_EQ(Weftctl({"status"}), kOk) << err_;
  EXPECT_THAT(out_, HasSubstr("(none set: weftctl config set FILE)"));
}

TEST_F(CommandsTest, SnapshotSaveChecksTheSha256) {
  const std::string file = absl::StrCat(::testing::TempDir(), "/snapshot.db");
  ASSERT_EQ(Weftctl({"snapshot", "save", file, "--etcd", addr_}), kOk) << err_;
  EXPECT_EQ(out_, absl::StrCat("snapshot saved to ", file, " (43 bytes, SHA-256 checked)\n"));
  std::ifstream f(file, std::ios::binary);
  std::stringstream saved;
  saved << f.rdbuf();
  EXPECT_THAT(saved.str(), StartsWith("hello world"));
  EXPECT_EQ(saved.str().size(), 43u);  // the data and its checksum, as etcdctl writes it

  maintenance_.damaged = true;
  const std::string bad = absl::StrCat(::testing::TempDir(), "/damaged.db");
  EXPECT_EQ(Weftctl({"snapshot", "save", bad, "--etcd", addr_}), kFailed);
  EXPECT_EQ(err_, "weftctl: snapshot stream damaged (no or wrong SHA-256)\n");
  EXPECT_FALSE(std::ifstream(bad).good());
  EXPECT_FALSE(std::ifstream(bad + ".part").good());
}

TEST_F(CommandsTest, UsageErrorsHelpAndVersionNeedNoController) {
  EXPECT_EQ(WeftctlAsIs({"--no-such-flag", "status"}), kUsage);
  EXPECT_THAT(err_, StartsWith("weftctl: unknown flag --no-such-flag\n"));
  EXPECT_THAT(err_, HasSubstr("weftctl --help"));
  EXPECT_EQ(WeftctlAsIs({"bogus"}), kUsage);
  EXPECT_THAT(err_, StartsWith("weftctl: unknown command \"bogus\"\n"));
  EXPECT_EQ(WeftctlAsIs({"--key-file", "/nonexistent.key", "status"}), kUsage);  // a key without a certificate
  EXPECT_THAT(err_, StartsWith("weftctl: "));

  ASSERT_EQ(WeftctlAsIs({"--help"}), kOk);
  EXPECT_THAT(out_, HasSubstr("leases list"));
  EXPECT_THAT(out_, HasSubstr("Exit status"));
  EXPECT_THAT(out_, ::testing::Not(HasSubstr("--flagfile")));
  ASSERT_EQ(WeftctlAsIs({"version"}), kOk);
  EXPECT_THAT(out_, StartsWith("weftctl "));
}

}  // namespace
}  // namespace weft::weftctl
