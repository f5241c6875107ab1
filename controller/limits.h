#pragma once
// Bounds on what a client can make the controller hold or do. Each is a flag
// (controller/limits_flags.cc) with a default generous for flannel's data
// (leases' BackendData and network configs are a few hundred bytes) and small
// enough that memory stays bounded whatever a client sends. Errors name the flag.

#include <cstddef>
#include <cstdint>

#include "common/json.h"

namespace weft::controller {

struct InputLimits {
  size_t max_value_bytes = 64 << 10;       // --max-value-bytes: backend_data(_v6), network config
  int max_json_depth = 64;                 // --max-json-depth
  size_t max_request_bytes = 1536 << 10;   // --max-request-bytes: one gRPC message (etcd's 1.5 MiB)
  int max_concurrent_streams = 256;        // --max-concurrent-streams: per HTTP/2 connection
  int64_t max_grpc_memory_bytes = 256 << 20;  // --max-grpc-memory-bytes: gRPC's buffers, all connections
  int max_watches_per_stream = 1000;       // --max-watches-per-stream: etcd API Watch stream
  int64_t max_range_keys = 10000;          // --max-range-keys: etcd API Range answer (then more=true)
};

// The limits in force. Set once by main before serving; defaults otherwise (tests).
const InputLimits& Limits();
void SetLimits(const InputLimits& limits);

// For a client-supplied JSON value (backend_data, a network config).
json::Limits ValueJsonLimits();
// For a lease value read from the store: two BackendData fields and the rest.
json::Limits LeaseJsonLimits();

}  // namespace weft::controller
