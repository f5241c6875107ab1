#pragma once
// Lame-duck mode for shutdown. gRPC cancels (CANCELLED) every call that reaches
// a server after its Shutdown() began; docs/api.md promises UNAVAILABLE. So at
// SIGTERM the controller first closes this gate: for a drain period the
// connections stay open and every new call is answered UNAVAILABLE (clients
// retry on another replica), calls in flight finish; only then Shutdown().

#include <atomic>

#include "grpcpp/grpcpp.h"

namespace weft::controller {

class DrainGate {
 public:
  void Close() { closed_.store(true); }
  bool closed() const { return closed_.load(std::memory_order_relaxed); }
  static grpc::Status Refusal() {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "weft-controller is shutting down: retry (on another replica if there is one)");
  }

 private:
  std::atomic<bool> closed_{false};
};

}  // namespace weft::controller
