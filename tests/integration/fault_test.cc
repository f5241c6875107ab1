// The fault suite, against the real weft-controller, etcdctl and file systems:
// a disk that fills up (a small tmpfs in a private mount namespace), corrupted
// write-ahead log and table files, backup and restore through etcdctl, and a
// controller frozen by SIGSTOP in the middle of a burst. Each asserts that
// nothing acknowledged is lost, and that the process stays up (or, for
// corruption, refuses to start and says why).

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/testing.h"
#include "grpcpp/generic/generic_stub.h"
#include "absl/time/clock.h"
#include "proto/etcd/rpc.grpc.pb.h"
#include "tests/integration/controller_fixture.h"

namespace weft::testing {
namespace {

constexpr char kConfig[] = R"({"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}})";

int Etcdctl(const std::string& endpoint, std::vector<std::string> args, std::string* out) {
  std::vector<std::string> argv = {"/usr/bin/env", "ETCDCTL_API=3", "/usr/bin/etcdctl", "--endpoints", endpoint,
                                   "--dial-timeout=2s", "--command-timeout=10s"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, out);
}

// Runs the controller to completion (it is expected to refuse to start);
// returns its exit code, its log in *out.
int RunController(std::vector<std::string> flags, std::string* out) {
  std::string cmd = Runfile("controller/weft-controller");
  for (const auto& f : flags) cmd += " '" + f + "'";
  cmd += " --listen 127.0.0.1:" + std::to_string(FreePort()) + " --metrics-listen '' 2>&1";
  return RunCommand({"/bin/sh", "-c", cmd}, out);
}

weft::v1::AcquireLeaseRequest Node(int i) {
  weft::v1::AcquireLeaseRequest r;
  r.set_node_name(absl::StrCat("node-", i));
  r.set_public_ip(absl::StrFormat("198.51.%d.%d", i / 250, i % 250 + 1));
  r.set_backend_type("vxlan");
  r.set_backend_data(absl::StrFormat(R"({"VNI":1,"VtepMAC":"02:00:00:00:%02x:%02x"})", (i >> 8) & 0xff, i & 0xff));
  return r;
}

grpc::Status SetConfig(Controller& c) {
  weft::v1::SetNetworkConfigRequest req;
  req.set_config(kConfig);
  weft::v1::SetNetworkConfigResponse resp;
  return c.network()->SetNetworkConfig(Ctx().get(), req, &resp);
}

grpc::Status Acquire(Controller& c, int i, std::string* subnet = nullptr) {
  weft::v1::AcquireLeaseResponse resp;
  grpc::Status s = c.leases()->AcquireLease(Ctx(5).get(), Node(i), &resp);
  if (s.ok() && subnet != nullptr) *subnet = resp.lease().subnet();
  return s;
}

weft::v1::ListLeasesResponse ListResp(Controller& c) {
  weft::v1::ListLeasesResponse resp;
  grpc::Status s = c.leases()->ListLeases(Ctx().get(), {}, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return resp;
}

// subnet -> node, every page (a burst leaves more leases than one page holds).
std::map<std::string, std::string> Holders(Controller& c) {
  std::map<std::string, std::string> out;
  for (const auto& l : ListAll(c.leases())) out[l.subnet()] = l.node_name();
  return out;
}

void ExpectKept(Controller& c, const std::map<std::string, std::string>& acked) {
  const auto holders = Holders(c);
  for (const auto& [node, subnet] : acked) {
    auto it = holders.find(subnet);
    ASSERT_NE(it, holders.end()) << "acknowledged lease " << subnet << " of " << node << " lost";
    EXPECT_EQ(it->second, node);
  }
}

// How long a recovery may take (weft::Eventually), unless a call says otherwise.
constexpr absl::Duration kRecovery = absl::Seconds(60);

std::string Readyz(int port) {
  std::string out;
  RunCommand({"/usr/bin/curl", "-s", "--max-time", "5", absl::StrCat("http://127.0.0.1:", port, "/readyz")}, &out);
  return out;
}

// grpc.health.v1.Health/Check for `service` ("" = overall): 1 SERVING,
// 2 NOT_SERVING, -1 no answer.
int Health(Controller& c, const std::string& service) {
  grpc::GenericStub stub(c.channel());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  std::string request;
  if (!service.empty()) request = std::string("\x0a", 1) + static_cast<char>(service.size()) + service;
  grpc::Slice slice(request);
  grpc::ByteBuffer req(&slice, 1);
  grpc::ByteBuffer resp;
  absl::Notification done;
  grpc::Status status;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &req, &resp, [&](grpc::Status s) {
    status = s;
    done.Notify();
  });
  done.WaitForNotification();
  if (!status.ok()) return -1;
  std::vector<grpc::Slice> slices;
  if (!resp.Dump(&slices).ok()) return -1;
  std::string bytes;
  for (auto& sl : slices) bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
  return bytes.size() == 2 && bytes[0] == '\x08' ? bytes[1] : -1;
}

// A WatchLeases stream read on its own thread, as an agent does.
class LeaseWatcher {
 public:
  LeaseWatcher(Controller& c, int64_t start_revision) {
    weft::v1::WatchLeasesRequest req;
    req.set_start_revision(start_revision);
    stub_ = weft::v1::LeaseService::NewStub(c.channel());
    reader_ = stub_->WatchLeases(&ctx_, req);
    thread_ = std::thread([this] {
      weft::v1::WatchLeasesResponse resp;
      while (reader_->Read(&resp)) {
        absl::MutexLock l(&mu_);
        revision_ = resp.revision();
        if (resp.has_snapshot()) {
          ++snapshots_;
          for (const auto& l : resp.snapshot().leases()) nodes_.insert(l.node_name());
        }
        for (const auto& e : resp.events().events()) nodes_.insert(e.lease().node_name());
      }
    });
  }
  ~LeaseWatcher() {
    ctx_.TryCancel();
    thread_.join();
  }
  bool Saw(const std::string& node) {
    absl::MutexLock l(&mu_);
    return nodes_.count(node) > 0;
  }
  int64_t revision() {
    absl::MutexLock l(&mu_);
    return revision_;
  }
  int snapshots() {
    absl::MutexLock l(&mu_);
    return snapshots_;
  }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<weft::v1::LeaseService::Stub> stub_;
  std::unique_ptr<grpc::ClientReader<weft::v1::WatchLeasesResponse>> reader_;
  std::thread thread_;
  absl::Mutex mu_;
  std::set<std::string> nodes_;
  int64_t revision_ = 0;
  int snapshots_ = 0;
};

std::string NewestFile(const std::string& dir, const std::string& suffix) {
  std::string found;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string p = e.path().string();
    if (p.size() > suffix.size() && p.compare(p.size() - suffix.size(), suffix.size(), suffix) == 0 && p > found) {
      found = p;
    }
  }
  return found;
}

void FlipByte(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

// A 64 MiB tmpfs at `dir`, in a mount namespace of this test process alone (it
// vanishes with the process, whatever happens).
void MountPrivateTmpfs(const std::string& dir) {
  ASSERT_EQ(unshare(CLONE_NEWNS), 0) << "needs root";
  ASSERT_EQ(mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0);
  std::filesystem::create_directories(dir);
  ASSERT_EQ(mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=64m"), 0);
}

// Writes `path` until its file system has not one byte left.
void FillDisk(const std::string& path) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  const std::string chunk(1 << 20, 'f');
  while (write(fd, chunk.data(), chunk.size()) > 0) {
  }
  while (write(fd, "f", 1) > 0) {
  }
  close(fd);
}

// Disk full: the data dir is a 64 MiB tmpfs, mounted in a mount namespace of
// this test process alone (it vanishes with the process, whatever happens).
TEST(FaultTest, DiskFullRefusesWritesKeepsReadsAndWatchesThenRecovers) {
  const std::string mnt = DataDir("full");
  ASSERT_NO_FATAL_FAILURE(MountPrivateTmpfs(mnt));
  const int metrics_port = FreePort();
  const int etcd_port = FreePort();
  const std::string etcd = absl::StrCat("127.0.0.1:", etcd_port);
  Controller c(mnt + "/data");
  c.Start({"--metrics-listen", absl::StrCat("127.0.0.1:", metrics_port), "--etcd-listen", etcd});
  ASSERT_TRUE(SetConfig(c).ok());
  std::map<std::string, std::string> acked;
  for (int i = 1; i <= 20; ++i) {
    std::string subnet;
    ASSERT_TRUE(Acquire(c, i, &subnet).ok());
    acked[Node(i).node_name()] = subnet;
  }
  LeaseWatcher watcher(c, 0);
  ASSERT_TRUE(Eventually([&] { return watcher.Saw("node-20"); }, kRecovery));
  EXPECT_EQ(Readyz(metrics_port), "ok\n");
  EXPECT_EQ(Health(c, ""), 1);
  EXPECT_EQ(Health(c, "weft.v1.LeaseService"), 1);
  EXPECT_EQ(Health(c, "weft.v1.NetworkService"), 1);

  // Fill the file system to the last byte.
  const std::string fill = mnt + "/fill";
  ASSERT_NO_FATAL_FAILURE(FillDisk(fill));
  grpc::Status refused = Acquire(c, 100);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
  EXPECT_NE(refused.error_message().find("No space left"), std::string::npos) << refused.error_message();
  // Reads go on; readiness and the etcd alarm say why.
  EXPECT_EQ(Holders(c).size(), 20u);
  ASSERT_TRUE(Eventually([&] { return Readyz(metrics_port) != "ok\n"; }, absl::Seconds(10)));
  const std::string why = Readyz(metrics_port);
  EXPECT_NE(why.find("No space left"), std::string::npos) << why;
  EXPECT_TRUE(Eventually([&] { return Health(c, "") == 2; }, absl::Seconds(10)));
  EXPECT_EQ(Health(c, "weft.v1.LeaseService"), 2);
  EXPECT_EQ(Health(c, "weft.v1.NetworkService"), 2);
  EXPECT_EQ(Health(c, "etcdserverpb.KV"), 2);
  std::string out;
  EXPECT_EQ(Etcdctl(etcd, {"alarm", "list"}, &out), 0);
  EXPECT_NE(out.find("alarm:NOSPACE"), std::string::npos) << out;
  EXPECT_EQ(Etcdctl(etcd, {"get", "/coreos.com/network/config", "--print-value-only"}, &out), 0);
  EXPECT_NE(out.find("10.0.0.0/8"), std::string::npos) << out;

  // Space returns: the controller recovers by itself.
  std::filesystem::remove(fill);
  ASSERT_TRUE(Eventually([&] { return Acquire(c, 101).ok(); }, kRecovery)) << "no recovery after space returned";
  EXPECT_TRUE(Eventually([&] { return Readyz(metrics_port) == "ok\n"; }, absl::Seconds(10)));
  EXPECT_TRUE(Eventually([&] { return Health(c, "") == 1 && Health(c, "weft.v1.LeaseService") == 1; },
                         absl::Seconds(10)));
  EXPECT_TRUE(Eventually([&] { return watcher.Saw("node-101"); }, absl::Seconds(10))) << "watch stalled";
  EXPECT_EQ(Etcdctl(etcd, {"alarm", "list"}, &out), 0);
  EXPECT_EQ(out.find("NOSPACE"), std::string::npos) << out;
  EXPECT_FALSE(watcher.Saw("node-100"));  // the refused one never happened
  c.Stop();
  c.Start();
  ExpectKept(c, acked);
  EXPECT_EQ(Holders(c).size(), 21u);
}

// With the free-space guard off, RocksDB itself runs into ENOSPC on its WAL:
// reads go on, and once space returns the controller exits 75 to be reopened
// (Debian's RocksDB would abort on its next WAL write); the reopen keeps every
// acknowledged write.
TEST(FaultTest, WalWriteFailureRestartsOnceSpaceReturnsAndKeepsEverything) {
  const std::string mnt = DataDir("walfail");
  ASSERT_NO_FATAL_FAILURE(MountPrivateTmpfs(mnt));
  const std::string etcd = absl::StrCat("127.0.0.1:", FreePort());
  Controller c(mnt + "/data");
  c.Start({"--etcd-listen", etcd, "--min-free-disk-bytes", "0"});
  ASSERT_TRUE(SetConfig(c).ok());
  std::map<std::string, std::string> acked;
  for (int i = 1; i <= 10; ++i) {
    std::string subnet;
    ASSERT_TRUE(Acquire(c, i, &subnet).ok());
    acked[Node(i).node_name()] = subnet;
  }
  ASSERT_NO_FATAL_FAILURE(FillDisk(mnt + "/fill"));
  // Values big enough to use up the WAL space RocksDB preallocated.
  auto kv = etcdserverpb::KV::NewStub(grpc::CreateChannel(etcd, grpc::InsecureChannelCredentials()));
  std::vector<std::string> put;
  grpc::Status failed;
  for (int i = 0; i < 2000 && failed.ok(); ++i) {
    etcdserverpb::PutRequest req;
    req.set_key(absl::StrCat("/bulk/", i));
    req.set_value(std::string(64 << 10, 'b'));
    etcdserverpb::PutResponse resp;
    failed = kv->Put(Ctx().get(), req, &resp);
    if (failed.ok()) put.push_back(req.key());
  }
  ASSERT_EQ(failed.error_code(), grpc::StatusCode::UNAVAILABLE) << failed.error_message();
  EXPECT_EQ(Holders(c).size(), 10u);  // reads go on
  std::filesystem::remove(mnt + "/fill");
  const int status = c.WaitExit();
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 75);
  c.Start({"--etcd-listen", etcd});
  ExpectKept(c, acked);
  for (const std::string& key : put) {
    etcdserverpb::RangeRequest req;
    req.set_key(key);
    req.set_count_only(true);
    etcdserverpb::RangeResponse resp;
    ASSERT_TRUE(kv->Range(Ctx().get(), req, &resp).ok());
    ASSERT_EQ(resp.count(), 1) << key << " acknowledged, then lost";
  }
  EXPECT_TRUE(Acquire(c, 11).ok());
}

TEST(FaultTest, CorruptWalRefusesToStartUntilToldToDropTheDamage) {
  const std::string dir = DataDir("corrupt-wal");
  {
    Controller c(dir);
    c.Start();
    ASSERT_TRUE(SetConfig(c).ok());
    for (int i = 1; i <= 20; ++i) ASSERT_TRUE(Acquire(c, i).ok());
    c.Stop();
  }
  const std::string wal = NewestFile(dir, ".log");
  ASSERT_FALSE(wal.empty());
  FlipByte(wal, std::filesystem::file_size(wal) * 2 / 3);
  std::string out;
  EXPECT_EQ(RunController({"--data-dir", dir}, &out), 1);
  EXPECT_NE(out.find("is corrupted"), std::string::npos) << out;
  EXPECT_NE(out.find(wal), std::string::npos) << out;
  EXPECT_NE(out.find("--recover-from-corruption"), std::string::npos) << out;
  EXPECT_NE(out.find("--restore-from"), std::string::npos) << out;

  Controller c(dir);
  c.Start({"--recover-from-corruption"});
  const size_t kept = Holders(c).size();
  EXPECT_GT(kept, 0u);
  EXPECT_LT(kept, 20u);
  // The first `kept` nodes, none after a gap.
  std::set<std::string> nodes;
  for (const auto& [subnet, node] : Holders(c)) nodes.insert(node);
  for (size_t i = 1; i <= kept; ++i) EXPECT_TRUE(nodes.count(absl::StrCat("node-", i))) << i;
  std::ifstream log(std::string(std::getenv("TEST_TMPDIR")) + "/controller.log");
  const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("store recovered from corruption; data was dropped"), std::string::npos);
  EXPECT_NE(text.find("write batches"), std::string::npos);
  // It goes on working.
  EXPECT_TRUE(Acquire(c, 50).ok());
}

TEST(FaultTest, CorruptTableFileRefusesToStart) {
  const std::string dir = DataDir("corrupt-sst");
  const std::string etcd = absl::StrCat("127.0.0.1:", FreePort());
  {
    Controller c(dir);
    c.Start({"--etcd-listen", etcd});
    ASSERT_TRUE(SetConfig(c).ok());
    for (int i = 1; i <= 20; ++i) ASSERT_TRUE(Acquire(c, i).ok());
    std::string out;
    ASSERT_EQ(Etcdctl(etcd, {"defrag"}, &out), 0) << out;  // writes the data into a table file
    c.Stop();
  }
  const std::string sst = NewestFile(dir, ".sst");
  ASSERT_FALSE(sst.empty());
  FlipByte(sst, 64);
  std::string out;
  EXPECT_EQ(RunController({"--data-dir", dir}, &out), 1);
  EXPECT_NE(out.find("is corrupted"), std::string::npos) << out;
  EXPECT_NE(out.find(std::filesystem::path(sst).filename().string()), std::string::npos) << out;
  EXPECT_NE(out.find("Restore a backup"), std::string::npos) << out;
}

TEST(FaultTest, EtcdctlSnapshotSaveThenRestoreBringsEverythingBack) {
  const std::string etcd = absl::StrCat("127.0.0.1:", FreePort());
  const std::string file = DataDir("backup.db");
  const std::string weftctl_file = DataDir("weftctl-backup.db");
  std::map<std::string, std::string> acked;
  int64_t revision = 0;
  {
    Controller c(DataDir("original"));
    c.Start({"--etcd-listen", etcd});
    ASSERT_TRUE(SetConfig(c).ok());
    for (int i = 1; i <= 30; ++i) {
      std::string subnet;
      ASSERT_TRUE(Acquire(c, i, &subnet).ok());
      acked[Node(i).node_name()] = subnet;
    }
    revision = ListResp(c).revision();
    std::string out;
    ASSERT_EQ(Etcdctl(etcd, {"snapshot", "save", file}, &out), 0) << out;
    ASSERT_EQ(RunCommand({Runfile("tools/weftctl/weftctl"), "snapshot", "save", weftctl_file, "--etcd", etcd}, &out), 0)
        << out;
    EXPECT_NE(out.find("SHA-256 checked"), std::string::npos) << out;
    EXPECT_EQ(Etcdctl(etcd, {"endpoint", "status"}, &out), 0);
    EXPECT_EQ(out.find(", 0 B,"), std::string::npos) << "db size not reported: " << out;
    ASSERT_TRUE(Acquire(c, 99).ok());  // after the backup: not in it
    c.Stop();
  }
  // The restore refuses a data dir in use.
  std::string out;
  EXPECT_EQ(RunController({"--restore-from", file, "--data-dir", DataDir("original")}, &out), 1);
  EXPECT_NE(out.find("not empty"), std::string::npos) << out;

  Controller r(DataDir("restored"));
  r.Start({"--restore-from", file, "--etcd-listen", etcd});
  auto listed = ListResp(r);
  EXPECT_EQ(listed.revision(), revision);
  EXPECT_EQ(listed.leases_size(), 30);
  ExpectKept(r, acked);
  weft::v1::GetNetworkConfigResponse cfg;
  ASSERT_TRUE(r.network()->GetNetworkConfig(Ctx().get(), {}, &cfg).ok());
  EXPECT_EQ(cfg.config(), kConfig);
  // An agent that had seen everything up to the backup resumes its watch.
  LeaseWatcher watcher(r, revision);
  std::string subnet;
  ASSERT_TRUE(Acquire(r, 200, &subnet).ok());
  EXPECT_TRUE(Eventually([&] { return watcher.Saw("node-200"); }, absl::Seconds(20)));
  EXPECT_GT(watcher.revision(), revision);
  EXPECT_FALSE(acked.count("node-99"));
  EXPECT_EQ(Holders(r).count(subnet), 1u);
  r.Stop();

  // weftctl's backup restores the same.
  Controller w(DataDir("restored-weftctl"));
  w.Start({"--restore-from", weftctl_file});
  EXPECT_EQ(ListResp(w).revision(), revision);
  ExpectKept(w, acked);
}

TEST(FaultTest, QuotaRaisesNospaceAlarmThatEtcdctlListsAndDisarms) {
  const std::string etcd = absl::StrCat("127.0.0.1:", FreePort());
  Controller c(DataDir("quota"));
  c.Start({"--etcd-listen", etcd, "--quota-backend-bytes", "200000"});
  ASSERT_TRUE(SetConfig(c).ok());
  const std::string value = DataDir("value");
  std::ofstream(value) << std::string(20000, 'v');
  std::string out;
  int i = 0;
  bool refused = false;
  for (; i < 200 && !refused; ++i) {
    refused = RunCommand({"/bin/sh", "-c",
                          absl::StrCat("ETCDCTL_API=3 /usr/bin/etcdctl --endpoints ", etcd, " put /bulk/", i, " < ",
                                       value, " 2>&1")},
                         &out) != 0;
  }
  ASSERT_TRUE(refused) << "quota never reached";
  EXPECT_NE(out.find("database space exceeded"), std::string::npos) << out;
  grpc::Status s = Acquire(c, 1);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_NE(s.error_message().find("database space exceeded"), std::string::npos) << s.error_message();
  EXPECT_EQ(Etcdctl(etcd, {"alarm", "list"}, &out), 0);
  EXPECT_NE(out.find("alarm:NOSPACE"), std::string::npos) << out;
  // Still over quota: disarming is refused; make room, then it clears.
  EXPECT_NE(Etcdctl(etcd, {"alarm", "disarm"}, &out), 0);
  ASSERT_EQ(Etcdctl(etcd, {"del", "/bulk/", "--prefix"}, &out), 0) << out;
  ASSERT_EQ(Etcdctl(etcd, {"get", "/", "--prefix", "--keys-only", "-w", "json"}, &out), 0);
  const size_t at = out.find("\"revision\":");
  ASSERT_NE(at, std::string::npos) << out;
  const std::string rev = out.substr(at + 11, out.find_first_of(",}", at) - at - 11);
  ASSERT_EQ(Etcdctl(etcd, {"compact", rev}, &out), 0) << out;
  ASSERT_EQ(Etcdctl(etcd, {"defrag"}, &out), 0) << out;
  ASSERT_EQ(Etcdctl(etcd, {"alarm", "disarm"}, &out), 0) << out;
  EXPECT_EQ(Etcdctl(etcd, {"alarm", "list"}, &out), 0);
  EXPECT_EQ(out.find("NOSPACE"), std::string::npos) << out;
  EXPECT_TRUE(Acquire(c, 1).ok());
}

TEST(FaultTest, SigstopDuringBurstLosesNothingAcknowledged) {
  Controller c(DataDir("sigstop"));
  c.Start();
  ASSERT_TRUE(SetConfig(c).ok());
  absl::Mutex mu;
  std::map<std::string, std::string> acked;
  std::atomic<bool> stop{false};
  std::atomic<int> next{1}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      while (!stop.load()) {
        const int i = next.fetch_add(1);
        std::string subnet;
        if (!Acquire(c, i, &subnet).ok()) {  // timed out while frozen: unknown, not acknowledged
          failed++;
          continue;
        }
        absl::MutexLock l(&mu);
        acked[Node(i).node_name()] = subnet;
      }
    });
  }
  const auto acked_at_least = [&](size_t n) {
    return [&, n] {
      absl::MutexLock l(&mu);
      return acked.size() >= n;
    };
  };
  ASSERT_TRUE(Eventually(acked_at_least(10), kRecovery)) << "no burst before the freeze";
  const int failed_before = failed.load();
  c.Signal(SIGSTOP);
  // Frozen longer than the clients' deadline: every client's call in flight
  // times out (each of the 8 has failed once since the freeze).
  EXPECT_TRUE(Eventually([&] { return failed.load() >= failed_before + 8; }, absl::Seconds(30)));
  c.Signal(SIGCONT);
  const size_t acked_when_frozen = [&] {
    absl::MutexLock l(&mu);
    return acked.size();
  }();
  EXPECT_TRUE(Eventually(acked_at_least(acked_when_frozen + 10), kRecovery)) << "no acquisitions after SIGCONT";
  stop.store(true);
  for (auto& t : threads) t.join();
  ASSERT_GT(acked.size(), 20u);
  // Still up, everything acknowledged there, before and after a restart.
  grpc::Status after = Acquire(c, next.load() + 1);
  EXPECT_TRUE(after.ok()) << after.error_message();
  ExpectKept(c, acked);
  c.Stop();
  c.Start();
  ExpectKept(c, acked);
  std::set<std::string> nodes;
  for (const auto& [subnet, node] : Holders(c)) EXPECT_TRUE(nodes.insert(node).second) << node << " holds two";
}

}  // namespace
}  // namespace weft::testing
