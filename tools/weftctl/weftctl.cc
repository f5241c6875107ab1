// weftctl: the operator's command line for a Weft controller.
//
//   weftctl [--controller ADDR[,ADDR...]] [--timeout 10s] [--ca-file F --cert-file F --key-file F] COMMAND ...
//     status [-o table|json|yaml]      every endpoint, the store, the network, the pool
//     config get
//     config set FILE [--force]        (FILE "-" = stdin; flannel's JSON)
//     leases list [-o table|wide|json|yaml]
//     lease show SUBNET [-o ...]       SUBNET as 10.5.189.0/24 or flannel's key 10.5.189.0-24
//     reserve SUBNET --public-ip IP [--node NAME] [--ipv6-subnet SUBNET6 --public-ipv6 IP6]
//     unreserve SUBNET
//     snapshot save FILE [--etcd ADDR] (a backup of the embedded store, through
//                                       the controller's --etcd-listen API)
//
// Exit codes: 0 ok, 1 the controller refused or failed, 2 bad usage or input,
// 3 no controller reachable (or none answered within --timeout).

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/ascii.h"
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
    "weftctl: the operator's command line for a Weft controller.\n"
    "\n"
    "Usage: weftctl [FLAGS] COMMAND\n"
    "\n"
    "Commands:\n"
    "  status                         every controller endpoint (reachable, version, leader, store, revision),\n"
    "                                 the network config, leases used/free/reserved, expiring within the\n"
    "                                 hour, watch streams, the backend\n"
    "  config get                     the network config (flannel's JSON)\n"
    "  config set FILE [--force]      set the network config (FILE - = stdin); --force even if leases\n"
    "                                 would fall outside it\n"
    "  leases list                    every lease, in subnet order\n"
    "  lease show SUBNET              one lease; SUBNET as 10.5.189.0/24 or flannel's key 10.5.189.0-24\n"
    "  reserve SUBNET --public-ip IP [--node NAME] [--ipv6-subnet SUBNET6 --public-ipv6 IP6]\n"
    "                                 a lease that never expires, for a host outside Weft (dual-stack:\n"
    "                                 with its IPv6 subnet; without --ipv6-subnet, the lease's own)\n"
    "  unreserve SUBNET               make a reservation an ordinary lease again\n"
    "  snapshot save FILE [--etcd ADDR]\n"
    "                                 back up the embedded store through the controller's etcd API\n"
    "                                 (--etcd-listen; $WEFT_ETCD or 127.0.0.1:2379); restore with\n"
    "                                 weft-controller --restore-from FILE\n"
    "  version                        weftctl's version (as --version)\n"
    "\n"
    "Flags:\n"
    "  --controller ADDR[,ADDR...]    controller gRPC endpoints ($WEFT_CONTROLLER; default 127.0.0.1:7800);\n"
    "                                 status asks each, other commands the first that answers\n"
    "  --timeout DURATION             how long to wait for each answer ($WEFT_TIMEOUT; default 10s)\n"
    "  -o, --output FORMAT            table (default), wide (more columns), json or yaml\n"
    "  --ca-file F                    CA bundle the controller's certificate must chain to ($WEFT_CA_FILE)\n"
    "  --cert-file F                  this client's certificate: an operator's (O=weft:admins, tools/certs.sh\n"
    "                                 admin) to change things, any to read ($WEFT_CERT_FILE)\n"
    "  --key-file F                   its private key ($WEFT_KEY_FILE)\n"
    "  --help, --version\n"
    "\n"
    "Exit status: 0 done; 1 the controller refused or failed the request; 2 bad usage or input (also when\n"
    "the controller refuses the input as malformed); 3 no controller reachable, or none answered in time.\n";

int Usage(const std::string& why) {
  if (!why.empty()) std::cerr << "weftctl: " << why << "\n";
  std::cerr << kUsageText;
  return kUsage;
}

bool tls_on = false;  // set once in main, before any call

std::string endpoint;  // the controller address in use, for error messages
absl::Duration timeout = absl::Seconds(10);

constexpr int kUnreachable = 3;

bool Unreachable(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE || s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

// "weftctl: controller 127.0.0.1:7800: NOT_FOUND (no such thing): <what gRPC said>".
std::string Describe(const std::string& where, const grpc::Status& s) {
  std::string text = weft::DescribeRpcError(s, tls_on);
  if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    text = absl::StrCat("no answer within --timeout ", absl::FormatDuration(timeout), ": ", text);
  }
  // The code is said first, by name: not again at the end.
  if (const std::string tail = absl::StrCat(" (", weft::RpcCodeName(s.error_code()), ")"); absl::EndsWith(text, tail)) {
    text.resize(text.size() - tail.size());
  }
  return absl::StrCat("controller ", where, ": ", weft::RpcCodeName(s.error_code()), " (",
                      weft::RpcCodeMeaning(s.error_code()), "): ", text);
}

int Fail(const grpc::Status& s) {
  std::cerr << "weftctl: " << Describe(endpoint, s) << "\n";
  // Input the controller refused as malformed is the caller's mistake: usage exit.
  if (s.error_code() == grpc::StatusCode::INVALID_ARGUMENT) return kUsage;
  return Unreachable(s) ? kUnreachable : kFailed;
}

// flannel's key form "10.5.189.0-24" (and "fd00::-56") as a CIDR; CIDRs pass.
std::string SubnetArg(const std::string& arg) {
  if (arg.find('/') != std::string::npos) return arg;
  const size_t dash = arg.rfind('-');
  if (dash == std::string::npos || dash + 1 >= arg.size() || dash + 4 < arg.size()) return arg;
  for (size_t i = dash + 1; i < arg.size(); ++i) {
    if (arg[i] < '0' || arg[i] > '9') return arg;
  }
  return arg.substr(0, dash) + "/" + arg.substr(dash + 1);
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

// A mapping key: plain when it is a simple word, else a quoted scalar.
std::string YamlKey(const std::string& key) {
  bool plain = !key.empty() && absl::ascii_isalpha(static_cast<unsigned char>(key[0]));
  for (char c : key) plain &= absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  return plain ? key : weft::json::Dump(nlohmann::ordered_json(key));
}

// YAML for what LeaseJson and the status build: block mappings and sequences,
// scalars as JSON (a JSON string is a YAML double-quoted scalar). The depth is
// bounded by json::ParseOrdered's limit on backend_data.
void AppendYaml(const nlohmann::ordered_json& j, int indent, std::string* out) {
  const std::string pad(indent, ' ');
  auto scalar = [](const nlohmann::ordered_json& v) { return v.is_null() ? std::string("null") : weft::json::Dump(v); };
  auto nested = [](const nlohmann::ordered_json& v) { return (v.is_object() || v.is_array()) && !v.empty(); };
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      absl::StrAppend(out, pad, YamlKey(it.key()), ":");
      if (nested(it.value())) {
        absl::StrAppend(out, "\n");
        AppendYaml(it.value(), indent + 2, out);
      } else {
        absl::StrAppend(out, " ", scalar(it.value()), "\n");
      }
    }
  } else if (j.is_array()) {
    for (const auto& v : j) {
      if (nested(v)) {
        // "- " then the first line of the nested block on the same line.
        std::string inner;
        AppendYaml(v, indent + 2, &inner);
        absl::StrAppend(out, pad, "- ", inner.substr(indent + 2));
      } else {
        absl::StrAppend(out, pad, "- ", scalar(v), "\n");
      }
    }
  } else {
    absl::StrAppend(out, pad, scalar(j), "\n");
  }
}

std::string Yaml(const nlohmann::ordered_json& j) {
  std::string out = "---\n";
  if (j.is_object() || j.is_array()) {
    if (j.empty()) return out + (j.is_object() ? "{}\n" : "[]\n");
    AppendYaml(j, 0, &out);
  } else {
    AppendYaml(j, 0, &out);
  }
  return out;
}

// json or yaml output of `j`.
void PrintStructured(const std::string& format, const nlohmann::ordered_json& j) {
  if (format == "yaml") {
    std::cout << Yaml(j);
  } else {
    std::cout << weft::json::Dump(j) << "\n";
  }
}

constexpr int kListPageSize = 5000;

// Sort key of a lease: its IPv4 subnet's address (IPv6-only leases after all).
uint64_t SubnetOrder(const weft::v1::Lease& l) {
  absl::StatusOr<weft::IPv4Net> net = weft::IPv4Net::Parse(l.subnet());
  return net.ok() ? net->network().value() : uint64_t{1} << 32;
}

// Columns as wide as their widest cell (the last one unpadded), two spaces apart.
void PrintAligned(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    if (width.size() < r.size()) width.resize(r.size(), 0);
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
}

void PrintTable(const std::vector<const weft::v1::Lease*>& leases, bool wide) {
  auto dash = [](const std::string& v) { return v.empty() ? std::string("-") : v; };
  std::vector<std::vector<std::string>> rows;
  if (wide) {
    rows.push_back({"SUBNET", "IPV6-SUBNET", "PUBLIC-IP", "PUBLIC-IPV6", "NODE", "BACKEND", "EXPIRES", "REVISION",
                    "BACKEND-DATA"});
  } else {
    rows.push_back({"SUBNET", "PUBLIC-IP", "NODE", "BACKEND", "EXPIRES"});
  }
  for (const weft::v1::Lease* l : leases) {
    const std::string subnet = l->subnet().empty() ? l->ipv6_subnet() : l->subnet();
    if (wide) {
      rows.push_back({dash(l->subnet()), dash(l->ipv6_subnet()), dash(l->public_ip()), dash(l->public_ipv6()),
                      dash(l->node_name()), dash(l->backend_type()), Expiry(*l), absl::StrCat(l->revision()),
                      dash(l->backend_data())});
    } else {
      rows.push_back({subnet, dash(l->public_ip()), dash(l->node_name()), dash(l->backend_type()), Expiry(*l)});
    }
  }
  PrintAligned(rows);
}

struct Args {
  std::vector<std::string> positional;
  std::string output = "table";
  std::vector<std::string> controllers;
  std::string public_ip;
  std::string public_ipv6;
  std::string ipv6_subnet;
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

// The status of one endpoint: its answer, or why there is none.
struct EndpointStatus {
  std::string address;
  grpc::Status rpc;
  weft::v1::GetStatusResponse status;
};

nlohmann::ordered_json StatusJson(const std::vector<EndpointStatus>& all) {
  nlohmann::ordered_json out;
  out["endpoints"] = nlohmann::ordered_json::array();
  const weft::v1::GetStatusResponse* first = nullptr;
  for (const EndpointStatus& e : all) {
    nlohmann::ordered_json j;
    j["address"] = e.address;
    j["reachable"] = e.rpc.ok();
    if (!e.rpc.ok()) {
      j["error"] = Describe(e.address, e.rpc);
    } else {
      if (first == nullptr) first = &e.status;
      j["version"] = e.status.version();
      j["commit"] = e.status.commit();
      j["replica"] = e.status.replica();
      j["leader"] = e.status.leader();
      j["store"] = e.status.store();
      j["store_location"] = e.status.store_location();
      j["revision"] = e.status.revision();
      j["store_healthy"] = e.status.store_problem().empty();
      if (!e.status.store_problem().empty()) j["store_problem"] = e.status.store_problem();
      j["watch_streams"] = e.status.watch_streams();
    }
    out["endpoints"].push_back(std::move(j));
  }
  if (first != nullptr) {
    if (first->network_config().empty()) {
      out["network_config"] = nullptr;
    } else if (auto cfg = weft::json::ParseOrdered(first->network_config(), "network config"); cfg.ok()) {
      out["network_config"] = *std::move(cfg);
    } else {
      out["network_config"] = first->network_config();
    }
    out["backend_type"] = first->backend_type();
    const auto& p = first->pool();
    out["subnets"] = p.subnets();
    out["leases"] = p.leases();
    out["free"] = p.free();
    out["reserved"] = p.reserved();
    out["expiring_within_hour"] = p.expiring_within_hour();
  }
  return out;
}

void PrintStatus(const std::vector<EndpointStatus>& all) {
  std::vector<std::vector<std::string>> rows = {
      {"ENDPOINT", "REACHABLE", "VERSION", "LEADER", "STORE", "REVISION", "STORE-HEALTH", "WATCHES"}};
  const weft::v1::GetStatusResponse* first = nullptr;
  std::vector<std::string> errors;
  for (const EndpointStatus& e : all) {
    if (!e.rpc.ok()) {
      rows.push_back({e.address, absl::StrCat("no: ", weft::RpcCodeName(e.rpc.error_code())), "-", "-", "-", "-", "-",
                      "-"});
      errors.push_back(Describe(e.address, e.rpc));
      continue;
    }
    const auto& st = e.status;
    if (first == nullptr) first = &st;
    const std::string commit = st.commit().size() > 12 ? st.commit().substr(0, 12) : st.commit();
    rows.push_back({e.address, "yes", absl::StrCat(st.version(), " (", commit, ")"), st.leader() ? "yes" : "no",
                    absl::StrCat(st.store(), " ", st.store_location()), absl::StrCat(st.revision()),
                    st.store_problem().empty() ? "ok" : st.store_problem(), absl::StrCat(st.watch_streams())});
  }
  PrintAligned(rows);
  for (const std::string& e : errors) std::cout << "  " << e << "\n";
  if (first == nullptr) return;
  std::cout << "\n";
  std::string network = "(none set: weftctl config set FILE)";
  if (!first->network_config().empty()) {
    network = first->network_config();
    if (auto cfg = weft::json::ParseOrdered(first->network_config(), "network config"); cfg.ok()) {
      network = weft::json::Dump(*cfg);  // one line
    }
  }
  const auto& p = first->pool();
  PrintAligned({
      {"Network config:", network},
      {"Backend:", first->backend_type().empty() ? "-" : first->backend_type()},
      {"Subnets:", absl::StrCat(p.subnets(), " in the network: ", p.leases(), " leased, ", p.reserved(),
                                " reserved, ", p.free(), " free")},
      {"Expiring within the hour:", absl::StrCat(p.expiring_within_hour())},
  });
  if (p.ipv6_subnets() > 0) {
    PrintAligned({{"IPv6 subnets:", absl::StrCat(p.ipv6_subnets(), " in the network, ", p.ipv6_free(), " free")}});
  }
}

int main(int argc, char** argv) {
  auto env = [](const char* name) { return std::string(getenv(name) ? getenv(name) : ""); };
  std::string controller = getenv("WEFT_CONTROLLER") ? getenv("WEFT_CONTROLLER") : "127.0.0.1:7800";
  if (const std::string t = env("WEFT_TIMEOUT"); !t.empty() && !absl::ParseDuration(t, &timeout)) {
    return Usage("$WEFT_TIMEOUT needs a duration like 10s");
  }
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
      if (!v || !absl::ParseDuration(v, &timeout) || timeout <= absl::ZeroDuration()) {
        return Usage("--timeout needs a positive duration like 10s");
      }
    } else if (is("--ca-file") || is("--cert-file") || is("--key-file")) {
      const std::string name = arg.substr(0, arg.find('='));
      const char* v = value(arg);
      if (!v) return Usage(absl::StrCat(name, " needs a file"));
      (name == "--ca-file" ? tls.ca_file : name == "--cert-file" ? tls.cert_file : tls.key_file) = v;
    } else if (is("-o") || is("--output")) {
      const char* v = value(arg);
      const std::string o = v ? v : "";
      if (o != "json" && o != "table" && o != "yaml" && o != "wide") return Usage("-o is table, wide, json or yaml");
      a.output = o;
    } else if (is("--public-ip")) {
      const char* v = value(arg);
      if (!v) return Usage("--public-ip needs an address");
      a.public_ip = v;
    } else if (is("--public-ipv6")) {
      const char* v = value(arg);
      if (!v) return Usage("--public-ipv6 needs an address");
      a.public_ipv6 = v;
    } else if (is("--ipv6-subnet")) {
      const char* v = value(arg);
      if (!v) return Usage("--ipv6-subnet needs a subnet");
      a.ipv6_subnet = SubnetArg(v);
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
  a.controllers = absl::StrSplit(controller, ',', absl::SkipWhitespace());
  if (a.controllers.empty()) return Usage("--controller needs an address");

  weft::log::SetLevel(weft::log::Level::kWarning);  // a command's output is its answer; errors still show
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> creds = weft::MakeChannelCredentials(tls);
  if (!creds.ok()) return Usage(std::string(creds.status().message()));
  tls_on = tls.enabled();
  auto deadline = [] { return std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout); };
  auto ctx = [&]() {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(deadline());
    return c;
  };
  const std::vector<std::string>& p = a.positional;
  const std::string cmd = p[0] + (p.size() > 1 ? " " + p[1] : "");

  if (p[0] == "status") {
    if (p.size() != 1) return Usage("status takes no argument");
    std::vector<EndpointStatus> all;
    bool every = true;
    for (const std::string& addr : a.controllers) {
      EndpointStatus e;
      e.address = addr;
      auto stub = weft::v1::NetworkService::NewStub(grpc::CreateChannel(addr, *creds));
      e.rpc = stub->GetStatus(ctx().get(), {}, &e.status);
      every &= e.rpc.ok();
      all.push_back(std::move(e));
    }
    if (a.output == "json" || a.output == "yaml") {
      PrintStructured(a.output, StatusJson(all));
    } else {
      PrintStatus(all);
    }
    return every ? kOk : kUnreachable;
  }

  // Other commands: the first endpoint that answers (a connection attempt
  // within --timeout).
  std::shared_ptr<grpc::Channel> channel;
  for (const std::string& addr : a.controllers) {
    endpoint = addr;
    channel = grpc::CreateChannel(addr, *creds);
    if (a.controllers.size() == 1 || channel->WaitForConnected(deadline())) break;
  }
  auto leases = weft::v1::LeaseService::NewStub(channel);
  auto network = weft::v1::NetworkService::NewStub(channel);

  if (cmd == "config get") {
    weft::v1::GetNetworkConfigResponse resp;
    grpc::Status s = network->GetNetworkConfig(ctx().get(), {}, &resp);
    if (!s.ok()) return Fail(s);
    std::cout << resp.config();
    if (resp.config().empty() || resp.config().back() != '\n') std::cout << "\n";
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
    // Stored as given, less the file's trailing newline (flannel's tools write none).
    req.set_config(std::string(absl::StripTrailingAsciiWhitespace(buf.str())));
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
    if (a.output == "json" || a.output == "yaml") {
      nlohmann::ordered_json out;
      out["revision"] = resp.revision();
      out["leases"] = nlohmann::ordered_json::array();
      for (const auto& l : resp.leases()) out["leases"].push_back(LeaseJson(l));
      PrintStructured(a.output, out);
    } else {
      std::vector<const weft::v1::Lease*> v;
      for (const auto& l : resp.leases()) v.push_back(&l);
      PrintTable(v, a.output == "wide");
    }
    return kOk;
  }
  if (cmd == "lease show") {
    if (p.size() != 3) return Usage("lease show needs SUBNET");
    weft::v1::GetLeaseRequest req;
    req.set_subnet(SubnetArg(p[2]));
    weft::v1::GetLeaseResponse resp;
    grpc::Status s = leases->GetLease(ctx().get(), req, &resp);
    if (!s.ok()) return Fail(s);
    if (a.output == "json" || a.output == "yaml") {
      PrintStructured(a.output, LeaseJson(resp.lease()));
    } else {
      PrintTable({&resp.lease()}, a.output == "wide");
    }
    return kOk;
  }
  if (p[0] == "reserve") {
    if (p.size() != 2) return Usage("reserve needs SUBNET");
    if (a.public_ip.empty() && a.public_ipv6.empty()) return Usage("reserve needs --public-ip (or --public-ipv6)");
    weft::v1::ReserveRequest req;
    req.set_subnet(SubnetArg(p[1]));
    req.set_public_ip(a.public_ip);
    req.set_public_ipv6(a.public_ipv6);
    req.set_ipv6_subnet(a.ipv6_subnet);
    req.set_node_name(a.node);
    weft::v1::ReserveResponse resp;
    grpc::Status s = network->Reserve(ctx().get(), req, &resp);
    if (!s.ok()) return Fail(s);
    const weft::v1::Lease& l = resp.lease();
    std::cout << "reserved " << (l.subnet().empty() ? l.ipv6_subnet() : l.subnet())
              << (!l.subnet().empty() && !l.ipv6_subnet().empty() ? " and " + l.ipv6_subnet() : "") << " for "
              << (l.public_ip().empty() ? l.public_ipv6() : l.public_ip()) << "\n";
    return kOk;
  }
  if (p[0] == "unreserve") {
    if (p.size() != 2) return Usage("unreserve needs SUBNET");
    weft::v1::UnreserveRequest req;
    req.set_subnet(SubnetArg(p[1]));
    weft::v1::UnreserveResponse resp;
    grpc::Status s = network->Unreserve(ctx().get(), req, &resp);
    if (!s.ok()) return Fail(s);
    std::cout << "unreserved " << req.subnet() << " (now an ordinary lease that expires unless renewed)\n";
    return kOk;
  }
  if (cmd == "snapshot save") {
    if (p.size() != 3) return Usage("snapshot save needs FILE");
    endpoint = a.etcd;
    return SaveSnapshot(a.etcd, *creds, p[2], timeout);
  }
  return Usage(absl::StrCat("unknown command \"", cmd, "\""));
}
