#pragma once
// Who may do what on the controller: the one place where callers are
// identified and requests authorized, for the weft.v1 services and the etcd
// API alike (docs/security.md has the same table).
//
// Identity comes from the client certificate the TLS handshake verified
// (ServerContext::auth_context()), read once per call or stream, never from a
// request field:
//   node      O=system:nodes and CN=system:node:<node-name> (a valid node name)
//   operator  O=weft:admins (any CN)
//   reader    any other certificate that chains to the client CA
// Without TLS (loopback, or --insecure) every caller is an operator.
//
// Rules (kRules below): a node may acquire, renew and release a lease only as
// itself (the request's node_name must be its own or empty, and then becomes
// its own), and reads what anyone may read; operators may do everything;
// readers may only read and watch. On the etcd API, keys outside the network
// prefix, and the replica election key, are for operators only, reads included.
//
// Each denial is PERMISSION_DENIED, counted in
// weft_controller_denied_requests_total{method} and logged (rate-limited).

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/log_limiter.h"
#include "common/metrics.h"
#include "controller/etcd_api/etcd_api_server.h"
#include "grpcpp/grpcpp.h"

namespace weft::controller {

enum class Role { kReader, kNode, kOperator };
const char* RoleName(Role role);

struct Identity {
  Role role = Role::kReader;
  std::string node_name;  // kNode only
  std::string subject;    // for logs: "CN=...,O=..."
};

// The identity a certificate subject gives (organization and common name entries).
Identity IdentityFromSubject(const std::vector<std::string>& organizations,
                             const std::vector<std::string>& common_names, std::string subject);
// The identity of a PEM certificate; UNAUTHENTICATED when it does not parse.
absl::StatusOr<Identity> IdentityFromPem(absl::string_view pem);

// The methods of the table. The etcd API's operations are etcd_api::EtcdOp.
enum class Method {
  kAcquireLease,
  kRenewLease,
  kReleaseLease,
  kGetLease,
  kListLeases,
  kWatchLeases,
  kGetNetworkConfig,
  kSetNetworkConfig,
  kReserve,
  kUnreserve,
  kGetStatus,
};

// One row of the table: which roles may call a method. `node_self`: a node may,
// but only for its own lease. `in_prefix`: keys must lie in the network prefix
// (and not on the election key) unless the caller is an operator.
struct Rule {
  const char* name;  // the metric label
  bool reader;
  bool node;
  bool node_self;
  bool in_prefix;
};
const Rule& RuleFor(Method m);
const Rule& RuleFor(etcd_api::EtcdOp op);

class Authorizer {
 public:
  struct Options {
    // Off: every caller is an operator.
    bool tls = false;
    // The network prefix (flannel's /coreos.com/network) and the election key.
    std::string prefix;
    std::string election_key;
    // Where weft_controller_denied_requests_total goes; null: not counted.
    metrics::Registry* registry = nullptr;
  };
  explicit Authorizer(Options options);

  // The caller of `ctx`: from its verified certificate, an operator without TLS;
  // UNAUTHENTICATED when TLS is on and the call has no verified certificate.
  absl::StatusOr<Identity> Identify(const grpc::ServerContextBase& ctx) const;

  // OK or PERMISSION_DENIED. For the lease methods, `node_name` is the request's
  // node_name; for a node caller, on success it is the name to act as (its own).
  absl::Status Check(const Identity& id, Method m, std::string* node_name = nullptr) const;
  // For an etcd operation on [key, range_end) (etcd's conventions: empty
  // range_end is the one key, "\0" every key from `key` on).
  absl::Status CheckEtcd(const Identity& id, etcd_api::EtcdOp op, absl::string_view key,
                         absl::string_view range_end) const;

  // Identify + Check for a gRPC handler, as a gRPC status.
  grpc::Status Authorize(const grpc::ServerContextBase& ctx, Method m, std::string* node_name = nullptr,
                         Identity* identity = nullptr) const;
  // The etcd API's hook (EtcdApiOptions::authorize).
  etcd_api::EtcdAuthorizer EtcdHook() const;

  bool tls() const { return options_.tls; }

 private:
  absl::Status Deny(const Identity& id, const Rule& rule, std::string why) const;
  bool InPrefix(absl::string_view key, absl::string_view range_end) const;

  const Options options_;
  std::string prefix_dir_;  // prefix + "/"
  // Per row of the table, created at start (a rate from 0; no lookup per denial).
  absl::flat_hash_map<const Rule*, metrics::Counter*> denied_;
  mutable LogLimiter log_limiter_{20, absl::Minutes(1)};
  // Identities by certificate (PEM): parsing one costs tens to hundreds of
  // microseconds, and every call of a connection presents the same one.
  // Bounded: emptied when it reaches kMaxCachedIdentities.
  static constexpr size_t kMaxCachedIdentities = 8192;
  mutable absl::Mutex cache_mu_;
  mutable absl::flat_hash_map<std::string, Identity> cache_ ABSL_GUARDED_BY(cache_mu_);
};

}  // namespace weft::controller
