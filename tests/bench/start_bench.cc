// Controller start with many leases in its embedded store: N leases (flannel's
// JSON, attached to a store lease, as the controller writes them) are put
// straight into a RocksDB data directory, then the real weft-controller starts
// on it. Measured from the process start: when its port accepts connections,
// when GetNetworkConfig succeeds, and when an AcquireLease for a new node
// succeeds. Baseline in the same run: the same on an empty store.
//
//   bazel run -c opt //tests/bench:start_bench -- [--leases 50000] [--rounds 2]

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/mutex_mode.h"
#include "common/testing.h"
#include "controller/lease_codec.h"
#include "grpcpp/grpcpp.h"
#include "proto/weft/v1/weft.grpc.pb.h"
#include "storage/rocksdb/rocksdb_store.h"
#include "tests/integration/process.h"

namespace {

using weft::controller::EncodeLeaseAttrs;
using weft::controller::EncodeSubnetKey;
using weft::controller::LeaseAttrs;
using weft::controller::SubnetKey;

constexpr char kPrefix[] = "/coreos.com/network";

// The data directory with the config and `n` leases of 10.0.0.0/8 (/24 each).
bool Fill(const std::string& dir, int n) {
  weft::storage::RocksDbStore::Options o;
  o.path = dir;
  auto store = weft::storage::RocksDbStore::Open(o);
  if (!store.ok()) {
    std::fprintf(stderr, "open: %s\n", store.status().ToString().c_str());
    return false;
  }
  weft::storage::PutRequest cfg;
  cfg.key = weft::controller::ConfigKey(kPrefix);
  cfg.value = R"({"Network":"10.0.0.0/8","SubnetLen":24,"Backend":{"Type":"vxlan"}})";
  if (!(*store)->Put(cfg).ok()) return false;
  auto lease = (*store)->LeaseGrant(24 * 3600);
  if (!lease.ok()) return false;
  for (int base = 0; base < n; base += 128) {
    weft::storage::TxnRequest txn;
    for (int i = base; i < std::min(n, base + 128); ++i) {
      SubnetKey k;
      k.ipv4 = *weft::IPv4Net::Make(weft::IPv4Addr::FromUint32((10u << 24) | (static_cast<uint32_t>(i) << 8)), 24);
      LeaseAttrs a;
      a.public_ip = weft::IPv4Addr::FromUint32((198u << 24) | (18u << 16) | static_cast<uint32_t>(i));
      a.backend_type = "vxlan";
      a.backend_data = absl::StrFormat(R"({"VNI":1,"VtepMAC":"02:00:00:%02x:%02x:%02x"})", i >> 16, (i >> 8) & 0xff,
                                       i & 0xff);
      a.node_name = absl::StrCat("node-", i);
      weft::storage::RequestOp op;
      op.type = weft::storage::RequestOp::Type::kPut;
      op.put.key = EncodeSubnetKey(kPrefix, k);
      op.put.value = EncodeLeaseAttrs(a);
      op.put.lease = lease->id;
      txn.success.push_back(std::move(op));
    }
    if (!(*store)->Txn(txn).ok()) return false;
  }
  return true;
}

struct Times {
  double answered_ms = -1, serving_ms = -1, acquired_ms = -1;  // serving: GetNetworkConfig answered
};

// `extra`: more controller flags.
Times StartAndMeasure(const std::string& dir, int round, const std::vector<std::string>& extra = {}) {
  Times t;
  const int port = weft::testing::FreePort();
  const std::string addr = absl::StrCat("127.0.0.1:", port);
  weft::testing::Process p;
  const absl::Time t0 = absl::Now();
  std::vector<std::string> argv = {weft::testing::Runfile("controller/weft-controller"), "--data-dir", dir, "--listen",
                                   addr, "--metrics-listen", "", "--log-level", "warn"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  p.Start(argv, absl::StrCat(dir, ".log"));
  const absl::Time deadline = t0 + absl::Seconds(60);
  // Listening: a TCP connect succeeds (a gRPC channel dialled before that
  // would wait out its reconnect backoff and blur the figure).
  while (absl::Now() < deadline && t.answered_ms < 0) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0) {
      t.answered_ms = absl::ToDoubleMilliseconds(absl::Now() - t0);
    } else {
      absl::SleepFor(absl::Milliseconds(2));
    }
    close(fd);
  }
  auto channel = grpc::CreateChannel(addr, grpc::InsecureChannelCredentials());
  auto network = weft::v1::NetworkService::NewStub(channel);
  auto leases = weft::v1::LeaseService::NewStub(channel);
  while (absl::Now() < deadline && t.serving_ms < 0) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    ctx.set_wait_for_ready(true);
    weft::v1::GetNetworkConfigResponse resp;
    if (network->GetNetworkConfig(&ctx, {}, &resp).ok()) {
      t.serving_ms = absl::ToDoubleMilliseconds(absl::Now() - t0);
    } else {
      absl::SleepFor(absl::Milliseconds(5));
    }
  }
  while (absl::Now() < deadline && t.acquired_ms < 0) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    ctx.set_wait_for_ready(true);
    weft::v1::AcquireLeaseRequest req;
    req.set_node_name(absl::StrCat("newcomer-", round));
    req.set_public_ip(absl::StrCat("203.0.113.", round + 1));
    req.set_backend_type("vxlan");
    req.set_backend_data(R"({"VNI":1,"VtepMAC":"02:00:00:ff:ff:ff"})");
    weft::v1::AcquireLeaseResponse resp;
    if (leases->AcquireLease(&ctx, req, &resp).ok()) {
      t.acquired_ms = absl::ToDoubleMilliseconds(absl::Now() - t0);
    } else {
      absl::SleepFor(absl::Milliseconds(5));
    }
  }
  p.Kill(SIGTERM);
  p.Wait();
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  weft::TurnOffMutexDeadlockDetection();
  int leases = 50000, rounds = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    int v = 0;
    if (!absl::SimpleAtoi(argv[i + 1], &v)) continue;
    if (std::string(argv[i]) == "--leases") leases = v;
    if (std::string(argv[i]) == "--rounds") rounds = v;
  }
  const weft::TempDir tmp("weft-start-", weft::TempDir::Root::kTmp);
  const std::string dir = tmp.path();
  const std::string empty = dir + "/empty", full = dir + "/full";
  if (!Fill(empty, 0) || !Fill(full, leases)) return 1;
  std::printf("start_bench: weft-controller on its embedded store, %d leases against none\n", leases);
  std::printf("%-8s %7s %-10s %14s %14s %16s\n", "leases", "round", "replay", "listening (ms)", "config (ms)",
              "acquired (ms)");
  // The full store twice: replaying its recent history into the fan-out's (the
  // default) and not (--watch-replay-revisions 0).
  struct Case {
    const std::string* dir;
    int leases;
    bool replay;
  };
  for (int r = 0; r < rounds; ++r) {
    for (const Case& c : {Case{&empty, 0, true}, Case{&full, leases, true}, Case{&full, leases, false}}) {
      Times t = StartAndMeasure(*c.dir, r, c.replay ? std::vector<std::string>{}
                                                    : std::vector<std::string>{"--watch-replay-revisions", "0"});
      std::printf("%-8d %7d %-10s %14.0f %14.0f %16.0f\n", c.leases, r + 1, c.replay ? "default" : "none",
                  t.answered_ms, t.serving_ms, t.acquired_ms);
    }
  }
  return 0;
}
