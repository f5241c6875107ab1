// weftctl: the operator's command line for a Weft controller.
//
//   weftctl [--controller ADDR] [--timeout 10s] [--ca-file F --cert-file F --key-file F] COMMAND ...
//     config get
//     config set FILE [--force]        (FILE "-" = stdin; flannel's JSON)
//     leases list [-o table|json]
//     lease show SUBNET [-o table|json]
//     reserve SUBNET --public-ip IP [--node NAME]
//     unreserve SUBNET
//     snapshot save FILE [--etcd ADDR] (a backup of the embedded store, through
//                                       the controller's --etcd-listen API)
//
// Exit codes: 0 ok, 1 the controller refused or failed, 2 bad usage or input.

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/json.h"
#include "common/log.h"
#include "common/net.h"
#include "common/tls_client.h"
#include "common/version.h"
#include "grpcpp/grpcpp.h"
#include "proto/etcd/rpc.grpc.pb.h"
#include "proto/weft/v1/weft.grpc.pb.h"
#include "storage/rocksdb/snapshot_archive.h"

namespace {

constexpr int kOk = 0, kFailed = 1, kUsage = 2;

const char kUsageText[] =
    "usage: weftctl [--controller ADDR] [--timeout DURATION] [TLS FILES] COMMAND\n"
    "  config get\n"
    "  config set FILE [--force]      set the network config (flannel's JSON; - = stdin)\n"
    "  leases list [-o table|json]\n"
    "  lease show SUBNET [-o table|json]\n"
    "  reserve SUBNET --public-ip IP [--node NAME]\n"
    "  unreserve SUBNET\n"
    "  snapshot save FILE [--etcd ADDR] back up the embedded store through the controller's\n"
    "                                 etcd API (--etcd-listen; $WEFT_ETCD or 127.0.0.1:2379);\n"
    "                                 restore with weft-controller --restore-from FILE\n"
    "ADDR defaults to $WEFT_CONTROLLER or 127.0.0.1:7800.\n"
    "TLS FILES (mutual TLS; each also from $WEFT_CA_FILE, $WEFT_CERT_FILE, $WEFT_KEY_FILE):\n"
    "  --ca-file F    CA bundle the controller's certificate must chain to\n"
    "  --cert-file F  this client's certificate (an operator's: O=weft:admins, tools/certs.sh admin)\n"
    "  --key-file F   its private key\n"
    "Exit status: 0 done; 1 the controller refused or failed the request (or could not be reached);\n"
    "2 bad usage or input.\n";

int Usage(const std::string& why) {
  if (!why.empty()) std::cerr << "weftctl: " << why << "\n";
  std::cerr << kUsageText;
  return kUsage;
}

bool tls_on = false;  // set once in main, before any call

int Fail(const grpc::Status& s) {
  std::cerr << "weftctl: " << weft::DescribeRpcError(s, tls_on) << "\n";
  // Input the controller refused as malformed is the caller's mistake: usage exit.
  return s.error_code() == grpc::StatusCode::INVALID_ARGUMENT ? kUsage : kFailed;
}

std::string Expiry(const weft::v1::Lease& l) {
  if (l.reserved()) return "never (reserved)";
  if (!l.has_expiration()) return "-";
  absl::Time t = absl::FromUnixSeconds(l.expiration().seconds());
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

nlohmann::ordered_json LeaseJson(const weft::v1::Lease& l) {
  nlohmann::ordered_json j;
  j["subnet"] = l.subnet();
  if (!l.ipv6_subnet().empty()) j["ipv6_subnet"] = l.ipv6_subnet();
  j["public_ip"] = l.public_ip();
  if (!l.public_ipv6().empty()) j["public_ipv6"] = l.public_ipv6();
  j["node_name"] = l.node_name();
  j["backend_type"] = l.backend_type();
  // The controller stores BackendData as a JSON object: show it as one.
  // Anything else (unreadable, too deep) is shown as the string it is.
  if (l.backend_data().empty()) {
    j["backend_data"] = nullptr;
  } else if (auto data = weft::json::ParseOrdered(l.backend_data(), "backend_data"); data.ok()) {
    j["backend_data"] = *std::move(data);
  } else {
    j["backend_data"] = l.backend_data();
  }
  j["reserved"] = l.reserved();
  if (l.has_expiration()) j["expiration"] = Expiry(l);
  j["revision"] = l.revision();
  return j;
}

constexpr int kListPageSize = 5000;

// Sort key of a lease: its IPv4 subnet's address (IPv6-only leases after all).
uint64_t SubnetOrder(const weft::v1::Lease& l) {
  absl::StatusOr<weft::IPv4Net> net = weft::IPv4Net::Parse(l.subnet());
  return net.ok() ? net->network().value() : uint64_t{1} << 32;
}

void PrintTable(const std::vector<const weft::v1::Lease*>& leases) {
  absl::PrintF("%-20s %-16s %-24s %-9s %-22s %s\n", "SUBNET", "PUBLIC-IP", "NODE", "BACKEND", "EXPIRES",
               "BACKEND-DATA");
  for (const weft::v1::Lease* l : leases) {
    absl::PrintF("%-20s %-16s %-24s %-9s %-22s %s\n", l->subnet().empty() ? l->ipv6_subnet() : l->subnet(),
                 l->public_ip().empty() ? "-" : l->public_ip(),
                 l->node_name().empty() ? "-" : l->node_name(), l->backend_type(), Expiry(*l),
                 l->backend_data().empty() ? "-" : l->backend_data());
  }
}

struct Args {
  std::vector<std::string> positional;
  std::string output = "table";
  std::string public_ip;
  std::string node;
  bool force = false;
  std::string etcd = getenv("WEFT_ETCD") ? getenv("WEFT_ETCD") : "127.0.0.1:2379";
};

// Maintenance.Snapshot of the controller's etcd API into `file`, as etcdctl
// snapshot save writes it (the stream, then its SHA-256), checked on the way.
// The etcd API takes the same client certificate as the gRPC API (an operator's).
int SaveSnapshot(const std::string& etcd, const std::shared_ptr<grpc::ChannelCredentials>& creds,
                 const std::string& file, absl::Duration timeout) {
  auto channel = grpc::CreateChannel(etcd, creds);
  auto maintenance = etcdserverpb::Maintenance::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoSeconds(std::max(timeout, absl::Seconds(60))));
  auto reader = maintenance->Snapshot(&ctx, etcdserverpb::SnapshotRequest());
  const std::string part = file + ".part";
  std::ofstream out(part, std::ios::binary | std::ios::trunc);
  if (!out) {
    std::cerr << "weftctl: cannot write " << part << "\n";
    return 1;
  }
  weft::storage::snapshot_archive::Sha256 sha;
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
    std::cerr << "weftctl: snapshot stream damaged (no or wrong SHA-256)\n";
    return 1;
  }
  if (std::rename(part.c_str(), file.c_str()) != 0) {
    std::cerr << "weftctl: cannot rename " << part << " to " << file << "\n";
    return 1;
  }
  std::cout << "snapshot saved to " << file << " (" << bytes << " bytes, SHA-256 checked)\n";
  return kOk;
}

}  // namespace

int main(int argc, char** argv) {
  std::string controller = getenv("WEFT_CONTROLLER") ? getenv("WEFT_CONTROLLER") : "127.0.0.1:7800";
  absl::Duration timeout = absl::Seconds(10);
  auto env = [](const char* name) { return std::string(getenv(name) ? getenv(name) : ""); };
  weft::TlsClientFiles tls{env("WEFT_CA_FILE"), env("WEFT_CERT_FILE"), env("WEFT_KEY_FILE")};
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const std::string& name) -> const char* {
      auto eq = arg.find('=');
      if (eq != std::string::npos) return argv[i] + eq + 1;
      if (i + 1 >= argc) return nullptr;
      return argv[++i];
    };
    auto is = [&](const char* name) { return arg == name || arg.rfind(std::string(name) + "=", 0) == 0; };
    if (arg == "-h" || arg == "--help" || arg == "help") {
      std::cout << kUsageText;
      return kOk;
    } else if (arg == "--version" || arg == "version") {
      std::cout << weft::version::Line("weftctl") << "\n";
      return kOk;
    } else if (is("--controller")) {
      const char* v = value(arg);
      if (!v) return Usage("--controller needs an address");
      controller = v;
    } else if (is("--timeout")) {
      const char* v = value(arg);
      if (!v || !absl::ParseDuration(v, &timeout)) return Usage("--timeout needs a duration like 10s");
    } else if (is("--ca-file") || is("--cert-file") || is("--key-file")) {
      const std::string name = arg.substr(0, arg.find('='));
      const char* v = value(arg);
      if (!v) return Usage(absl::StrCat(name, " needs a file"));
      (name == "--ca-file" ? tls.ca_file : name == "--cert-file" ? tls.cert_file : tls.key_file) = v;
    } else if (is("-o") || is("--output")) {
      const char* v = value(arg);
      if (!v || (std::string(v) != "json" && std::string(v) != "table")) return Usage("-o is table or json");
      a.output = v;
    } else if (is("--public-ip")) {
      const char* v = value(arg);
      if (!v) return Usage("--public-ip needs an address");
      a.public_ip = v;
    } else if (is("--node")) {
      const char* v = value(arg);
      if (!v) return Usage("--node needs a name");
      a.node = v;
    } else if (is("--etcd")) {
      const char* v = value(arg);
      if (!v) return Usage("--etcd needs an address");
      a.etcd = v;
    } else if (arg == "--force") {
      a.force = true;
    } else if (arg.size() > 1 && arg[0] == '-' && arg != "-") {
      return Usage(absl::StrCat("unknown flag ", arg));
    } else {
      a.positional.push_back(arg);
    }
  }
  if (a.positional.empty()) return Usage("no command");

  weft::log::SetLevel(weft::log::Level::kWarning);  // a command's output is its answer; errors still show
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> creds = weft::MakeChannelCredentials(tls);
  if (!creds.ok()) return Usage(std::string(creds.status().message()));
  tls_on = tls.enabled();
  auto channel = grpc::CreateChannel(controller, *creds);
  auto leases = weft::v1::LeaseService::NewStub(channel);
  auto network = weft::v1::NetworkService::NewStub(channel);
  auto ctx = [&]() {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(std::chrono::system_clock::now() + absl::ToChronoSeconds(timeout));
    return c;
  };
  const std::vector<std::string>& p = a.positional;
  const std::string cmd = p[0] + (p.size() > 1 ? " " + p[1] : "");

  if (cmd == "config get") {
    weft::v1::GetNetworkConfigResponse resp;
    grpc::Status s = network->GetNetworkConfig(ctx().get(), {}, &resp);
    if (!s.ok()) return Fail(s);
    std::cout << resp.config() << "\n";
    return kOk;
  }
  if (cmd == "config set") {
    if (p.size() != 3) return Usage("config set needs FILE");
    std::stringstream buf;
    if (p[2] == "-") {
      buf << std::cin.rdbuf();
    } else {
      std::ifstream f(p[2]);
      if (!f) return Usage(absl::StrCat("cannot read ", p[2]));
      buf << f.rdbuf();
    }
    weft::v1::SetNetworkConfigRequest req;
    req.set_config(buf.str());
    req.set_force(a.force);
    weft::v1::SetNetworkConfigResponse resp;
    grpc::Status s = network->SetNetworkConfig(ctx().get(), req, &resp);
    if (!s.ok()) return Fail(s);
    std::cout << "config set at revision " << resp.revision() << "\n";
    for (const std::string& sn : resp.stranded_subnets()) std::cout << "stranded (outside the new config): " << sn << "\n";
    return kOk;
  }
  if (cmd == "leases list") {
    // Page through; every page is at the first one's revision. A listing whose
    // revision was compacted meanwhile (ABORTED) starts over.
    weft::v1::ListLeasesResponse resp;
    grpc::Status s;
    for (int attempt = 0; attempt < 3; ++attempt) {
      resp.Clear();
      weft::v1::ListLeasesRequest req;
      req.set_page_size(kListPageSize);
      do {
        weft::v1::ListLeasesResponse page;
        s = leases->ListLeases(ctx().get(), req, &page);
        if (!s.ok()) break;
        resp.set_revision(page.revision());
        for (auto& l : *page.mutable_leases()) resp.add_leases()->Swap(&l);
        req.set_page_token(page.next_page_token());
      } while (!req.page_token().empty());
      if (s.error_code() != grpc::StatusCode::ABORTED) break;
    }
    if (!s.ok()) return Fail(s);
    // Numeric subnet order (10.1.9.0 before 10.1.10.0); IPv6-only leases last.
    std::stable_sort(resp.mutable_leases()->begin(), resp.mutable_leases()->end(),
                     [](const weft::v1::Lease& x, const weft::v1::Lease& y) { return SubnetOrder(x) < SubnetOrder(y); });
    if (a.output == "json") {
      nlohmann::ordered_json out;
      out["revision"] = resp.revision();
      out["leases"] = nlohmann::ordered_json::array();
      for (const auto& l : resp.leases()) out["leases"].push_back(LeaseJson(l));
      std::cout << weft::json::Dump(out) << "\n";
    } else {
      std::vector<const weft::v1::Lease*> v;
      for (const auto& l : resp.leases()) v.push_back(&l);
      PrintTable(v);
    }
    return kOk;
  }
  if (cmd == "lease show") {
    if (p.size() != 3) return Usage("lease show needs SUBNET");
    weft::v1::GetLeaseRequest req;
    req.set_subnet(p[2]);
    weft::v1::GetLeaseResponse resp;
    grpc::Status s = leases->GetLease(ctx().get(), req, &resp);
    if (!s.ok()) return Fail(s);
    if (a.output == "json") {
      std::cout << weft::json::Dump(LeaseJson(resp.lease())) << "\n";
    } else {
      PrintTable({&resp.lease()});
    }
    return kOk;
  }
  if (p[0] == "reserve") {
    if (p.size() != 2) return Usage("reserve needs SUBNET");
    if (a.public_ip.empty()) return Usage("reserve needs --public-ip");
    weft::v1::ReserveRequest req;
    req.set_subnet(p[1]);
    req.set_public_ip(a.public_ip);
    req.set_node_name(a.node);
    weft::v1::ReserveResponse resp;
    grpc::Status s = network->Reserve(ctx().get(), req, &resp);
    if (!s.ok()) return Fail(s);
    std::cout << "reserved " << resp.lease().subnet() << " for " << resp.lease().public_ip() << "\n";
    return kOk;
  }
  if (p[0] == "unreserve") {
    if (p.size() != 2) return Usage("unreserve needs SUBNET");
    weft::v1::UnreserveRequest req;
    req.set_subnet(p[1]);
    weft::v1::UnreserveResponse resp;
    grpc::Status s = network->Unreserve(ctx().get(), req, &resp);
    if (!s.ok()) return Fail(s);
    std::cout << "unreserved " << p[1] << " (now an ordinary lease that expires unless renewed)\n";
    return kOk;
  }
  if (cmd == "snapshot save") {
    if (p.size() != 3) return Usage("snapshot save needs FILE");
    return SaveSnapshot(a.etcd, *creds, p[2], timeout);
  }
  return Usage(absl::StrCat("unknown command \"", cmd, "\""));
}
