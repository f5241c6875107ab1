#pragma once
// The benches' first call: wait for the controller, set the network config
// every bench cluster uses.

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "grpcpp/grpcpp.h"
#include "proto/weft/v1/weft.grpc.pb.h"

namespace weft::bench {

inline constexpr char kBenchNetworkConfig[] = R"({"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}})";

// Waits (20 s at most) until the controller behind `ch` accepts connections,
// then sets `config` through it; false (with the reason on stderr) otherwise.
inline bool ConnectAndConfigure(const std::shared_ptr<grpc::Channel>& ch,
                                const std::string& config = kBenchNetworkConfig) {
  if (!ch->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(20))) {
    std::fprintf(stderr, "controller did not start\n");
    return false;
  }
  auto net = weft::v1::NetworkService::NewStub(ch);
  grpc::ClientContext ctx;
  weft::v1::SetNetworkConfigRequest req;
  req.set_config(config);
  weft::v1::SetNetworkConfigResponse resp;
  const grpc::Status s = net->SetNetworkConfig(&ctx, req, &resp);
  if (!s.ok()) std::fprintf(stderr, "SetNetworkConfig: %s\n", s.error_message().c_str());
  return s.ok();
}

}  // namespace weft::bench
