#pragma once
// What weftctl prints, as pure functions of the controller's answers: tables
// (columns aligned), wide tables, JSON (one line) and YAML. Every result ends
// with a newline.

#include <string>
#include <vector>

#include "common/json.h"
#include "grpcpp/support/status.h"
#include "proto/weft/v1/weft.pb.h"
#include "tools/weftctl/invocation.h"

namespace weft::weftctl {

// Columns as wide as their widest cell (the last one unpadded), two spaces apart.
std::string AlignedColumns(const std::vector<std::vector<std::string>>& rows);

// A lease as JSON: backend_data as the object it holds when it parses.
json::OrderedJson LeaseJson(const v1::Lease& lease);

// YAML for what LeaseJson and StatusJson build: block mappings and sequences,
// scalars as JSON (a JSON string is a YAML double-quoted scalar); starts "---".
std::string Yaml(const json::OrderedJson& j);

// One lease (lease show) and a listing (leases list, in numeric subnet order,
// IPv6-only leases last) in `format`.
std::string FormatLease(const v1::Lease& lease, OutputFormat format);
std::string FormatLeases(const v1::ListLeasesResponse& list, OutputFormat format);

// One endpoint's answer to GetStatus, or why there is none.
struct EndpointStatus {
  std::string address;
  grpc::Status rpc;
  std::string error;  // when !rpc.ok(): the failure in words
  v1::GetStatusResponse status;
};

// Every endpoint, then the network, the backend and the pool as the first
// endpoint that answered sees them. table and wide are the same.
json::OrderedJson StatusJson(const std::vector<EndpointStatus>& endpoints);
std::string FormatStatus(const std::vector<EndpointStatus>& endpoints, OutputFormat format);

}  // namespace weft::weftctl
