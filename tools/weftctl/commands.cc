#include "tools/weftctl/commands.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <istream>
#include <ostream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/check.h"
#include "common/tls_client.h"
#include "common/version.h"
#include "grpcpp/create_channel.h"
#include "proto/etcd/rpc.grpc.pb.h"
#include "proto/weft/v1/weft.grpc.pb.h"
#include "storage/rocksdb/snapshot_archive.h"
#include "tools/weftctl/output.h"

namespace weft::weftctl {
namespace {

constexpr int kListPageSize = 5000;

bool Unreachable(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE || s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

// One run of one command: the invocation, the channels, where output goes.
class Runner {
 public:
  Runner(const Invocation& inv, const ChannelFactory& channels, bool tls_on, const Io& io)
      : inv_(inv), conn_(inv.connection), opts_(inv.options), channels_(channels), tls_on_(tls_on), io_(io) {}

  int Run() {
    // status asks every endpoint and snapshot save the etcd API; the others
    // the first controller that answers.
    if (inv_.command != Command::kStatus && inv_.command != Command::kSnapshotSave) Connect();
    switch (inv_.command) {
      case Command::kStatus:
        return Status();
      case Command::kConfigGet:
        return ConfigGet();
      case Command::kConfigSet:
        return ConfigSet();
      case Command::kLeasesList:
        return LeasesList();
      case Command::kLeaseShow:
        return LeaseShow();
      case Command::kReserve:
        return Reserve();
      case Command::kUnreserve:
        return Unreserve();
      case Command::kSnapshotSave:
        return SaveSnapshot();
    }
    WEFT_CHECK(false, "a Command without its case in Runner::Run");
    return kFailed;
  }

 private:
  std::chrono::system_clock::time_point Deadline() const {
    return std::chrono::system_clock::now() + absl::ToChronoMilliseconds(conn_.timeout);
  }

  std::unique_ptr<grpc::ClientContext> Context() const {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(Deadline());
    return c;
  }

  // "controller 127.0.0.1:7800: NOT_FOUND (no such thing): <what gRPC said>".
  std::string Describe(const std::string& where, const grpc::Status& s) const {
    std::string text = DescribeRpcError(s, tls_on_);
    if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      text = absl::StrCat("no answer within --timeout ", absl::FormatDuration(conn_.timeout), ": ", text);
    }
    // The code is said first, by name: not again at the end.
    if (const std::string tail = absl::StrCat(" (", RpcCodeName(s.error_code()), ")"); absl::EndsWith(text, tail)) {
      text.resize(text.size() - tail.size());
    }
    return absl::StrCat("controller ", where, ": ", RpcCodeName(s.error_code()), " (", RpcCodeMeaning(s.error_code()),
                        "): ", text);
  }

  int Fail(const grpc::Status& s) const {
    io_.err << "weftctl: " << Describe(endpoint_, s) << "\n";
    // Input the controller refused as malformed is the caller's mistake: usage exit.
    if (s.error_code() == grpc::StatusCode::INVALID_ARGUMENT) return kUsage;
    return Unreachable(s) ? kUnreachable : kFailed;
  }

  // Every endpoint is asked; exit 3 unless every one answered.
  int Status() {
    std::vector<EndpointStatus> all;
    bool every = true;
    for (const std::string& addr : conn_.controllers) {
      EndpointStatus e;
      e.address = addr;
      auto stub = v1::NetworkService::NewStub(channels_(addr));
      e.rpc = stub->GetStatus(Context().get(), {}, &e.status);
      if (!e.rpc.ok()) e.error = Describe(addr, e.rpc);
      every &= e.rpc.ok();
      all.push_back(std::move(e));
    }
    io_.out << FormatStatus(all, opts_.output);
    return every ? kOk : kUnreachable;
  }

  // The first endpoint that answers (a connection attempt within --timeout).
  void Connect() {
    std::shared_ptr<grpc::Channel> channel;
    for (const std::string& addr : conn_.controllers) {
      endpoint_ = addr;
      channel = channels_(addr);
      if (conn_.controllers.size() == 1 || channel->WaitForConnected(Deadline())) break;
    }
    leases_ = v1::LeaseService::NewStub(channel);
    network_ = v1::NetworkService::NewStub(channel);
  }

  int ConfigGet() {
    v1::GetNetworkConfigResponse resp;
    if (grpc::Status s = network_->GetNetworkConfig(Context().get(), {}, &resp); !s.ok()) return Fail(s);
    io_.out << resp.config();
    if (resp.config().empty() || resp.config().back() != '\n') io_.out << "\n";
    return kOk;
  }

  int ConfigSet() {
    std::stringstream buf;
    if (inv_.operand == "-") {
      buf << io_.in.rdbuf();
    } else {
      std::ifstream f(inv_.operand);
      if (!f) {
        io_.err << UsageError(absl::StrCat("cannot read ", inv_.operand));
        return kUsage;
      }
      buf << f.rdbuf();
    }
    v1::SetNetworkConfigRequest req;
    // Stored as given, less the file's trailing newline (flannel's tools write none).
    req.set_config(std::string(absl::StripTrailingAsciiWhitespace(buf.str())));
    req.set_force(opts_.force);
    v1::SetNetworkConfigResponse resp;
    if (grpc::Status s = network_->SetNetworkConfig(Context().get(), req, &resp); !s.ok()) return Fail(s);
    io_.out << "config set at revision " << resp.revision() << "\n";
    for (const std::string& sn : resp.stranded_subnets()) {
      io_.out << "stranded (outside the new config): " << sn << "\n";
    }
    return kOk;
  }

  int LeasesList() {
    // Page through; every page is at the first one's revision. A listing whose
    // revision was compacted meanwhile (ABORTED) starts over.
    v1::ListLeasesResponse all;
    grpc::Status s;
    for (int attempt = 0; attempt < 3; ++attempt) {
      all.Clear();
      v1::ListLeasesRequest req;
      req.set_page_size(kListPageSize);
      do {
        v1::ListLeasesResponse page;
        s = leases_->ListLeases(Context().get(), req, &page);
        if (!s.ok()) break;
        all.set_revision(page.revision());
        for (auto& l : *page.mutable_leases()) all.add_leases()->Swap(&l);
        req.set_page_token(page.next_page_token());
      } while (!req.page_token().empty());
      if (s.error_code() != grpc::StatusCode::ABORTED) break;
    }
    if (!s.ok()) return Fail(s);
    io_.out << FormatLeases(all, opts_.output);
    return kOk;
  }

  int LeaseShow() {
    v1::GetLeaseRequest req;
    req.set_subnet(inv_.operand);
    v1::GetLeaseResponse resp;
    if (grpc::Status s = leases_->GetLease(Context().get(), req, &resp); !s.ok()) return Fail(s);
    io_.out << FormatLease(resp.lease(), opts_.output);
    return kOk;
  }

  int Reserve() {
    v1::ReserveRequest req;
    req.set_subnet(inv_.operand);
    req.set_public_ip(opts_.public_ip);
    req.set_public_ipv6(opts_.public_ipv6);
    req.set_ipv6_subnet(opts_.ipv6_subnet);
    req.set_node_name(opts_.node);
    v1::ReserveResponse resp;
    if (grpc::Status s = network_->Reserve(Context().get(), req, &resp); !s.ok()) return Fail(s);
    const v1::Lease& l = resp.lease();
    io_.out << "reserved " << (l.subnet().empty() ? l.ipv6_subnet() : l.subnet())
            << (!l.subnet().empty() && !l.ipv6_subnet().empty() ? " and " + l.ipv6_subnet() : "") << " for "
            << (l.public_ip().empty() ? l.public_ipv6() : l.public_ip()) << "\n";
    return kOk;
  }

  int Unreserve() {
    v1::UnreserveRequest req;
    req.set_subnet(inv_.operand);
    v1::UnreserveResponse resp;
    if (grpc::Status s = network_->Unreserve(Context().get(), req, &resp); !s.ok()) return Fail(s);
    io_.out << "unreserved " << req.subnet() << " (now an ordinary lease that expires unless renewed)\n";
    return kOk;
  }

  // Maintenance.Snapshot of the controller's etcd API into the file, as etcdctl
  // snapshot save writes it (the stream, then its SHA-256), checked on the way.
  // The etcd API takes the same client certificate as the gRPC API (an operator's).
  int SaveSnapshot() {
    endpoint_ = conn_.etcd;
    const std::string& file = inv_.operand;
    auto maintenance = etcdserverpb::Maintenance::NewStub(channels_(conn_.etcd));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     absl::ToChronoSeconds(std::max(conn_.timeout, absl::Seconds(60))));
    auto reader = maintenance->Snapshot(&ctx, etcdserverpb::SnapshotRequest());
    const std::string part = file + ".part";
    std::ofstream out(part, std::ios::binary | std::ios::trunc);
    if (!out) {
      io_.err << "weftctl: cannot write " << part << "\n";
      return kFailed;
    }
    storage::snapshot_archive::Sha256 sha;
    std::string last;
    bool have_last = false;
    uint64_t bytes = 0;
    etcdserverpb::SnapshotResponse msg;
    while (reader->Read(&msg)) {
      // The last message is the checksum of all before it.
      if (have_last) sha.Update(last);
      last = msg.blob();
      have_last = true;
      out << msg.blob();
      bytes += msg.blob().size();
    }
    grpc::Status s = reader->Finish();
    out.close();
    if (!s.ok() || !out || !have_last || last != sha.Final()) {
      std::remove(part.c_str());
      if (!s.ok()) return Fail(s);
      io_.err << "weftctl: snapshot stream damaged (no or wrong SHA-256)\n";
      return kFailed;
    }
    if (std::rename(part.c_str(), file.c_str()) != 0) {
      io_.err << "weftctl: cannot rename " << part << " to " << file << "\n";
      return kFailed;
    }
    io_.out << "snapshot saved to " << file << " (" << bytes << " bytes, SHA-256 checked)\n";
    return kOk;
  }

  const Invocation& inv_;
  const Connection& conn_;
  const CommandOptions& opts_;
  const ChannelFactory& channels_;
  const bool tls_on_;
  const Io& io_;
  std::string endpoint_;  // the address in use, for error messages
  std::unique_ptr<v1::LeaseService::Stub> leases_;
  std::unique_ptr<v1::NetworkService::Stub> network_;
};

}  // namespace

int RunCommand(const Invocation& inv, const ChannelFactory& channels, bool tls_on, const Io& io) {
  return Runner(inv, channels, tls_on, io).Run();
}

int Main(const std::vector<std::string>& args, const Io& io) {
  absl::StatusOr<Invocation> inv = ParseInvocation(args);
  if (!inv.ok()) {
    io.err << UsageError(inv.status().message());
    return kUsage;
  }
  switch (inv->action) {
    case Invocation::Action::kHelp:
      io.out << HelpText(Help(), kEnvPrefix);
      return kOk;
    case Invocation::Action::kVersion:
      io.out << version::Line("weftctl") << "\n";
      return kOk;
    case Invocation::Action::kRun:
      break;
  }
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> creds = MakeChannelCredentials(inv->connection.tls);
  if (!creds.ok()) {
    io.err << UsageError(creds.status().message());
    return kUsage;
  }
  const ChannelFactory channels = [creds = *creds](const std::string& address) {
    return grpc::CreateChannel(address, creds);
  };
  return RunCommand(*inv, channels, inv->connection.tls.enabled(), io);
}

}  // namespace weft::weftctl
