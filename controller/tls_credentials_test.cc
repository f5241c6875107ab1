#include "controller/tls_credentials.h"

#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace weft::controller {
namespace {

TEST(TlsCredentialsTest, LoopbackListenAddresses) {
  for (const char* addr : {"127.0.0.1:7800", "127.1.2.3:1", "[::1]:7800", "localhost:7800", "unix:/run/weft.sock",
                           "unix-abstract:weft"}) {
    EXPECT_TRUE(IsLoopbackListen(addr)) << addr;
  }
  for (const char* addr : {"0.0.0.0:7800", ":7800", "[::]:7800", "10.0.0.1:7800", "[fd00::1]:7800",
                           "weft.example:7800", "ipv4:127.0.0.1:7800", "garbage"}) {
    EXPECT_FALSE(IsLoopbackListen(addr)) << addr;
  }
}

class CertFilesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(absl::StrCat(getenv("TEST_TMPDIR"), "/certs"));
    for (std::string cmd : {"ca", "server server IP:127.0.0.1", "--expired server old IP:127.0.0.1",
                            "--not-yet-valid server future IP:127.0.0.1", "admin"}) {
      ASSERT_EQ(system(absl::StrCat("tools/certs.sh --dir ", *dir_, " ", cmd, " >/dev/null").c_str()), 0) << cmd;
    }
  }
  static std::string F(const std::string& name) { return absl::StrCat(*dir_, "/", name); }
  static ServerTlsOptions Options(const std::string& cert, const std::string& key, const std::string& ca) {
    ServerTlsOptions o;
    o.cert_file = F(cert);
    o.key_file = F(key);
    o.client_ca_file = F(ca);
    return o;
  }
  static std::string* dir_;
};
std::string* CertFilesTest::dir_ = nullptr;

TEST_F(CertFilesTest, ValidityWindow) {
  auto now = ReadCertFile(F("server.crt"));
  ASSERT_TRUE(now.ok()) << now.status();
  EXPECT_EQ(now->subject, "CN=server,O=weft");
  EXPECT_FALSE(now->serial_hex.empty());
  EXPECT_TRUE(CheckValidity(*now, absl::Now()).ok());
  auto old = ReadCertFile(F("old.crt"));
  ASSERT_TRUE(old.ok());
  absl::Status s = CheckValidity(*old, absl::Now());
  EXPECT_TRUE(absl::StrContains(s.message(), "expired at")) << s;
  auto future = ReadCertFile(F("future.crt"));
  ASSERT_TRUE(future.ok());
  s = CheckValidity(*future, absl::Now());
  EXPECT_TRUE(absl::StrContains(s.message(), "not valid yet")) << s;
  EXPECT_TRUE(absl::IsNotFound(ReadCertFile(F("none.crt")).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ReadCertFile(F("server.key")).status()));
}

TEST_F(CertFilesTest, CredentialsCheckTheirFiles) {
  EXPECT_TRUE(MakeServerCredentials(Options("server.crt", "server.key", "ca.crt")).ok());
  struct Case {
    ServerTlsOptions o;
    std::string says;
  } cases[] = {
      {Options("none.crt", "server.key", "ca.crt"), "--tls-cert-file"},
      {Options("server.crt", "none.key", "ca.crt"), "--tls-key-file"},
      {Options("server.crt", "server.crt", "ca.crt"), "not a PEM private key"},
      {Options("server.crt", "admin.key", "ca.crt"), "is not the key of"},
      {Options("old.crt", "old.key", "ca.crt"), "expired at"},
      {Options("future.crt", "future.key", "ca.crt"), "not valid yet"},
      {Options("server.crt", "server.key", "none.crt"), "--tls-client-ca-file"},
      {Options("server.crt", "server.key", "admin.crt"), "is not a CA"},
  };
  for (const Case& c : cases) {
    auto creds = MakeServerCredentials(c.o);
    ASSERT_FALSE(creds.ok()) << c.says;
    EXPECT_TRUE(absl::StrContains(creds.status().message(), c.says)) << creds.status();
  }
}

}  // namespace
}  // namespace weft::controller
