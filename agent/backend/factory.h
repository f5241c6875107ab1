#pragma once
// Makes the backend a network config names. Every backend is registered here, so
// the agent knows nothing about any particular one.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent/backend/backend.h"
#include "agent/netlink/programmer.h"
#include "common/metrics.h"
#include "common/net.h"

namespace weft::agent {

// Agent flags that only some backends read. Add a backend's own knobs here
// (endpoint overrides for the cloud APIs, queue counts, ...), each with its flag
// in agent/main.cc.
struct BackendFlags {
  // gce: Compute API and metadata server (tests point both at 127.0.0.1).
  std::string gce_api_endpoint = "https://compute.googleapis.com/compute/v1";
  std::string gce_metadata_endpoint = "http://metadata.google.internal";
  // aws-vpc: EC2 API ("": https://ec2.<region>.amazonaws.com) and IMDS.
  std::string aws_ec2_endpoint;
  std::string aws_imds_endpoint = "http://169.254.169.254";
  // gce, aws-vpc: how long a route for a subnet with no known lease must stay
  // unwanted before this agent deletes it (its lease may be on its way here).
  absl::Duration cloud_route_removal_grace = absl::Seconds(30);
  // udp: worker pairs (TUN queue + UDP socket; 0: min(4, cores)) and whether to
  // use TUN/UDP segmentation offloads where the kernel has them.
  int udp_workers = 0;
  bool udp_offloads = true;
  // wireguard: the private key's file ("": <state_dir>/wireguard-key), which
  // implementation (auto, kernel, userspace) and the wireguard-go program.
  std::string wireguard_key_file;
  std::string wireguard_implementation = "auto";
  std::string wireguard_go = "wireguard-go";
  bool wireguard_peer_metrics = false;
};

// What a backend may use from the agent. Every pointer outlives the backend.
struct BackendEnv {
  netlink::KernelProgrammer* kernel = nullptr;  // rtnetlink, batched
  MacAddr vtep_mac;                             // persistent VTEP MAC (state dir)
  std::string state_dir;
  metrics::Registry* metrics = nullptr;  // the agent's registry, for backend metrics
  BackendFlags flags;
};

// `type` is the network config's Backend.Type, lower-cased; `config_json` its
// Backend object. INVALID_ARGUMENT for a bad config, UNIMPLEMENTED for an
// unknown type (the message lists the supported ones).
absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(absl::string_view type, absl::string_view config_json,
                                                       const BackendEnv& env);

}  // namespace weft::agent
