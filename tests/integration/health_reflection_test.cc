// The real controller's gRPC health service, per service, and server
// reflection v1 and v1alpha: every service listed can be described, down to its
// methods, from the files reflection returns (as grpcurl does).

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/testing.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/descriptor_database.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/grpc/health/v1/health.grpc.pb.h"
#include "proto/grpc/reflection/v1/reflection.grpc.pb.h"
#include "tests/integration/controller_fixture.h"

namespace weft::testing {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using grpc::reflection::v1::ServerReflectionRequest;
using grpc::reflection::v1::ServerReflectionResponse;

// Check(service): the status, or -1 when the call fails.
int Health(const std::shared_ptr<grpc::Channel>& channel, const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  HealthCheckRequest req;
  req.set_service(service);
  HealthCheckResponse resp;
  grpc::Status s = stub->Check(Ctx(5).get(), req, &resp);
  return s.ok() ? static_cast<int>(resp.status()) : -1;
}

// One reflection stream, on the v1 or the v1alpha method (their messages are
// the same field for field, so v1's generated classes serve both).
class Reflection {
 public:
  Reflection(const std::shared_ptr<grpc::Channel>& channel, const std::string& version)
      : method_(("/grpc.reflection." + version + ".ServerReflection/ServerReflectionInfo").c_str(),
                grpc::internal::RpcMethod::BIDI_STREAMING, channel) {
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    stream_.reset(grpc::internal::ClientReaderWriterFactory<ServerReflectionRequest, ServerReflectionResponse>::Create(
        channel.get(), method_, &ctx_));
  }
  ~Reflection() {
    stream_->WritesDone();
    grpc::Status s = stream_->Finish();
    EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  }
  ServerReflectionResponse Ask(const ServerReflectionRequest& req) {
    ServerReflectionResponse resp;
    EXPECT_TRUE(stream_->Write(req));
    EXPECT_TRUE(stream_->Read(&resp));
    return resp;
  }

 private:
  grpc::internal::RpcMethod method_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<ServerReflectionRequest, ServerReflectionResponse>> stream_;
};

// Lists the services over `version`, describes each from the files returned,
// and returns the names of those fully described (methods with their types).
std::vector<std::string> DescribeAll(const std::shared_ptr<grpc::Channel>& channel, const std::string& version) {
  Reflection r(channel, version);
  ServerReflectionRequest list;
  list.set_list_services("");
  ServerReflectionResponse listed = r.Ask(list);
  EXPECT_TRUE(listed.has_list_services_response()) << version << ": " << listed.DebugString();
  std::vector<std::string> described;
  for (const auto& svc : listed.list_services_response().service()) {
    ServerReflectionRequest req;
    req.set_file_containing_symbol(svc.name());
    ServerReflectionResponse resp = r.Ask(req);
    EXPECT_TRUE(resp.has_file_descriptor_response())
        << version << " cannot describe " << svc.name() << ": " << resp.error_response().error_message();
    google::protobuf::SimpleDescriptorDatabase db;
    for (const std::string& bytes : resp.file_descriptor_response().file_descriptor_proto()) {
      google::protobuf::FileDescriptorProto file;
      EXPECT_TRUE(file.ParseFromString(bytes));
      db.Add(file);
    }
    google::protobuf::DescriptorPool pool(&db);
    const google::protobuf::ServiceDescriptor* d = pool.FindServiceByName(svc.name());
    EXPECT_NE(d, nullptr) << version << ": " << svc.name() << " not in the files returned";
    if (d == nullptr || d->method_count() == 0) continue;
    bool typed = true;
    for (int i = 0; i < d->method_count(); ++i) {
      typed &= d->method(i)->input_type() != nullptr && d->method(i)->output_type() != nullptr;
    }
    if (typed) described.push_back(svc.name());
  }
  // An unknown symbol is an error answer (NOT_FOUND), not a broken stream.
  ServerReflectionRequest bad;
  bad.set_file_containing_symbol("no.such.Service");
  ServerReflectionResponse resp = r.Ask(bad);
  EXPECT_EQ(resp.error_response().error_code(), static_cast<int>(grpc::StatusCode::NOT_FOUND)) << version;
  return described;
}

TEST(HealthReflectionTest, EveryServiceHealthyAndDescribedByBothReflectionVersions) {
  Controller c(DataDir("health_reflection"));
  const int etcd_port = FreePort();
  c.Start({"--etcd-listen", absl::StrCat("127.0.0.1:", etcd_port), "--shutdown-drain", "5s"});
  for (const std::string s : {"", "weft.v1.LeaseService", "weft.v1.NetworkService", "etcdserverpb.KV"}) {
    EXPECT_EQ(Health(c.channel(), s), HealthCheckResponse::SERVING) << "service \"" << s << "\"";
  }
  EXPECT_EQ(Health(c.channel(), "no.such.Service"), -1);  // NOT_FOUND

  const std::vector<std::string> every = {"weft.v1.LeaseService",
                                          "weft.v1.NetworkService",
                                          "grpc.health.v1.Health",
                                          "grpc.reflection.v1.ServerReflection",
                                          "grpc.reflection.v1alpha.ServerReflection",
                                          "etcdserverpb.KV",
                                          "etcdserverpb.Watch",
                                          "etcdserverpb.Lease",
                                          "etcdserverpb.Cluster",
                                          "etcdserverpb.Maintenance"};
  for (const std::string version : {"v1", "v1alpha"}) {
    std::vector<std::string> described = DescribeAll(c.channel(), version);
    for (const std::string& s : every) {
      EXPECT_NE(std::find(described.begin(), described.end(), s), described.end())
          << "reflection " << version << " does not describe " << s;
    }
  }

  // SIGTERM: every status turns NOT_SERVING while calls in flight drain.
  c.Signal(SIGTERM);
  Eventually([&] { return Health(c.channel(), "") == HealthCheckResponse::NOT_SERVING; }, absl::Seconds(4));
  EXPECT_EQ(Health(c.channel(), ""), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(Health(c.channel(), "weft.v1.LeaseService"), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(Health(c.channel(), "weft.v1.NetworkService"), HealthCheckResponse::NOT_SERVING);
  const int status = c.WaitExit();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

}  // namespace
}  // namespace weft::testing
