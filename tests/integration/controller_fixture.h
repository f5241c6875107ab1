#pragma once
// The real weft-controller binary as a test fixture, on a free loopback port.

#include <sys/wait.h>

#include <cstdlib>
#include <memory>
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

  // Starts the binary with `extra` flags and waits for gRPC to answer.
  void Start(const std::vector<std::string>& extra = {}) {
    port_ = FreePort();
    const std::string log = absl::StrCat(std::getenv("TEST_TMPDIR"), "/controller.log");
    std::vector<std::string> argv = {Runfile("controller/weft-controller"), "--data-dir", data_dir_, "--listen",
                                     absl::StrCat("127.0.0.1:", port_), "--metrics-listen", ""};
    argv.insert(argv.end(), extra.begin(), extra.end());
    ASSERT_TRUE(proc_.Start(argv, log));
    channel_ = grpc::CreateChannel(addr(), grpc::InsecureChannelCredentials());
    ASSERT_TRUE(channel_->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(20)))
        << "controller did not come up; see " << log;
    leases_ = weft::v1::LeaseService::NewStub(channel_);
    network_ = weft::v1::NetworkService::NewStub(channel_);
  }
  void Kill9() {
    proc_.Kill(SIGKILL);
    proc_.Wait();
  }
  void Stop() {
    proc_.Kill(SIGTERM);
    int status = proc_.Wait();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  }
  std::string addr() const { return absl::StrCat("127.0.0.1:", port_); }
  pid_t pid() const { return proc_.pid(); }
  bool running() const { return proc_.running(); }
  weft::v1::LeaseService::Stub* leases() { return leases_.get(); }
  weft::v1::NetworkService::Stub* network() { return network_.get(); }
  std::shared_ptr<grpc::Channel> channel() { return channel_; }

 private:
  std::string data_dir_;
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

inline std::string DataDir(const char* name) { return absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name); }

}  // namespace weft::testing
