// Weft's WatchLeases fan-out against flannel's model (every agent watching
// etcd itself), in one run, fairly: N simulated agents, each with its own
// connection and one watch, the same client machinery (gRPC C++, async) for
// both; the same L leases stored first and the same C changes, one at a time,
// each a new lease (Weft: AcquireLease; etcd 3.4, Debian's: a Put of flannel's
// lease JSON under /coreos.com/network/subnets/, which each agent watches by
// prefix). Latency is from issuing the change to each agent receiving it (so it
// includes each system's durable commit). Also the server's CPU per delivered
// event and its memory per agent (RSS with the watches open minus before); and
// the time from a kill -9 and restart of the server until every agent watches
// again, resumed after the last revision it saw (weft-agent's reconnect
// backoff for both).
//
//   bazel run -c opt //tests/bench:watch_compare_bench -- [--agents 1000,5000] [--changes 20] [--leases 300]
//   [--systems weft,etcd]

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/backoff.h"
#include "common/testing.h"
#include "grpcpp/alarm.h"
#include "grpcpp/grpcpp.h"
#include "proto/etcd/rpc.grpc.pb.h"
#include "proto/weft/v1/weft.grpc.pb.h"
#include "tests/bench/network_config.h"
#include "tests/etcd/etcd_cluster.h"
#include "tests/integration/process.h"

namespace {

constexpr char kPrefix[] = "/coreos.com/network/subnets/";

// flannel's lease JSON for host i (what Weft stores for the same lease).
std::string LeaseJson(int i) {
  return absl::StrFormat(
      R"({"PublicIP":"10.%d.%d.%d","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:%02x:%02x:%02x:01"}})",
      200 + i / 62500, i / 250 % 250, i % 250 + 1, i >> 16, (i >> 8) & 0xff, i & 0xff);
}
std::string EtcdKey(int i) { return absl::StrCat(kPrefix, "10.", i / 256 % 256, ".", i % 256, ".0-24"); }

// One system under test: stores leases, opens N watches, makes changes.
class System {
 public:
  virtual ~System() = default;
  virtual const char* name() const = 0;
  virtual pid_t server_pid() const = 0;
  // Lease i, durably; its revision (0 on failure).
  virtual int64_t Change(int i) = 0;
  // Starts watch `a` on its own connection (again after a failure: on the
  // same channel, resuming after the last revision it saw); its completions
  // carry tags Tag(a, kind) on `cq`.
  virtual void Open(int a, grpc::CompletionQueue* cq) = 0;
  // A successful completion of watch `a`: issues the next operation; what it
  // got in *got.
  struct Got {
    int64_t events_revision = 0;  // of the events delivered, 0 for none
    bool first_on_call = false;   // the first message on this call
    bool snapshot = false;        // that message was a snapshot (Weft)
  };
  virtual void OnCompletion(int a, int kind, Got* got) = 0;
  // After a failed operation: the call's status, with Tag(a, kFinish).
  virtual void Finish(int a) = 0;
  // kill -9 of the server, then a start on the same data and port.
  virtual void KillAndRestart() = 0;
  // Ends every watch; completions after this issue nothing more.
  void StopAll(int agents) {
    stopping_ = true;
    for (int a = 0; a < agents; ++a) Cancel(a);
  }

 protected:
  virtual void Cancel(int a) = 0;
  std::atomic<bool> stopping_{false};
};

enum Kind : intptr_t { kStart = 0, kWrite = 1, kRead = 2, kFinish = 3, kRetry = 4 };
void* Tag(int a, Kind k) { return reinterpret_cast<void*>(static_cast<intptr_t>(a) << 3 | k); }

std::shared_ptr<grpc::Channel> OwnChannel(const std::string& addr, int a) {
  grpc::ChannelArguments args;
  args.SetInt("weft.bench.agent", a);  // a connection of its own, as each agent has
  // weft-agent's connection backoff (agent/controller_client.cc), for both.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  return grpc::CreateCustomChannel(addr, grpc::InsecureChannelCredentials(), args);
}

class Weft : public System {
 public:
  Weft(const std::string& dir, int agents) : watches_(agents) {
    port_ = weft::testing::FreePort();
    addr_ = absl::StrCat("127.0.0.1:", port_);
    argv_ = {weft::testing::Runfile("controller/weft-controller"), "--data-dir", dir, "--listen", addr_,
             "--metrics-listen", "", "--log-level", "warn", "--watch-bookmark-interval", "1h"};
    log_ = dir + ".log";
    process_.Start(argv_, log_);
    auto ch = grpc::CreateChannel(addr_, grpc::InsecureChannelCredentials());
    ok_ = weft::bench::ConnectAndConfigure(ch);
    leases_ = weft::v1::LeaseService::NewStub(ch);
  }
  bool ok() const { return ok_; }
  const char* name() const override { return "Weft"; }
  pid_t server_pid() const override { return process_.pid(); }
  int64_t Change(int i) override {
    weft::v1::AcquireLeaseRequest req;
    req.set_node_name(absl::StrCat("host", i));
    req.set_public_ip(absl::StrFormat("10.%d.%d.%d", 200 + i / 62500, i / 250 % 250, i % 250 + 1));
    req.set_backend_type("vxlan");
    req.set_backend_data(
        absl::StrFormat(R"({"VNI":1,"VtepMAC":"02:00:%02x:%02x:%02x:01"})", i >> 16, (i >> 8) & 0xff, i & 0xff));
    grpc::ClientContext ctx;
    weft::v1::AcquireLeaseResponse resp;
    return leases_->AcquireLease(&ctx, req, &resp).ok() ? resp.revision() : 0;
  }
  void Open(int a, grpc::CompletionQueue* cq) override {
    W& w = watches_[a];
    if (!w.stub) w.stub = weft::v1::LeaseService::NewStub(OwnChannel(addr_, a));
    w.reader.reset();  // first: it lives in the old call's arena
    w.ctx = std::make_unique<grpc::ClientContext>();
    w.got_message = false;
    weft::v1::WatchLeasesRequest req;
    req.set_start_revision(w.revision);  // 0 the first time: a snapshot
    w.reader = w.stub->PrepareAsyncWatchLeases(w.ctx.get(), req, cq);
    w.reader->StartCall(Tag(a, kStart));
  }
  void OnCompletion(int a, int kind, Got* got) override {
    W& w = watches_[a];
    if (stopping_) return;
    if (kind == kRead) {
      if (w.msg.has_events()) got->events_revision = w.msg.revision();
      got->first_on_call = !w.got_message;
      got->snapshot = w.msg.has_snapshot();
      w.got_message = true;
      w.revision = std::max(w.revision, w.msg.revision());
      weft::v1::WatchLeasesResponse().Swap(&w.msg);  // no snapshot kept per agent
    }
    w.reader->Read(&w.msg, Tag(a, kRead));
  }
  void Finish(int a) override { watches_[a].reader->Finish(&watches_[a].status, Tag(a, kFinish)); }
  void KillAndRestart() override {
    process_.Kill(SIGKILL);
    process_.Wait();
    process_.Start(argv_, log_);
  }
  void Cancel(int a) override {
    if (watches_[a].ctx) watches_[a].ctx->TryCancel();
  }

 private:
  struct W {
    std::unique_ptr<weft::v1::LeaseService::Stub> stub;
    std::unique_ptr<grpc::ClientContext> ctx;
    weft::v1::WatchLeasesResponse msg;
    std::unique_ptr<grpc::ClientAsyncReader<weft::v1::WatchLeasesResponse>> reader;
    grpc::Status status;
    int64_t revision = 0;
    bool got_message = false;
  };
  std::vector<std::string> argv_;
  std::string log_;
  int port_ = 0;
  std::string addr_;
  bool ok_ = false;
  weft::testing::Process process_;
  std::unique_ptr<weft::v1::LeaseService::Stub> leases_;
  std::vector<W> watches_;
};

class Etcd : public System {
 public:
  Etcd(const std::string& dir, int agents) : watches_(agents) {
    weft::testing::EtcdCluster::Options o;
    o.dir = dir;
    o.log_dir = dir;
    std::string error;
    cluster_ = weft::testing::EtcdCluster::Start(o, &error);
    if (!cluster_) {
      std::fprintf(stderr, "etcd: %s\n", error.c_str());
      return;
    }
    addr_ = cluster_->endpoint(0);
    kv_ = etcdserverpb::KV::NewStub(grpc::CreateChannel(addr_, grpc::InsecureChannelCredentials()));
  }
  bool ok() const { return cluster_ != nullptr; }
  const char* name() const override { return "etcd 3.4"; }
  pid_t server_pid() const override { return cluster_->pid(0); }
  int64_t Change(int i) override {
    etcdserverpb::PutRequest req;
    req.set_key(EtcdKey(i));
    req.set_value(LeaseJson(i));
    grpc::ClientContext ctx;
    etcdserverpb::PutResponse resp;
    return kv_->Put(&ctx, req, &resp).ok() ? resp.header().revision() : 0;
  }
  void Open(int a, grpc::CompletionQueue* cq) override {
    W& w = watches_[a];
    if (!w.stub) w.stub = etcdserverpb::Watch::NewStub(OwnChannel(addr_, a));
    w.stream.reset();  // first: it lives in the old call's arena
    w.ctx = std::make_unique<grpc::ClientContext>();
    w.got_message = false;
    w.stream = w.stub->PrepareAsyncWatch(w.ctx.get(), cq);
    w.stream->StartCall(Tag(a, kStart));
  }
  void OnCompletion(int a, int kind, Got* got) override {
    W& w = watches_[a];
    if (stopping_) return;
    if (kind == kStart) {
      // A prefix watch of the subnets, as every flannel agent has; after a
      // failure it resumes after the last revision it saw, as flanneld does.
      etcdserverpb::WatchRequest req;
      std::string end = kPrefix;
      end.back() = static_cast<char>(end.back() + 1);
      req.mutable_create_request()->set_key(kPrefix);
      req.mutable_create_request()->set_range_end(end);
      if (w.revision > 0) req.mutable_create_request()->set_start_revision(w.revision + 1);
      w.stream->Write(req, Tag(a, kWrite));
      return;
    }
    if (kind == kRead) {
      if (w.msg.events_size() > 0) got->events_revision = w.msg.header().revision();
      got->first_on_call = !w.got_message;
      w.got_message = true;
      w.revision = std::max(w.revision, w.msg.header().revision());
    }
    w.stream->Read(&w.msg, Tag(a, kRead));
  }
  void Finish(int a) override { watches_[a].stream->Finish(&watches_[a].status, Tag(a, kFinish)); }
  void KillAndRestart() override {
    cluster_->Kill(0);
    if (!cluster_->Restart(0)) std::fprintf(stderr, "etcd did not restart\n");
  }
  void Cancel(int a) override {
    if (watches_[a].ctx) watches_[a].ctx->TryCancel();
  }

 private:
  struct W {
    std::unique_ptr<etcdserverpb::Watch::Stub> stub;
    std::unique_ptr<grpc::ClientContext> ctx;
    etcdserverpb::WatchResponse msg;
    std::unique_ptr<grpc::ClientAsyncReaderWriter<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>> stream;
    grpc::Status status;
    int64_t revision = 0;
    bool got_message = false;
  };
  std::unique_ptr<weft::testing::EtcdCluster> cluster_;
  std::string addr_;
  std::unique_ptr<etcdserverpb::KV::Stub> kv_;
  std::vector<W> watches_;
};

struct Result {
  double p50 = 0, p99 = 0, max = 0;
  int64_t measured = 0, expected = 0;
  double server_us_per_event = 0, client_us_per_event = 0;
  double rss_per_agent_kib = 0;
  double open_seconds = 0;
  std::string per_change;  // "p50/max" ms of each change
  double resume_seconds = -1;  // kill -9 + restart -> every agent watching again
  int resume_snapshots = 0;
};

// Stores `leases`, opens `agents` watches, makes `changes` changes one at a time.
bool Run(System* sys, int agents, int leases, int changes, Result* out) {
  for (int i = 0; i < leases; ++i) {
    if (sys->Change(i) == 0) {
      std::fprintf(stderr, "%s: storing lease %d failed\n", sys->name(), i);
      return false;
    }
  }
  grpc::CompletionQueue cq;
  absl::Mutex mu;
  int ready = 0;  // watches with their first read posted and answered or pending
  int64_t counting_after = INT64_MAX;
  absl::Time issued;
  std::vector<double> latencies;
  std::vector<char> started(agents, 0);
  // Reconnects: weft-agent's backoff (200 ms doubling to 2 s, x0.5-1.5), for both.
  std::vector<std::unique_ptr<grpc::Alarm>> alarms(agents);
  std::vector<int> attempts(agents, 0);
  std::atomic<bool> stopping{false};
  int resumed = 0, resume_snapshots = 0, stopped = 0;
  absl::Time last_resume;
  auto pump = [&] {
    std::mt19937_64 rng(std::random_device{}());
    void* tag;
    bool ok;
    while (cq.Next(&tag, &ok)) {
      const intptr_t t = reinterpret_cast<intptr_t>(tag);
      const int a = static_cast<int>(t >> 3);
      const int kind = static_cast<int>(t & 7);
      if (kind == kFinish) {
        if (stopping) {
          absl::MutexLock l(&mu);
          ++stopped;
          continue;
        }
        const absl::Duration wait = weft::ExponentialBackoff(absl::Milliseconds(200), absl::Seconds(2), attempts[a]++) *
                                    std::uniform_real_distribution<double>(0.5, 1.5)(rng);
        alarms[a] = std::make_unique<grpc::Alarm>();
        alarms[a]->Set(&cq, absl::ToChronoTime(absl::Now() + wait), Tag(a, kRetry));
        continue;
      }
      if (kind == kRetry) {
        if (stopping) {
          absl::MutexLock l(&mu);
          ++stopped;
        } else {
          sys->Open(a, &cq);
        }
        continue;
      }
      if (!ok || stopping) {
        sys->Finish(a);  // while stopping too: every call ends through kFinish
        continue;
      }
      System::Got got;
      sys->OnCompletion(a, kind, &got);
      if (got.first_on_call) attempts[a] = 0;
      const absl::Time now = absl::Now();
      absl::MutexLock l(&mu);
      // Ready once the first message came (Weft: the snapshot; etcd: "created").
      if (got.first_on_call && !started[a]) {
        started[a] = 1;
        ++ready;
      } else if (got.first_on_call) {
        ++resumed;
        if (got.snapshot) ++resume_snapshots;
        last_resume = now;
      }
      if (got.events_revision > counting_after) latencies.push_back(absl::ToDoubleMilliseconds(now - issued));
    }
  };
  std::vector<std::thread> pumps;
  for (int i = 0; i < 2; ++i) pumps.emplace_back(pump);
  const int64_t rss0 = weft::testing::ProcStatusKiB(sys->server_pid(), "VmRSS");
  const absl::Time open_start = absl::Now();
  for (int a = 0; a < agents; ++a) sys->Open(a, &cq);
  bool all = false;
  for (absl::Time deadline = absl::Now() + absl::Seconds(180); absl::Now() < deadline;) {
    {
      absl::MutexLock l(&mu);
      if (ready >= agents) {
        all = true;
        break;
      }
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  out->open_seconds = absl::ToDoubleSeconds(absl::Now() - open_start);
  absl::SleepFor(absl::Seconds(1));  // idle: nothing queued
  const int64_t rss1 = weft::testing::ProcStatusKiB(sys->server_pid(), "VmRSS");
  out->rss_per_agent_kib = static_cast<double>(rss1 - rss0) / agents;
  const double server0 = weft::testing::ProcCpuSeconds(sys->server_pid());
  const double client0 = weft::testing::ProcCpuSeconds(getpid());
  int64_t last = 0;
  for (int c = 0; all && c < changes; ++c) {
    size_t before = 0;
    {
      absl::MutexLock l(&mu);
      before = latencies.size();
      counting_after = last;
      issued = absl::Now();
    }
    last = sys->Change(leases + c);
    if (last == 0) break;
    for (absl::Time deadline = absl::Now() + absl::Seconds(30); absl::Now() < deadline;) {
      {
        absl::MutexLock l(&mu);
        if (latencies.size() - before >= static_cast<size_t>(agents)) break;
      }
      absl::SleepFor(absl::Milliseconds(1));
    }
    {
      absl::MutexLock l(&mu);
      counting_after = INT64_MAX;
      std::vector<double> these(latencies.begin() + static_cast<ptrdiff_t>(before), latencies.end());
      std::sort(these.begin(), these.end());
      if (!these.empty()) {
        absl::StrAppend(&out->per_change, out->per_change.empty() ? "" : " ",
                        absl::StrFormat("%.0f/%.0f", these[these.size() / 2], these.back()));
      }
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  const double server_cpu = weft::testing::ProcCpuSeconds(sys->server_pid()) - server0;
  const double client_cpu = weft::testing::ProcCpuSeconds(getpid()) - client0;
  // Resume after kill -9: the server killed and started again on its data;
  // every agent reconnects and resumes after the last revision it saw.
  if (all) {
    const absl::Time restart = absl::Now();
    sys->KillAndRestart();
    for (absl::Time deadline = absl::Now() + absl::Seconds(120); absl::Now() < deadline;) {
      {
        absl::MutexLock l(&mu);
        if (resumed >= agents) {
          out->resume_seconds = absl::ToDoubleSeconds(last_resume - restart);
          out->resume_snapshots = resume_snapshots;
          break;
        }
      }
      absl::SleepFor(absl::Milliseconds(5));
    }
  }
  stopping = true;
  sys->StopAll(agents);
  for (absl::Time deadline = absl::Now() + absl::Seconds(60); absl::Now() < deadline;) {
    {
      absl::MutexLock l(&mu);
      if (stopped >= agents) break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  cq.Shutdown();
  for (auto& t : pumps) t.join();
  std::vector<double> all_lat;
  {
    absl::MutexLock l(&mu);
    all_lat = latencies;
  }
  std::sort(all_lat.begin(), all_lat.end());
  out->measured = static_cast<int64_t>(all_lat.size());
  out->expected = static_cast<int64_t>(agents) * changes;
  if (all_lat.empty()) return false;
  out->p50 = all_lat[all_lat.size() / 2];
  out->p99 = all_lat[std::min(all_lat.size() - 1, all_lat.size() * 99 / 100)];
  out->max = all_lat.back();
  out->server_us_per_event = server_cpu * 1e6 / static_cast<double>(all_lat.size());
  out->client_us_per_event = client_cpu * 1e6 / static_cast<double>(all_lat.size());
  return all;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> sizes = {1000, 5000};
  std::vector<std::string> systems = {"weft", "etcd"};
  int changes = 20, leases = 300;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string f = argv[i], v = argv[i + 1];
    if (f == "--agents") {
      sizes.clear();
      for (absl::string_view s : absl::StrSplit(v, ',')) {
        int n = 0;
        if (absl::SimpleAtoi(s, &n) && n > 0) sizes.push_back(n);
      }
    }
    if (f == "--systems") systems = absl::StrSplit(v, ',');
    if (f == "--changes") absl::SimpleAtoi(v, &changes);
    if (f == "--leases") absl::SimpleAtoi(v, &leases);
  }
  // One connection per agent on each side: raise the descriptor limit (the
  // servers, started from here, inherit it).
  rlimit nofile{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  setrlimit(RLIMIT_NOFILE, &nofile);
  std::printf("watch_compare_bench: %d leases stored first, %d changes one at a time, one connection per agent; "
              "descriptor limit %llu\n",
              leases, changes, static_cast<unsigned long long>(nofile.rlim_cur));
  std::printf("| agents | system | p50 ms | p99 ms | max ms | delivered | server CPU per event | client CPU per event "
              "| server RSS per agent | all watches open in | all resumed after kill -9 + restart |\n");
  int rc = 0;
  for (int n : sizes) {
    for (const std::string& which : systems) {
      weft::TempDir tmp("weft-compare-", weft::TempDir::Root::kTmp);
      const std::string dir = tmp.path();
      std::unique_ptr<System> sys;
      if (which == "weft") {
        auto w = std::make_unique<Weft>(dir + "/weft", n);
        if (!w->ok()) {
          tmp.Keep();  // with its log
          return 1;
        }
        sys = std::move(w);
      } else {
        auto e = std::make_unique<Etcd>(dir, n);
        if (!e->ok()) {
          tmp.Keep();
          return 1;
        }
        sys = std::move(e);
      }
      Result r;
      const bool ok = Run(sys.get(), n, leases, changes, &r);
      const std::string resume =
          r.resume_seconds < 0 ? "not all"
                               : absl::StrFormat("%.2f s (%d snapshots)", r.resume_seconds, r.resume_snapshots);
      std::printf("| %d | %s | %.1f | %.1f | %.1f | %lld of %lld | %.1f us | %.1f us | %.1f KiB | %.1f s | %s |%s\n", n,
                  sys->name(), r.p50, r.p99, r.max, static_cast<long long>(r.measured),
                  static_cast<long long>(r.expected), r.server_us_per_event, r.client_us_per_event,
                  r.rss_per_agent_kib, r.open_seconds, resume.c_str(), ok ? "" : " (incomplete)");
      std::fprintf(stderr, "%d %s per change, p50/max ms: %s\n", n, sys->name(), r.per_change.c_str());
      std::fflush(stdout);
      if (!ok) rc = 1;
      sys.reset();
    }
  }
  return rc;
}
