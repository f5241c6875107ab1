#pragma once
// What the acquisition benchmarks share: one AcquireLease request per new node,
// and several client connections to the controller.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "grpcpp/grpcpp.h"
#include "proto/weft/v1/weft.grpc.pb.h"

namespace weft::bench {

// Node i: its name, a public IP and a VTEP MAC of its own.
inline weft::v1::AcquireLeaseRequest AcquireRequestFor(int64_t i) {
  weft::v1::AcquireLeaseRequest r;
  r.set_node_name(absl::StrCat("n", i));
  r.set_public_ip(absl::StrFormat("100.%d.%d.%d", 64 + (i >> 16) % 64, (i >> 8) & 0xff, i & 0xff));
  r.set_backend_type("vxlan");
  r.set_backend_data(absl::StrFormat(R"({"VNI":1,"VtepMAC":"02:00:00:%02x:%02x:%02x"})", (i >> 16) & 0xff,
                                     (i >> 8) & 0xff, i & 0xff));
  return r;
}

// `n` stubs on `n` distinct connections: one HTTP/2 connection would serialize
// the clients.
inline std::vector<std::unique_ptr<weft::v1::LeaseService::Stub>> LeaseStubs(const std::string& addr, int n = 8) {
  std::vector<std::unique_ptr<weft::v1::LeaseService::Stub>> stubs;
  for (int i = 0; i < n; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("weft.bench.channel", i);  // distinct args => distinct connections
    stubs.push_back(
        weft::v1::LeaseService::NewStub(grpc::CreateCustomChannel(addr, grpc::InsecureChannelCredentials(), args)));
  }
  return stubs;
}

}  // namespace weft::bench
