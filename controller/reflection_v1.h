#pragma once
// gRPC server reflection v1 (grpc.reflection.v1.ServerReflection), which
// Debian's libgrpc++_reflection 1.51 does not have (it serves v1alpha only):
// the same answers as gRPC's v1alpha service, from the process's generated
// descriptor pool, so grpcurl, Postman and current grpc_cli, which ask v1
// first, describe the controller.
//
// Linking this also registers grpc.health.v1's descriptors (proto/grpc/health),
// so both reflection versions describe the Health service gRPC serves.
//
// Thread-safe; the service list is fixed at construction. Each stream answers
// one request at a time, in order (callback API, no thread held).

#include <string>
#include <vector>

#include "proto/grpc/reflection/v1/reflection.grpc.pb.h"

namespace weft::controller {

class ReflectionV1Service final : public grpc::reflection::v1::ServerReflection::CallbackService {
 public:
  // `services`: the full names list_services reports.
  explicit ReflectionV1Service(std::vector<std::string> services);

  grpc::ServerBidiReactor<grpc::reflection::v1::ServerReflectionRequest,
                          grpc::reflection::v1::ServerReflectionResponse>*
  ServerReflectionInfo(grpc::CallbackServerContext* context) override;

  // The answer to one request (the unit the stream repeats; tests call it directly).
  void Answer(const grpc::reflection::v1::ServerReflectionRequest& request,
              grpc::reflection::v1::ServerReflectionResponse* response) const;

 private:
  std::vector<std::string> services_;
};

}  // namespace weft::controller
