#pragma once
// The real weft-controller binary as a test fixture, on a free loopback port;
// optionally with mutual TLS (UseTls), certificates made by tools/certs.sh.

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/weft/v1/weft.grpc.pb.h"
#include "tests/integration/process.h"

namespace weft::testing {

class Controller {
 public:
  explicit Controller(std::string data_dir) : data_dir_(std::move(data_dir)) {}

  // Before Start: serve mutual TLS with DIR/SERVER.crt/.key, clients checked
  // against DIR/ca.crt; the fixture's own channel presents DIR/CLIENT.crt/.key.
  void UseTls(std::string dir, std::string server = "server", std::string client = "admin") {
    cert_dir_ = std::move(dir);
    server_cert_ = std::move(server);
    client_cert_ = std::move(client);
  }

  // Before Start: listen on this loopback address instead of 127.0.0.1 ("::1").
  void ListenOn(std::string host) { host_ = std::move(host); }

  // Starts the binary with `extra` flags and waits for gRPC to answer.
  void Start(const std::vector<std::string>& extra = {}) {
    port_ = FreePort();
    Launch(extra);
  }
  // Starts it again after Kill9 or Stop, on the same port and data.
  void Restart(const std::vector<std::string>& extra = {}) { Launch(extra); }
  // Sends `sig` (SIGSTOP, SIGCONT...) without waiting.
  void Signal(int sig) { proc_.Kill(sig); }
  // Waits for the process to exit by itself; its wait status.
  int WaitExit() { return proc_.Wait(); }
  void Kill9() {
    proc_.Kill(SIGKILL);
    proc_.Wait();
  }
  void Stop() {
    proc_.Kill(SIGTERM);
    int status = proc_.Wait();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  }
  int port() const { return port_; }
  std::string addr() const {
    return host_.find(':') == std::string::npos ? absl::StrCat(host_, ":", port_) : absl::StrCat("[", host_, "]:", port_);
  }
  std::string log_path() const { return absl::StrCat(std::getenv("TEST_TMPDIR"), "/controller.log"); }
  // A new TLS channel to the controller presenting DIR/CLIENT.crt/.key (the CA
  // of UseTls verifies the server).
  std::shared_ptr<grpc::Channel> Channel(const std::string& client) const {
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = ReadFile(absl::StrCat(cert_dir_, "/ca.crt"));
    o.pem_cert_chain = ReadFile(absl::StrCat(cert_dir_, "/", client, ".crt"));
    o.pem_private_key = ReadFile(absl::StrCat(cert_dir_, "/", client, ".key"));
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own
    return grpc::CreateCustomChannel(addr(), grpc::SslCredentials(o), args);
  }
  static std::string ReadFile(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  pid_t pid() const { return proc_.pid(); }
  bool running() const { return proc_.running(); }
  weft::v1::LeaseService::Stub* leases() { return leases_.get(); }
  weft::v1::NetworkService::Stub* network() { return network_.get(); }
  std::shared_ptr<grpc::Channel> channel() { return channel_; }

 private:
  void Launch(const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {Runfile("controller/weft-controller"), "--data-dir", data_dir_, "--listen",
                                     addr(), "--metrics-listen", ""};
    if (!cert_dir_.empty()) {
      argv.insert(argv.end(), {"--tls-cert-file", absl::StrCat(cert_dir_, "/", server_cert_, ".crt"), "--tls-key-file",
                               absl::StrCat(cert_dir_, "/", server_cert_, ".key"), "--tls-client-ca-file",
                               absl::StrCat(cert_dir_, "/ca.crt")});
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    ASSERT_TRUE(proc_.Start(argv, log_path()));
    const std::string log = log_path();
    channel_ = cert_dir_.empty() ? grpc::CreateChannel(addr(), grpc::InsecureChannelCredentials())
                                 : Channel(client_cert_);
    ASSERT_TRUE(channel_->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(20)))
        << "controller did not come up; see " << log;
    leases_ = weft::v1::LeaseService::NewStub(channel_);
    network_ = weft::v1::NetworkService::NewStub(channel_);
  }

  std::string data_dir_;
  std::string host_ = "127.0.0.1";
  std::string cert_dir_, server_cert_, client_cert_;
  int port_ = 0;
  Process proc_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<weft::v1::LeaseService::Stub> leases_;
  std::unique_ptr<weft::v1::NetworkService::Stub> network_;
};

inline std::unique_ptr<grpc::ClientContext> Ctx(int seconds = 10) {
  auto c = std::make_unique<grpc::ClientContext>();
  c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return c;
}

// Every lease, following ListLeases' pages; a failed page fails the test.
inline std::vector<weft::v1::Lease> ListAll(weft::v1::LeaseService::Stub* leases) {
  std::vector<weft::v1::Lease> out;
  weft::v1::ListLeasesRequest req;
  do {
    weft::v1::ListLeasesResponse page;
    grpc::Status s = leases->ListLeases(Ctx().get(), req, &page);
    EXPECT_TRUE(s.ok()) << s.error_message();
    if (!s.ok()) break;
    out.insert(out.end(), page.leases().begin(), page.leases().end());
    req.set_page_token(page.next_page_token());
  } while (!req.page_token().empty());
  return out;
}

inline std::string DataDir(const char* name) { return absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name); }

}  // namespace weft::testing
