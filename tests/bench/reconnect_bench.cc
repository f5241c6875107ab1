// Reconnect storm: N WatchLeases streams (simulated agents, over many HTTP/2
// connections from this process) on a controller holding L leases; the
// controller is killed (kill -9) or stopped (SIGTERM: it drains its streams over
// --watch-drain-window) and started again on the same data directory and port.
// Every stream reconnects as weft-agent does (agent::WatchRetryDelay: jittered
// exponential backoff, 200 ms doubling up to 2 s, times 0.5-1.5; after a drain,
// the controller's hint) and resumes from the last revision it saw. It does not
// wait for its connection before calling again, as weft-agent now does with one
// controller: streams share connections here (watch_compare_bench, one
// connection per agent, measures that). Prints, per restart: the time until the new controller answers, until
// every stream has resumed, how many resumes got a snapshot instead of
// events/bookmarks (target 0), and the new controller's CPU and RSS.
//
//   bazel run -c opt //tests/bench:reconnect_bench -- [--streams 10000] [--leases 10000] [--rounds 1]
//   (--channels: default one per 200 streams; --drain-window-ms: default 2000;
//    --churn-rate N: N new leases a second from 1 s before each stop until the
//    streams have resumed, so changes are in flight when the controller dies;
//    --replay-revisions N: the controller's --watch-replay-revisions;
//    --retry-hints 0: streams ignore a draining controller's hint, as agents
//    before it did, for a baseline)

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "agent/controller_client.h"
#include "common/mutex_mode.h"
#include "common/retry_hint.h"
#include "common/testing.h"
#include "grpcpp/alarm.h"
#include "grpcpp/grpcpp.h"
#include "proto/weft/v1/weft.grpc.pb.h"
#include "tests/bench/network_config.h"
#include "tests/integration/process.h"

namespace {

using weft::v1::WatchLeasesResponse;

enum Kind : intptr_t { kStart = 0, kRead = 1, kFinish = 2, kRetry = 3 };
void* Tag(size_t i, Kind k) { return reinterpret_cast<void*>(static_cast<intptr_t>(i << 2 | k)); }

// One simulated agent's watch. Only the pump thread that got a completion for
// it touches it (a stream has one operation in flight at a time).
struct Stream {
  std::unique_ptr<grpc::ClientContext> ctx;
  std::unique_ptr<grpc::ClientAsyncReader<WatchLeasesResponse>> reader;
  WatchLeasesResponse msg;
  grpc::Status status;
  std::unique_ptr<grpc::Alarm> alarm;  // the pending reconnect
  int64_t revision = 0;  // the last one seen: where a reconnect resumes
  // weft-agent's reconnect pauses, with its defaults (agent/controller_client.h).
  weft::agent::Backoff backoff{weft::agent::ControllerClient::Options().backoff_base,
                               weft::agent::ControllerClient::Options().backoff_cap};
  bool got_message = false;  // on the current call
};

struct Counts {
  int first_messages = 0;  // streams that got their first message on the first call
  int resumed = 0;         // streams whose call ended and that got a message on a new one
  int snapshots = 0;       // of those, the ones whose first message was a snapshot
  int ended = 0;           // calls that ended
  int stopped = 0;         // streams done at the end of the bench
  absl::Time last_resume = absl::InfinitePast();
};

}  // namespace

int main(int argc, char** argv) {
  weft::TurnOffMutexDeadlockDetection();
  int streams = 10000, leases_before = 10000, channels = 0, rounds = 1, drain_ms = 2000, churn_rate = 0,
      replay_revisions = -1, retry_hints = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    int v = 0;
    if (!absl::SimpleAtoi(argv[i + 1], &v)) continue;
    const std::string f = argv[i];
    if (f == "--streams") streams = v;
    if (f == "--leases") leases_before = v;
    if (f == "--channels") channels = v;
    if (f == "--rounds") rounds = v;
    if (f == "--drain-window-ms") drain_ms = v;
    if (f == "--churn-rate") churn_rate = v;
    if (f == "--replay-revisions") replay_revisions = v;
    if (f == "--retry-hints") retry_hints = v;
  }
  if (channels <= 0) channels = std::max(16, (streams + 199) / 200);
  const std::string controller = weft::testing::Runfile("controller/weft-controller");
  weft::TempDir tmp("weft-reconnect-", weft::TempDir::Root::kTmp);
  const std::string dir = tmp.Join("controller");
  const int port = weft::testing::FreePort();
  const std::string addr = absl::StrCat("127.0.0.1:", port);
  std::vector<std::string> ctl_argv = {controller,
                                             "--data-dir",
                                             dir,
                                             "--listen",
                                             addr,
                                             "--metrics-listen",
                                             "",
                                             "--log-level",
                                             "warn",
                                             "--watch-bookmark-interval",
                                             "1h",
                                             "--shutdown-drain",
                                             "0s",
                                             "--watch-drain-window",
                                             absl::StrCat(drain_ms, "ms")};
  if (replay_revisions >= 0) {
    ctl_argv.insert(ctl_argv.end(), {"--watch-replay-revisions", absl::StrCat(replay_revisions)});
  }
  weft::testing::Process p;
  p.Start(ctl_argv, dir + ".log");
  auto main_ch = grpc::CreateChannel(addr, grpc::InsecureChannelCredentials());
  if (!weft::bench::ConnectAndConfigure(main_ch)) {
    tmp.Keep();  // with the controller's log
    return 1;
  }
  auto leases = weft::v1::LeaseService::NewStub(main_ch);
  // The leases, from 8 writers (the store commits them in groups).
  const absl::Time fill_start = absl::Now();
  std::atomic<int> next{0}, failed{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 8; ++w) {
    writers.emplace_back([&] {
      for (int i = next++; i < leases_before; i = next++) {
        weft::v1::AcquireLeaseRequest req;
        req.set_node_name(absl::StrCat("host", i));
        req.set_public_ip(absl::StrCat("10.", 200 + i / 62500, ".", i / 250 % 250, ".", i % 250 + 1));
        req.set_backend_type("vxlan");
        req.set_backend_data(absl::StrFormat(R"({"VNI":1,"VtepMAC":"02:00:%02x:%02x:%02x:01"})", i >> 16,
                                             (i >> 8) & 0xff, i & 0xff));
        grpc::ClientContext ctx;
        weft::v1::AcquireLeaseResponse resp;
        if (!leases->AcquireLease(&ctx, req, &resp).ok()) failed++;
      }
    });
  }
  for (auto& t : writers) t.join();
  if (failed > 0) {
    std::fprintf(stderr, "%d acquisitions failed\n", failed.load());
    tmp.Keep();
    return 1;
  }
  std::printf("reconnect_bench: %d leases stored in %.1f s; %d streams over %d connections\n", leases_before,
              absl::ToDoubleSeconds(absl::Now() - fill_start), streams, channels);

  std::vector<std::unique_ptr<weft::v1::LeaseService::Stub>> stubs;
  for (int i = 0; i < channels; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("weft.bench.channel", i);
    // weft-agent's own connection backoff (agent/controller_client.cc).
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
    stubs.push_back(
        weft::v1::LeaseService::NewStub(grpc::CreateCustomChannel(addr, grpc::InsecureChannelCredentials(), args)));
  }
  grpc::CompletionQueue cq;
  std::vector<std::unique_ptr<Stream>> ss(streams);
  absl::Mutex mu;
  Counts counts;
  auto open = [&](size_t i) {
    Stream& s = *ss[i];
    s.reader.reset();  // first: it lives in the old call's arena, which the old context frees
    s.ctx = std::make_unique<grpc::ClientContext>();
    s.got_message = false;
    weft::v1::WatchLeasesRequest req;
    req.set_start_revision(s.revision);
    s.reader = stubs[i % channels]->PrepareAsyncWatchLeases(s.ctx.get(), req, &cq);
    s.reader->StartCall(Tag(i, kStart));
  };
  std::atomic<bool> stopping{false};
  auto pump = [&] {
    void* tag;
    bool ok;
    while (cq.Next(&tag, &ok)) {
      const intptr_t t = reinterpret_cast<intptr_t>(tag);
      const size_t i = static_cast<size_t>(t >> 2);
      Stream& s = *ss[i];
      switch (static_cast<Kind>(t & 3)) {
        case kStart:
          if (ok) {
            s.reader->Read(&s.msg, Tag(i, kRead));
          } else {
            s.reader->Finish(&s.status, Tag(i, kFinish));
          }
          break;
        case kRead:
          if (!ok) {
            s.reader->Finish(&s.status, Tag(i, kFinish));
            break;
          }
          if (!s.got_message) {
            s.got_message = true;
            s.backoff.Reset();
            absl::MutexLock l(&mu);
            if (s.revision == 0) {
              ++counts.first_messages;
            } else {
              ++counts.resumed;
              if (s.msg.has_snapshot()) ++counts.snapshots;
              counts.last_resume = absl::Now();
            }
          }
          s.revision = std::max(s.revision, s.msg.revision());
          WatchLeasesResponse().Swap(&s.msg);  // a snapshot of 10,000 leases is not kept 10,000 times
          s.reader->Read(&s.msg, Tag(i, kRead));
          break;
        case kFinish: {
          if (s.got_message) {
            absl::MutexLock l(&mu);
            ++counts.ended;
          }
          if (stopping) {
            absl::MutexLock l(&mu);
            ++counts.stopped;
            break;
          }
          // As weft-agent does, with one controller to go to: the backoff, or a
          // draining controller's hint.
          const absl::Duration wait = weft::agent::WatchRetryDelay(
              retry_hints ? weft::RetryAfter(*s.ctx) : std::nullopt, 1, s.backoff);
          s.alarm = std::make_unique<grpc::Alarm>();
          s.alarm->Set(&cq, absl::ToChronoTime(absl::Now() + wait), Tag(i, kRetry));
          break;
        }
        case kRetry:
          if (!stopping) {
            open(i);
          } else {
            absl::MutexLock l(&mu);
            ++counts.stopped;
          }
          break;
      }
    }
  };
  std::vector<std::thread> pumps;
  for (int i = 0; i < 2; ++i) pumps.emplace_back(pump);
  for (int i = 0; i < streams; ++i) {
    ss[i] = std::make_unique<Stream>();
    open(i);
  }
  auto wait_for = [&](auto done, absl::Duration limit) {
    const absl::Time deadline = absl::Now() + limit;
    while (absl::Now() < deadline) {
      {
        absl::MutexLock l(&mu);
        if (done(counts)) return true;
      }
      absl::SleepFor(absl::Milliseconds(5));
    }
    return false;
  };
  int rc = 0;
  if (!wait_for([&](const Counts& c) { return c.first_messages >= streams; }, absl::Seconds(180))) {
    std::fprintf(stderr, "not every stream got its snapshot\n");
    rc = 1;
  }
  // Churn: new leases at churn_rate a second while `churning`, failures (the
  // controller down) skipped.
  std::atomic<bool> churning{false};
  std::atomic<int> churned{0};
  std::thread churn;
  auto start_churn = [&] {
    if (churn_rate <= 0) return;
    churning = true;
    churn = std::thread([&] {
      const absl::Duration every = absl::Seconds(1) / churn_rate;
      for (absl::Time next_at = absl::Now(); churning; next_at += every) {
        const int i = leases_before + churned++;
        weft::v1::AcquireLeaseRequest req;
        req.set_node_name(absl::StrCat("churn", i));
        req.set_public_ip(absl::StrCat("10.", 200 + i / 62500, ".", i / 250 % 250, ".", i % 250 + 1));
        req.set_backend_type("vxlan");
        req.set_backend_data(R"({"VNI":1,"VtepMAC":"02:00:00:00:00:02"})");
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
        weft::v1::AcquireLeaseResponse resp;
        leases->AcquireLease(&ctx, req, &resp);
        absl::SleepFor(next_at + every - absl::Now());  // pacing, not a wait for a condition
      }
    });
    absl::SleepFor(absl::Seconds(1));  // changes in flight before the stop
  };
  auto stop_churn = [&] {
    if (!churn.joinable()) return;
    churning = false;
    churn.join();
  };
  for (int round = 0; rc == 0 && round < 2 * rounds; ++round) {
    const bool graceful = round % 2 == 1;
    start_churn();
    int resumed_before = 0, snapshots_before = 0;
    {
      absl::MutexLock l(&mu);
      resumed_before = counts.resumed;
      snapshots_before = counts.snapshots;
    }
    const absl::Time stop_at = absl::Now();
    p.Kill(graceful ? SIGTERM : SIGKILL);
    p.Wait();
    const absl::Duration stopping_took = absl::Now() - stop_at;
    const absl::Time restart = absl::Now();
    p.Start(ctl_argv, dir + ".log");
    // Answering: a unary call that succeeds, on a fresh connection.
    // A fresh channel per try (a channel's own reconnect backoff would blur it).
    absl::Duration answered = absl::InfiniteDuration();
    while (absl::Now() - restart < absl::Seconds(60)) {
      auto probe = weft::v1::NetworkService::NewStub(grpc::CreateChannel(addr, grpc::InsecureChannelCredentials()));
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
      weft::v1::GetNetworkConfigResponse resp;
      if (probe->GetNetworkConfig(&ctx, {}, &resp).ok()) {
        answered = absl::Now() - restart;
        break;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    double peak_cpu = 0, cpu_prev = weft::testing::ProcCpuSeconds(p.pid());
    int64_t peak_rss = 0;
    absl::Time sample_at = absl::Now();
    const bool all = wait_for(
        [&](const Counts& c) {
          if (absl::Now() - sample_at >= absl::Milliseconds(250)) {
            const double cpu = weft::testing::ProcCpuSeconds(p.pid());
            peak_cpu = std::max(peak_cpu, (cpu - cpu_prev) / absl::ToDoubleSeconds(absl::Now() - sample_at));
            cpu_prev = cpu;
            sample_at = absl::Now();
            peak_rss = std::max(peak_rss, weft::testing::ProcStatusKiB(p.pid(), "VmRSS"));
          }
          return c.resumed - resumed_before >= streams;
        },
        absl::Seconds(120));
    absl::MutexLock l(&mu);
    const int resumed = counts.resumed - resumed_before;
    std::printf("%s: stopped in %.2f s; after the restart the controller answered in %.2f s, %d of %d streams "
                "resumed %.2f s after it answered (%.2f s after the restart), %d with a snapshot; new controller "
                "peak CPU %.0f%% of a core, peak RSS %.1f MB (250 ms samples)\n",
                graceful ? "SIGTERM (drain)" : "kill -9", absl::ToDoubleSeconds(stopping_took),
                absl::ToDoubleSeconds(answered), resumed, streams,
                absl::ToDoubleSeconds(counts.last_resume - restart - answered),
                absl::ToDoubleSeconds(counts.last_resume - restart), counts.snapshots - snapshots_before,
                100 * peak_cpu, peak_rss / 1024.0);
    std::fflush(stdout);
    if (!all) rc = 1;
    stop_churn();
  }
  // Ending: no more reconnects; the controller's death ends every call, and the
  // queue shuts once their completions (and any reconnect alarm still pending,
  // after a failed round) are drained.
  stopping = true;
  p.Kill(SIGKILL);
  p.Wait();
  if (!wait_for([&](const Counts& c) { return c.stopped >= streams; }, absl::Seconds(30))) {
    std::fprintf(stderr, "streams did not all end\n");
    tmp.Keep();
    return 1;  // a queue with calls in flight cannot be shut down cleanly
  }
  cq.Shutdown();
  for (auto& t : pumps) t.join();
  if (rc != 0) tmp.Keep();  // with the controller's log
  return rc;
}
