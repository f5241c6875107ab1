#pragma once
// absl::Status <-> grpc::Status. Both carry gRPC's canonical codes, with the
// same numbers, so a code converts as it is; the message too unless given.
// Header-only and without a Bazel dependency on gRPC: its users have their own
// (the agent links a static gRPC of its own, common/BUILD.bazel).

#include <string>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace weft {

inline grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

inline absl::Status FromGrpcStatus(const grpc::Status& s, std::string message) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), message);
}

inline absl::Status FromGrpcStatus(const grpc::Status& s) { return FromGrpcStatus(s, s.error_message()); }

}  // namespace weft
