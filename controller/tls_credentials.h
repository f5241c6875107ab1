#pragma once
// The controller's side of mutual TLS: server credentials for its gRPC and
// etcd-API listeners that
//   - serve the certificate and key of --tls-cert-file / --tls-key-file, re-read
//     by gRPC's FileWatcherCertificateProvider whenever the files change
//     (rotation without restart);
//   - require every client to present a certificate that chains to
//     --tls-client-ca-file (re-read when it changes too), within its validity
//     window and usable for client authentication. The chain is checked here with
//     OpenSSL rather than inside gRPC's handshaker so that each refusal is logged
//     with its reason (expired, unknown CA...), rate-limited;
//   - speak TLS 1.2 or 1.3 (gRPC's defaults; 1.3 is preferred when both ends can).
// The certificate a client was verified with is then read by authz.h.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "grpcpp/security/server_credentials.h"

namespace weft::controller {

struct ServerTlsOptions {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;
  // How often the three files are checked for changes.
  absl::Duration refresh_interval = absl::Seconds(5);
  // A certificate this close to its end is logged as a warning.
  absl::Duration expiry_warning = absl::Hours(24 * 7);
  // What validity is checked against, and the monitor's refresh timer (gRPC's
  // certificate provider reloads the files on its own, wall-clock, timer).
  Clock* clock = &RealClock::Get();
};

// Facts about one PEM certificate, as the logs report them.
struct CertInfo {
  std::string subject;     // RFC 2253, e.g. "CN=weft,O=weft"
  std::string serial_hex;  // upper-case hex, as openssl prints it
  absl::Time not_before;
  absl::Time not_after;
};
// Reads the first certificate of a PEM file. INVALID_ARGUMENT / NOT_FOUND with
// the path on failure.
absl::StatusOr<CertInfo> ReadCertFile(const std::string& path);

// OK, or FAILED_PRECONDITION saying how `cert` is outside its validity at `now`.
absl::Status CheckValidity(const CertInfo& cert, absl::Time now);

// Checks the files (readable, PEM, the key matches the certificate, the
// certificate valid now, the CA a CA) and builds the credentials. Errors name the
// file and what is wrong with it (the controller exits 2 on them).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const ServerTlsOptions& options);

// Watches the server certificate file (the provider inside the credentials
// reloads it; this logs what was loaded): a line for each new certificate
// (serial, validity) and an ERROR for a certificate that is expired or not yet
// valid, a WARNING when it ends within options.expiry_warning, repeated every
// hour while it lasts.
class ServerCertMonitor {
 public:
  explicit ServerCertMonitor(ServerTlsOptions options);
  ~ServerCertMonitor();  // stops the refresh timer

 private:
  void Check(bool first);

  const ServerTlsOptions options_;
  std::string last_serial_;  // Check runs once at a time: in the constructor, then on the timer
  absl::Time last_warned_ = absl::InfinitePast();
  Timers timers_{*options_.clock};
};

// True when `listen` (host:port, [v6]:port, unix:path) can only be reached from
// this host: a loopback address, "localhost", or a unix socket.
bool IsLoopbackListen(const std::string& listen);

}  // namespace weft::controller
