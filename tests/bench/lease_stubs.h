#pragma once
// What the acquisition benchmarks share: one AcquireLease request per new node,
// several client connections to the controller, and the call itself, blocking
// or asynchronous (gRPC's callback API), as a load generator's operation.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/grpc_status.h"
#include "grpcpp/grpcpp.h"
#include "proto/weft/v1/weft.grpc.pb.h"
#include "tests/bench/closed_loop.h"

namespace weft::bench {

// Node i: its name, a public IP and a VTEP MAC of its own; `dual_stack`: a
// public IPv6 address and BackendV6Data too.
inline weft::v1::AcquireLeaseRequest AcquireRequestFor(int64_t i, bool dual_stack = false) {
  weft::v1::AcquireLeaseRequest r;
  r.set_node_name(absl::StrCat("n", i));
  r.set_public_ip(absl::StrFormat("100.%d.%d.%d", 64 + (i >> 16) % 64, (i >> 8) & 0xff, i & 0xff));
  r.set_backend_type("vxlan");
  r.set_backend_data(absl::StrFormat(R"({"VNI":1,"VtepMAC":"02:00:00:%02x:%02x:%02x"})", (i >> 16) & 0xff,
                                     (i >> 8) & 0xff, i & 0xff));
  if (dual_stack) {
    r.set_public_ipv6(absl::StrFormat("fd64::%x:%x", (i >> 16) & 0xffff, i & 0xffff));
    r.set_backend_v6_data(absl::StrFormat(R"({"VNI":1,"VtepMAC":"06:00:00:%02x:%02x:%02x"})", (i >> 16) & 0xff,
                                          (i >> 8) & 0xff, i & 0xff));
  }
  return r;
}

// `n` stubs on `n` distinct connections: one HTTP/2 connection would serialize
// the clients.
// `creds`: nullptr for plaintext, else e.g. mutual TLS (common/tls_client.h).
inline std::vector<std::unique_ptr<weft::v1::LeaseService::Stub>> LeaseStubs(
    const std::string& addr, int n = 8, std::shared_ptr<grpc::ChannelCredentials> creds = nullptr) {
  if (!creds) creds = grpc::InsecureChannelCredentials();
  std::vector<std::unique_ptr<weft::v1::LeaseService::Stub>> stubs;
  for (int i = 0; i < n; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("weft.bench.channel", i);  // distinct args => distinct connections
    stubs.push_back(
        weft::v1::LeaseService::NewStub(grpc::CreateCustomChannel(addr, creds, args)));
  }
  return stubs;
}

// Starts one unary call with gRPC's callback API and hands its status and
// response to `then(status, response)` on a gRPC thread. `start(ctx, request,
// response, callback)` calls a stub's async() method; the call's state lives
// on the heap until it completes.
template <typename Resp, typename Req, typename Start, typename Then>
void CallAsync(const Start& start, Req req, std::chrono::seconds timeout, Then then) {
  struct Call {
    grpc::ClientContext ctx;
    Req req;
    Resp resp;
  };
  auto* call = new Call;
  call->ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  call->req = std::move(req);
  start(&call->ctx, &call->req, &call->resp, [call, then = std::move(then)](grpc::Status s) {
    const Resp resp = std::move(call->resp);
    delete call;  // before `then`: the run may end with it
    then(s, resp);
  });
}

using LeaseStubList = std::vector<std::unique_ptr<weft::v1::LeaseService::Stub>>;

// AcquireLease for node i, client c on stub c % stubs: blocking (RunClosedLoop)...
inline std::function<absl::Status(int, int64_t)> AcquireOp(const LeaseStubList& stubs,
                                                           std::chrono::seconds timeout, bool dual_stack = false) {
  return [&stubs, timeout, dual_stack](int c, int64_t i) -> absl::Status {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + timeout);
    weft::v1::AcquireLeaseResponse resp;
    return FromGrpcStatus(stubs[c % stubs.size()]->AcquireLease(&ctx, AcquireRequestFor(i, dual_stack), &resp));
  };
}

// ...and the same call without a thread per client (RunClosedLoopAsync).
inline AsyncOp AcquireAsyncOp(const LeaseStubList& stubs, std::chrono::seconds timeout, bool dual_stack = false) {
  return [&stubs, timeout, dual_stack](int c, int64_t i, std::function<void(absl::Status)> done) {
    const auto& stub = stubs[c % stubs.size()];
    CallAsync<weft::v1::AcquireLeaseResponse>(
        [&stub](auto&&... a) { stub->async()->AcquireLease(std::forward<decltype(a)>(a)...); },
        AcquireRequestFor(i, dual_stack), timeout,
        [done = std::move(done)](const grpc::Status& s, const weft::v1::AcquireLeaseResponse&) {
          done(FromGrpcStatus(s));
        });
  };
}

}  // namespace weft::bench
