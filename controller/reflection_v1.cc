#include "controller/reflection_v1.h"

#include <set>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "proto/grpc/health/v1/health.pb.h"

namespace weft::controller {
namespace {

using grpc::reflection::v1::ServerReflectionRequest;
using grpc::reflection::v1::ServerReflectionResponse;
namespace pb = google::protobuf;

void Error(grpc::StatusCode code, const std::string& message, ServerReflectionResponse* response) {
  response->mutable_error_response()->set_error_code(static_cast<int32_t>(code));
  response->mutable_error_response()->set_error_message(message);
}

// `file` and, once each, every file it imports (as gRPC's v1alpha answers).
void AddFile(const pb::FileDescriptor* file, std::set<const pb::FileDescriptor*>* seen,
             ServerReflectionResponse* response) {
  std::vector<const pb::FileDescriptor*> todo = {file};
  while (!todo.empty()) {
    const pb::FileDescriptor* f = todo.back();
    todo.pop_back();
    if (!seen->insert(f).second) continue;
    pb::FileDescriptorProto proto;
    f->CopyTo(&proto);
    proto.SerializeToString(response->mutable_file_descriptor_response()->add_file_descriptor_proto());
    for (int i = 0; i < f->dependency_count(); ++i) todo.push_back(f->dependency(i));
  }
}

class Reactor final : public grpc::ServerBidiReactor<ServerReflectionRequest, ServerReflectionResponse> {
 public:
  explicit Reactor(const ReflectionV1Service* service) : service_(service) { StartRead(&request_); }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client closed its side: done
      Finish(grpc::Status::OK);
      return;
    }
    response_.Clear();
    service_->Answer(request_, &response_);
    StartWrite(&response_);
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
      return;
    }
    StartRead(&request_);
  }
  void OnDone() override { delete this; }

 private:
  const ReflectionV1Service* service_;
  ServerReflectionRequest request_;
  ServerReflectionResponse response_;
};

}  // namespace

ReflectionV1Service::ReflectionV1Service(std::vector<std::string> services) : services_(std::move(services)) {
  // Links (and registers) the Health service's descriptors.
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
}

grpc::ServerBidiReactor<ServerReflectionRequest, ServerReflectionResponse>* ReflectionV1Service::ServerReflectionInfo(
    grpc::CallbackServerContext*) {
  return new Reactor(this);
}

void ReflectionV1Service::Answer(const ServerReflectionRequest& request, ServerReflectionResponse* response) const {
  const pb::DescriptorPool* pool = pb::DescriptorPool::generated_pool();
  response->set_valid_host(request.host());
  *response->mutable_original_request() = request;
  std::set<const pb::FileDescriptor*> seen;
  switch (request.message_request_case()) {
    case ServerReflectionRequest::kListServices:
      for (const std::string& s : services_) response->mutable_list_services_response()->add_service()->set_name(s);
      return;
    case ServerReflectionRequest::kFileByFilename: {
      const pb::FileDescriptor* f = pool->FindFileByName(request.file_by_filename());
      if (f == nullptr) return Error(grpc::StatusCode::NOT_FOUND, "File not found.", response);
      return AddFile(f, &seen, response);
    }
    case ServerReflectionRequest::kFileContainingSymbol: {
      const pb::FileDescriptor* f = pool->FindFileContainingSymbol(request.file_containing_symbol());
      if (f == nullptr) return Error(grpc::StatusCode::NOT_FOUND, "Symbol not found.", response);
      return AddFile(f, &seen, response);
    }
    case ServerReflectionRequest::kFileContainingExtension: {
      const pb::Descriptor* type = pool->FindMessageTypeByName(request.file_containing_extension().containing_type());
      if (type == nullptr) return Error(grpc::StatusCode::NOT_FOUND, "Type not found.", response);
      const pb::FieldDescriptor* ext =
          pool->FindExtensionByNumber(type, request.file_containing_extension().extension_number());
      if (ext == nullptr) return Error(grpc::StatusCode::NOT_FOUND, "Extension not found.", response);
      return AddFile(ext->file(), &seen, response);
    }
    case ServerReflectionRequest::kAllExtensionNumbersOfType: {
      const pb::Descriptor* type = pool->FindMessageTypeByName(request.all_extension_numbers_of_type());
      if (type == nullptr) return Error(grpc::StatusCode::NOT_FOUND, "Type not found.", response);
      std::vector<const pb::FieldDescriptor*> exts;
      pool->FindAllExtensions(type, &exts);
      auto* out = response->mutable_all_extension_numbers_response();
      out->set_base_type_name(type->full_name());
      for (const pb::FieldDescriptor* e : exts) out->add_extension_number(e->number());
      return;
    }
    case ServerReflectionRequest::MESSAGE_REQUEST_NOT_SET:
      return Error(grpc::StatusCode::UNIMPLEMENTED, "The server does not support this request.", response);
  }
}

}  // namespace weft::controller
