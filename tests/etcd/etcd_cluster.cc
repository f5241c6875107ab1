#include "tests/etcd/etcd_cluster.h"

#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "proto/etcd/rpc.grpc.pb.h"

namespace weft::testing {

std::unique_ptr<EtcdCluster> EtcdCluster::Start(const Options& options, std::string* error) {
  std::unique_ptr<EtcdCluster> c(new EtcdCluster());
  c->options_ = options;
  const int members = options.members;
  const std::string& dir = options.dir;
  mkdir(dir.c_str(), 0755);
  if (!options.tls_dir.empty()) {
    const std::string& t = options.tls_dir;
    struct stat st;
    if (stat(absl::StrCat(t, "/ca.crt").c_str(), &st) != 0 && !MakeCerts({"--dir", t, "ca"}, error)) return nullptr;
    if (stat(absl::StrCat(t, "/etcd-server.crt").c_str(), &st) != 0 &&
        !MakeCerts({"--dir", t, "server", "etcd-server", "IP:127.0.0.1,DNS:localhost"}, error)) {
      return nullptr;
    }
    if (stat(absl::StrCat(t, "/etcd-client.crt").c_str(), &st) != 0 &&
        !MakeCerts({"--dir", t, "client", "etcd-client"}, error)) {
      return nullptr;
    }
  }
  std::vector<std::string> peers;
  for (int i = 0; i < members; ++i) {
    Member m;
    m.name = absl::StrCat("m", i);
    m.data_dir = absl::StrCat(dir, "/", m.name);
    m.client_port = FreePort();
    m.peer_port = FreePort();
    while (m.peer_port == m.client_port) m.peer_port = FreePort();
    peers.push_back(absl::StrCat(m.name, "=http://127.0.0.1:", m.peer_port));
    c->members_.push_back(std::move(m));
  }
  c->initial_cluster_ = absl::StrJoin(peers, ",");
  for (int i = 0; i < members; ++i) {
    if (!c->StartMember(i, true)) {
      *error = absl::StrCat("cannot start etcd member ", i);
      return nullptr;
    }
  }
  for (int i = 0; i < members; ++i) {
    if (!c->WaitReady(i, 60)) {
      *error = absl::StrCat("etcd member ", i, " did not become ready (", c->last_error_, "); see ", options.log_dir,
                            "/etcd-m", i, ".log");
      return nullptr;
    }
  }
  return c;
}

EtcdCluster::~EtcdCluster() {
  for (Member& m : members_) m.process.reset();  // SIGKILL + wait
}

bool EtcdCluster::StartMember(int i, bool new_cluster) {
  Member& m = members_[i];
  const std::string client = url(i);
  const std::string peer = absl::StrCat("http://127.0.0.1:", m.peer_port);
  std::vector<std::string> argv = {"/usr/bin/etcd",
                                   "--name",
                                   m.name,
                                   "--data-dir",
                                   m.data_dir,
                                   "--listen-client-urls",
                                   client,
                                   "--advertise-client-urls",
                                   client,
                                   "--listen-peer-urls",
                                   peer,
                                   "--initial-advertise-peer-urls",
                                   peer,
                                   "--initial-cluster",
                                   initial_cluster_,
                                   "--initial-cluster-state",
                                   new_cluster ? "new" : "existing",
                                   "--initial-cluster-token",
                                   "weft-test"};
  if (tls()) {
    const std::string& t = options_.tls_dir;
    for (const std::string& a : {std::string("--client-cert-auth"), std::string("--trusted-ca-file"), ca_file(),
                                 std::string("--cert-file"), absl::StrCat(t, "/etcd-server.crt"),
                                 std::string("--key-file"), absl::StrCat(t, "/etcd-server.key")}) {
      argv.push_back(a);
    }
  }
  if (options_.fast_elections) {
    for (const char* a : {"--heartbeat-interval", "50", "--election-timeout", "500"}) argv.push_back(a);
  }
  m.process = std::make_unique<Process>();
  return m.process->Start(argv, absl::StrCat(options_.log_dir, "/etcd-", m.name, ".log"));
}

std::string EtcdCluster::endpoint(int i) const { return absl::StrCat("127.0.0.1:", members_[i].client_port); }

std::vector<std::string> EtcdCluster::endpoints() const {
  std::vector<std::string> out;
  for (int i = 0; i < size(); ++i) out.push_back(endpoint(i));
  return out;
}

std::string EtcdCluster::url(int i) const {
  return absl::StrCat(tls() ? "https://" : "http://", endpoint(i));
}

std::vector<std::string> EtcdCluster::urls() const {
  std::vector<std::string> out;
  for (int i = 0; i < size(); ++i) out.push_back(url(i));
  return out;
}

std::string EtcdCluster::ca_file() const { return tls() ? absl::StrCat(options_.tls_dir, "/ca.crt") : ""; }
std::string EtcdCluster::client_cert_file() const {
  return tls() ? absl::StrCat(options_.tls_dir, "/etcd-client.crt") : "";
}
std::string EtcdCluster::client_key_file() const {
  return tls() ? absl::StrCat(options_.tls_dir, "/etcd-client.key") : "";
}

namespace {
std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}
}  // namespace

std::shared_ptr<grpc::ChannelCredentials> EtcdCluster::credentials() const {
  if (!tls()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = ReadAll(ca_file());
  o.pem_cert_chain = ReadAll(client_cert_file());
  o.pem_private_key = ReadAll(client_key_file());
  return grpc::SslCredentials(o);
}

int EtcdCluster::Etcdctl(const std::vector<std::string>& args, std::string* out, bool as_root) const {
  std::string cmd = absl::StrCat("exec /usr/bin/etcdctl --endpoints ", absl::StrJoin(urls(), ","));
  if (tls()) {
    absl::StrAppend(&cmd, " --cacert ", ca_file(), " --cert ", client_cert_file(), " --key ", client_key_file());
  }
  if (as_root) absl::StrAppend(&cmd, " --user root:", kRootPassword);
  for (const std::string& a : args) absl::StrAppend(&cmd, " '", a, "'");
  return RunCommand({"/bin/sh", "-c", cmd + " 2>&1"}, out);
}

bool EtcdCluster::EnableAuth(const std::string& user, const std::string& password,
                             const std::vector<std::string>& prefixes, std::string* error) const {
  std::vector<std::vector<std::string>> steps = {{"user", "add", absl::StrCat("root:", kRootPassword)},
                                                 {"user", "grant-role", "root", "root"},
                                                 {"user", "add", absl::StrCat(user, ":", password)},
                                                 {"role", "add", user}};
  for (const std::string& p : prefixes) steps.push_back({"role", "grant-permission", user, "--prefix=true", "readwrite", p});
  steps.push_back({"user", "grant-role", user, user});
  steps.push_back({"auth", "enable"});
  for (const auto& step : steps) {
    std::string out;
    if (Etcdctl(step, &out) != 0) {
      *error = absl::StrCat("etcdctl ", absl::StrJoin(step, " "), ": ", out);
      return false;
    }
  }
  return true;
}

bool MakeCerts(const std::vector<std::string>& args, std::string* error) {
  std::vector<std::string> argv = {"/bin/bash", Runfile("tools/certs.sh")};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string out;
  const int rc = RunCommand(argv, &out);
  if (rc != 0) *error = absl::StrCat("tools/certs.sh ", absl::StrJoin(args, " "), " failed (", rc, "): ", out);
  return rc == 0;
}

void EtcdCluster::Kill(int i) { members_[i].process.reset(); }

void EtcdCluster::Pause(int i) {
  if (running(i)) ::kill(members_[i].process->pid(), SIGSTOP);
}

void EtcdCluster::Unpause(int i) {
  if (running(i)) ::kill(members_[i].process->pid(), SIGCONT);
}

bool EtcdCluster::Restart(int i) {
  if (running(i)) return true;
  return StartMember(i, false) && WaitReady(i, 60);
}

bool EtcdCluster::running(int i) const { return members_[i].process && members_[i].process->running(); }


bool EtcdCluster::WaitReady(int i, int seconds) {
  const absl::Time deadline = absl::Now() + absl::Seconds(seconds);
  while (absl::Now() < deadline) {
    // A fresh channel each time: a channel that failed to connect waits out
    // gRPC's growing reconnect backoff (seconds) before it tries again.
    auto kv = etcdserverpb::KV::NewStub(grpc::CreateChannel(endpoint(i), credentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    etcdserverpb::RangeRequest req;
    req.set_key("ready-probe");
    etcdserverpb::RangeResponse resp;
    const grpc::Status s = kv->Range(&ctx, req, &resp);
    if (s.ok()) return true;
    // With auth enabled, etcd answers only after the read's agreement.
    if (s.error_message() == "etcdserver: user name is empty" ||
        s.error_message() == "etcdserver: invalid auth token") {
      return true;
    }
    last_error_ = absl::StrCat(s.error_code(), ": ", s.error_message());
    absl::SleepFor(absl::Milliseconds(100));
  }
  return false;
}

int EtcdCluster::Leader() const {
  for (int i = 0; i < size(); ++i) {
    if (!running(i)) continue;
    auto m = etcdserverpb::Maintenance::NewStub(grpc::CreateChannel(endpoint(i), credentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    etcdserverpb::StatusResponse st;
    if (m->Status(&ctx, etcdserverpb::StatusRequest(), &st).ok() && st.leader() == st.header().member_id()) return i;
  }
  return -1;
}

bool WaitForServing(const std::string& endpoint, int seconds) {
  const absl::Time deadline = absl::Now() + absl::Seconds(seconds);
  while (absl::Now() < deadline) {
    auto channel = grpc::CreateChannel(endpoint, grpc::InsecureChannelCredentials());
    if (channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::milliseconds(500))) return true;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return false;
}

std::string TestOutputDir() {
  if (const char* d = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR")) return d;
  if (const char* d = std::getenv("TEST_TMPDIR")) return d;
  return "/tmp";
}

}  // namespace weft::testing
