#include "common/tls_client.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace weft {
namespace {

// PEM files are small; anything larger than this is not one.
constexpr size_t kMaxPemBytes = 1 << 20;

absl::StatusOr<std::string> ReadPem(const std::string& path, absl::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read ", what, " ", path, ": ", std::strerror(errno)));
  std::string data;
  char buf[8192];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    data.append(buf, in.gcount());
    if (data.size() > kMaxPemBytes) {
      return absl::InvalidArgumentError(absl::StrCat(what, " ", path, " is larger than 1 MiB: not a PEM file"));
    }
  }
  if (in.bad()) return absl::InvalidArgumentError(absl::StrCat("cannot read ", what, " ", path));
  return data;
}

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "no PEM block found";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

BioPtr MemBio(const std::string& data) { return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size()))); }

std::string Name(const X509_NAME* name) {
  BioPtr out(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(out.get(), name, 0, XN_FLAG_RFC2253);
  char* p = nullptr;
  long n = BIO_get_mem_data(out.get(), &p);
  return std::string(p, n);
}

absl::Time ToTime(const ASN1_TIME* t) {
  struct tm tm = {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return absl::InfinitePast();
  return absl::FromTimeT(timegm(&tm));
}

std::string Rfc3339(absl::Time t) { return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone()); }

absl::StatusOr<X509Ptr> ParseFirstCertificate(const std::string& pem, const std::string& path, int* count) {
  BioPtr bio = MemBio(pem);
  X509Ptr first;
  *count = 0;
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    if (!first) {
      first.reset(x);
    } else {
      X509_free(x);
    }
    ++*count;
  }
  ERR_clear_error();  // the end of the file reads as an error
  if (!first) {
    return absl::InvalidArgumentError(absl::StrCat(path, " holds no PEM certificate (BEGIN CERTIFICATE)"));
  }
  return first;
}

}  // namespace

absl::StatusOr<CertificateInfo> ReadCertificateInfo(const std::string& path) {
  absl::StatusOr<std::string> pem = ReadPem(path, "certificate");
  if (!pem.ok()) return pem.status();
  CertificateInfo info;
  absl::StatusOr<X509Ptr> cert = ParseFirstCertificate(*pem, path, &info.certificates);
  if (!cert.ok()) return cert.status();
  info.subject = Name(X509_get_subject_name(cert->get()));
  info.issuer = Name(X509_get_issuer_name(cert->get()));
  info.not_before = ToTime(X509_get0_notBefore(cert->get()));
  info.not_after = ToTime(X509_get0_notAfter(cert->get()));
  return info;
}

std::string ValidityProblem(const CertificateInfo& info, absl::Time now) {
  if (now > info.not_after) return absl::StrCat("expired at ", Rfc3339(info.not_after));
  if (now < info.not_before) return absl::StrCat("not valid before ", Rfc3339(info.not_before));
  return "";
}

namespace {

// The key parses and belongs to the certificate: a mismatch would otherwise
// surface only as a handshake failure with an OpenSSL code.
absl::Status CheckKeyMatches(const TlsClientFiles& files) {
  absl::StatusOr<std::string> key_pem = ReadPem(files.key_file, "key");
  if (!key_pem.ok()) return key_pem.status();
  BioPtr bio = MemBio(*key_pem);
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    return absl::InvalidArgumentError(
        absl::StrCat(files.key_file, " holds no unencrypted PEM private key: ", OpenSslError()));
  }
  absl::StatusOr<std::string> cert_pem = ReadPem(files.cert_file, "certificate");
  if (!cert_pem.ok()) return cert_pem.status();
  int count = 0;
  absl::StatusOr<X509Ptr> cert = ParseFirstCertificate(*cert_pem, files.cert_file, &count);
  if (!cert.ok()) return cert.status();
  if (X509_check_private_key(cert->get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat("key ", files.key_file, " does not belong to certificate ", files.cert_file));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(const TlsClientFiles& files,
                                                                                absl::Duration refresh_interval) {
  if (!files.enabled()) return grpc::InsecureChannelCredentials();
  if (files.ca_file.empty()) {
    return absl::InvalidArgumentError("a client certificate or key was given without a CA file to check the server with");
  }
  if (files.cert_file.empty() != files.key_file.empty()) {
    return absl::InvalidArgumentError(files.cert_file.empty() ? "a key file was given without its certificate file"
                                                              : "a certificate file was given without its key file");
  }
  absl::StatusOr<CertificateInfo> ca = ReadCertificateInfo(files.ca_file);
  if (!ca.ok()) return ca.status();
  if (std::string why = ValidityProblem(*ca, absl::Now()); !why.empty()) {
    WEFT_LOG(ERROR, "CA certificate is outside its validity window: servers it signed will be refused")
        .With("file", files.ca_file)
        .With("subject", ca->subject)
        .With("problem", why);
  }
  if (!files.cert_file.empty()) {
    absl::StatusOr<CertificateInfo> cert = ReadCertificateInfo(files.cert_file);
    if (!cert.ok()) return cert.status();
    if (absl::Status s = CheckKeyMatches(files); !s.ok()) return s;
    if (std::string why = ValidityProblem(*cert, absl::Now()); !why.empty()) {
      WEFT_LOG(ERROR, absl::StrCat("client certificate is outside its validity window: ", files.server,
                                   " will refuse it until the file is replaced"))
          .With("file", files.cert_file)
          .With("subject", cert->subject)
          .With("problem", why);
    } else {
      WEFT_LOG(INFO, absl::StrCat("mutual TLS to ", files.server))
          .With("subject", cert->subject)
          .With("not_after", Rfc3339(cert->not_after))
          .With("ca", files.ca_file);
    }
  }
  const unsigned refresh = static_cast<unsigned>(std::max<int64_t>(1, absl::ToInt64Seconds(refresh_interval)));
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      files.key_file, files.cert_file, files.ca_file, refresh);
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(std::move(provider));
  options.watch_root_certs();
  if (!files.cert_file.empty()) options.watch_identity_key_cert_pairs();
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::experimental::TlsCredentials(options);
  if (!creds) return absl::InternalError("gRPC could not build TLS channel credentials");
  return creds;
}

const char* RpcCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "UNKNOWN_CODE";
  }
}

const char* RpcCodeMeaning(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "done";
    case grpc::StatusCode::CANCELLED: return "the call was cancelled";
    case grpc::StatusCode::UNKNOWN: return "an error the controller did not classify";
    case grpc::StatusCode::INVALID_ARGUMENT: return "the request was malformed";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "no answer in time (controller overloaded, or not a controller)";
    case grpc::StatusCode::NOT_FOUND: return "no such thing";
    case grpc::StatusCode::ALREADY_EXISTS: return "it exists already";
    case grpc::StatusCode::PERMISSION_DENIED: return "this identity may not do that";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "out of room (no free subnet, a quota or a size limit)";
    case grpc::StatusCode::FAILED_PRECONDITION: return "not possible in the current state";
    case grpc::StatusCode::ABORTED: return "lost a race with another change; try again";
    case grpc::StatusCode::OUT_OF_RANGE: return "out of range";
    case grpc::StatusCode::UNIMPLEMENTED: return "the controller does not have this method (an older version?)";
    case grpc::StatusCode::INTERNAL: return "a bug or a broken invariant in the controller";
    case grpc::StatusCode::UNAVAILABLE: return "controller unreachable, shutting down, or its store is down; retry";
    case grpc::StatusCode::DATA_LOSS: return "data was lost or corrupted";
    case grpc::StatusCode::UNAUTHENTICATED: return "no valid credentials";
    default: return "an unknown status code";
  }
}

std::string DescribeRpcError(const grpc::Status& status, bool tls_on) {
  const std::string& msg = status.error_message();
  std::string hint;
  if (status.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
    hint = "the controller refused this identity (see the certificate's subject; docs/security.md): ";
  } else if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    const bool handshake = absl::StrContains(msg, "andshake") || absl::StrContains(msg, "SSL") ||
                           absl::StrContains(msg, "ssl") || absl::StrContains(msg, "certificate");
    if (tls_on && handshake) {
      hint = "TLS handshake with the controller failed (check the CA, certificate and key files, their validity "
             "dates, and that the controller's certificate names the address dialled): ";
    } else if (tls_on) {
      hint = "controller unavailable (TLS on): ";
    } else if (absl::StrContains(msg, "Socket closed") || absl::StrContains(msg, "reset") ||
               absl::StrContains(msg, "EOF") || absl::StrContains(msg, "closed")) {
      hint = "the controller closed a plaintext connection (does it require mutual TLS? give a CA, certificate and "
             "key): ";
    } else {
      hint = "controller unavailable: ";
    }
  }
  return absl::StrCat(hint, msg, " (", RpcCodeName(status.error_code()), ")");
}

}  // namespace weft
