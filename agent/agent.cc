#include "agent/agent.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "agent/agent_metrics.h"
#include "agent/backend/factory.h"
#include "agent/masq.h"
#include "agent/netlink/netlink_programmer.h"
#include "agent/node_files.h"
#include "agent/state.h"
#include "common/json.h"
#include "common/log.h"
#include "common/quote.h"
#include "common/sd_notify.h"
#include "common/status_macros.h"

namespace weft::agent {
namespace {

// What the watch thread tells the main loop (the lease set itself stays in the
// ControllerClient: read with VisitLeases).
struct WatchState {
  absl::Mutex mu;
  bool dirty ABSL_GUARDED_BY(mu) = false;
  bool synced ABSL_GUARDED_BY(mu) = false;  // a snapshot has arrived
  int64_t revision ABSL_GUARDED_BY(mu) = 0;
};

absl::StatusOr<std::string> BackendObject(const std::string& config_json, std::string* type) {
  ASSIGN_OR_RETURN(const json::Json j, json::ParseObject(config_json, "network config"));
  const json::Json* be = json::Find(j, "Backend");
  if (be == nullptr) {
    *type = "udp";
    return std::string("{}");
  }
  if (!be->is_object()) return absl::InvalidArgumentError("network config: Backend is not an object");
  const json::Json* t = json::Find(*be, "Type");
  *type = t != nullptr && t->is_string() ? absl::AsciiStrToLower(t->get<std::string>()) : "udp";
  return json::Dump(*be);
}

const char* ResultName(const absl::Status& s) { return s.ok() ? "ok" : "error"; }

}  // namespace

Agent::Agent(AgentConfig config, metrics::Registry* registry, Clock* clock)
    : cfg_(std::move(config)), clock_(clock), registry_(registry), metrics_(std::make_unique<AgentMetrics>(*registry)) {
  metrics_->WatchTunnelDevice(*registry, [this] {
    absl::MutexLock l(&device_mu_);
    return device_;
  });
}

Agent::~Agent() = default;

absl::Status Agent::Readiness() const {
  if (ready_.load()) return absl::OkStatus();
  return absl::UnavailableError("lease, subnet.env or data path not in place yet");
}

void Agent::EnsureMasquerade(const IPv4Net& network, const IPv4Net& subnet) {
  if (cfg_.ip_masq) {
    auto changed = masq_.Ensure(network, subnet);
    if (!changed.ok()) {
      WEFT_LOG(ERROR, "cannot set up masquerading").Err(changed.status());
    } else if (*changed) {
      WEFT_LOG(INFO, "masquerading set up").With("network", network.ToString()).With("chain", kMasqChain);
    }
  } else if (absl::Status s = masq_.Remove(); !s.ok()) {
    WEFT_LOG(WARN, "cannot remove masquerade rules").Err(s);
  }
}

absl::Status Agent::Run(absl::Notification* stop) {
  ASSIGN_OR_RETURN(ExternalInterface ext, FindExternalInterface(cfg_.iface));
  WEFT_LOG(INFO, "external interface")
      .With("iface", ext.name)
      .With("ip", ext.address.ToString())
      .With("public_ip", ext.public_ip.ToString())
      .With("mtu", ext.mtu);
  ASSIGN_OR_RETURN(MacAddr vtep_mac, LoadOrCreateVtepMac(cfg_.state_dir));
  std::optional<IPv4Net> previous;
  if (auto prev = ReadPreviousSubnet(cfg_.subnet_file); prev.ok()) {
    previous = *prev;
  } else {
    WEFT_LOG(WARN, "ignoring the previous subnet file").Err(prev.status());
  }
  ASSIGN_OR_RETURN(std::unique_ptr<netlink::NetlinkProgrammer> kernel,
                   netlink::NetlinkProgrammer::Create(cfg_.nexthop_objects));

  ControllerClient::Options co;
  co.endpoints = cfg_.controllers;
  co.credentials = cfg_.controller_credentials;
  co.tls = cfg_.controller_tls;
  ControllerClient client(co);
  Backoff backoff(absl::Milliseconds(200), absl::Seconds(10));

  // The network config decides the backend.
  std::string backend_type, backend_json, network_config;
  while (true) {
    if (stop->HasBeenNotified()) return absl::OkStatus();
    auto cfg = client.GetNetworkConfig();
    if (cfg.ok()) {
      network_config = cfg->config();
      break;
    }
    WEFT_LOG(WARN, "cannot get the network config; retrying").Err(cfg.status());
    stop->WaitForNotificationWithTimeout(backoff.Next());
  }
  ASSIGN_OR_RETURN(backend_json, BackendObject(network_config, &backend_type));
  BackendEnv env;
  env.kernel = kernel.get();
  env.vtep_mac = vtep_mac;
  env.state_dir = cfg_.state_dir;
  env.metrics = registry_;
  env.flags = cfg_.backend;
  auto created = CreateBackend(backend_type, backend_json, env);
  if (!created.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("network config: ", created.status().message()));
  }
  std::unique_ptr<Backend> backend = *std::move(created);
  {
    absl::MutexLock l(&device_mu_);
    device_ = backend->device_name();
  }
  std::string backend_data;
  while (true) {
    if (stop->HasBeenNotified()) return absl::OkStatus();
    auto data = backend->LeaseData();
    if (data.ok()) {
      backend_data = *std::move(data);
      break;
    }
    if (data.status().code() == absl::StatusCode::kInvalidArgument) return data.status();
    WEFT_LOG(WARN, "backend cannot tell its lease data yet; retrying").Err(data.status());
    stop->WaitForNotificationWithTimeout(backoff.Next());
  }

  LocalConfig local;
  local.iface_name = ext.name;
  local.iface_index = ext.index;
  local.iface_mtu = static_cast<uint32_t>(ext.mtu);
  local.iface_ip = ext.address;
  local.iface_network = ext.network;
  local.public_ip = ext.public_ip;

  weft::v1::Lease own;
  absl::Duration ttl = absl::Hours(24);
  IPv4Net network;

  // Acquires (or re-acquires) the lease and sets up this host's side. Retries
  // until it works or the agent is stopped.
  auto acquire = [&]() -> absl::Status {
    backoff.Reset();
    while (!stop->HasBeenNotified()) {
      weft::v1::AcquireLeaseRequest req;
      req.set_node_name(cfg_.node_name);
      req.set_public_ip(ext.public_ip.ToString());
      req.set_backend_type(backend_type);
      req.set_backend_data(backend_data);
      if (previous) req.set_previous_subnet(previous->ToString());
      auto resp = client.Acquire(req);
      metrics_->lease_operations.WithLabels({"acquire", ResultName(resp.status())}).Inc();
      if (!resp.ok()) {
        if (resp.status().code() == absl::StatusCode::kInvalidArgument) return resp.status();
        WEFT_LOG(WARN, "cannot acquire a lease; retrying").Err(resp.status());
        stop->WaitForNotificationWithTimeout(backoff.Next());
        continue;
      }
      own = resp->lease();
      if (resp->ttl().seconds() > 0) ttl = absl::Seconds(resp->ttl().seconds());
      ASSIGN_OR_RETURN(IPv4Net subnet, IPv4Net::Parse(own.subnet()));
      ASSIGN_OR_RETURN(network, IPv4Net::Parse(resp->network()));
      ASSIGN_OR_RETURN(BackendInfo info, backend->Init(local, OwnLease{subnet, network}, backend_json));
      NodeLease nl;
      nl.network = network;
      nl.subnet = subnet;
      nl.mtu = info.mtu;
      nl.ip_masq = cfg_.ip_masq;
      EnsureMasquerade(network, subnet);
      RETURN_IF_ERROR(WriteSubnetEnv(cfg_.subnet_file, nl));
      RETURN_IF_ERROR(WriteDockerOpts(cfg_.docker_opts_file, nl));
      previous = subnet;
      WEFT_LOG(INFO, "lease acquired")
          .With("subnet", own.subnet())
          .With("network", resp->network())
          .With("mtu", static_cast<int64_t>(info.mtu))
          .With("backend", backend_type)
          .With("device", backend->device_name())
          .With("ttl", ttl);
      return absl::OkStatus();
    }
    return absl::CancelledError("stopped");
  };
  if (absl::Status s = acquire(); !s.ok()) return absl::IsCancelled(s) ? absl::OkStatus() : s;

  WatchState ws;
  client.StartWatch([&ws](int64_t revision, bool changed) {
    absl::MutexLock l(&ws.mu);
    if (changed || !ws.synced) ws.dirty = true;
    ws.synced = true;
    ws.revision = revision;
  });

  auto renew_at = [&]() -> absl::Time {
    if (own.reserved() || !own.has_expiration()) return absl::InfiniteFuture();
    const absl::Time exp = absl::FromUnixSeconds(own.expiration().seconds());
    const absl::Duration margin = std::min(cfg_.renew_margin, ttl / 3);
    return exp - margin;
  };
  absl::Time next_resync = clock_->Now();
  bool lost_lease = false;
  int64_t reconnects_seen = 0;
  absl::flat_hash_set<std::string> logged_unreadable;  // peer leases already logged as unreadable
  while (!stop->HasBeenNotified()) {
    // Wait for a change, the resync period, or the renewal time.
    std::vector<Peer> peers;
    int unreadable_peers = 0;
    bool reconcile = false;
    {
      absl::MutexLock l(&ws.mu);
      const absl::Time wake = std::min(next_resync, renew_at());
      auto work = [&ws]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(ws.mu) { return ws.dirty; };
      absl::Duration wait = std::clamp(wake - clock_->Now(), absl::ZeroDuration(), absl::Seconds(1));
      ws.mu.AwaitWithTimeout(absl::Condition(&work), wait);
      const bool due = clock_->Now() >= next_resync;
      if (ws.synced && (ws.dirty || due)) {
        reconcile = true;
        ws.dirty = false;
      }
      metrics_->watch_revision.Set(static_cast<double>(ws.revision));
    }
    if (reconcile) {
      lost_lease = true;
      client.VisitLeases([&](const weft::v1::Lease& lease) {
        if (lease.subnet() == own.subnet()) {
          lost_lease = false;
          return;
        }
        auto sn = IPv4Net::Parse(lease.subnet());
        auto ip = IPv4Addr::Parse(lease.public_ip());
        if (!sn.ok() || !ip.ok()) {
          // A corrupt peer lease (written around the controller): skipped, counted, logged once.
          ++unreadable_peers;
          if (logged_unreadable.insert(lease.subnet() + "|" + lease.public_ip()).second) {
            WEFT_LOG(WARN, "peer lease skipped: unreadable")
                .With("subnet", QuoteInput(lease.subnet()))
                .With("public_ip", QuoteInput(lease.public_ip()));
          }
          return;
        }
        peers.push_back(Peer{*sn, *ip, lease.backend_type(), lease.backend_data()});
      });
    }
    metrics_->controller_connected.Set(client.connected() ? 1 : 0);
    if (const int64_t r = client.reconnects(); r > reconnects_seen) {
      metrics_->controller_reconnects.Inc(static_cast<double>(r - reconnects_seen));
      reconnects_seen = r;
    }
    if (stop->HasBeenNotified()) break;

    if (reconcile && lost_lease) {
      // Our lease vanished (expired while we could not renew, or released by an
      // operator): take one again, preferring the same subnet.
      WEFT_LOG(WARN, "this host's lease is gone from the lease set; acquiring again").With("subnet", own.subnet());
      if (absl::Status s = acquire(); !s.ok()) return absl::IsCancelled(s) ? absl::OkStatus() : s;
      continue;
    }
    if (reconcile) {
      const absl::Time start = absl::Now();
      auto stats = backend->Reconcile(peers);
      metrics_->peers.Set(static_cast<double>(peers.size()));
      metrics_->skipped_peers.Set(unreadable_peers + (stats.ok() ? stats->skipped_peers : 0));
      if (!stats.ok()) {
        metrics_->reconcile_errors.Inc();
        WEFT_LOG(ERROR, "reconcile failed").Err(stats.status());
      } else {
        metrics_->ObserveReconcile(*stats, absl::ToDoubleSeconds(absl::Now() - start));
        if (stats->changes() > 0 || stats->errors > 0) {
          WEFT_LOG(INFO, "data path reconciled")
              .With("peers", static_cast<int64_t>(peers.size()))
              .With("added", stats->added)
              .With("updated", stats->updated)
              .With("removed", stats->removed)
              .With("errors", stats->errors);
        }
        if (!ready_.load()) {
          ready_.store(true);
          metrics_->ready.Set(1);
          systemd::NotifyReady().IgnoreError();
          WEFT_LOG(INFO, "agent ready").With("subnet", own.subnet()).With("peers", static_cast<int64_t>(peers.size()));
        }
      }
      if (clock_->Now() >= next_resync) {
        // Drift in the NAT rules is repaired on the same period as the kernel's.
        auto sn = IPv4Net::Parse(own.subnet());
        if (sn.ok()) EnsureMasquerade(network, *sn);
      }
      next_resync = clock_->Now() + cfg_.resync_interval;
    }

    if (clock_->Now() >= renew_at()) {
      weft::v1::RenewLeaseRequest req;
      req.set_subnet(own.subnet());
      req.set_node_name(cfg_.node_name);
      req.set_public_ip(ext.public_ip.ToString());
      auto resp = client.Renew(req);
      metrics_->lease_operations.WithLabels({"renew", ResultName(resp.status())}).Inc();
      if (resp.ok()) {
        own = resp->lease();
        WEFT_LOG(DEBUG, "lease renewed").With("subnet", own.subnet());
      } else if (resp.status().code() == absl::StatusCode::kNotFound ||
                 resp.status().code() == absl::StatusCode::kPermissionDenied ||
                 resp.status().code() == absl::StatusCode::kFailedPrecondition) {
        WEFT_LOG(WARN, "lease cannot be renewed; acquiring again").Err(resp.status());
        if (absl::Status s = acquire(); !s.ok()) return absl::IsCancelled(s) ? absl::OkStatus() : s;
      } else {
        WEFT_LOG(WARN, "lease renewal failed; retrying").Err(resp.status());
        // Retry soon, but not in a tight loop.
        stop->WaitForNotificationWithTimeout(backoff.Next());
      }
    }
    if (!own.reserved() && own.has_expiration()) {
      metrics_->lease_seconds_remaining.Set(
          absl::ToDoubleSeconds(absl::FromUnixSeconds(own.expiration().seconds()) - clock_->Now()));
    }
  }

  client.Stop();
  systemd::NotifyStopping().IgnoreError();
  if (cfg_.release_on_exit) {
    weft::v1::ReleaseLeaseRequest req;
    req.set_subnet(own.subnet());
    req.set_node_name(cfg_.node_name);
    req.set_public_ip(ext.public_ip.ToString());
    absl::Status s = client.Release(req);
    metrics_->lease_operations.WithLabels({"release", ResultName(s)}).Inc();
    if (s.ok()) {
      WEFT_LOG(INFO, "lease released").With("subnet", own.subnet());
    } else {
      WEFT_LOG(WARN, "lease release failed").Err(s);
    }
  }
  // The data path stays as it is: containers keep working across an agent
  // restart, and the next start converges from there.
  return absl::OkStatus();
}

}  // namespace weft::agent
