#include "controller/tls_credentials.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <ctime>
#include <memory>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "common/log_limiter.h"
#include "common/net.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_certificate_verifier.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace weft::controller {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct StoreFree {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "no PEM data";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

absl::Status Readable(const std::string& path, const char* what) {
  if (path.empty()) return absl::InvalidArgumentError(absl::StrCat(what, ": no file given"));
  FILE* f = fopen(path.c_str(), "r");
  if (!f) return absl::NotFoundError(absl::StrCat(what, " ", path, ": ", strerror(errno)));
  fclose(f);
  return absl::OkStatus();
}

// Every certificate in a PEM text, in order.
std::vector<X509Ptr> ParsePemCerts(const char* data, size_t size) {
  std::vector<X509Ptr> out;
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(data, static_cast<int>(size)));
  while (bio) {
    X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (!x) break;
    out.emplace_back(x);
  }
  ERR_clear_error();  // the end of the text reads as an error
  return out;
}

absl::StatusOr<X509Ptr> ReadCertX509(const std::string& path) {
  if (absl::Status s = Readable(path, "certificate"); !s.ok()) return s;
  std::unique_ptr<BIO, BioFree> bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) return absl::NotFoundError(absl::StrCat("certificate ", path, ": cannot open"));
  X509Ptr x(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!x) return absl::InvalidArgumentError(absl::StrCat("certificate ", path, ": not a PEM certificate (", OpenSslError(), ")"));
  return x;
}

absl::Time ToTime(const ASN1_TIME* t) {
  struct tm tm = {};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return absl::InfinitePast();
  return absl::FromTimeT(timegm(&tm));
}

CertInfo Describe(X509* x) {
  CertInfo info;
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), X509_get_subject_name(x), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  info.subject.assign(data, n > 0 ? static_cast<size_t>(n) : 0);
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(x), nullptr)) {
    if (char* hex = BN_bn2hex(bn)) {
      info.serial_hex = hex;
      OPENSSL_free(hex);
    }
    BN_free(bn);
  }
  info.not_before = ToTime(X509_get0_notBefore(x));
  info.not_after = ToTime(X509_get0_notAfter(x));
  return info;
}

std::string Rfc3339(absl::Time t) { return absl::FormatTime(absl::RFC3339_sec, t, absl::UTCTimeZone()); }

// Chain checks of client certificates against the CA file, re-read when it changes.
class ClientCertVerifier : public grpc::experimental::ExternalCertificateVerifier {
 public:
  explicit ClientCertVerifier(std::string ca_file) : ca_file_(std::move(ca_file)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)>, grpc::Status* sync_status) override {
    *sync_status = Check(request->peer_cert(), request->peer_cert_full_chain());
    return true;  // decided synchronously
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {}

 private:
  struct FileStamp {
    ino_t ino = 0;
    off_t size = -1;
    int64_t mtime_ns = 0;
    bool operator==(const FileStamp& o) const { return ino == o.ino && size == o.size && mtime_ns == o.mtime_ns; }
  };

  grpc::Status Check(grpc::string_ref leaf_pem, grpc::string_ref chain_pem) {
    std::shared_ptr<X509_STORE> store = Store();
    std::vector<X509Ptr> leaf = ParsePemCerts(leaf_pem.data(), leaf_pem.size());
    std::vector<X509Ptr> chain = ParsePemCerts(chain_pem.data(), chain_pem.size());
    if (!store) return Refuse("the client CA file cannot be read", nullptr);
    if (leaf.empty()) return Refuse("no client certificate", nullptr);
    STACK_OF(X509)* untrusted = sk_X509_new_null();
    for (auto& c : chain) {
      if (X509_cmp(c.get(), leaf[0].get()) != 0) sk_X509_push(untrusted, c.get());
    }
    std::unique_ptr<X509_STORE_CTX, StoreCtxFree> ctx(X509_STORE_CTX_new());
    int ok = 0;
    int err = X509_V_ERR_UNSPECIFIED;
    if (ctx && X509_STORE_CTX_init(ctx.get(), store.get(), leaf[0].get(), untrusted) == 1) {
      X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
      ok = X509_verify_cert(ctx.get());
      err = X509_STORE_CTX_get_error(ctx.get());
    }
    sk_X509_free(untrusted);  // the certificates stay owned by `chain`
    ERR_clear_error();
    if (ok == 1) return grpc::Status::OK;
    return Refuse(X509_verify_cert_error_string(err), leaf[0].get());
  }

  grpc::Status Refuse(const char* why, X509* cert) {
    int64_t suppressed = 0;
    if (limiter_.Allow(&suppressed)) {
      CertInfo info;
      if (cert) info = Describe(cert);
      WEFT_LOG(WARNING, "client certificate refused")
          .With("reason", why)
          .With("subject", info.subject)
          .With("serial", info.serial_hex)
          .With("not_before", cert ? Rfc3339(info.not_before) : "")
          .With("not_after", cert ? Rfc3339(info.not_after) : "")
          .With("suppressed", suppressed);
    }
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, absl::StrCat("client certificate refused: ", why));
  }

  // The CA store, reloaded when the file changed; the last good one when the
  // new file does not parse (a rotation half written).
  std::shared_ptr<X509_STORE> Store() {
    struct stat st;
    FileStamp stamp;
    if (stat(ca_file_.c_str(), &st) == 0) {
      stamp = {st.st_ino, st.st_size, static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
    }
    absl::MutexLock l(&mu_);
    if (store_ && stamp == stamp_) return store_;
    stamp_ = stamp;
    std::shared_ptr<X509_STORE> fresh(X509_STORE_new(), StoreFree());
    if (!fresh || X509_STORE_load_file(fresh.get(), ca_file_.c_str()) != 1) {
      WEFT_LOG(ERROR, "cannot read the client CA file; keeping the previous one")
          .With("file", ca_file_)
          .With("err", OpenSslError());
      return store_;
    }
    if (store_) {
      WEFT_LOG(INFO, "client CA file reloaded").With("file", ca_file_);
    }
    store_ = std::move(fresh);
    return store_;
  }

  const std::string ca_file_;
  LogLimiter limiter_{10, absl::Minutes(1)};
  absl::Mutex mu_;
  FileStamp stamp_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<X509_STORE> store_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<CertInfo> ReadCertFile(const std::string& path) {
  auto x = ReadCertX509(path);
  if (!x.ok()) return x.status();
  return Describe(x->get());
}

absl::Status CheckValidity(const CertInfo& cert, absl::Time now) {
  if (now < cert.not_before) {
    return absl::FailedPreconditionError(
        absl::StrCat("certificate ", cert.subject, " is not valid yet (from ", Rfc3339(cert.not_before), ")"));
  }
  if (now > cert.not_after) {
    return absl::FailedPreconditionError(
        absl::StrCat("certificate ", cert.subject, " expired at ", Rfc3339(cert.not_after)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const ServerTlsOptions& options) {
  auto cert = ReadCertX509(options.cert_file);
  if (!cert.ok()) return absl::Status(cert.status().code(), absl::StrCat("--tls-cert-file: ", cert.status().message()));
  if (absl::Status s = Readable(options.key_file, "key"); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("--tls-key-file: ", s.message()));
  }
  {
    std::unique_ptr<BIO, BioFree> bio(BIO_new_file(options.key_file.c_str(), "r"));
    std::unique_ptr<EVP_PKEY, KeyFree> key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)
                                               : nullptr);
    if (!key) {
      return absl::InvalidArgumentError(
          absl::StrCat("--tls-key-file ", options.key_file, ": not a PEM private key (", OpenSslError(), ")"));
    }
    if (X509_check_private_key(cert->get(), key.get()) != 1) {
      ERR_clear_error();
      return absl::InvalidArgumentError(absl::StrCat("--tls-key-file ", options.key_file,
                                                     " is not the key of --tls-cert-file ", options.cert_file));
    }
  }
  const CertInfo info = Describe(cert->get());
  if (absl::Status s = CheckValidity(info, options.clock->Now()); !s.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("--tls-cert-file ", options.cert_file, ": ", s.message()));
  }
  auto ca = ReadCertX509(options.client_ca_file);
  if (!ca.ok()) return absl::Status(ca.status().code(), absl::StrCat("--tls-client-ca-file: ", ca.status().message()));
  if (X509_check_ca(ca->get()) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls-client-ca-file ", options.client_ca_file, ": ", Describe(ca->get()).subject, " is not a CA"));
  }

  const unsigned refresh = static_cast<unsigned>(std::max<int64_t>(1, absl::ToInt64Seconds(options.refresh_interval)));
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      options.key_file, options.cert_file, options.client_ca_file, refresh);
  grpc::experimental::TlsServerCredentialsOptions tls(provider);
  tls.watch_identity_key_cert_pairs();
  tls.watch_root_certs();  // names the CA to clients in the handshake
  // The chain is verified by ClientCertVerifier, which says why it refuses one.
  tls.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_BUT_DONT_VERIFY);
  tls.set_certificate_verifier(
      grpc::experimental::ExternalCertificateVerifier::Create<ClientCertVerifier>(options.client_ca_file));
  return grpc::experimental::TlsServerCredentials(tls);
}

ServerCertMonitor::ServerCertMonitor(ServerTlsOptions options) : options_(std::move(options)) {
  Check(true);
  timers_.Every(options_.refresh_interval, [this] { Check(false); });
}

// timers_, destroyed first, cancels the refresh.
ServerCertMonitor::~ServerCertMonitor() = default;

void ServerCertMonitor::Check(bool first) {
  auto info = ReadCertFile(options_.cert_file);
  if (!info.ok()) {
    if (last_serial_ != "?") {
      WEFT_LOG(ERROR, "cannot read the server certificate").Err(info.status());
    }
    last_serial_ = "?";
    return;
  }
  const absl::Time now = options_.clock->Now();
  const bool changed = info->serial_hex != last_serial_;
  if (changed) {
    WEFT_LOG(INFO, first ? "server certificate" : "server certificate reloaded")
        .With("file", options_.cert_file)
        .With("subject", info->subject)
        .With("serial", info->serial_hex)
        .With("not_before", Rfc3339(info->not_before))
        .With("not_after", Rfc3339(info->not_after));
    last_serial_ = info->serial_hex;
    last_warned_ = absl::InfinitePast();
  }
  if (now - last_warned_ < absl::Hours(1)) return;
  if (absl::Status s = CheckValidity(*info, now); !s.ok()) {
    WEFT_LOG(ERROR, "the server certificate is not valid: clients refuse it; issue a new one and replace the files")
        .With("file", options_.cert_file)
        .Err(s);
    last_warned_ = now;
  } else if (info->not_after - now < options_.expiry_warning) {
    WEFT_LOG(WARNING, "the server certificate expires soon; issue a new one and replace the files")
        .With("file", options_.cert_file)
        .With("not_after", Rfc3339(info->not_after))
        .With("left", info->not_after - now);
    last_warned_ = now;
  }
}

bool IsLoopbackListen(const std::string& listen) {
  if (absl::StartsWith(listen, "unix:") || absl::StartsWith(listen, "unix-abstract:")) return true;
  auto hp = ParseHostPort(listen);
  if (!hp.ok()) return false;
  if (hp->host == "localhost") return true;
  if (auto v4 = IPv4Addr::Parse(hp->host); v4.ok()) return v4->ToString().rfind("127.", 0) == 0;
  if (auto v6 = IPv6Addr::Parse(hp->host); v6.ok()) return v6->ToString() == "::1";
  return false;
}

}  // namespace weft::controller
