#include "controller/authz.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/net.h"

namespace weft::controller {
namespace {

constexpr absl::string_view kNodesOrg = "system:nodes";
constexpr absl::string_view kNodePrefix = "system:node:";
constexpr absl::string_view kOperatorsOrg = "weft:admins";

// The table (docs/security.md shows the same one).
//                          name                   reader node   self   in_prefix
constexpr Rule kLeaseRules[] = {
    /* kAcquireLease */     {"AcquireLease",       false, true,  true,  false},
    /* kRenewLease */       {"RenewLease",         false, true,  true,  false},
    /* kReleaseLease */     {"ReleaseLease",       false, true,  true,  false},
    /* kGetLease */         {"GetLease",           true,  true,  false, false},
    /* kListLeases */       {"ListLeases",         true,  true,  false, false},
    /* kWatchLeases */      {"WatchLeases",        true,  true,  false, false},
    /* kGetNetworkConfig */ {"GetNetworkConfig",   true,  true,  false, false},
    /* kSetNetworkConfig */ {"SetNetworkConfig",   false, false, false, false},
    /* kReserve */          {"Reserve",            false, false, false, false},
    /* kUnreserve */        {"Unreserve",          false, false, false, false},
    /* kGetStatus */        {"GetStatus",          true,  true,  false, false},
};
constexpr Rule kEtcdRules[] = {
    /* kRange */                {"etcd.Range",               true,  true,  false, true},
    /* kPut */                  {"etcd.Put",                 false, false, false, true},
    /* kDeleteRange */          {"etcd.DeleteRange",         false, false, false, true},
    /* kCompact */              {"etcd.Compact",             false, false, false, false},
    /* kWatch */                {"etcd.Watch",               true,  true,  false, true},
    /* kLeaseGrant */           {"etcd.LeaseGrant",          false, false, false, false},
    /* kLeaseRevoke */          {"etcd.LeaseRevoke",         false, false, false, false},
    /* kLeaseKeepAlive */       {"etcd.LeaseKeepAlive",      false, false, false, false},
    /* kLeaseTimeToLive */      {"etcd.LeaseTimeToLive",     true,  true,  false, false},
    /* kLeaseTimeToLiveKeys */  {"etcd.LeaseTimeToLiveKeys", false, false, false, false},
    /* kLeaseLeases */          {"etcd.LeaseLeases",         true,  true,  false, false},
    /* kMemberList */           {"etcd.MemberList",          true,  true,  false, false},
    /* kStatus */               {"etcd.Status",              true,  true,  false, false},
    /* kMaintenance */          {"etcd.Maintenance",         false, false, false, false},
};
static_assert(sizeof(kLeaseRules) / sizeof(Rule) == static_cast<size_t>(Method::kGetStatus) + 1);
static_assert(sizeof(kEtcdRules) / sizeof(Rule) == static_cast<size_t>(etcd_api::EtcdOp::kMaintenance) + 1);

const grpc::Status kEtcdPermissionDenied(grpc::StatusCode::PERMISSION_DENIED, "etcdserver: permission denied");

std::string Printable(absl::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > 64) out += "...";
  return out;
}

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kNode: return "node";
    case Role::kOperator: return "operator";
    case Role::kReader: return "reader";
  }
  return "?";
}

const Rule& RuleFor(Method m) { return kLeaseRules[static_cast<size_t>(m)]; }
const Rule& RuleFor(etcd_api::EtcdOp op) { return kEtcdRules[static_cast<size_t>(op)]; }

Identity IdentityFromSubject(const std::vector<std::string>& organizations,
                             const std::vector<std::string>& common_names, std::string subject) {
  Identity id;
  id.subject = std::move(subject);
  bool node_org = false;
  for (const std::string& o : organizations) {
    if (o == kOperatorsOrg) {
      id.role = Role::kOperator;
      return id;
    }
    node_org |= o == kNodesOrg;
  }
  // A node is named by exactly one CN; anything ambiguous stays a reader.
  if (node_org && common_names.size() == 1 && absl::StartsWith(common_names[0], kNodePrefix)) {
    const std::string name = common_names[0].substr(kNodePrefix.size());
    if (IsValidNodeName(name)) {
      id.role = Role::kNode;
      id.node_name = name;
    }
  }
  return id;
}

absl::StatusOr<Identity> IdentityFromPem(absl::string_view pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                                &BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr, &X509_free);
  ERR_clear_error();
  if (!cert) return absl::UnauthenticatedError("the client certificate does not parse");
  X509_NAME* name = X509_get_subject_name(cert.get());
  std::vector<std::string> orgs, cns;
  std::string subject;
  for (int i = 0; i < X509_NAME_entry_count(name); ++i) {
    X509_NAME_ENTRY* e = X509_NAME_get_entry(name, i);
    const int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
    const ASN1_STRING* data = X509_NAME_ENTRY_get_data(e);
    std::string value(reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
                      static_cast<size_t>(ASN1_STRING_length(data)));
    if (nid == NID_organizationName) {
      absl::StrAppend(&subject, subject.empty() ? "" : ",", "O=", Printable(value));
      orgs.push_back(std::move(value));
    } else if (nid == NID_commonName) {
      absl::StrAppend(&subject, subject.empty() ? "" : ",", "CN=", Printable(value));
      cns.push_back(std::move(value));
    }
  }
  return IdentityFromSubject(orgs, cns, std::move(subject));
}

Authorizer::Authorizer(Options options) : options_(std::move(options)) {
  prefix_dir_ = options_.prefix;
  if (!absl::EndsWith(prefix_dir_, "/")) prefix_dir_ += "/";
  if (options_.registry) {
    auto& family = options_.registry->AddCounter(
        "weft_controller_denied_requests_total", "Requests refused by authorization (PERMISSION_DENIED), by method.",
        {"method"});
    for (const Rule& r : kLeaseRules) denied_[&r] = &family.WithLabels({r.name});
    for (const Rule& r : kEtcdRules) denied_[&r] = &family.WithLabels({r.name});
  }
}

absl::StatusOr<Identity> Authorizer::Identify(const grpc::ServerContextBase& ctx) const {
  if (!options_.tls) return Identity{Role::kOperator, "", "(no TLS)"};
  std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
  if (!auth || !auth->IsPeerAuthenticated()) {
    // Cannot happen with the TLS credentials (the handshake requires a verified
    // certificate); refused all the same.
    return absl::UnauthenticatedError("no verified client certificate");
  }
  std::vector<grpc::string_ref> pem = auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (pem.empty()) return absl::UnauthenticatedError("no verified client certificate");
  const absl::string_view text(pem[0].data(), pem[0].size());
  {
    absl::ReaderMutexLock l(&cache_mu_);
    if (auto it = cache_.find(text); it != cache_.end()) return it->second;
  }
  absl::StatusOr<Identity> id = IdentityFromPem(text);
  if (id.ok()) {
    absl::MutexLock l(&cache_mu_);
    if (cache_.size() >= kMaxCachedIdentities) cache_.clear();
    cache_.emplace(std::string(text), *id);
  }
  return id;
}

absl::Status Authorizer::Deny(const Identity& id, const Rule& rule, std::string why) const {
  if (auto it = denied_.find(&rule); it != denied_.end()) it->second->Inc();
  int64_t suppressed = 0;
  if (log_limiter_.Allow(&suppressed)) {
    WEFT_LOG(WARNING, "request denied")
        .With("method", rule.name)
        .With("role", RoleName(id.role))
        .With("subject", id.subject)
        .With("why", why)
        .With("suppressed", suppressed);
  }
  return absl::PermissionDeniedError(std::move(why));
}

absl::Status Authorizer::Check(const Identity& id, Method m, std::string* node_name) const {
  const Rule& rule = RuleFor(m);
  switch (id.role) {
    case Role::kOperator:
      return absl::OkStatus();
    case Role::kReader:
      if (rule.reader) return absl::OkStatus();
      return Deny(id, rule, absl::StrCat(rule.name, rule.node ? " needs a node or operator certificate; "
                                                              : " needs an operator certificate; ",
                                         id.subject, " may only read"));
    case Role::kNode:
      if (!rule.node) {
        return Deny(id, rule, absl::StrCat(rule.name, " needs an operator certificate (O=", kOperatorsOrg, ")"));
      }
      if (!rule.node_self) return absl::OkStatus();
      if (node_name == nullptr) return absl::OkStatus();
      if (node_name->empty()) {
        *node_name = id.node_name;
        return absl::OkStatus();
      }
      if (*node_name != id.node_name) {
        return Deny(id, rule, absl::StrCat("node ", id.node_name, " may act only as itself, not as node ",
                                           Printable(*node_name)));
      }
      return absl::OkStatus();
  }
  return Deny(id, rule, "unknown role");
}

bool Authorizer::InPrefix(absl::string_view key, absl::string_view range_end) const {
  auto inside = [this](absl::string_view k) { return absl::StartsWith(k, prefix_dir_); };
  if (!inside(key)) return false;
  if (!options_.election_key.empty()) {
    if (key == options_.election_key) return false;
  }
  if (range_end.empty()) return true;
  // [key, range_end) must end within the prefix: range_end at most the
  // prefix's successor ("/coreos.com/network0" for "/coreos.com/network/").
  std::string successor = prefix_dir_;
  successor.back() = static_cast<char>(successor.back() + 1);
  if (range_end == absl::string_view("\0", 1) || range_end > successor) return false;
  if (!options_.election_key.empty() && key <= options_.election_key && options_.election_key < range_end) {
    return false;
  }
  return true;
}

absl::Status Authorizer::CheckEtcd(const Identity& id, etcd_api::EtcdOp op, absl::string_view key,
                                   absl::string_view range_end) const {
  const Rule& rule = RuleFor(op);
  if (id.role == Role::kOperator) return absl::OkStatus();
  if (!(id.role == Role::kNode ? rule.node : rule.reader)) {
    return Deny(id, rule, absl::StrCat(rule.name, " needs an operator certificate (O=", kOperatorsOrg, ")"));
  }
  if (rule.in_prefix && !InPrefix(key, range_end)) {
    return Deny(id, rule, absl::StrCat("key ", Printable(key), range_end.empty() ? "" : " (range)",
                                       " is outside ", prefix_dir_, ": operators only"));
  }
  return absl::OkStatus();
}

grpc::Status Authorizer::Authorize(const grpc::ServerContextBase& ctx, Method m, std::string* node_name,
                                   Identity* identity) const {
  absl::StatusOr<Identity> id = Identify(ctx);
  if (!id.ok()) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(id.status().message()));
  absl::Status s = Check(*id, m, node_name);
  if (!s.ok()) return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, std::string(s.message()));
  if (identity) *identity = *std::move(id);
  return grpc::Status::OK;
}

etcd_api::EtcdAuthorizer Authorizer::EtcdHook() const {
  return [this](const grpc::ServerContextBase& ctx) -> etcd_api::EtcdAccessCheck {
    absl::StatusOr<Identity> id = Identify(ctx);
    if (!id.ok()) {
      grpc::Status refused(grpc::StatusCode::UNAUTHENTICATED, std::string(id.status().message()));
      return [refused](etcd_api::EtcdOp, const std::string&, const std::string&) { return refused; };
    }
    return [this, id = *std::move(id)](etcd_api::EtcdOp op, const std::string& key, const std::string& range_end) {
      // etcd's own message, which etcd clients recognize; the reason is logged.
      return CheckEtcd(id, op, key, range_end).ok() ? grpc::Status::OK : kEtcdPermissionDenied;
    };
  };
}

}  // namespace weft::controller
