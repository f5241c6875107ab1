#pragma once
// Client side of Weft's mutual TLS: gRPC channel credentials from PEM files.
//
//   TlsClientFiles files{.ca_file = "ca.crt", .cert_file = "node-n1.crt", .key_file = "node-n1.key"};
//   ASSIGN_OR_RETURN(auto creds, MakeChannelCredentials(files));
//   grpc::CreateChannel("10.0.0.1:7800", creds);
//
// With a CA file the channel speaks TLS (1.2 or 1.3: gRPC's defaults), checks
// that the server's certificate chains to that CA and names the address dialled
// (a SAN, IP or DNS), and presents the client certificate when one is given
// (mutual TLS: the controller reads the caller's identity from it). gRPC re-reads
// the three files every `refresh_interval` (FileWatcherCertificateProvider), so
// a rotated client certificate or CA bundle is used for the next handshake
// without a restart; connections already up keep their session.
//
// Without any file the credentials are plaintext (loopback or --insecure
// controllers). A certificate without its key, a key without a CA, unreadable
// or malformed files, or a key that does not match its certificate are
// INVALID_ARGUMENT naming the file. An expired or not-yet-valid certificate is
// not an error here (a rotation may replace it while the client runs) but is
// logged at start as an error line saying the controller will refuse it.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/status.h"

namespace weft {

struct TlsClientFiles {
  std::string ca_file;    // PEM bundle of the CA(s) the server's certificate must chain to
  std::string cert_file;  // PEM client certificate (chain), optional
  std::string key_file;   // PEM private key of cert_file
  std::string server = "the controller";  // who the files are for, in log lines
  bool enabled() const { return !ca_file.empty() || !cert_file.empty() || !key_file.empty(); }
};

// What a PEM certificate file says about its first certificate.
struct CertificateInfo {
  std::string subject;  // RFC 2253, e.g. "CN=system:node:n1,O=system:nodes"
  std::string issuer;
  absl::Time not_before;
  absl::Time not_after;
  int certificates = 0;  // in the file (a bundle may hold several)
};

// Reads and parses `path` (INVALID_ARGUMENT naming the file when it cannot).
absl::StatusOr<CertificateInfo> ReadCertificateInfo(const std::string& path);

// "" when `now` is inside the validity window, else a sentence saying which end
// is crossed ("expired at 2026-01-01T00:00:00Z", "not valid before ...").
std::string ValidityProblem(const CertificateInfo& info, absl::Time now);

// Checks the files (see above), logs an expired/not-yet-valid certificate, and
// builds the credentials.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsClientFiles& files, absl::Duration refresh_interval = absl::Seconds(10));

// A gRPC status code's name ("UNAVAILABLE") and what it means for a client of
// the controller, in a few words.
const char* RpcCodeName(grpc::StatusCode code);
const char* RpcCodeMeaning(grpc::StatusCode code);

// A human sentence for a failed call to a server that may require mutual TLS:
// PERMISSION_DENIED says the server refused this identity; a failed handshake or
// a connection closed during it says so and points at the TLS files (`tls_on`:
// whether this client used TLS). Ends with the gRPC message and the code's name
// in parentheses.
std::string DescribeRpcError(const grpc::Status& status, bool tls_on);

}  // namespace weft
