// Weft's WatchLeases fan-out against flannel's model (every agent watching
// etcd itself), in one run, fairly: N simulated agents, each with its own
// connection and one watch, the same client machinery (gRPC C++, async) for
// both; the same L leases stored first and the same C changes, one at a time,
// each a new lease (Weft: AcquireLease; etcd 3.4, Debian's: a Put of flannel's
// lease JSON under /coreos.com/network/subnets/, which each agent watches by
// prefix). Each agent starts as its real counterpart does: a Weft agent's
// watch begins with a snapshot of the leases; a flannel agent lists them (one
// Range of the prefix) and watches from the revision after. Latency is from
// issuing the change to each agent receiving it (so it includes each system's
// durable commit). Also the server's CPU per delivered event and its memory
// per agent (RSS with the watches open minus before); and the time from a
// kill -9 and restart of the server until the first, half and every agent
// watch again, resumed after the last revision they saw (weft-agent's
// reconnect for both: AgentPool).
//
// The agents live in K client processes (--client-procs, one per core by
// default): this binary again, started with --worker, so that one client
// process is not the bottleneck. This process (the coordinator) runs the
// server and makes the changes; it tells the workers when to time deliveries
// and gets back each delivery's arrival time, so latencies are computed here
// from one clock. The client's CPU is the workers' CPU, summed.
//
//   bazel run -c opt //tests/bench:watch_compare_bench -- [--agents 1000,5000] [--changes 20] [--leases 300]
//   [--systems weft,etcd] [--client-procs 2] [--await-connection 1]

#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/backoff.h"
#include "common/mutex_mode.h"
#include "common/subprocess.h"
#include "common/testing.h"
#include "grpcpp/alarm.h"
#include "grpcpp/grpcpp.h"
#include "proto/etcd/rpc.grpc.pb.h"
#include "proto/weft/v1/weft.grpc.pb.h"
#include "tests/bench/closed_loop.h"
#include "tests/bench/lease_stubs.h"
#include "tests/bench/network_config.h"
#include "tests/etcd/etcd_cluster.h"
#include "tests/integration/process.h"

namespace {

constexpr char kPrefix[] = "/coreos.com/network/subnets/";

// flannel's lease JSON for host i: the lease Weft stores for the same request.
std::string LeaseJson(int i) {
  const weft::v1::AcquireLeaseRequest r = weft::bench::AcquireRequestFor(i);
  return absl::StrCat(R"({"PublicIP":")", r.public_ip(), R"(","BackendType":")", r.backend_type(),
                      R"(","BackendData":)", r.backend_data(), "}");
}
std::string EtcdKey(int i) { return absl::StrCat(kPrefix, "10.", i / 256 % 256, ".", i % 256, ".0-24"); }

// ---- The servers under test (coordinator) ----

// One system's server: stores leases (changes), and is killed and restarted.
class Server {
 public:
  virtual ~Server() = default;
  virtual const char* name() const = 0;
  // The system's name for --systems and a worker's --system.
  virtual const char* system() const = 0;
  virtual const std::string& addr() const = 0;
  virtual pid_t pid() const = 0;
  // Lease i, durably; its revision (0 on failure).
  virtual int64_t Change(int i) = 0;
  // kill -9 of the server, then a start on the same data and port.
  virtual void KillAndRestart() = 0;
};

class WeftServer : public Server {
 public:
  explicit WeftServer(const std::string& dir) {
    addr_ = absl::StrCat("127.0.0.1:", weft::testing::FreePort());
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
  const char* system() const override { return "weft"; }
  const std::string& addr() const override { return addr_; }
  pid_t pid() const override { return process_.pid(); }
  int64_t Change(int i) override {
    grpc::ClientContext ctx;
    weft::v1::AcquireLeaseResponse resp;
    return leases_->AcquireLease(&ctx, weft::bench::AcquireRequestFor(i), &resp).ok() ? resp.revision() : 0;
  }
  void KillAndRestart() override {
    process_.Kill(SIGKILL);
    process_.Wait();
    process_.Start(argv_, log_);
  }

 private:
  std::vector<std::string> argv_;
  std::string log_;
  std::string addr_;
  bool ok_ = false;
  weft::testing::Process process_;
  std::unique_ptr<weft::v1::LeaseService::Stub> leases_;
};

class EtcdServer : public Server {
 public:
  explicit EtcdServer(const std::string& dir) {
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
  const char* system() const override { return "etcd"; }
  const std::string& addr() const override { return addr_; }
  pid_t pid() const override { return cluster_->pid(0); }
  int64_t Change(int i) override {
    etcdserverpb::PutRequest req;
    req.set_key(EtcdKey(i));
    req.set_value(LeaseJson(i));
    grpc::ClientContext ctx;
    etcdserverpb::PutResponse resp;
    return kv_->Put(&ctx, req, &resp).ok() ? resp.header().revision() : 0;
  }
  void KillAndRestart() override {
    cluster_->Kill(0);
    if (!cluster_->Restart(0)) std::fprintf(stderr, "etcd did not restart\n");
  }

 private:
  std::unique_ptr<weft::testing::EtcdCluster> cluster_;
  std::string addr_;
  std::unique_ptr<etcdserverpb::KV::Stub> kv_;
};

// ---- The agents' watches (worker) ----

enum Kind : intptr_t { kStart = 0, kWrite = 1, kRead = 2, kFinish = 3, kRetry = 4, kList = 5, kConnect = 6 };
void* Tag(int a, Kind k) { return reinterpret_cast<void*>(static_cast<intptr_t>(a) << 3 | k); }

std::shared_ptr<grpc::Channel> OwnChannel(const std::string& addr, int a) {
  grpc::ChannelArguments args;
  args.SetInt("weft.bench.agent", a);  // a connection of its own, as each agent has
  // weft-agent's connection backoff (agent/controller_client.cc), for both.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  return grpc::CreateCustomChannel(addr, grpc::InsecureChannelCredentials(), args);
}

// One system's client side: agent a's watch, one operation at a time.
class Watches {
 public:
  virtual ~Watches() = default;
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
    bool failed = false;          // the operation failed outside a call: reconnect
  };
  virtual void OnCompletion(int a, int kind, Got* got) = 0;
  // After a failed operation: the call's status, with Tag(a, kFinish).
  virtual void Finish(int a) = 0;
  virtual void Cancel(int a) = 0;
  // Agent a's connection (after its first Open).
  virtual grpc::Channel& channel(int a) = 0;
};

class WeftWatches : public Watches {
 public:
  WeftWatches(const std::string& addr, int agents) : addr_(addr), watches_(agents) {}
  void Open(int a, grpc::CompletionQueue* cq) override {
    W& w = watches_[a];
    if (!w.channel) w.channel = OwnChannel(addr_, a);
    if (!w.stub) w.stub = weft::v1::LeaseService::NewStub(w.channel);
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
  void Cancel(int a) override {
    if (watches_[a].ctx) watches_[a].ctx->TryCancel();
  }
  grpc::Channel& channel(int a) override { return *watches_[a].channel; }

 private:
  struct W {
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<weft::v1::LeaseService::Stub> stub;
    std::unique_ptr<grpc::ClientContext> ctx;
    weft::v1::WatchLeasesResponse msg;
    std::unique_ptr<grpc::ClientAsyncReader<weft::v1::WatchLeasesResponse>> reader;
    grpc::Status status;
    int64_t revision = 0;
    bool got_message = false;
  };
  std::string addr_;
  std::vector<W> watches_;
};

class EtcdWatches : public Watches {
 public:
  EtcdWatches(const std::string& addr, int agents) : addr_(addr), watches_(agents) {}
  // The first time, flanneld's start: list the subnets (one Range of the
  // prefix; LocalManager.leasesWatchReset), then watch from the revision after
  // the list's. After a failure it watches again after the last revision it saw,
  // without a list, as flanneld does with its cursor.
  void Open(int a, grpc::CompletionQueue* cq) override {
    W& w = watches_[a];
    w.cq = cq;
    if (!w.channel) w.channel = OwnChannel(addr_, a);
    if (w.revision == 0) {
      if (!w.kv) w.kv = etcdserverpb::KV::NewStub(w.channel);
      w.list_ctx = std::make_unique<grpc::ClientContext>();
      etcdserverpb::RangeRequest req;
      req.set_key(kPrefix);
      req.set_range_end(PrefixEnd());
      w.list = w.kv->PrepareAsyncRange(w.list_ctx.get(), req, cq);
      w.list->StartCall();
      w.list->Finish(&w.listed, &w.list_status, Tag(a, kList));
      return;
    }
    Watch(a);
  }
  void OnCompletion(int a, int kind, Got* got) override {
    W& w = watches_[a];
    if (kind == kList) {
      if (!w.list_status.ok() || w.listed.header().revision() <= 0) {
        got->failed = true;
        return;
      }
      w.revision = w.listed.header().revision();
      etcdserverpb::RangeResponse().Swap(&w.listed);  // no list kept per agent
      Watch(a);
      return;
    }
    if (kind == kStart) {
      etcdserverpb::WatchRequest req;
      req.mutable_create_request()->set_key(kPrefix);
      req.mutable_create_request()->set_range_end(PrefixEnd());
      req.mutable_create_request()->set_start_revision(w.revision + 1);
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
  void Cancel(int a) override {
    W& w = watches_[a];
    if (w.list_ctx) w.list_ctx->TryCancel();
    if (w.ctx) w.ctx->TryCancel();
  }
  grpc::Channel& channel(int a) override { return *watches_[a].channel; }

 private:
  static std::string PrefixEnd() {
    std::string end = kPrefix;
    end.back() = static_cast<char>(end.back() + 1);
    return end;
  }
  // A prefix watch of the subnets, as every flannel agent has.
  void Watch(int a) {
    W& w = watches_[a];
    if (!w.stub) w.stub = etcdserverpb::Watch::NewStub(w.channel);
    w.stream.reset();  // first: it lives in the old call's arena
    w.ctx = std::make_unique<grpc::ClientContext>();
    w.got_message = false;
    w.stream = w.stub->PrepareAsyncWatch(w.ctx.get(), w.cq);
    w.stream->StartCall(Tag(a, kStart));
  }

  struct W {
    std::shared_ptr<grpc::Channel> channel;
    grpc::CompletionQueue* cq = nullptr;  // its completions' queue
    std::unique_ptr<etcdserverpb::KV::Stub> kv;
    std::unique_ptr<grpc::ClientContext> list_ctx;
    std::unique_ptr<grpc::ClientAsyncResponseReader<etcdserverpb::RangeResponse>> list;
    etcdserverpb::RangeResponse listed;
    grpc::Status list_status;
    std::unique_ptr<etcdserverpb::Watch::Stub> stub;
    std::unique_ptr<grpc::ClientContext> ctx;
    etcdserverpb::WatchResponse msg;
    std::unique_ptr<grpc::ClientAsyncReaderWriter<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>> stream;
    grpc::Status status;
    int64_t revision = 0;
    bool got_message = false;
  };
  std::string addr_;
  std::vector<W> watches_;
};

// ---- Coordinator <-> worker: lines over a socketpair ----

// One end of a control connection: text lines, the worker's end its stdout.
// Send may be called from any thread; Read from one at a time.
class LineChannel {
 public:
  explicit LineChannel(int fd) : fd_(fd) {}
  ~LineChannel() { close(fd_); }
  LineChannel(const LineChannel&) = delete;
  LineChannel& operator=(const LineChannel&) = delete;

  bool Send(const std::string& line) {
    const std::string data = line + "\n";
    absl::MutexLock l(&send_mu_);
    for (size_t done = 0; done < data.size();) {
      const ssize_t n = send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }
  // The next line, without its '\n'; false at end of stream, on an error or at `deadline`.
  bool Read(std::string* line, absl::Time deadline) {
    for (;;) {
      const size_t nl = buf_.find('\n', scanned_);
      if (nl != std::string::npos) {
        *line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        scanned_ = 0;
        return true;
      }
      scanned_ = buf_.size();
      if (!WaitReadable(deadline)) return false;
      char chunk[1 << 16];
      const ssize_t n = read(fd_, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }

 private:
  bool WaitReadable(absl::Time deadline) {
    for (;;) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return false;
      pollfd p = {fd_, POLLIN, 0};
      const int ms = left == absl::InfiniteDuration() ? -1 : static_cast<int>(absl::ToInt64Milliseconds(left) + 1);
      const int r = poll(&p, 1, ms);
      if (r > 0) return true;
      if (r < 0 && errno != EINTR) return false;
    }
  }

  const int fd_;
  absl::Mutex send_mu_;
  std::string buf_;
  size_t scanned_ = 0;  // buf_ holds no '\n' before this
};

// ---- A worker's agents ----

// A worker's agents, one watch each on its own connection, driven from one
// completion queue by `pumps` threads; after a failure an agent reconnects as
// weft-agent does (agent/controller_client.cc) with one controller: after its
// backoff (200 ms doubling to 2 s, x0.5-1.5), and, with `await_connection`,
// once its channel has connected again (at most 30 s; etcd's Go client waits
// for its connection too). Tells the
// coordinator, on `control`: "ready" once every watch has had its first
// message; "done" once every agent got a change after the armed revision;
// "resumed <snapshots> <unix ns of each resumption>..." once every agent resumed after
// AwaitResume.
class AgentPool {
 public:
  AgentPool(Watches* watches, int agents, bool await_connection, LineChannel* control)
      : watches_(watches), agents_(agents), await_connection_(await_connection), control_(control),
        started_(agents, 0), alarms_(agents), attempts_(agents, 0), connect_until_(agents) {}

  void Open(int pumps) {
    for (int i = 0; i < pumps; ++i) pumps_.emplace_back([this] { Pump(); });
    for (int a = 0; a < agents_; ++a) watches_->Open(a, &cq_);
  }
  // Deliveries of events after revision `after` are timed from now on.
  void Arm(int64_t after) {
    absl::MutexLock l(&mu_);
    times_.clear();
    counting_after_ = after;
  }
  // Ends the timing: the arrival times (unix ns) since Arm.
  std::vector<int64_t> Disarm() {
    absl::MutexLock l(&mu_);
    counting_after_ = INT64_MAX;
    return std::move(times_);
  }
  // Counts resumptions from now on (the server is about to be killed).
  void AwaitResume() {
    absl::MutexLock l(&mu_);
    awaiting_resume_ = true;
    resumed_ = 0;
    resume_snapshots_ = 0;
    resume_times_.clear();
  }
  // Ends every watch (waiting up to 60 s for them) and the pumps.
  void Stop() {
    stopping_ = true;
    for (int a = 0; a < agents_; ++a) watches_->Cancel(a);
    {
      absl::MutexLock l(&mu_);
      auto all_stopped = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopped_ >= agents_; };
      mu_.AwaitWithTimeout(absl::Condition(&all_stopped), absl::Seconds(60));
    }
    cq_.Shutdown();
    for (auto& t : pumps_) t.join();
  }

 private:
  void Pump() {
    std::mt19937_64 rng(std::random_device{}());
    void* tag;
    bool ok;
    while (cq_.Next(&tag, &ok)) {
      const intptr_t t = reinterpret_cast<intptr_t>(tag);
      const int a = static_cast<int>(t >> 3);
      const int kind = static_cast<int>(t & 7);
      if (kind == kFinish || kind == kRetry || kind == kConnect) {
        if (stopping_) {
          absl::MutexLock l(&mu_);
          ++stopped_;
        } else if (kind == kFinish) {
          Reconnect(a, &rng);
        } else {
          OpenWhenConnected(a);
        }
        continue;
      }
      if (kind == kList && stopping_) {  // a unary call: it has ended
        absl::MutexLock l(&mu_);
        ++stopped_;
        continue;
      }
      if (!ok || stopping_) {
        watches_->Finish(a);  // while stopping too: every call ends through kFinish
        continue;
      }
      Watches::Got got;
      watches_->OnCompletion(a, kind, &got);
      if (got.failed) {
        Reconnect(a, &rng);
        continue;
      }
      if (stopping_) watches_->Cancel(a);  // a call it started after Stop's cancel
      if (got.first_on_call) attempts_[a] = 0;
      const std::string note = Count(a, got, absl::ToUnixNanos(absl::Now()));
      if (!note.empty()) control_->Send(note);
    }
  }
  void Reconnect(int a, std::mt19937_64* rng) {
    const absl::Duration wait = weft::ExponentialBackoff(absl::Milliseconds(200), absl::Seconds(2), attempts_[a]++) *
                                std::uniform_real_distribution<double>(0.5, 1.5)(*rng);
    connect_until_[a] = absl::Now() + wait + absl::Seconds(30);
    alarms_[a] = std::make_unique<grpc::Alarm>();
    alarms_[a]->Set(&cq_, absl::ToChronoTime(absl::Now() + wait), Tag(a, kRetry));
  }
  // After the pause: opens agent a's watch, at once or (await_connection_)
  // once its channel is connected, looking again at each change of the
  // channel's state (kConnect): as often as it tries to connect.
  void OpenWhenConnected(int a) {
    grpc::Channel& channel = watches_->channel(a);
    const grpc_connectivity_state state = channel.GetState(/*try_to_connect=*/true);
    if (!await_connection_ || state == GRPC_CHANNEL_READY || absl::Now() >= connect_until_[a]) {
      watches_->Open(a, &cq_);
      if (stopping_) watches_->Cancel(a);  // Stop may have cancelled the old call
      return;
    }
    channel.NotifyOnStateChange(state, absl::ToChronoTime(connect_until_[a]), &cq_, Tag(a, kConnect));
  }
  // Counts agent a's message, received at `now_ns`; what to tell the coordinator, if anything.
  std::string Count(int a, const Watches::Got& got, int64_t now_ns) {
    absl::MutexLock l(&mu_);
    std::string note;
    // Ready once the first message came (Weft: the snapshot; etcd: "created").
    if (got.first_on_call && !started_[a]) {
      started_[a] = 1;
      if (++ready_ == agents_) note = "ready";
    } else if (got.first_on_call) {
      ++resumed_;
      if (got.snapshot) ++resume_snapshots_;
      if (awaiting_resume_) resume_times_.push_back(now_ns);
      if (awaiting_resume_ && resumed_ == agents_) {
        note = absl::StrCat("resumed ", resume_snapshots_, " ", absl::StrJoin(resume_times_, " "));
      }
    }
    if (got.events_revision > counting_after_) {
      times_.push_back(now_ns);
      if (times_.size() == static_cast<size_t>(agents_)) note = "done";
    }
    return note;
  }

  Watches* const watches_;
  const int agents_;
  const bool await_connection_;
  LineChannel* const control_;
  grpc::CompletionQueue cq_;
  std::vector<std::thread> pumps_;
  std::atomic<bool> stopping_{false};
  absl::Mutex mu_;
  int ready_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<char> started_ ABSL_GUARDED_BY(mu_);
  int64_t counting_after_ ABSL_GUARDED_BY(mu_) = INT64_MAX;
  std::vector<int64_t> times_ ABSL_GUARDED_BY(mu_);
  bool awaiting_resume_ ABSL_GUARDED_BY(mu_) = false;
  int resumed_ ABSL_GUARDED_BY(mu_) = 0;
  int resume_snapshots_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<int64_t> resume_times_ ABSL_GUARDED_BY(mu_);  // unix ns
  int stopped_ ABSL_GUARDED_BY(mu_) = 0;
  // Agent a's, touched only by the pump that has its one completion.
  std::vector<std::unique_ptr<grpc::Alarm>> alarms_;
  std::vector<int> attempts_;
  std::vector<absl::Time> connect_until_;  // opens even if not connected by then
};

// --worker: the agents of one client process, run as the coordinator says
// on stdin-like stdout (the control socket): "arm <revision>" -> "armed";
// "disarm" -> "times <unix ns>..."; "await-resume" -> "ok"; "stop" ->
// "stopped", then exits. Exits when the coordinator goes away (end of stream).
int WorkerMain(const std::map<std::string, std::string>& flags) {
  int agents = 0, pumps = 1, await_connection = 1;
  absl::SimpleAtoi(flags.at("--agents"), &agents);
  absl::SimpleAtoi(flags.at("--pumps"), &pumps);
  absl::SimpleAtoi(flags.at("--await-connection"), &await_connection);
  const std::string& addr = flags.at("--addr");
  std::unique_ptr<Watches> watches;
  if (flags.at("--system") == "weft") {
    watches = std::make_unique<WeftWatches>(addr, agents);
  } else {
    watches = std::make_unique<EtcdWatches>(addr, agents);
  }
  LineChannel control(STDOUT_FILENO);
  AgentPool pool(watches.get(), agents, await_connection != 0, &control);
  pool.Open(pumps);
  std::string command;
  while (control.Read(&command, absl::InfiniteFuture())) {
    const std::vector<std::string> words = absl::StrSplit(command, ' ');
    int64_t after = 0;
    if (words[0] == "arm" && words.size() == 2 && absl::SimpleAtoi(words[1], &after)) {
      pool.Arm(after);
      control.Send("armed");
    } else if (words[0] == "disarm") {
      control.Send(absl::StrCat("times ", absl::StrJoin(pool.Disarm(), " ")));
    } else if (words[0] == "await-resume") {
      pool.AwaitResume();
      control.Send("ok");
    } else if (words[0] == "stop") {
      pool.Stop();
      control.Send("stopped");
      return 0;
    }
  }
  _exit(1);  // the coordinator is gone: no orderly shutdown of thousands of calls
}

// ---- The coordinator's side of the workers ----

// `procs` client processes (this binary with --worker) sharing `agents`
// agents. Each is killed and reaped with this object, and killed by the kernel
// should this process die first.
class Workers {
 public:
  bool Start(const Server& server, int agents, int procs, bool await_connection) {
    char self[PATH_MAX];
    const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return false;
    self[n] = '\0';
    const int pumps = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / procs);
    for (int k = 0; k < procs; ++k) {
      const int share = agents / procs + (k < agents % procs ? 1 : 0);
      if (!StartOne({self, "--worker", "1", "--system", server.system(), "--addr", server.addr(), "--agents",
                     absl::StrCat(share), "--pumps", absl::StrCat(pumps), "--await-connection",
                     await_connection ? "1" : "0"})) {
        return false;
      }
    }
    return true;
  }
  bool Broadcast(const std::string& line) {
    for (Worker& w : workers_) {
      if (!w.control->Send(line)) return false;
    }
    return true;
  }
  // Every worker's next line that starts with `word` (others before it, a
  // "done" that came too late, are dropped), into *lines if given; false
  // unless each came by `deadline`.
  bool Collect(const std::string& word, absl::Time deadline, std::vector<std::string>* lines = nullptr) {
    bool all = true;
    for (Worker& w : workers_) {
      std::string line;
      bool got = false;
      while (!got && w.control->Read(&line, deadline)) got = line == word || absl::StartsWith(line, word + " ");
      if (got && lines != nullptr) lines->push_back(std::move(line));
      all = all && got;
    }
    return all;
  }
  double CpuSeconds() const {
    double sum = 0;
    for (const Worker& w : workers_) sum += weft::testing::ProcCpuSeconds(w.process.pid());
    return sum;
  }
  // Ends the watches and waits for the workers to exit (the destructor kills what is left).
  void Stop() {
    Broadcast("stop");
    Collect("stopped", absl::Now() + absl::Seconds(70));
    for (Worker& w : workers_) w.process.Wait(absl::Seconds(5));
  }

 private:
  struct Worker {
    weft::Subprocess process;
    std::unique_ptr<LineChannel> control;
  };
  bool StartOne(std::vector<std::string> argv) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return false;
    weft::SubprocessOptions options;
    options.argv = std::move(argv);
    options.stdout_fd = sv[1];  // the control socket: a socket reads as well as it writes
    options.stderr_fd = STDERR_FILENO;
    options.die_with_parent = true;  // PR_SET_PDEATHSIG right after fork, and getppid()
    Worker w;
    const absl::Status s = w.process.Start(std::move(options));
    close(sv[1]);
    w.control = std::make_unique<LineChannel>(sv[0]);
    if (!s.ok()) {
      std::fprintf(stderr, "worker: %s\n", s.ToString().c_str());
      return false;
    }
    workers_.push_back(std::move(w));
    return true;
  }

  std::vector<Worker> workers_;
};

// ---- One run ----

struct Result {
  weft::bench::LoadResult latency;  // ms; ok: deliveries measured
  int64_t expected = 0;
  double server_us_per_event = 0, client_us_per_event = 0;
  double rss_per_agent_kib = 0;
  double open_seconds = 0;
  std::string per_change;  // "p50/max" ms of each change
  double resume_seconds = -1;  // kill -9 + restart -> every agent watching again
  double resume_first_seconds = -1, resume_p50_seconds = -1;  // ... -> the first, half of them
  int resume_snapshots = 0;
};

// Leases 0..leases-1; the last one's revision (0 on failure).
int64_t StoreLeases(Server* server, int leases) {
  int64_t revision = 0;
  for (int i = 0; i < leases; ++i) {
    if ((revision = server->Change(i)) == 0) {
      std::fprintf(stderr, "%s: storing lease %d failed\n", server->name(), i);
      return 0;
    }
  }
  return revision;
}

// The latencies (ms) from `issued` of the arrival times in the workers' "times ..." lines.
std::vector<double> LatenciesMs(const std::vector<std::string>& lines, absl::Time issued) {
  const int64_t issued_ns = absl::ToUnixNanos(issued);
  std::vector<double> ms;
  for (const std::string& line : lines) {
    for (absl::string_view word : absl::StrSplit(line, ' ', absl::SkipEmpty())) {
      int64_t ns = 0;
      if (absl::SimpleAtoi(word, &ns)) ms.push_back(static_cast<double>(ns - issued_ns) / 1e6);
    }
  }
  return ms;
}

// `changes` new leases from `first`, one at a time, each timed from its issue
// to every agent; all the latencies (ms), and "p50/max" of each change appended to *per_change.
std::vector<double> MeasureChanges(Server* server, Workers* workers, int first, int changes, int64_t last,
                                   std::string* per_change) {
  std::vector<double> all;
  for (int c = 0; c < changes; ++c) {
    if (!workers->Broadcast(absl::StrCat("arm ", last)) || !workers->Collect("armed", absl::Now() + absl::Seconds(10))) {
      break;
    }
    const absl::Time issued = absl::Now();
    last = server->Change(first + c);
    if (last == 0) break;
    workers->Collect("done", absl::Now() + absl::Seconds(30));
    std::vector<std::string> lines;
    if (!workers->Broadcast("disarm") || !workers->Collect("times", absl::Now() + absl::Seconds(10), &lines)) break;
    const std::vector<double> these = LatenciesMs(lines, issued);
    const weft::bench::LoadResult r = weft::bench::Percentiles(these);
    if (r.ok > 0) absl::StrAppend(per_change, per_change->empty() ? "" : " ", absl::StrFormat("%.0f/%.0f", r.p50_ms, r.max_ms));
    all.insert(all.end(), these.begin(), these.end());
    absl::SleepFor(absl::Milliseconds(50));
  }
  return all;
}

// Resume after kill -9: the server killed and started again on its data;
// every agent reconnects and resumes after the last revision it saw. The
// seconds from the kill until each agent did (empty if not all did within
// 120 s), and how many got a snapshot.
std::vector<double> MeasureResume(Server* server, Workers* workers, int* snapshots) {
  if (!workers->Broadcast("await-resume") || !workers->Collect("ok", absl::Now() + absl::Seconds(10))) return {};
  const absl::Time restart = absl::Now();
  server->KillAndRestart();
  std::vector<std::string> lines;
  if (!workers->Collect("resumed", absl::Now() + absl::Seconds(120), &lines)) return {};
  std::vector<double> seconds;
  for (const std::string& line : lines) {
    const std::vector<absl::string_view> words = absl::StrSplit(line, ' ');  // "resumed <snapshots> <ns>..."
    int n = 0;
    if (words.size() < 2 || !absl::SimpleAtoi(words[1], &n)) continue;
    *snapshots += n;
    for (size_t i = 2; i < words.size(); ++i) {
      int64_t ns = 0;
      if (absl::SimpleAtoi(words[i], &ns)) seconds.push_back(static_cast<double>(ns - absl::ToUnixNanos(restart)) / 1e9);
    }
  }
  return seconds;
}

// Stores `leases`, opens `agents` watches in `procs` client processes, makes
// `changes` changes one at a time, then kills and restarts the server.
bool Run(Server* server, int agents, int leases, int changes, int procs, bool await_connection, Result* out) {
  const int64_t stored = StoreLeases(server, leases);
  if (stored == 0) return false;
  const int64_t rss0 = weft::testing::ProcStatusKiB(server->pid(), "VmRSS");
  const absl::Time open_start = absl::Now();
  Workers workers;
  if (!workers.Start(*server, agents, procs, await_connection)) return false;
  const bool all = workers.Collect("ready", open_start + absl::Seconds(180));
  out->open_seconds = absl::ToDoubleSeconds(absl::Now() - open_start);
  absl::SleepFor(absl::Seconds(1));  // idle: nothing queued
  const int64_t rss1 = weft::testing::ProcStatusKiB(server->pid(), "VmRSS");
  out->rss_per_agent_kib = static_cast<double>(rss1 - rss0) / agents;
  const double server0 = weft::testing::ProcCpuSeconds(server->pid());
  const double client0 = workers.CpuSeconds();
  std::vector<double> latencies;
  if (all) latencies = MeasureChanges(server, &workers, leases, changes, stored, &out->per_change);
  const double server_cpu = weft::testing::ProcCpuSeconds(server->pid()) - server0;
  const double client_cpu = workers.CpuSeconds() - client0;
  if (all) {
    std::vector<double> seconds = MeasureResume(server, &workers, &out->resume_snapshots);
    if (static_cast<int>(seconds.size()) == agents) {
      std::sort(seconds.begin(), seconds.end());
      out->resume_first_seconds = seconds.front();
      out->resume_p50_seconds = seconds[seconds.size() / 2];
      out->resume_seconds = seconds.back();
    }
  }
  workers.Stop();
  out->latency = weft::bench::Percentiles(latencies);
  out->expected = static_cast<int64_t>(agents) * changes;
  if (latencies.empty()) return false;
  out->server_us_per_event = server_cpu * 1e6 / static_cast<double>(latencies.size());
  out->client_us_per_event = client_cpu * 1e6 / static_cast<double>(latencies.size());
  return all;
}

std::unique_ptr<Server> StartServer(const std::string& which, weft::TempDir* tmp) {
  if (which == "weft") {
    auto w = std::make_unique<WeftServer>(tmp->path() + "/weft");
    if (w->ok()) return w;
  } else {
    auto e = std::make_unique<EtcdServer>(tmp->path());
    if (e->ok()) return e;
  }
  tmp->Keep();  // with its log
  return nullptr;
}

void PrintRow(int agents, const Server& server, const Result& r, bool ok) {
  const std::string resume = r.resume_seconds < 0
                                 ? "not all"
                                 : absl::StrFormat("%.2f s (first %.2f s, half %.2f s; %d snapshots)", r.resume_seconds,
                                                   r.resume_first_seconds, r.resume_p50_seconds, r.resume_snapshots);
  std::printf("| %d | %s | %.1f | %.1f | %.1f | %lld of %lld | %.1f us | %.1f us | %.1f KiB | %.1f s | %s |%s\n", agents,
              server.name(), r.latency.p50_ms, r.latency.p99_ms, r.latency.max_ms,
              static_cast<long long>(r.latency.ok), static_cast<long long>(r.expected), r.server_us_per_event,
              r.client_us_per_event, r.rss_per_agent_kib, r.open_seconds, resume.c_str(), ok ? "" : " (incomplete)");
  std::fprintf(stderr, "%d %s per change, p50/max ms: %s\n", agents, server.name(), r.per_change.c_str());
  std::fflush(stdout);
}

// "--name value" pairs.
std::map<std::string, std::string> FlagPairs(int argc, char** argv) {
  std::map<std::string, std::string> flags;
  for (int i = 1; i + 1 < argc; i += 2) flags[argv[i]] = argv[i + 1];
  return flags;
}

// One connection per agent on each side: raise the descriptor limit (the
// servers and workers, started from here, inherit it).
rlim_t RaiseDescriptorLimit() {
  rlimit nofile{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  setrlimit(RLIMIT_NOFILE, &nofile);
  return nofile.rlim_cur;
}

}  // namespace

int main(int argc, char** argv) {
  weft::TurnOffMutexDeadlockDetection();
  std::map<std::string, std::string> flags = FlagPairs(argc, argv);
  if (flags.count("--worker")) return WorkerMain(flags);
  std::vector<int> sizes = {1000, 5000};
  std::vector<std::string> systems = {"weft", "etcd"};
  int changes = 20, leases = 300;
  int procs = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));  // one per core
  if (flags.count("--agents")) {
    sizes.clear();
    for (absl::string_view s : absl::StrSplit(flags["--agents"], ',')) {
      int n = 0;
      if (absl::SimpleAtoi(s, &n) && n > 0) sizes.push_back(n);
    }
  }
  if (flags.count("--systems")) systems = absl::StrSplit(flags["--systems"], ',');
  if (flags.count("--changes")) absl::SimpleAtoi(flags["--changes"], &changes);
  if (flags.count("--leases")) absl::SimpleAtoi(flags["--leases"], &leases);
  if (flags.count("--client-procs")) absl::SimpleAtoi(flags["--client-procs"], &procs);
  int await_connection = 1;  // 0: the agents' calls after a failure do not wait for the connection
  if (flags.count("--await-connection")) absl::SimpleAtoi(flags["--await-connection"], &await_connection);
  procs = std::max(1, procs);
  const rlim_t nofile = RaiseDescriptorLimit();
  std::printf("watch_compare_bench: %d leases stored first, %d changes one at a time, one connection per agent, "
              "%d client processes; reconnects %s; descriptor limit %llu\n",
              leases, changes, procs, await_connection ? "await the connection" : "call at once",
              static_cast<unsigned long long>(nofile));
  std::printf("| agents | system | p50 ms | p99 ms | max ms | delivered | server CPU per event | client CPU per event "
              "| server RSS per agent | all watches open in | all resumed after kill -9 + restart |\n");
  int rc = 0;
  for (int n : sizes) {
    for (const std::string& which : systems) {
      weft::TempDir tmp("weft-compare-", weft::TempDir::Root::kTmp);
      std::unique_ptr<Server> server = StartServer(which, &tmp);
      if (!server) return 1;
      Result r;
      const bool ok = Run(server.get(), n, leases, changes, std::min(procs, n), await_connection != 0, &r);
      PrintRow(n, *server, r, ok);
      if (!ok) rc = 1;
    }
  }
  return rc;
}
