#pragma once
// Certificates for tests and benches, made by tools/certs.sh (real openssl) in a
// directory of the run: a CA, the controller's server certificate with the given
// SANs, an operator's (admin) and one per node on demand.
//
//   ASSIGN_OR_RETURN(TestCerts certs, TestCerts::Make(dir + "/certs", "IP:127.0.0.1"));
//   ctl.Start(Concat({controller, ...}, certs.ControllerFlags()));
//   auto creds = weft::MakeChannelCredentials(certs.Admin());
//   agent flags: certs.AgentFlags("n1")

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/tls_client.h"

namespace weft::testing {

class TestCerts {
 public:
  // Makes the CA, the server certificate (`sans`, e.g. "IP:127.0.0.1,IP:10.0.0.1")
  // and the admin certificate in `dir`. tools/certs.sh is found as a runfile or
  // relative to the working directory (the repository root for benches run by hand).
  static absl::StatusOr<TestCerts> Make(const std::string& dir, const std::string& sans);

  // Makes node-<name>.crt/.key once (idempotent).
  absl::Status AddNode(const std::string& name) const;

  const std::string& dir() const { return dir_; }
  std::string ca_file() const { return dir_ + "/ca.crt"; }
  // --tls-cert-file, --tls-key-file, --tls-client-ca-file for weft-controller.
  std::vector<std::string> ControllerFlags() const;
  // The operator's files (O=weft:admins).
  TlsClientFiles Admin() const;
  // Node `name`'s files (AddNode first).
  TlsClientFiles Node(const std::string& name) const;
  // --controller-ca-file, --controller-cert-file, --controller-key-file for weft-agent
  // (makes the node's certificate when missing; empty on failure, logged).
  std::vector<std::string> AgentFlags(const std::string& node_name) const;
  // --ca-file, --cert-file, --key-file for weftctl, as the operator.
  std::vector<std::string> WeftctlFlags() const;

 private:
  absl::Status Run(const std::string& args) const;
  std::string dir_;
  std::string script_;
};

}  // namespace weft::testing
