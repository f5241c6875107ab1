#pragma once
// Agent: one host's side of Weft. Acquires the host's lease, writes the node
// files, keeps the data path equal to the lease set streamed by the controller,
// renews the lease before it expires. main() only builds its Config.

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "agent/backend/factory.h"
#include "agent/controller_client.h"
#include "agent/external_iface.h"
#include "agent/masq.h"
#include "common/clock.h"
#include "common/metrics.h"

namespace weft::agent {

struct AgentConfig {
  std::vector<std::string> controllers;
  // Mutual TLS to the controllers (common/tls_client.h); nullptr: plaintext.
  std::shared_ptr<grpc::ChannelCredentials> controller_credentials;
  bool controller_tls = false;
  InterfaceSelector iface;
  std::string node_name;
  std::string subnet_file = "/run/flannel/subnet.env";
  std::string docker_opts_file = "/run/docker_opts.env";
  bool ip_masq = false;
  std::string state_dir = "/var/lib/weft-agent";
  bool release_on_exit = false;
  absl::Duration resync_interval = absl::Seconds(10);
  absl::Duration renew_margin = absl::Minutes(60);  // capped at a third of the TTL
  bool nexthop_objects = true;  // false: plain routes, flannel's layout
  BackendFlags backend;  // flags only some backends read
  // Makes the backend; unset: CreateBackend (agent/backend/factory.h). Tests
  // give a fake.
  std::function<absl::StatusOr<std::unique_ptr<Backend>>(absl::string_view type, absl::string_view config_json,
                                                          const BackendEnv& env)>
      backend_factory;
  // Gives the heap's free pages back to the kernel, after the reconcile that
  // follows a lease snapshot; unset: ReleaseFreedHeap (agent.cc). Tests count
  // the calls.
  std::function<void()> release_freed_heap;
};

class AgentMetrics;

class Agent {
 public:
  Agent(AgentConfig config, metrics::Registry* registry, Clock* clock = &RealClock::Get());
  ~Agent();

  // Runs until `stop` is notified. Errors only for what retrying cannot fix
  // (bad flags, no interface, a backend the host cannot run).
  absl::Status Run(absl::Notification* stop);

  // Ready once the data path and subnet.env are in place.
  bool ready() const { return ready_.load(); }
  absl::Status Readiness() const;

 private:
  // --ip-masq on: ensure the NAT chain (for IPv6 too when the lease is
  // dual-stack); off: remove it (idempotent both ways).
  void EnsureMasquerade(const OwnLease& lease);

  AgentConfig cfg_;
  Masquerade masq_;
  Clock* clock_;
  metrics::Registry* registry_;
  std::unique_ptr<AgentMetrics> metrics_;
  std::atomic<bool> ready_{false};
  absl::Mutex device_mu_;
  // The tunnel devices, once known (the IPv6 one too in a dual-stack network).
  std::vector<std::string> devices_ ABSL_GUARDED_BY(device_mu_);
};

}  // namespace weft::agent
