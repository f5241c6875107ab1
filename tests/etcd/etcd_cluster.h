#pragma once
// Real etcd 3.4 servers (Debian's /usr/bin/etcd) on loopback for tests: one
// member or a cluster, started on free ports, waited for until they serve, and
// killed by the destructor whatever happens in the test.

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/integration/process.h"

namespace weft::testing {

class EtcdCluster {
 public:
  struct Options {
    int members = 1;
    std::string dir;      // data, one directory per member below it (created)
    std::string log_dir;  // etcd-m<i>.log
    // etcd's defaults (100 ms heartbeats, 1 s election timeout) when false;
    // 50 ms / 500 ms when true, for faster failover in cluster tests. The
    // timing changes etcd's minimum lease TTL (2 s with the defaults).
    bool fast_elections = false;
    // Client TLS: when set, certificates are made in this directory with
    // tools/certs.sh (unless there already): a CA (ca.crt), the members'
    // server certificate (etcd-server.crt, SANs 127.0.0.1 and localhost) and a
    // client certificate (etcd-client.crt/.key). Members then serve https://
    // client URLs with --client-cert-auth: a client must present a
    // certificate signed by the CA. (Peers stay plaintext on loopback.)
    std::string tls_dir;
  };
  // Returns once every member answers a linearizable read (a leader exists);
  // nullptr with `error` set when that does not happen within 60 s.
  static std::unique_ptr<EtcdCluster> Start(const Options& options, std::string* error);
  ~EtcdCluster();

  int size() const { return static_cast<int>(members_.size()); }
  // "127.0.0.1:PORT" of member i's client URL.
  std::string endpoint(int i) const;
  std::vector<std::string> endpoints() const;
  // Member i's client URL: "http://127.0.0.1:PORT", or https:// with TLS.
  std::string url(int i) const;
  std::vector<std::string> urls() const;
  bool tls() const { return !options_.tls_dir.empty(); }
  // With TLS: the files a client needs (empty without TLS).
  std::string ca_file() const;
  std::string client_cert_file() const;
  std::string client_key_file() const;
  // Credentials for a gRPC channel to a member (with the client certificate).
  std::shared_ptr<grpc::ChannelCredentials> credentials() const;

  void Kill(int i);      // SIGKILL, waits for the exit
  bool Restart(int i);   // starts a killed member again with its data
  // SIGSTOP / SIGCONT: a frozen member is cut off as by a partition (its peers
  // and clients time out on it) and comes back with its state, behind.
  void Pause(int i);
  void Unpause(int i);
  bool running(int i) const;
  // Member i's process id (-1 when it is not running).
  pid_t pid(int i) const { return running(i) ? members_[i].process->pid() : -1; }

  // Waits until member i answers a linearizable read (or refuses it only for
  // want of an auth token, once auth is enabled: etcd checks auth after the
  // read's agreement with the leader).
  bool WaitReady(int i, int seconds);

  // Index of the member that is raft leader now (asked through Status), or -1.
  int Leader() const;

  // Runs Debian's etcdctl against every member (with the client certificate
  // under TLS; as root once auth is on when `as_root`); its exit code, output
  // (stdout and stderr) in `out`.
  int Etcdctl(const std::vector<std::string>& args, std::string* out, bool as_root = false) const;
  // Turns etcd's auth on as flannel's docs set it up: a root user (password
  // kRootPassword) and `user` with a role of the same name that may read and
  // write each of `prefixes` and nothing else. False with `error` set on failure.
  static constexpr char kRootPassword[] = "root-pw";
  bool EnableAuth(const std::string& user, const std::string& password, const std::vector<std::string>& prefixes,
                  std::string* error) const;

 private:
  struct Member {
    std::string name;
    std::string data_dir;
    int client_port = 0;
    int peer_port = 0;
    std::unique_ptr<Process> process;
  };
  EtcdCluster() = default;
  bool StartMember(int i, bool new_cluster);

  Options options_;
  std::string last_error_;  // of the readiness probe
  std::string initial_cluster_;
  std::vector<Member> members_;
};

// Runs tools/certs.sh (a data dependency of this library) with `args`; false
// (the output in `error`) when it fails.
bool MakeCerts(const std::vector<std::string>& args, std::string* error);

// Waits until a gRPC server accepts connections at `endpoint`.
bool WaitForServing(const std::string& endpoint, int seconds);

// Where tests put logs and transcripts worth keeping: Bazel's undeclared
// outputs directory when set, else TEST_TMPDIR.
std::string TestOutputDir();

// A fresh directory TEST_TMPDIR/<current test>/<leaf> for one test's etcd.
inline std::string TestDir(const std::string& leaf) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", info->name(), "/", leaf);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace weft::testing
