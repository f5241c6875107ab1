// MakeChannelCredentials against a real gRPC server requiring mutual TLS, with
// certificates made by tools/certs.sh (real openssl) inside the test.
#include "common/tls_client.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/testing.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"
#include "gtest/gtest.h"
#include "proto/weft/v1/weft.grpc.pb.h"

namespace weft {
namespace {

using ::testing::HasSubstr;

// The suite's certificates, from SetUpTestSuite to TearDownTestSuite.
TempDir* g_certs_dir = nullptr;

std::string Dir() { return g_certs_dir->path(); }

void Certs(const std::string& args) {
  std::string cmd = absl::StrCat("tools/certs.sh --dir ", Dir(), " ", args, " >/dev/null");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

std::string F(const std::string& name) { return absl::StrCat(Dir(), "/", name); }

// Answers GetNetworkConfig with the caller's certificate common name.
class EchoIdentity final : public weft::v1::NetworkService::Service {
  grpc::Status GetNetworkConfig(grpc::ServerContext* ctx, const weft::v1::GetNetworkConfigRequest*,
                                weft::v1::GetNetworkConfigResponse* resp) override {
    for (const auto& v : ctx->auth_context()->FindPropertyValues("x509_common_name")) {
      resp->set_config(std::string(v.data(), v.size()));
    }
    return grpc::Status::OK;
  }
};

class TlsClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    g_certs_dir = new TempDir("tls_client_test_certs");
    Certs("ca");
    Certs("server controller IP:127.0.0.1,DNS:localhost");
    Certs("node n1");
    Certs("node n2");
    Certs("--expired node old");
    Certs("--ca other ca");
    Certs("--ca other node stranger");
  }
  static void TearDownTestSuite() {
    delete g_certs_dir;
    g_certs_dir = nullptr;
  }

  void SetUp() override {
    auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
        F("controller.key"), F("controller.crt"), F("ca.crt"), 1);
    grpc::experimental::TlsServerCredentialsOptions options(provider);
    options.watch_root_certs();
    options.watch_identity_key_cert_pairs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::experimental::TlsServerCredentials(options), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
  }
  void TearDown() override { server_->Shutdown(); }

  grpc::Status Call(const std::shared_ptr<grpc::ChannelCredentials>& creds, std::string* identity,
                    const std::string& host = "127.0.0.1") {
    auto stub = weft::v1::NetworkService::NewStub(grpc::CreateChannel(absl::StrCat(host, ":", port_), creds));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    weft::v1::GetNetworkConfigResponse resp;
    grpc::Status s = stub->GetNetworkConfig(&ctx, {}, &resp);
    if (identity) *identity = resp.config();
    return s;
  }

  EchoIdentity service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(TlsClientTest, MutualTlsCarriesTheNodeIdentity) {
  auto creds = MakeChannelCredentials({F("ca.crt"), F("node-n1.crt"), F("node-n1.key")});
  ASSERT_TRUE(creds.ok()) << creds.status();
  std::string identity;
  grpc::Status s = Call(*creds, &identity);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(identity, "system:node:n1");
}

TEST_F(TlsClientTest, ServerNameIsChecked) {
  // The server certificate names 127.0.0.1 and localhost, not 127.0.0.2.
  auto creds = MakeChannelCredentials({F("ca.crt"), F("node-n1.crt"), F("node-n1.key")});
  ASSERT_TRUE(creds.ok());
  grpc::Status s = Call(*creds, nullptr, "127.0.0.2");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsClientTest, PlaintextClientIsRefusedAndSaidSo) {
  auto creds = MakeChannelCredentials({});
  ASSERT_TRUE(creds.ok());
  grpc::Status s = Call(*creds, nullptr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(DescribeRpcError(s, /*tls_on=*/false), HasSubstr("mutual TLS")) << s.error_message();
  EXPECT_THAT(DescribeRpcError(s, false), HasSubstr("(UNAVAILABLE)"));  // the code by name, not number
  EXPECT_STREQ(RpcCodeName(grpc::StatusCode::DEADLINE_EXCEEDED), "DEADLINE_EXCEEDED");
}

TEST_F(TlsClientTest, CertificateOfAnotherCaIsRefused) {
  auto creds = MakeChannelCredentials({F("ca.crt"), F("node-stranger.crt"), F("node-stranger.key")});
  ASSERT_TRUE(creds.ok()) << creds.status();
  grpc::Status s = Call(*creds, nullptr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(DescribeRpcError(s, true), HasSubstr("TLS")) << s.error_message();
}

TEST_F(TlsClientTest, ServerOfAnotherCaIsRefused) {
  auto creds = MakeChannelCredentials({F("other.crt"), F("node-stranger.crt"), F("node-stranger.key")});
  ASSERT_TRUE(creds.ok()) << creds.status();
  grpc::Status s = Call(*creds, nullptr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(DescribeRpcError(s, true), HasSubstr("TLS handshake")) << s.error_message();
}

TEST_F(TlsClientTest, ExpiredCertificateIsLoadedButRefusedByTheServer) {
  auto creds = MakeChannelCredentials({F("ca.crt"), F("node-old.crt"), F("node-old.key")});
  ASSERT_TRUE(creds.ok()) << creds.status();
  EXPECT_FALSE(Call(*creds, nullptr).ok());
  absl::StatusOr<CertificateInfo> info = ReadCertificateInfo(F("node-old.crt"));
  ASSERT_TRUE(info.ok());
  EXPECT_THAT(ValidityProblem(*info, absl::Now()), HasSubstr("expired at "));
  EXPECT_EQ(info->subject, "CN=system:node:old,O=system:nodes");
}

TEST_F(TlsClientTest, RotatedClientCertificateIsUsedWithoutRestart) {
  const std::string dir = F("rotating");
  ASSERT_EQ(std::system(absl::StrCat("mkdir -p ", dir, " && cp ", F("node-n1.crt"), " ", dir, "/c.crt && cp ",
                                     F("node-n1.key"), " ", dir, "/c.key")
                            .c_str()),
            0);
  auto creds = MakeChannelCredentials({F("ca.crt"), dir + "/c.crt", dir + "/c.key"}, absl::Seconds(1));
  ASSERT_TRUE(creds.ok()) << creds.status();
  std::string identity;
  ASSERT_TRUE(Call(*creds, &identity).ok());
  EXPECT_EQ(identity, "system:node:n1");
  // Swap both files (key first would mismatch for a moment: gRPC keeps the old pair until both agree).
  ASSERT_EQ(std::system(absl::StrCat("cp ", F("node-n2.crt"), " ", dir, "/c.crt.new && cp ", F("node-n2.key"), " ",
                                     dir, "/c.key.new && mv ", dir, "/c.key.new ", dir, "/c.key && mv ", dir,
                                     "/c.crt.new ", dir, "/c.crt")
                            .c_str()),
            0);
  Eventually([&] { return Call(*creds, &identity).ok() && identity == "system:node:n2"; }, absl::Seconds(20));
  EXPECT_EQ(identity, "system:node:n2");
}

TEST(TlsClientFilesTest, ClearErrors) {
  EXPECT_FALSE(TlsClientFiles{}.enabled());
  auto missing = MakeChannelCredentials({"/nonexistent/ca.crt", "", ""});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.status().message(), HasSubstr("/nonexistent/ca.crt"));

  auto no_ca = MakeChannelCredentials({"", "c.crt", "c.key"});
  EXPECT_THAT(no_ca.status().message(), HasSubstr("without a CA"));
  auto no_key = MakeChannelCredentials({"ca.crt", "c.crt", ""});
  EXPECT_THAT(no_key.status().message(), HasSubstr("without its key"));

  const std::string junk = absl::StrCat(std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR") : "/tmp", "/junk.pem");
  std::ofstream(junk) << "not a certificate\n";
  auto bad = MakeChannelCredentials({junk, "", ""});
  EXPECT_THAT(bad.status().message(), HasSubstr("no PEM certificate"));
}

TEST_F(TlsClientTest, KeyOfAnotherCertificateIsAClearError) {
  auto creds = MakeChannelCredentials({F("ca.crt"), F("node-n1.crt"), F("node-n2.key")});
  EXPECT_EQ(creds.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(creds.status().message(), HasSubstr("does not belong to certificate"));
}

}  // namespace
}  // namespace weft
