#include "controller/limits_flags.h"

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"

ABSL_FLAG(int64_t, max_value_bytes, 64 << 10,
          "Largest backend_data / backend_v6_data value and network config accepted, in bytes.");
ABSL_FLAG(int32_t, max_json_depth, 64, "Deepest nesting of objects and arrays accepted in a JSON value.");
ABSL_FLAG(int64_t, max_request_bytes, 1536 << 10,
          "Largest gRPC request message accepted (gRPC and etcd API), in bytes; etcd's default is 1.5 MiB.");
ABSL_FLAG(int32_t, max_concurrent_streams, 256, "Concurrent calls (HTTP/2 streams) per client connection.");
ABSL_FLAG(int64_t, max_grpc_memory_bytes, 256 << 20,
          "Memory gRPC may use for requests in flight over all connections (its resource quota); beyond it "
          "gRPC reads more slowly and refuses new calls instead of growing.");
ABSL_FLAG(int32_t, max_watches_per_stream, 1000, "Watches one etcd API Watch stream may hold open.");
ABSL_FLAG(int64_t, max_range_keys, 10000,
          "Most keys in one etcd API Range answer; a larger or unlimited range answers more=true (etcd's paging).");

namespace weft::controller {
namespace {

absl::Status OutOfRange(const char* flag, int64_t v, int64_t lo, int64_t hi) {
  if (v >= lo && v <= hi) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("--", flag, " must be between ", lo, " and ", hi, ", not ", v));
}

}  // namespace

absl::StatusOr<InputLimits> InputLimitsFromFlags() {
  InputLimits l;
  const int64_t value = absl::GetFlag(FLAGS_max_value_bytes);
  const int64_t depth = absl::GetFlag(FLAGS_max_json_depth);
  const int64_t request = absl::GetFlag(FLAGS_max_request_bytes);
  const int64_t streams = absl::GetFlag(FLAGS_max_concurrent_streams);
  const int64_t grpc_memory = absl::GetFlag(FLAGS_max_grpc_memory_bytes);
  const int64_t watches = absl::GetFlag(FLAGS_max_watches_per_stream);
  const int64_t range = absl::GetFlag(FLAGS_max_range_keys);
  for (const absl::Status& s : {OutOfRange("max-value-bytes", value, 1024, 16 << 20),
                         OutOfRange("max-json-depth", depth, 2, 1000),
                         OutOfRange("max-request-bytes", request, 64 << 10, 64 << 20),
                         OutOfRange("max-concurrent-streams", streams, 1, 1 << 20),
                         OutOfRange("max-grpc-memory-bytes", grpc_memory, 16 << 20, int64_t{64} << 30),
                         OutOfRange("max-watches-per-stream", watches, 1, 1 << 20),
                         OutOfRange("max-range-keys", range, 1, 1 << 24)}) {
    if (!s.ok()) return s;
  }
  l.max_value_bytes = static_cast<size_t>(value);
  l.max_json_depth = static_cast<int>(depth);
  l.max_request_bytes = static_cast<size_t>(request);
  l.max_concurrent_streams = static_cast<int>(streams);
  l.max_grpc_memory_bytes = grpc_memory;
  l.max_watches_per_stream = static_cast<int>(watches);
  l.max_range_keys = range;
  return l;
}

}  // namespace weft::controller
