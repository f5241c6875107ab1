#pragma once
// The benches' first call: the network config every bench cluster uses.

#include <cstdio>
#include <string>

#include "grpcpp/grpcpp.h"
#include "proto/weft/v1/weft.grpc.pb.h"

namespace weft::bench {

inline constexpr char kBenchNetworkConfig[] = R"({"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}})";

// Sets `config` through `net`; false (with the reason on stderr) when refused.
inline bool SetNetworkConfig(weft::v1::NetworkService::StubInterface* net,
                             const std::string& config = kBenchNetworkConfig) {
  grpc::ClientContext ctx;
  weft::v1::SetNetworkConfigRequest req;
  req.set_config(config);
  weft::v1::SetNetworkConfigResponse resp;
  const grpc::Status s = net->SetNetworkConfig(&ctx, req, &resp);
  if (!s.ok()) std::fprintf(stderr, "SetNetworkConfig: %s\n", s.error_message().c_str());
  return s.ok();
}

}  // namespace weft::bench
