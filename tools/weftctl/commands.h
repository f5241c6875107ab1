#pragma once
// weftctl's commands, run against the controller(s) an Invocation names.
// Output goes to `out`, errors (one line each, "weftctl: ...") to `err`; the
// return value is the exit status (ExitCode).

#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "grpcpp/channel.h"
#include "tools/weftctl/invocation.h"

namespace weft::weftctl {

struct Io {
  std::istream& in;  // config set -
  std::ostream& out;
  std::ostream& err;
};

// A channel to one address (the controller's gRPC API, or its etcd API).
using ChannelFactory = std::function<std::shared_ptr<grpc::Channel>(const std::string& address)>;

// Runs inv.command (inv.action is kRun). `tls_on` only changes how failures
// are explained.
int RunCommand(const Invocation& inv, const ChannelFactory& channels, bool tls_on, const Io& io);

// All of weftctl after main: parses `args` (argv without argv[0]), answers
// --help and --version, builds the credentials from the TLS flags and runs the
// command.
int Main(const std::vector<std::string>& args, const Io& io);

}  // namespace weft::weftctl
