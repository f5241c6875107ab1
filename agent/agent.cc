#include "agent/agent.h"

#include <malloc.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "agent/agent_metrics.h"
#include "agent/backend/factory.h"
#include "agent/lease_fields.h"
#include "agent/masq.h"
#include "agent/netlink/netlink_programmer.h"
#include "agent/network_settings.h"
#include "agent/node_files.h"
#include "agent/state.h"
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

const char* ResultName(const absl::Status& s) { return s.ok() ? "ok" : "error"; }

// A lease snapshot arrives as thousands of parsed Lease messages, freed one by
// one as the lease set encodes them (LeaseSet::Replace), so their free chunks
// lie between encodings that stay, and the first reconcile's transient peers
// land there too. glibc gives back only the free top of the heap (the trim
// threshold, main.cc), never free pages in the middle; malloc_trim(0) does
// (MADV_DONTNEED). With 20,000 peers in the store: ~4 MB less resident after
// the agent's start (docs/benchmarks.md). It costs 0.1-1 ms (~1 ms with 20,000
// peers), once per snapshot.
void ReleaseFreedHeap() { malloc_trim(0); }

}  // namespace

Agent::Agent(AgentConfig config, metrics::Registry* registry, Clock* clock)
    : cfg_(std::move(config)), clock_(clock), registry_(registry), metrics_(std::make_unique<AgentMetrics>(*registry)) {
  metrics_->WatchTunnelDevices(*registry, [this] {
    absl::MutexLock l(&device_mu_);
    return devices_;
  });
}

Agent::~Agent() = default;

absl::Status Agent::Readiness() const {
  if (ready_.load()) return absl::OkStatus();
  return absl::UnavailableError("lease, subnet.env or data path not in place yet");
}

void Agent::EnsureMasquerade(const OwnLease& lease) {
  const bool v6 = lease.ipv6_network && lease.ipv6_subnet;
  if (cfg_.ip_masq) {
    if (lease.ipv4) {
      auto changed = masq_.Ensure(lease.network, lease.subnet);
      if (!changed.ok()) {
        WEFT_LOG(ERROR, "cannot set up masquerading").Err(changed.status());
      } else if (*changed) {
        WEFT_LOG(INFO, "masquerading set up").With("network", lease.network.ToString()).With("chain", kMasqChain);
      }
    }
    if (!v6) return;
    auto changed6 = masq_.Ensure(*lease.ipv6_network, *lease.ipv6_subnet);
    if (!changed6.ok()) {
      WEFT_LOG(ERROR, "cannot set up IPv6 masquerading").Err(changed6.status());
    } else if (*changed6) {
      WEFT_LOG(INFO, "IPv6 masquerading set up").With("network", *lease.ipv6_network).With("chain", kMasqChain);
    }
    return;
  }
  if (absl::Status s = masq_.Remove(); !s.ok()) {
    WEFT_LOG(WARN, "cannot remove masquerade rules").Err(s);
  }
  if (!v6) return;
  if (absl::Status s = masq_.RemoveIPv6(); !s.ok()) {
    WEFT_LOG(WARN, "cannot remove IPv6 masquerade rules").Err(s);
  }
}

absl::Status Agent::Run(absl::Notification* stop) {
  ASSIGN_OR_RETURN(MacAddr vtep_mac, LoadOrCreateVtepMac(cfg_.state_dir));
  ASSIGN_OR_RETURN(std::unique_ptr<netlink::NetlinkProgrammer> kernel,
                   netlink::NetlinkProgrammer::Create(cfg_.nexthop_objects));

  ControllerClient::Options co;
  co.endpoints = cfg_.controllers;
  co.credentials = cfg_.controller_credentials;
  co.tls = cfg_.controller_tls;
  co.clock = clock_;
  ControllerClient client(co);
  Backoff backoff(absl::Milliseconds(200), absl::Seconds(10));

  // The network config decides the backend and the address families.
  std::string network_config;
  while (true) {
    if (stop->HasBeenNotified()) return absl::OkStatus();
    auto cfg = client.GetNetworkConfig();
    if (cfg.ok()) {
      network_config = cfg->config();
      break;
    }
    WEFT_LOG(WARN, "cannot get the network config; retrying").Err(cfg.status());
    clock_->WaitForNotification(*stop, backoff.Next());
  }
  ASSIGN_OR_RETURN(const NetworkSettings settings, ParseNetworkSettings(network_config));
  const std::string& backend_type = settings.backend_type;
  const std::string& backend_json = settings.backend_json;
  // The families decide what the external interface needs: an IPv6-only network
  // needs no IPv4 address on it.
  InterfaceSelector sel = cfg_.iface;
  sel.ipv6_only = !settings.ipv4;
  ASSIGN_OR_RETURN(const ExternalInterface ext, FindExternalInterface(sel));
  if (ext.ipv4) {
    WEFT_LOG(INFO, "external interface")
        .With("iface", ext.name)
        .With("ip", ext.address.ToString())
        .With("public_ip", ext.public_ip.ToString())
        .With("mtu", ext.mtu);
  }
  std::optional<IPv4Net> previous;
  if (settings.ipv4) {
    if (auto prev = ReadPreviousSubnet(cfg_.subnet_file); prev.ok()) {
      previous = *prev;
    } else {
      WEFT_LOG(WARN, "ignoring the previous subnet file").Err(prev.status());
    }
  }
  std::optional<IPv6Net> previous_v6;
  if (settings.ipv6) {
    RETURN_IF_ERROR(RequireIPv6(ext));
    WEFT_LOG(INFO, settings.ipv4 ? "external interface IPv6 (dual-stack network)"
                                 : "external interface (IPv6-only network)")
        .With("iface", ext.name)
        .With("ipv6", ext.ipv6_address ? ext.ipv6_address->ToString() : "none")
        .With("public_ipv6", ext.public_ipv6->ToString())
        .With("mtu", ext.mtu);
    if (auto prev = ReadPreviousIPv6Subnet(cfg_.subnet_file); prev.ok()) {
      previous_v6 = *prev;
    } else {
      WEFT_LOG(WARN, "ignoring the previous IPv6 subnet in the subnet file").Err(prev.status());
    }
  }
  BackendEnv env;
  env.kernel = kernel.get();
  env.vtep_mac = vtep_mac;
  env.state_dir = cfg_.state_dir;
  env.metrics = registry_;
  env.flags = cfg_.backend;
  auto created = cfg_.backend_factory ? cfg_.backend_factory(backend_type, backend_json, env)
                                     : CreateBackend(backend_type, backend_json, env);
  if (!created.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("network config: ", created.status().message()));
  }
  std::unique_ptr<Backend> backend = *std::move(created);
  {
    absl::MutexLock l(&device_mu_);
    for (const std::string& d : {settings.ipv4 ? backend->device_name() : std::string(),
                                 settings.ipv6 ? backend->v6_device_name() : std::string()}) {
      if (!d.empty()) devices_.push_back(d);
    }
  }
  // Asks the backend for a lease's data until it answers; INVALID_ARGUMENT (a bad
  // config) is final, and for IPv6 UNIMPLEMENTED (no IPv6 data path).
  auto lease_data = [&](auto ask, bool v6, const char* retry_msg) -> absl::StatusOr<std::string> {
    while (!stop->HasBeenNotified()) {
      absl::StatusOr<std::string> data = ask();
      if (data.ok() || absl::IsInvalidArgument(data.status())) return data;
      if (v6 && absl::IsUnimplemented(data.status())) return data;
      WEFT_LOG(WARN, retry_msg).Err(data.status());
      clock_->WaitForNotification(*stop, backoff.Next());
    }
    return absl::CancelledError("stopped");
  };
  std::string backend_data;  // an IPv6-only lease has no BackendData (flannel's)
  if (settings.ipv4) {
    auto data =
        lease_data([&] { return backend->LeaseData(); }, false, "backend cannot tell its lease data yet; retrying");
    if (absl::IsCancelled(data.status())) return absl::OkStatus();
    RETURN_IF_ERROR(data.status());
    backend_data = *std::move(data);
  }
  std::string backend_v6_data;
  if (settings.ipv6) {
    auto v6_data =
        lease_data([&] { return backend->LeaseV6Data(); }, true, "backend cannot tell its IPv6 lease data yet; retrying");
    if (absl::IsCancelled(v6_data.status())) return absl::OkStatus();
    if (absl::IsUnimplemented(v6_data.status())) {
      return absl::FailedPreconditionError(absl::StrCat(
          "backend ", backend_type,
          " has no IPv6 data path; ", settings.ipv4 ? "dual-stack" : "IPv6-only",
          " networks need vxlan, host-gw, wireguard or alloc (the network config has EnableIPv6)"));
    }
    RETURN_IF_ERROR(v6_data.status());
    backend_v6_data = *std::move(v6_data);
  }

  LocalConfig local;
  local.iface_name = ext.name;
  local.iface_index = ext.index;
  local.iface_mtu = static_cast<uint32_t>(ext.mtu);
  local.iface_ip = ext.address;  // unset on an interface chosen for an IPv6-only network
  local.iface_network = ext.network;
  local.public_ip = ext.public_ip;
  if (settings.ipv6) {
    local.iface_ipv6 = ext.ipv6_address;
    local.iface_ipv6_network = ext.ipv6_network;
    local.public_ipv6 = ext.public_ipv6;
  }

  weft::v1::Lease own;
  // What renewals and releases name this node by: its public IPv4 address, or its
  // IPv6 one in an IPv6-only network.
  const std::string public_address = settings.ipv4 ? ext.public_ip.ToString() : ext.public_ipv6->ToString();
  absl::Duration ttl = absl::Hours(24);
  OwnLease own_lease;  // `own`, parsed

  // Acquires (or re-acquires) the lease and sets up this host's side. Retries
  // until it works or the agent is stopped.
  auto acquire = [&]() -> absl::Status {
    backoff.Reset();
    while (!stop->HasBeenNotified()) {
      weft::v1::AcquireLeaseRequest req;
      req.set_node_name(cfg_.node_name);
      if (settings.ipv4) req.set_public_ip(ext.public_ip.ToString());
      req.set_backend_type(backend_type);
      req.set_backend_data(backend_data);
      if (previous) req.set_previous_subnet(previous->ToString());
      if (settings.ipv6) {
        req.set_public_ipv6(ext.public_ipv6->ToString());
        req.set_backend_v6_data(backend_v6_data);
        if (previous_v6) req.set_previous_ipv6_subnet(previous_v6->ToString());
      }
      auto resp = client.Acquire(req);
      metrics_->lease_operations.WithLabels({"acquire", ResultName(resp.status())}).Inc();
      if (!resp.ok()) {
        if (resp.status().code() == absl::StatusCode::kInvalidArgument) return resp.status();
        WEFT_LOG(WARN, "cannot acquire a lease; retrying").Err(resp.status());
        clock_->WaitForNotification(*stop, backoff.Next());
        continue;
      }
      own = resp->lease();
      if (resp->ttl().seconds() > 0) ttl = absl::Seconds(resp->ttl().seconds());
      ASSIGN_OR_RETURN(own_lease, OwnLeaseFromResponse(*resp, settings.ipv4, settings.ipv6));
      ASSIGN_OR_RETURN(BackendInfo info, backend->Init(local, own_lease, backend_json));
      NodeLease nl;
      nl.ipv4 = own_lease.ipv4;
      nl.network = own_lease.network;
      nl.subnet = own_lease.subnet;
      nl.mtu = info.mtu;
      nl.ip_masq = cfg_.ip_masq;
      nl.ipv6_network = own_lease.ipv6_network;
      nl.ipv6_subnet = own_lease.ipv6_subnet;
      EnsureMasquerade(own_lease);
      RETURN_IF_ERROR(WriteSubnetEnv(cfg_.subnet_file, nl));
      RETURN_IF_ERROR(WriteDockerOpts(cfg_.docker_opts_file, nl));
      if (own_lease.ipv4) previous = own_lease.subnet;
      const bool v6 = own_lease.ipv6_subnet.has_value();
      if (v6) previous_v6 = own_lease.ipv6_subnet;
      WEFT_LOG(INFO, "lease acquired")
          .WithIf(own_lease.ipv4, "subnet", own.subnet())
          .WithIf(v6, "ipv6_subnet", own.ipv6_subnet())
          .WithIf(own_lease.ipv4, "network", resp->network())
          .WithIf(v6, "ipv6_network", resp->ipv6_network())
          .With("mtu", static_cast<int64_t>(info.mtu))
          .With("backend", backend_type)
          .With("device", own_lease.ipv4 ? backend->device_name() : backend->v6_device_name())
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
  int64_t snapshots_visited = 0;  // by the last reconcile
  int64_t snapshots_released = 0;  // after which the heap was released
  absl::flat_hash_set<std::string> logged_unreadable;  // peer leases already logged as unreadable
  absl::flat_hash_set<std::string> logged_unreadable_v6;  // and those whose IPv6 part was
  while (!stop->HasBeenNotified()) {
    // Wait for a change, the resync period, or the renewal time.
    std::vector<Peer> peers;
    int unreadable_peers = 0;
    bool reconcile = false;
    {
      absl::MutexLock l(&ws.mu);
      const absl::Time wake = std::min(next_resync, renew_at());
      auto work = [&ws]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(ws.mu) { return ws.dirty; };
      // At most a second: `stop` cannot end this wait, so the loop looks at it that often.
      absl::Duration wait = std::clamp(wake - clock_->Now(), absl::ZeroDuration(), absl::Seconds(1));
      clock_->AwaitWithTimeout(ws.mu, absl::Condition(&work), wait);
      const bool due = clock_->Now() >= next_resync;
      if (ws.synced && (ws.dirty || due)) {
        reconcile = true;
        ws.dirty = false;
      }
      metrics_->watch_revision.Set(static_cast<double>(ws.revision));
    }
    if (reconcile) {
      lost_lease = true;
      snapshots_visited = client.snapshots();
      peers.reserve(client.lease_count());  // grown, it would be held twice while copied
      client.VisitLeases([&](const weft::v1::Lease& lease) {
        if (LeaseName(lease) == LeaseName(own)) {
          lost_lease = false;
          return;
        }
        // A corrupt peer lease (written around the controller): skipped, counted,
        // logged once; a corrupt IPv6 part alone costs only the IPv6 route.
        bool v6_unreadable = false;
        std::optional<Peer> peer = PeerFromLease(lease, settings.ipv4, &v6_unreadable);
        if (!peer) {
          ++unreadable_peers;
          if (logged_unreadable.insert(absl::StrCat(lease.subnet(), "|", lease.public_ip(), "|", lease.ipv6_subnet(),
                                                    "|", lease.public_ipv6()))
                  .second) {
            WEFT_LOG(WARN, "peer lease skipped: unreadable")
                .With("subnet", QuoteInput(lease.subnet()))
                .With("public_ip", QuoteInput(lease.public_ip()))
                .WithIf(!settings.ipv4, "ipv6_subnet", QuoteInput(lease.ipv6_subnet()))
                .WithIf(!settings.ipv4, "public_ipv6", QuoteInput(lease.public_ipv6()));
          }
          return;
        }
        if (v6_unreadable) {
          ++unreadable_peers;
          if (logged_unreadable_v6.insert(lease.ipv6_subnet() + "|" + lease.public_ipv6()).second) {
            WEFT_LOG(WARN, "peer lease's IPv6 part skipped: unreadable")
                .With("subnet", lease.subnet())
                .With("ipv6_subnet", QuoteInput(lease.ipv6_subnet()))
                .With("public_ipv6", QuoteInput(lease.public_ipv6()));
          }
        }
        peers.push_back(*std::move(peer));
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
      WEFT_LOG(WARN, "this host's lease is gone from the lease set; acquiring again").With("subnet", LeaseName(own));
      if (absl::Status s = acquire(); !s.ok()) return absl::IsCancelled(s) ? absl::OkStatus() : s;
      continue;
    }
    if (reconcile) {
      const absl::Time start = clock_->Now();
      const int64_t peer_count = static_cast<int64_t>(peers.size());
      // Handed over: the backend frees the list once its desired state is built,
      // before it reads the kernel.
      auto stats = backend->Reconcile(std::move(peers));
      metrics_->peers.Set(static_cast<double>(peer_count));
      metrics_->skipped_peers.Set(unreadable_peers + (stats.ok() ? stats->skipped_peers : 0));
      if (!stats.ok()) {
        metrics_->reconcile_errors.Inc();
        WEFT_LOG(ERROR, "reconcile failed").Err(stats.status());
      } else {
        metrics_->ObserveReconcile(*stats, absl::ToDoubleSeconds(clock_->Now() - start));
        if (stats->changes() > 0 || stats->errors > 0) {
          WEFT_LOG(INFO, "data path reconciled")
              .With("peers", peer_count)
              .With("added", stats->added)
              .With("updated", stats->updated)
              .With("removed", stats->removed)
              .With("errors", stats->errors);
        }
        if (!ready_.load()) {
          ready_.store(true);
          metrics_->ready.Set(1);
          systemd::NotifyReady().IgnoreError();
          WEFT_LOG(INFO, "agent ready").With("subnet", LeaseName(own)).With("peers", peer_count);
        }
      }
      if (snapshots_visited > snapshots_released) {
        cfg_.release_freed_heap ? cfg_.release_freed_heap() : ReleaseFreedHeap();
        snapshots_released = snapshots_visited;
      }
      if (clock_->Now() >= next_resync) {
        // Drift in the NAT rules is repaired on the same period as the kernel's.
        EnsureMasquerade(own_lease);
      }
      next_resync = clock_->Now() + cfg_.resync_interval;
    }

    if (clock_->Now() >= renew_at()) {
      weft::v1::RenewLeaseRequest req;
      req.set_subnet(LeaseName(own));
      req.set_node_name(cfg_.node_name);
      req.set_public_ip(public_address);
      auto resp = client.Renew(req);
      metrics_->lease_operations.WithLabels({"renew", ResultName(resp.status())}).Inc();
      if (resp.ok()) {
        own = resp->lease();
        WEFT_LOG(DEBUG, "lease renewed").With("subnet", LeaseName(own));
      } else if (resp.status().code() == absl::StatusCode::kNotFound ||
                 resp.status().code() == absl::StatusCode::kPermissionDenied ||
                 resp.status().code() == absl::StatusCode::kFailedPrecondition) {
        WEFT_LOG(WARN, "lease cannot be renewed; acquiring again").Err(resp.status());
        if (absl::Status s = acquire(); !s.ok()) return absl::IsCancelled(s) ? absl::OkStatus() : s;
      } else {
        WEFT_LOG(WARN, "lease renewal failed; retrying").Err(resp.status());
        // Retry soon, but not in a tight loop.
        clock_->WaitForNotification(*stop, backoff.Next());
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
    req.set_subnet(LeaseName(own));
    req.set_node_name(cfg_.node_name);
    req.set_public_ip(public_address);
    absl::Status s = client.Release(req);
    metrics_->lease_operations.WithLabels({"release", ResultName(s)}).Inc();
    if (s.ok()) {
      WEFT_LOG(INFO, "lease released").With("subnet", LeaseName(own));
    } else {
      WEFT_LOG(WARN, "lease release failed").Err(s);
    }
  }
  // The data path stays as it is: containers keep working across an agent
  // restart, and the next start converges from there.
  return absl::OkStatus();
}

}  // namespace weft::agent
