#include "agent/controller_client.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/backoff.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "common/retry_hint.h"
#include "common/tls_client.h"

namespace weft::agent {
namespace {

bool ShouldFailOver(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE || s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

absl::Status ToAbsl(const grpc::Status& s, bool tls) {
  if (s.ok()) return absl::OkStatus();
  return FromGrpcStatus(s, DescribeRpcError(s, tls));
}

}  // namespace

absl::Duration Backoff::Next() {
  return ExponentialBackoff(base_, cap_, attempt_++) * absl::Uniform(rng_, 0.5, 1.5);
}

absl::Duration WatchRetryDelay(std::optional<absl::Duration> hint, size_t endpoints, Backoff& backoff) {
  if (!hint) return backoff.Next();
  backoff.Reset();  // a draining controller is not a failing one
  return endpoints == 1 ? *hint : backoff.Next();
}

ControllerClient::ControllerClient(Options options) : opts_(std::move(options)) {
  grpc::ChannelArguments args;
  // Notice a dead controller on an idle watch within a minute.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  args.SetMaxReceiveMessageSize(64 << 20);
  std::shared_ptr<grpc::ChannelCredentials> creds =
      opts_.credentials ? opts_.credentials : grpc::InsecureChannelCredentials();
  for (const std::string& e : opts_.endpoints) {
    // A TLS channel handshakes again on each reconnect, so a controller whose
    // certificate rotated is reached again without the agent doing anything.
    channels_.push_back(grpc::CreateCustomChannel(e, creds, args));
  }
}

ControllerClient::~ControllerClient() { Stop(); }

std::string ControllerClient::current_endpoint() {
  absl::MutexLock l(&mu_);
  return opts_.endpoints[current_];
}

template <typename Call>
grpc::Status ControllerClient::CallWithFailover(Call call) {
  grpc::Status last;
  size_t start;
  {
    absl::MutexLock l(&mu_);
    start = current_;
  }
  for (size_t i = 0; i < channels_.size(); ++i) {
    const size_t idx = (start + i) % channels_.size();
    grpc::ClientContext ctx;
    ctx.set_deadline(WallDeadline(opts_.rpc_timeout));
    last = call(channels_[idx], &ctx);
    if (!ShouldFailOver(last)) {
      if (i > 0) {
        absl::MutexLock l(&mu_);
        current_ = idx;
      }
      return last;
    }
    WEFT_LOG(WARN, "controller call failed; trying the next endpoint")
        .With("endpoint", opts_.endpoints[idx])
        .With("err", last.error_message());
  }
  return last;
}

absl::StatusOr<weft::v1::GetNetworkConfigResponse> ControllerClient::GetNetworkConfig() {
  weft::v1::GetNetworkConfigResponse resp;
  grpc::Status s = CallWithFailover([&](const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext* ctx) {
    return weft::v1::NetworkService::NewStub(ch)->GetNetworkConfig(ctx, {}, &resp);
  });
  if (!s.ok()) return ToAbsl(s, opts_.tls);
  return resp;
}

absl::StatusOr<weft::v1::AcquireLeaseResponse> ControllerClient::Acquire(const weft::v1::AcquireLeaseRequest& req) {
  weft::v1::AcquireLeaseResponse resp;
  grpc::Status s = CallWithFailover([&](const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext* ctx) {
    return weft::v1::LeaseService::NewStub(ch)->AcquireLease(ctx, req, &resp);
  });
  if (!s.ok()) return ToAbsl(s, opts_.tls);
  return resp;
}

absl::StatusOr<weft::v1::RenewLeaseResponse> ControllerClient::Renew(const weft::v1::RenewLeaseRequest& req) {
  weft::v1::RenewLeaseResponse resp;
  grpc::Status s = CallWithFailover([&](const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext* ctx) {
    return weft::v1::LeaseService::NewStub(ch)->RenewLease(ctx, req, &resp);
  });
  if (!s.ok()) return ToAbsl(s, opts_.tls);
  return resp;
}

absl::Status ControllerClient::Release(const weft::v1::ReleaseLeaseRequest& req) {
  weft::v1::ReleaseLeaseResponse resp;
  return ToAbsl(CallWithFailover([&](const std::shared_ptr<grpc::Channel>& ch, grpc::ClientContext* ctx) {
    return weft::v1::LeaseService::NewStub(ch)->ReleaseLease(ctx, req, &resp);
  }), opts_.tls);
}

void ControllerClient::StartWatch(LeasesCallback callback) {
  callback_ = std::move(callback);
  watch_thread_ = std::thread([this] { WatchLoop(); });
}

void ControllerClient::Stop() {
  {
    absl::MutexLock l(&mu_);
    if (stopping_) return;
    stopping_ = true;
    if (watch_ctx_) watch_ctx_->TryCancel();
  }
  stop_.Notify();
  if (watch_thread_.joinable()) watch_thread_.join();
}

bool ControllerClient::Apply(weft::v1::WatchLeasesResponse* msg) {
  absl::MutexLock l(&leases_mu_);
  switch (msg->kind_case()) {
    case weft::v1::WatchLeasesResponse::kSnapshot: {
      auto* snapshot = msg->mutable_snapshot();
      leases_.Replace(snapshot->mutable_leases());
      snapshots_.fetch_add(1);
      if (snapshot->reason() != weft::v1::WatchLeasesResponse::Snapshot::REASON_NEW_STREAM) {
        WEFT_LOG(INFO, "lease snapshot")
            .With("reason", weft::v1::WatchLeasesResponse::Snapshot::Reason_Name(snapshot->reason()))
            .With("leases", static_cast<int64_t>(leases_.size()));
      }
      return true;
    }
    case weft::v1::WatchLeasesResponse::kEvents: {
      bool changed = false;
      for (const weft::v1::LeaseEvent& e : msg->events().events()) {
        if (e.revision() <= revision_.load()) continue;
        if (e.type() == weft::v1::LeaseEvent::TYPE_DELETE) {
          leases_.Erase(e.lease());
        } else {
          leases_.Put(e.lease());
        }
        changed = true;
      }
      return changed;
    }
    default:
      return false;
  }
}

void ControllerClient::VisitLeases(const std::function<void(const weft::v1::Lease&)>& fn) {
  absl::MutexLock l(&leases_mu_);
  leases_.Visit(fn);
}

bool ControllerClient::AwaitConnection(grpc::Channel& channel) {
  const absl::Time end = absl::Now() + opts_.connect_wait;
  // In slices, so that Stop is not kept waiting; GetState(true) inside
  // WaitForConnected starts a connection attempt when the channel is idle.
  while (!stop_.HasBeenNotified()) {
    const absl::Time now = absl::Now();
    if (now >= end) return true;  // the call then fails, saying why
    if (channel.WaitForConnected(absl::ToChronoTime(std::min(end, now + absl::Milliseconds(100))))) return true;
  }
  return false;
}

size_t ControllerClient::lease_count() {
  absl::MutexLock l(&leases_mu_);
  return leases_.size();
}

void ControllerClient::WatchLoop() {
  Backoff backoff(opts_.backoff_base, opts_.backoff_cap);
  size_t endpoint;
  {
    absl::MutexLock l(&mu_);
    endpoint = current_;
  }
  bool first = true;
  absl::Duration pause;  // before the next call
  bool await_connection = false;  // and then wait for the channel to connect
  while (!stop_.HasBeenNotified()) {
    if (!first) {
      reconnects_.fetch_add(1);
      if (opts_.clock->WaitForNotification(stop_, pause)) break;
      if (await_connection && !AwaitConnection(*channels_[endpoint])) break;
    }
    first = false;
    grpc::ClientContext ctx;
    {
      absl::MutexLock l(&mu_);
      if (stopping_) break;
      watch_ctx_ = &ctx;
    }
    weft::v1::WatchLeasesRequest req;
    req.set_start_revision(revision_.load());
    auto stub = weft::v1::LeaseService::NewStub(channels_[endpoint]);
    std::unique_ptr<grpc::ClientReader<weft::v1::WatchLeasesResponse>> reader = stub->WatchLeases(&ctx, req);
    weft::v1::WatchLeasesResponse msg;
    bool got_any = false;
    while (reader->Read(&msg)) {
      if (!got_any) {
        got_any = true;
        connected_.store(true);
        backoff.Reset();
        WEFT_LOG(INFO, "watching leases")
            .With("endpoint", opts_.endpoints[endpoint])
            .With("from_revision", req.start_revision());
      }
      const bool snapshot = msg.has_snapshot();
      const bool changed = Apply(&msg);
      revision_.store(std::max(revision_.load(), msg.revision()));
      // Reading into the same message keeps its repeated fields' elements for
      // reuse: let a snapshot's (consumed) thousands go, and their array.
      if (snapshot) msg = weft::v1::WatchLeasesResponse();
      if (callback_) callback_(revision_.load(), changed);
    }
    grpc::Status s = reader->Finish();
    connected_.store(false);
    const std::optional<absl::Duration> hint = RetryAfter(ctx);
    pause = WatchRetryDelay(hint, channels_.size(), backoff);
    // With one controller and no hint, it may be restarting: the next call
    // waits for the channel to connect again (AwaitConnection), rather than
    // failing at once against a closed port and growing the backoff.
    await_connection = !hint && channels_.size() == 1;
    {
      absl::MutexLock l(&mu_);
      watch_ctx_ = nullptr;
      if (stopping_) break;
    }
    WEFT_LOG(WARN, "lease watch ended; reconnecting")
        .With("endpoint", opts_.endpoints[endpoint])
        .With("code", static_cast<int64_t>(s.error_code()))
        .With("err", weft::DescribeRpcError(s, opts_.tls))
        .With("in", absl::FormatDuration(pause));
    endpoint = (endpoint + 1) % channels_.size();
    if (channels_.size() == 1) endpoint = 0;
  }
}

}  // namespace weft::agent
