#include "storage/etcd/etcd_store.h"

#include <algorithm>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/atomic_file.h"
#include "common/clock.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "common/tls_client.h"
#include "storage/etcdwire/etcd_wire.h"

namespace weft::storage {

namespace wire = etcdwire;

struct EtcdStore::Endpoint {
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<etcdserverpb::KV::Stub> kv;
  std::unique_ptr<etcdserverpb::Watch::Stub> watch;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease;
  std::unique_ptr<etcdserverpb::Maintenance::Stub> maintenance;
  std::unique_ptr<etcdserverpb::Auth::Stub> auth;

  // Connected now, or within `timeout`.
  bool WaitConnected(absl::Duration timeout) {
    if (channel->GetState(true) == GRPC_CHANNEL_READY) return true;
    if (timeout <= absl::ZeroDuration()) return false;
    return channel->WaitForConnected(WallDeadline(timeout));
  }
};

namespace {

// etcd's answers that say the request was not applied, so a write may be sent
// again; and gRPC's own for a request that never left.
bool NotApplied(const grpc::Status& s) {
  if (s.error_code() != grpc::StatusCode::UNAVAILABLE) return false;
  const std::string& m = s.error_message();
  return m == wire::kErrNoLeader || m == "etcdserver: server stopped" ||
         absl::StrContains(m, "failed to connect") || absl::StrContains(m, "Connection refused");
}

// etcd's answers to a token it does not know (expired, or issued before the
// member restarted) and to one older than its auth store: log in again.
bool StaleToken(const grpc::Status& s) {
  return s.error_message() == "etcdserver: invalid auth token" ||
         s.error_message() == "etcdserver: revision of auth store is old";
}

// A PEM file named by option `what`; INVALID_ARGUMENT naming it when it
// cannot be read or holds no PEM block.
absl::StatusOr<std::string> ReadPem(absl::string_view what, const std::string& path) {
  absl::StatusOr<std::optional<std::string>> f = ReadFileIfExists(path);
  if (!f.ok()) return absl::InvalidArgumentError(absl::StrCat("etcd ", what, " \"", path, "\": ", f.status().message()));
  if (!f->has_value()) return absl::InvalidArgumentError(absl::StrCat("etcd ", what, " \"", path, "\": no such file"));
  if (!absl::StrContains(**f, "-----BEGIN ")) {
    return absl::InvalidArgumentError(absl::StrCat("etcd ", what, " \"", path, "\": not a PEM file"));
  }
  return std::move(**f);
}

// The channel credentials for `options`: TLS when an endpoint is https:// or a
// CA is given (mixing http:// and https:// is refused), plaintext otherwise.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> Credentials(const EtcdStore::Options& options) {
  bool https = false, http = false;
  for (const std::string& e : options.endpoints) {
    https |= absl::StartsWith(e, "https://");
    http |= absl::StartsWith(e, "http://");
  }
  if (https && http) {
    return absl::InvalidArgumentError("etcd endpoints mix http:// and https://: all must use the same scheme");
  }
  if (options.cert_file.empty() != options.key_file.empty()) {
    return absl::InvalidArgumentError("etcd client certificate and key go together: give both or neither");
  }
  if (http && !options.ca_file.empty()) {
    return absl::InvalidArgumentError("an etcd CA file is given but the endpoints are http://; use https://");
  }
  if (!https && options.ca_file.empty()) {
    if (!options.cert_file.empty()) {
      return absl::InvalidArgumentError("an etcd client certificate is given without TLS; use https:// endpoints");
    }
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions ssl;
  if (!options.ca_file.empty()) {
    ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPem("CA file", options.ca_file));
  }
  if (!options.cert_file.empty()) {
    ASSIGN_OR_RETURN(ssl.pem_cert_chain, ReadPem("client certificate file", options.cert_file));
    ASSIGN_OR_RETURN(ssl.pem_private_key, ReadPem("client key file", options.key_file));
  }
  if (!options.ca_file.empty()) {
    // The agent's and weftctl's client TLS: the files checked (the key matches
    // its certificate, validity logged) and re-read on change.
    TlsClientFiles files{options.ca_file, options.cert_file, options.key_file, "etcd"};
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> creds =
        MakeChannelCredentials(files, options.tls_refresh_interval);
    if (!creds.ok()) return absl::InvalidArgumentError(absl::StrCat("etcd TLS: ", creds.status().message()));
    return *std::move(creds);
  }
  return grpc::SslCredentials(ssl);
}

}  // namespace

// ---- Open / endpoints ----

EtcdStore::EtcdStore(const Options& options)
    : options_(options), clock_(*options.clock), timers_(clock_) {}

EtcdStore::~EtcdStore() {
  Timers::Id progress = 0;
  {
    absl::MutexLock l(&watches_mu_);
    std::swap(progress, progress_timer_);
  }
  if (progress != 0) timers_.Cancel(progress);
}

absl::StatusOr<std::unique_ptr<EtcdStore>> EtcdStore::Open(const Options& options) {
  if (options.endpoints.empty()) return absl::InvalidArgumentError("no etcd endpoint given");
  std::unique_ptr<EtcdStore> store(new EtcdStore(options));
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> credentials, Credentials(options));
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);  // large ranges, as clientv3
  // Notice dead connections (a killed member) without waiting for TCP.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);  // etcd refuses pings more often than 5 s
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Reconnect to a restarted member quickly.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 5000);  // gRPC also takes it as the connect timeout
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  for (const std::string& e : options.endpoints) {
    std::string address(absl::StripPrefix(absl::StripPrefix(e, "http://"), "https://"));
    while (!address.empty() && address.back() == '/') address.pop_back();
    if (address.empty() || absl::StrContains(address, "://") || absl::StrContains(address, "/")) {
      return absl::InvalidArgumentError(absl::StrCat("bad etcd endpoint \"", e.substr(0, 100), "\""));
    }
    auto ep = std::make_unique<Endpoint>();
    ep->address = address;
    ep->channel = grpc::CreateCustomChannel(address, credentials, args);
    ep->kv = etcdserverpb::KV::NewStub(ep->channel);
    ep->watch = etcdserverpb::Watch::NewStub(ep->channel);
    ep->lease = etcdserverpb::Lease::NewStub(ep->channel);
    ep->maintenance = etcdserverpb::Maintenance::NewStub(ep->channel);
    ep->auth = etcdserverpb::Auth::NewStub(ep->channel);
    store->endpoints_.push_back(std::move(ep));
  }
  if (!options.username.empty()) {
    absl::StatusOr<std::string> token = store->Token();
    if (!token.ok()) return token.status();
  }
  RangeRequest probe;
  probe.key = options.probe_key;
  probe.count_only = true;
  absl::StatusOr<RangeResponse> r = store->Range(probe);
  if (!r.ok()) {
    return absl::UnavailableError(absl::StrCat("no etcd endpoint answers: ", r.status().message()));
  }
  return store;
}

std::string EtcdStore::current_endpoint() const { return endpoints_[current_.load()]->address; }

void EtcdStore::NoteFailure(const Endpoint* ep) {
  const int n = static_cast<int>(endpoints_.size());
  int cur = current_.load();
  if (endpoints_[cur].get() != ep) return;  // someone moved on already
  const int next = (cur + 1) % n;
  if (current_.compare_exchange_strong(cur, next) && n > 1) {
    WEFT_LOG(WARNING, "etcd endpoint failed; moving to the next")
        .With("failed", ep->address)
        .With("next", endpoints_[next]->address);
  }
}

void EtcdStore::NoteRevision(const etcdserverpb::ResponseHeader& h) {
  int64_t seen = last_revision_.load();
  while (h.revision() > seen && !last_revision_.compare_exchange_weak(seen, h.revision())) {
  }
}

absl::StatusOr<std::string> EtcdStore::Token() {
  if (options_.username.empty()) return std::string();
  absl::MutexLock l(&auth_mu_);
  if (!token_.empty()) return token_;
  etcdserverpb::AuthenticateRequest req;
  req.set_name(options_.username);
  req.set_password(options_.password);
  etcdserverpb::AuthenticateResponse resp;
  const absl::Status s = CallOnce(
      true,
      [&](Endpoint& ep, grpc::ClientContext* ctx) {
        resp.Clear();
        return ep.auth->Authenticate(ctx, req, &resp);
      },
      /*with_token=*/false);
  if (!s.ok()) {
    const std::string why = absl::StrCat("etcd login as user \"", options_.username, "\" failed: ", s.message());
    // A refused name or password, or an etcd without auth, is not a transient failure.
    if (s.code() == absl::StatusCode::kUnavailable || s.code() == absl::StatusCode::kDeadlineExceeded) {
      return absl::UnavailableError(why);
    }
    return absl::UnauthenticatedError(why);
  }
  if (resp.token().empty()) {
    return absl::UnauthenticatedError(absl::StrCat("etcd login as user \"", options_.username,
                                                   "\" returned no token (is auth enabled in etcd?)"));
  }
  token_ = resp.token();
  logins_++;
  WEFT_LOG(INFO, "logged in to etcd").With("user", options_.username);
  return token_;
}

void EtcdStore::DropToken(const std::string& stale) {
  if (stale.empty()) return;
  absl::MutexLock l(&auth_mu_);
  if (token_ == stale) token_.clear();
}

absl::StatusOr<std::string> EtcdStore::Authorize(grpc::ClientContext* ctx) {
  ASSIGN_OR_RETURN(std::string token, Token());
  if (!token.empty()) ctx->AddMetadata("token", token);  // etcd's metadata key for it
  return token;
}

absl::Status EtcdStore::Call(bool idempotent,
                             const std::function<grpc::Status(Endpoint&, grpc::ClientContext*)>& fn) {
  return CallOnce(idempotent, fn, /*with_token=*/true);
}

absl::Status EtcdStore::CallOnce(bool idempotent,
                                 const std::function<grpc::Status(Endpoint&, grpc::ClientContext*)>& fn,
                                 bool with_token) {
  bool renewed = false;  // the token was renewed once for this call already
  const int n = static_cast<int>(endpoints_.size());
  const absl::Time give_up = clock_.Now() + options_.failover_timeout;
  absl::Status last = absl::UnavailableError("etcd: no endpoint tried");
  int i = current_.load();
  for (int attempt = 1;; ++attempt) {
    Endpoint& ep = *endpoints_[i];
    if (ep.WaitConnected(std::min(options_.connect_timeout, give_up - clock_.Now()))) {
      grpc::ClientContext ctx;
      ctx.set_deadline(WallDeadline(options_.rpc_timeout));
      std::string token;
      if (with_token) {
        ASSIGN_OR_RETURN(token, Authorize(&ctx));
      }
      const grpc::Status s = fn(ep, &ctx);
      if (s.ok()) {
        if (current_.load() != i) current_.store(i);
        return absl::OkStatus();
      }
      if (with_token && !token.empty() && StaleToken(s) && !renewed) {
        // Nothing was applied: log in again and resend once, to the same endpoint.
        WEFT_LOG(INFO, "etcd refused the auth token; logging in again")
            .With("endpoint", ep.address)
            .With("error", s.error_message());
        DropToken(token);
        renewed = true;
        continue;
      }
      // A deadline is as ambiguous as a lost connection: a write forwarded to a
      // leader that just died waits for etcd's own request timeout.
      const bool retry = s.error_code() == grpc::StatusCode::UNAVAILABLE ||
                         s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
      if (!retry) return FromEtcd(s);
      NoteFailure(&ep);
      last = absl::UnavailableError(absl::StrCat("etcd ", ep.address, ": ", s.error_message()));
      if (!idempotent && !NotApplied(s)) {
        return absl::UnavailableError(absl::StrCat("etcd ", ep.address, ": ", s.error_message(),
                                                   " (the write may or may not have been applied)"));
      }
    } else {
      NoteFailure(&ep);
      last = absl::UnavailableError(absl::StrCat("etcd ", ep.address, ": not connected"));
    }
    if (clock_.Now() >= give_up) return last;
    i = (i + 1) % n;
    if (attempt % n == 0) clock_.SleepFor(options_.retry_backoff);  // a whole round failed
  }
}

EtcdStore::Endpoint* EtcdStore::ConnectedEndpoint(const std::function<bool()>& stop) {
  const int n = static_cast<int>(endpoints_.size());
  int i = current_.load();
  for (int attempt = 1; !stop(); ++attempt) {
    Endpoint* ep = endpoints_[i].get();
    if (ep->WaitConnected(options_.connect_timeout)) return ep;
    NoteFailure(ep);
    i = (i + 1) % n;
    if (attempt % n == 0) clock_.SleepFor(options_.retry_backoff);
  }
  return nullptr;
}

absl::Status EtcdStore::FromEtcd(const grpc::Status& s) {
  const std::string& m = s.error_message();
  const absl::string_view plain = absl::StripPrefix(absl::StripPrefix(m, "etcdserver: "), "mvcc: ");
  switch (s.error_code()) {
    case grpc::StatusCode::OUT_OF_RANGE:
      if (m == wire::kErrCompacted) return CompactedError(CompactRevision());
      return absl::OutOfRangeError(plain);
    case grpc::StatusCode::NOT_FOUND:
      return absl::NotFoundError(plain);
    case grpc::StatusCode::FAILED_PRECONDITION:
      if (m == wire::kErrLeaseExist) return absl::AlreadyExistsError(plain);
      return absl::FailedPreconditionError(plain);
    default:
      return FromGrpcStatus(s, absl::StrCat("etcd: ", plain));
  }
}

// ---- KV ----

absl::StatusOr<RangeResponse> EtcdStore::Range(const RangeRequest& req) {
  const etcdserverpb::RangeRequest pb = wire::ToProto(req);
  etcdserverpb::RangeResponse resp;
  RETURN_IF_ERROR(Call(true, [&](Endpoint& ep, grpc::ClientContext* ctx) {
    resp.Clear();
    return ep.kv->Range(ctx, pb, &resp);
  }));
  NoteRevision(resp.header());
  return wire::FromProto(resp);
}

absl::StatusOr<PutResponse> EtcdStore::Put(const PutRequest& req) {
  const etcdserverpb::PutRequest pb = wire::ToProto(req);
  etcdserverpb::PutResponse resp;
  RETURN_IF_ERROR(Call(false, [&](Endpoint& ep, grpc::ClientContext* ctx) {
    resp.Clear();
    return ep.kv->Put(ctx, pb, &resp);
  }));
  NoteRevision(resp.header());
  return wire::FromProto(resp);
}

absl::StatusOr<DeleteRangeResponse> EtcdStore::DeleteRange(const DeleteRangeRequest& req) {
  const etcdserverpb::DeleteRangeRequest pb = wire::ToProto(req);
  etcdserverpb::DeleteRangeResponse resp;
  RETURN_IF_ERROR(Call(false, [&](Endpoint& ep, grpc::ClientContext* ctx) {
    resp.Clear();
    return ep.kv->DeleteRange(ctx, pb, &resp);
  }));
  NoteRevision(resp.header());
  return wire::FromProto(resp);
}

absl::StatusOr<TxnResponse> EtcdStore::Txn(const TxnRequest& req) {
  const etcdserverpb::TxnRequest pb = wire::ToProto(req);
  bool read_only = true;
  for (const auto* ops : {&req.success, &req.failure}) {
    for (const RequestOp& op : *ops) read_only &= op.type == RequestOp::Type::kRange;
  }
  etcdserverpb::TxnResponse resp;
  RETURN_IF_ERROR(Call(read_only, [&](Endpoint& ep, grpc::ClientContext* ctx) {
    resp.Clear();
    return ep.kv->Txn(ctx, pb, &resp);
  }));
  NoteRevision(resp.header());
  return wire::FromProto(resp);
}

absl::Status EtcdStore::Compact(int64_t revision) {
  etcdserverpb::CompactionRequest pb;
  pb.set_revision(revision);
  etcdserverpb::CompactionResponse resp;
  RETURN_IF_ERROR(Call(false, [&](Endpoint& ep, grpc::ClientContext* ctx) {
    resp.Clear();
    return ep.kv->Compact(ctx, pb, &resp);
  }));
  int64_t known = known_compact_revision_.load();
  while (revision > known && !known_compact_revision_.compare_exchange_weak(known, revision)) {
  }
  return absl::OkStatus();
}

int64_t EtcdStore::CurrentRevision() {
  RangeRequest probe;
  probe.key = options_.probe_key;
  probe.count_only = true;
  absl::StatusOr<RangeResponse> r = Range(probe);
  return r.ok() ? r->revision : last_revision_.load();
}

int64_t EtcdStore::CompactRevision() {
  // The smallest readable revision is the compact revision (etcd serves reads
  // at it, refuses below). Reads at revision 1 work when nothing was compacted.
  auto readable = [this](int64_t revision) -> absl::StatusOr<bool> {
    etcdserverpb::RangeRequest pb;
    pb.set_key(options_.probe_key);
    pb.set_count_only(true);
    pb.set_revision(revision);
    etcdserverpb::RangeResponse resp;
    grpc::Status compacted;
    absl::Status s = Call(true, [&](Endpoint& ep, grpc::ClientContext* ctx) {
      grpc::Status st = ep.kv->Range(ctx, pb, &resp);
      // A compacted answer is an answer, not a failure to fail over from.
      if (st.error_code() == grpc::StatusCode::OUT_OF_RANGE && st.error_message() == wire::kErrCompacted) {
        compacted = st;
        return grpc::Status::OK;
      }
      return st;
    });
    if (!s.ok()) return s;
    return compacted.ok();
  };
  int64_t lo = std::max<int64_t>(known_compact_revision_.load(), 1);
  int64_t hi = CurrentRevision();
  if (hi < lo) return known_compact_revision_.load();
  absl::StatusOr<bool> at_lo = readable(lo);
  if (!at_lo.ok()) return known_compact_revision_.load();
  if (*at_lo) return lo == 1 ? known_compact_revision_.load() : lo;
  // readable(lo) is false, readable(hi) is true (the current revision always is).
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    absl::StatusOr<bool> ok = readable(mid);
    if (!ok.ok()) return known_compact_revision_.load();
    (*ok ? hi : lo) = mid;
  }
  int64_t known = known_compact_revision_.load();
  while (hi > known && !known_compact_revision_.compare_exchange_weak(known, hi)) {
  }
  return hi;
}

absl::StatusOr<int64_t> EtcdStore::DbSize() {
  etcdserverpb::StatusResponse resp;
  RETURN_IF_ERROR(Call(true, [&](Endpoint& ep, grpc::ClientContext* ctx) {
    resp.Clear();
    return ep.maintenance->Status(ctx, etcdserverpb::StatusRequest(), &resp);
  }));
  return resp.dbsize();
}

// ---- Leases ----

absl::StatusOr<LeaseGrantResponse> EtcdStore::LeaseGrant(int64_t ttl_seconds, int64_t id) {
  etcdserverpb::LeaseGrantRequest pb;
  pb.set_ttl(ttl_seconds);
  pb.set_id(id);
  etcdserverpb::LeaseGrantResponse resp;
  RETURN_IF_ERROR(Call(false, [&](Endpoint& ep, grpc::ClientContext* ctx) {
    resp.Clear();
    return ep.lease->LeaseGrant(ctx, pb, &resp);
  }));
  if (!resp.error().empty()) return absl::InternalError(absl::StrCat("etcd: ", resp.error()));
  NoteRevision(resp.header());
  return LeaseGrantResponse{resp.id(), resp.ttl()};
}

absl::Status EtcdStore::LeaseRevoke(int64_t id) {
  etcdserverpb::LeaseRevokeRequest pb;
  pb.set_id(id);
  etcdserverpb::LeaseRevokeResponse resp;
  RETURN_IF_ERROR(Call(false, [&](Endpoint& ep, grpc::ClientContext* ctx) {
    resp.Clear();
    return ep.lease->LeaseRevoke(ctx, pb, &resp);
  }));
  NoteRevision(resp.header());
  return absl::OkStatus();
}

absl::StatusOr<int64_t> EtcdStore::LeaseKeepAlive(int64_t id) {
  etcdserverpb::LeaseKeepAliveRequest pb;
  pb.set_id(id);
  etcdserverpb::LeaseKeepAliveResponse resp;
  RETURN_IF_ERROR(Call(true, [&](Endpoint& ep, grpc::ClientContext* ctx) {
    resp.Clear();
    auto stream = ep.lease->LeaseKeepAlive(ctx);
    if (stream->Write(pb) && stream->Read(&resp)) {
      stream->WritesDone();
      return stream->Finish();
    }
    ctx->TryCancel();
    grpc::Status s = stream->Finish();
    return s.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "keep-alive stream ended") : s;
  }));
  NoteRevision(resp.header());
  if (resp.ttl() <= 0) return absl::NotFoundError("requested lease not found");
  return resp.ttl();
}

absl::StatusOr<LeaseTimeToLiveResponse> EtcdStore::LeaseTimeToLive(int64_t id, bool keys) {
  etcdserverpb::LeaseTimeToLiveRequest pb;
  pb.set_id(id);
  pb.set_keys(keys);
  etcdserverpb::LeaseTimeToLiveResponse resp;
  RETURN_IF_ERROR(Call(true, [&](Endpoint& ep, grpc::ClientContext* ctx) {
    resp.Clear();
    return ep.lease->LeaseTimeToLive(ctx, pb, &resp);
  }));
  NoteRevision(resp.header());
  LeaseTimeToLiveResponse out;
  out.id = id;
  out.ttl_seconds = resp.ttl() >= 0 ? resp.ttl() : -1;
  out.granted_ttl_seconds = resp.grantedttl();
  out.keys.assign(resp.keys().begin(), resp.keys().end());
  std::sort(out.keys.begin(), out.keys.end());
  return out;
}

absl::StatusOr<std::vector<int64_t>> EtcdStore::Leases() {
  etcdserverpb::LeaseLeasesResponse resp;
  RETURN_IF_ERROR(Call(true, [&](Endpoint& ep, grpc::ClientContext* ctx) {
    resp.Clear();
    return ep.lease->LeaseLeases(ctx, etcdserverpb::LeaseLeasesRequest(), &resp);
  }));
  NoteRevision(resp.header());
  std::vector<int64_t> ids;
  for (const auto& l : resp.leases()) ids.push_back(l.id());
  std::sort(ids.begin(), ids.end());
  return ids;
}

// ---- Watch ----

struct EtcdStore::WatchState {
  EtcdStore* store;
  WatchRequest req;
  std::function<void(const WatchBatch&)> callback;

  // Held around every callback, so deliveries from the stream thread and
  // the progress thread are serial and see one next_revision.
  absl::Mutex deliver_mu;
  int64_t next_revision ABSL_GUARDED_BY(deliver_mu) = 0;  // the first revision not delivered
  std::set<std::string> keys ABSL_GUARDED_BY(deliver_mu);  // as the callback knows them (resyncs)
  absl::Time last_delivery ABSL_GUARDED_BY(deliver_mu);
  std::atomic<std::thread::id> delivering{};  // the thread inside the callback, if any

  absl::Mutex mu;
  bool stopped ABSL_GUARDED_BY(mu) = false;
  grpc::ClientContext* ctx ABSL_GUARDED_BY(mu) = nullptr;

  bool Stopped() {
    absl::MutexLock l(&mu);
    return stopped;
  }
  int64_t NextRevision() {
    absl::MutexLock l(&deliver_mu);
    return next_revision;
  }
  // Calls the callback (deliver_mu held) unless the watch stopped.
  void Call(const WatchBatch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(deliver_mu) {
    if (Stopped()) return;
    delivering = std::this_thread::get_id();
    callback(batch);
    delivering = std::thread::id();
  }
};

// One watch: a thread that keeps one etcd watch stream open, reconnecting and
// resuming as described in the header. Its state is shared with the thread
// (and the store's progress thread) so that the handle may be destroyed from
// the watch's own callback.
class EtcdStore::EtcdWatch final : public WatchHandle {
 public:
  using State = WatchState;

  explicit EtcdWatch(std::shared_ptr<State> state) : state_(std::move(state)) {
    thread_ = std::thread([s = state_] { Run(s.get()); });
  }

  ~EtcdWatch() override {
    {
      absl::MutexLock l(&state_->mu);
      state_->stopped = true;
      if (state_->ctx) state_->ctx->TryCancel();
    }
    if (state_->delivering.load() == std::this_thread::get_id()) {
      // Destroyed from its own callback (on the stream or the progress
      // thread): nothing more is delivered (stopped is checked under
      // deliver_mu); the stream thread ends by itself.
      thread_.detach();
      return;
    }
    thread_.join();
    absl::MutexLock wait_for_callback(&state_->deliver_mu);
  }

  // Called by the store's progress thread: when the watch has been idle and
  // the store has seen a later revision R, checks (one read-only txn) that
  // nothing in the range changed after the last delivered revision D — every
  // key's mod_revision <= D and as many keys at R as at D — and if so delivers
  // an empty batch at R. Sound: a put after D raises a mod_revision, a delete
  // lowers the count unless a put (caught) replaced it.
  static void CheckProgress(State* s, int64_t seen_revision, absl::Duration idle) {
    int64_t d = 0;
    {
      absl::MutexLock l(&s->deliver_mu);
      d = s->next_revision - 1;
      if (d < 1 || seen_revision <= d || s->store->clock_.Now() - s->last_delivery < idle) return;
    }
    if (s->Stopped()) return;
    TxnRequest txn;
    Compare unchanged;
    unchanged.key = s->req.key;
    unchanged.range_end = s->req.range_end;
    unchanged.target = Compare::Target::kModRevision;
    unchanged.result = Compare::Result::kLess;
    unchanged.operand = d + 1;
    txn.compares.push_back(unchanged);
    for (int64_t revision : {int64_t{0}, d}) {
      RequestOp count;
      count.type = RequestOp::Type::kRange;
      count.range.key = s->req.key;
      count.range.range_end = s->req.range_end;
      count.range.count_only = true;
      count.range.revision = revision;
      txn.success.push_back(count);
    }
    absl::StatusOr<TxnResponse> r = s->store->Txn(txn);
    if (!r.ok() || !r->succeeded || r->responses.size() != 2) return;
    if (r->responses[0].range.count != r->responses[1].range.count) return;
    absl::MutexLock l(&s->deliver_mu);
    if (s->next_revision != d + 1 || r->revision <= d) return;  // delivered meanwhile
    WatchBatch batch;
    batch.revision = r->revision;
    s->next_revision = r->revision + 1;
    s->last_delivery = s->store->clock_.Now();
    s->Call(batch);
  }

 private:
  static void Run(State* s) {
    absl::Duration backoff = s->store->options_.retry_backoff;
    while (!s->Stopped()) {
      Endpoint* ep = s->store->ConnectedEndpoint([s] { return s->Stopped(); });
      if (ep == nullptr) return;
      const int64_t before = s->NextRevision();
      const absl::Status st = Stream(s, ep);
      if (s->Stopped()) return;
      if (s->NextRevision() != before) backoff = s->store->options_.retry_backoff;  // it made progress
      if (!st.ok()) {
        WEFT_LOG(WARNING, "etcd watch stream ended; resuming")
            .With("endpoint", ep->address)
            .With("key", s->req.key)
            .With("next_revision", s->NextRevision())
            .Err(st);
        s->store->NoteFailure(ep);
      }
      // Interruptible pause.
      absl::MutexLock l(&s->mu);
      auto stopped = [s]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu) { return s->stopped; };
      s->store->clock_.AwaitWithTimeout(s->mu, absl::Condition(&stopped), backoff);
      backoff = std::min(backoff * 2, absl::Seconds(2));
    }
  }

  // One stream, until it fails or the watch stops. OK after a resync.
  static absl::Status Stream(State* s, Endpoint* ep) {
    grpc::ClientContext ctx;
    // As clientv3: a member that loses its leader ends the stream, so the
    // watch moves to a member that still gets updates.
    ctx.AddMetadata("hasleader", "true");
    absl::StatusOr<std::string> token = s->store->Authorize(&ctx);
    if (!token.ok()) return token.status();
    {
      absl::MutexLock l(&s->mu);
      if (s->stopped) return absl::OkStatus();
      s->ctx = &ctx;
    }
    auto unregister = [s] {
      absl::MutexLock l(&s->mu);
      s->ctx = nullptr;
    };
    auto stream = ep->watch->Watch(&ctx);
    etcdserverpb::WatchRequest create;
    auto* c = create.mutable_create_request();
    c->set_key(s->req.key);
    c->set_range_end(s->req.range_end);
    c->set_start_revision(s->NextRevision());
    c->set_prev_kv(s->req.prev_kv);
    c->set_progress_notify(true);
    absl::Status result = absl::OkStatus();
    bool resynced = false;
    if (stream->Write(create)) {
      etcdserverpb::WatchResponse resp;
      while (stream->Read(&resp)) {
        if (resp.compact_revision() != 0) {
          result = Resync(s, resp.compact_revision());
          resynced = true;
          break;
        }
        if (resp.canceled()) {
          // etcd 3.4 cancels a watch whose token it does not know ("invalid auth
          // token", or "permission denied" for a token it cannot read a user
          // from): log in again before the next attempt.
          if (absl::StrContains(resp.cancel_reason(), "invalid auth token") ||
              absl::StrContains(resp.cancel_reason(), "permission denied")) {
            s->store->DropToken(*token);
          }
          result = absl::UnavailableError(absl::StrCat("watch canceled by etcd: ", resp.cancel_reason()));
          break;
        }
        if (resp.created()) continue;
        Deliver(s, resp);
        if (s->Stopped()) break;
      }
    }
    ctx.TryCancel();
    const grpc::Status fin = stream->Finish();
    unregister();
    if (StaleToken(fin)) s->store->DropToken(*token);
    if (resynced || !result.ok()) return result;
    if (s->Stopped()) return absl::OkStatus();
    return absl::UnavailableError(absl::StrCat("watch stream: ", fin.error_message()));
  }

  static void Deliver(State* s, const etcdserverpb::WatchResponse& resp) {
    absl::MutexLock l(&s->deliver_mu);
    WatchBatch batch;
    for (const auto& e : resp.events()) {
      Event ev = wire::FromProto(e);
      if (ev.kv.mod_revision < s->next_revision) continue;  // already delivered
      if (ev.type == Event::Type::kPut) {
        s->keys.insert(ev.kv.key);
      } else {
        s->keys.erase(ev.kv.key);
      }
      batch.events.push_back(std::move(ev));
    }
    if (!batch.events.empty()) {
      // A history answer's header may run ahead of its events (etcd splits
      // long histories): only the events' own revisions are sure.
      batch.revision = batch.events.back().kv.mod_revision;
    } else if (resp.events_size() == 0 && resp.header().revision() >= s->next_revision) {
      batch.revision = resp.header().revision();  // progress notification of a synced watch
    } else {
      return;
    }
    s->next_revision = batch.revision + 1;
    s->last_delivery = s->store->clock_.Now();
    s->Call(batch);
  }

  // The revisions the watch still needed are gone: bring the callback to the
  // current state in one batch instead.
  static absl::Status Resync(State* s, int64_t compact_revision) {
    RangeRequest all;
    all.key = s->req.key;
    all.range_end = s->req.range_end;
    absl::StatusOr<RangeResponse> now = s->store->Range(all);
    if (!now.ok()) return now.status();
    absl::MutexLock l(&s->deliver_mu);
    WEFT_LOG(WARNING, "etcd watch history compacted; resyncing from the current state")
        .With("key", s->req.key)
        .With("next_revision", s->next_revision)
        .With("compact_revision", compact_revision)
        .With("revision", now->revision);
    WatchBatch batch;
    batch.revision = now->revision;
    std::set<std::string> present;
    for (const KeyValue& kv : now->kvs) present.insert(kv.key);
    for (const std::string& k : s->keys) {
      if (present.count(k) > 0) continue;
      Event del;
      del.type = Event::Type::kDelete;
      del.kv.key = k;
      del.kv.mod_revision = now->revision;
      batch.events.push_back(std::move(del));
    }
    for (const KeyValue& kv : now->kvs) {
      if (kv.mod_revision < s->next_revision) continue;  // unchanged since delivered
      Event put;
      put.type = Event::Type::kPut;
      put.kv = kv;
      batch.events.push_back(std::move(put));
    }
    s->keys = std::move(present);
    s->next_revision = now->revision + 1;
    s->last_delivery = s->store->clock_.Now();
    s->Call(batch);
    return absl::OkStatus();
  }

  std::shared_ptr<State> state_;
  std::thread thread_;
};

void EtcdStore::CheckProgress() {
  std::vector<std::shared_ptr<WatchState>> live;
  {
    absl::MutexLock l(&watches_mu_);
    auto& w = watches_;
    w.erase(std::remove_if(w.begin(), w.end(), [](const auto& p) { return p.expired(); }), w.end());
    for (const auto& p : w) {
      if (auto s = p.lock()) live.push_back(std::move(s));
    }
  }
  for (const auto& s : live) {
    EtcdWatch::CheckProgress(s.get(), last_revision_.load(), options_.watch_progress_interval);
  }
}

absl::StatusOr<std::unique_ptr<WatchHandle>> EtcdStore::Watch(const WatchRequest& req,
                                                              std::function<void(const WatchBatch&)> callback) {
  if (req.key.empty()) return absl::InvalidArgumentError("key is not provided");
  if (req.start_revision < 0) return absl::InvalidArgumentError("start revision must not be negative");
  // The keys of the range as the caller knows them when the watch starts (read
  // at the start revision: events of that revision then apply idempotently),
  // which also checks that the start revision is not compacted.
  RangeRequest seed;
  seed.key = req.key;
  seed.range_end = req.range_end;
  seed.keys_only = true;
  const int64_t current = CurrentRevision();
  const int64_t start = req.start_revision > 0 ? req.start_revision : current + 1;
  seed.revision = std::min(start, current);
  ASSIGN_OR_RETURN(RangeResponse keys, Range(seed));
  auto state = std::make_shared<WatchState>();
  state->store = this;
  state->req = req;
  state->callback = std::move(callback);
  {
    absl::MutexLock l(&state->deliver_mu);
    state->next_revision = start;
    state->last_delivery = clock_.Now();
    for (const KeyValue& kv : keys.kvs) state->keys.insert(kv.key);
  }
  {
    absl::MutexLock l(&watches_mu_);
    watches_.push_back(state);
    if (options_.watch_progress_interval > absl::ZeroDuration() && progress_timer_ == 0) {
      progress_timer_ = timers_.Every(options_.watch_progress_interval, [this] { CheckProgress(); });
    }
  }
  return std::unique_ptr<WatchHandle>(new EtcdWatch(std::move(state)));
}

}  // namespace weft::storage
