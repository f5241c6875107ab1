// WatchLeases against the real controller: snapshot then events in order,
// resume from a revision (only what came after), a compacted resume point gets a
// snapshot saying so, idle streams get bookmarks; plus the standard health
// service and server reflection.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "agent/controller_client.h"
#include "common/retry_hint.h"
#include "common/testing.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/weft/v1/weft.grpc.pb.h"
#include "tests/bench/scrape.h"
#include "tests/integration/controller_fixture.h"

namespace weft::testing {
namespace {

using weft::v1::WatchLeasesResponse;

weft::v1::AcquireLeaseRequest Node(int i) {
  weft::v1::AcquireLeaseRequest r;
  r.set_node_name(absl::StrCat("w", i));
  r.set_public_ip(absl::StrCat("198.51.", i / 250, ".", i % 250 + 1));
  r.set_backend_type("vxlan");
  r.set_backend_data(absl::StrFormat(R"({"VNI":1,"VtepMAC":"02:00:00:00:%02x:%02x"})", i >> 8, i & 0xff));
  return r;
}

class Watch {
 public:
  Watch(Controller& c, int64_t from) : Watch(c.leases(), from) {}
  Watch(weft::v1::LeaseService::StubInterface* stub, int64_t from) {
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    weft::v1::WatchLeasesRequest req;
    req.set_start_revision(from);
    reader_ = stub->WatchLeases(&ctx_, req);
  }
  ~Watch() {
    ctx_.TryCancel();
    if (ended_) return;
    WatchLeasesResponse m;
    while (reader_->Read(&m)) {
    }
    reader_->Finish().IgnoreError();
  }
  // The next message; fails the test (fatally for the caller's loop, via ended())
  // when the stream ends.
  WatchLeasesResponse Next() {
    WatchLeasesResponse m;
    if (!ended_ && !reader_->Read(&m)) {
      ended_ = true;
      grpc::Status s = reader_->Finish();
      ADD_FAILURE() << "stream ended: " << s.error_code() << " " << s.error_message();
    }
    return m;
  }
  bool ended() const { return ended_; }

 private:
  bool ended_ = false;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderInterface<WatchLeasesResponse>> reader_;
};

weft::v1::AcquireLeaseResponse Acquire(Controller& c, int i) {
  weft::v1::AcquireLeaseResponse resp;
  grpc::Status s = c.leases()->AcquireLease(Ctx().get(), Node(i), &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return resp;
}

void SetSeedConfig(Controller& c,
                   const std::string& config = R"({"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}})") {
  weft::v1::SetNetworkConfigRequest req;
  req.set_config(config);
  weft::v1::SetNetworkConfigResponse resp;
  ASSERT_TRUE(c.network()->SetNetworkConfig(Ctx().get(), req, &resp).ok());
}

TEST(WatchTest, SnapshotThenEventsThenResume) {
  Controller c(DataDir("watch"));
  c.Start({"--watch-bookmark-interval", "1s"});
  SetSeedConfig(c);
  Acquire(c, 1);
  int64_t resume_at = 0;
  std::string second;
  {
    Watch w(c, 0);
    WatchLeasesResponse snap = w.Next();
    ASSERT_TRUE(snap.has_snapshot());
    EXPECT_EQ(snap.snapshot().reason(), WatchLeasesResponse::Snapshot::REASON_NEW_STREAM);
    ASSERT_EQ(snap.snapshot().leases_size(), 1);
    EXPECT_EQ(snap.snapshot().leases(0).node_name(), "w1");
    resume_at = snap.revision();
    second = Acquire(c, 2).lease().subnet();
    WatchLeasesResponse ev = w.Next();
    ASSERT_TRUE(ev.has_events()) << ev.DebugString();
    ASSERT_EQ(ev.events().events_size(), 1);
    EXPECT_EQ(ev.events().events(0).type(), weft::v1::LeaseEvent::TYPE_PUT);
    EXPECT_EQ(ev.events().events(0).lease().subnet(), second);
    EXPECT_GT(ev.revision(), resume_at);
    // Idle: a bookmark arrives and carries the current revision.
    WatchLeasesResponse bm = w.Next();
    EXPECT_TRUE(bm.has_bookmark()) << bm.DebugString();
    EXPECT_EQ(bm.revision(), ev.revision());
  }
  // Changes while disconnected: a release and a new lease.
  weft::v1::ReleaseLeaseRequest rel;
  rel.set_subnet(second);
  rel.set_node_name("w2");
  weft::v1::ReleaseLeaseResponse rr;
  ASSERT_TRUE(c.leases()->ReleaseLease(Ctx().get(), rel, &rr).ok());
  std::string third = Acquire(c, 3).lease().subnet();
  // Resume from the snapshot's revision: exactly what happened after it, in order.
  Watch w(c, resume_at);
  std::vector<weft::v1::LeaseEvent> got;
  while (got.size() < 3 && !w.ended()) {
    WatchLeasesResponse m = w.Next();
    ASSERT_FALSE(m.has_snapshot()) << "resume within history must not resend a snapshot";
    for (const auto& e : m.events().events()) got.push_back(e);
  }
  EXPECT_EQ(got[0].type(), weft::v1::LeaseEvent::TYPE_PUT);
  EXPECT_EQ(got[0].lease().subnet(), second);
  EXPECT_EQ(got[1].type(), weft::v1::LeaseEvent::TYPE_DELETE);
  EXPECT_EQ(got[1].lease().subnet(), second);
  EXPECT_EQ(got[2].type(), weft::v1::LeaseEvent::TYPE_PUT);
  EXPECT_EQ(got[2].lease().subnet(), third);
  EXPECT_LT(got[0].revision(), got[1].revision());
  EXPECT_LT(got[1].revision(), got[2].revision());
}

// Agents connecting together while the lease set stays put share one encoded
// snapshot; a change makes the next snapshot a new encoding that holds it.
TEST(WatchTest, StreamsStartingTogetherShareOneSnapshotEncoding) {
  Controller c(DataDir("shared"));
  const int metrics_port = FreePort();
  c.Start({"--metrics-listen", absl::StrCat("127.0.0.1:", metrics_port)});
  SetSeedConfig(c);
  for (int i = 1; i <= 50; ++i) Acquire(c, i);
  auto snapshots = [&](const char* encoding) {
    return bench::Sample(bench::ScrapeMetrics(metrics_port),
                         absl::StrCat("weft_controller_watch_snapshots_total{encoding=\"", encoding, "\"}"));
  };
  std::vector<std::unique_ptr<Watch>> watches;
  for (int i = 0; i < 20; ++i) watches.push_back(std::make_unique<Watch>(c, 0));
  int64_t revision = -1;
  for (auto& w : watches) {
    WatchLeasesResponse snap = w->Next();
    ASSERT_TRUE(snap.has_snapshot());
    EXPECT_EQ(snap.snapshot().leases_size(), 50);
    if (revision < 0) revision = snap.revision();
    EXPECT_EQ(snap.revision(), revision);
  }
  EXPECT_EQ(snapshots("encoded"), 1);
  EXPECT_EQ(snapshots("shared"), 19);
  Acquire(c, 51);
  Watch late(c, 0);
  WatchLeasesResponse snap = late.Next();
  ASSERT_TRUE(snap.has_snapshot());
  EXPECT_EQ(snap.snapshot().leases_size(), 51) << "a snapshot from before the change was reused";
  EXPECT_GT(snap.revision(), revision);
  EXPECT_EQ(snapshots("encoded"), 2);
}

// With several senders sharing out a change's writes, every stream still gets
// every event once, in revision order, and a shutdown with writes handed to
// them ends cleanly.
TEST(WatchTest, SendersShareTheWritesAndEveryStreamGetsEveryEventInOrder) {
  Controller c(DataDir("senders"));
  c.Start({"--watch-senders", "4"});
  SetSeedConfig(c);
  constexpr int kStreams = 200, kChanges = 30;  // 200 streams: three shares of at least 64
  std::vector<std::unique_ptr<Watch>> watches;
  for (int i = 0; i < kStreams; ++i) watches.push_back(std::make_unique<Watch>(c, 0));
  std::vector<int64_t> from(kStreams);
  for (int i = 0; i < kStreams; ++i) {
    WatchLeasesResponse snap = watches[i]->Next();
    ASSERT_TRUE(snap.has_snapshot()) << i;
    from[i] = snap.revision();
  }
  std::vector<int64_t> revisions;
  for (int i = 1; i <= kChanges; ++i) revisions.push_back(Acquire(c, i).revision());
  for (int i = 0; i < kStreams; ++i) {
    std::vector<int64_t> got;
    std::set<std::string> nodes;
    while (got.size() < revisions.size() && !watches[i]->ended()) {
      WatchLeasesResponse m = watches[i]->Next();
      if (!m.has_events()) continue;
      for (const auto& e : m.events().events()) {
        EXPECT_GT(e.revision(), got.empty() ? from[i] : got.back()) << "stream " << i << " out of order";
        got.push_back(e.revision());
        nodes.insert(e.lease().node_name());
      }
    }
    ASSERT_EQ(got, revisions) << "stream " << i;
    EXPECT_EQ(nodes.size(), static_cast<size_t>(kChanges)) << "stream " << i;
  }
  // Changes while the controller stops: writes handed to the senders meet
  // cancelled streams; the process still exits cleanly.
  for (int i = kChanges + 1; i <= kChanges + 5; ++i) Acquire(c, i);
  c.Signal(SIGTERM);
  const int status = c.WaitExit();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

// --watch-compress-snapshots: the snapshot (gzipped on the wire: gRPC
// decompresses it out of the application's sight, so fanout_bench --compress 1
// shows the bytes) arrives whole, and events after it as usual.
TEST(WatchTest, CompressedSnapshotsArriveWhole) {
  Controller c(DataDir("gzip"));
  c.Start({"--watch-compress-snapshots"});
  SetSeedConfig(c);
  for (int i = 1; i <= 100; ++i) Acquire(c, i);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto reader = c.leases()->WatchLeases(&ctx, weft::v1::WatchLeasesRequest());
  WatchLeasesResponse m;
  ASSERT_TRUE(reader->Read(&m));
  ASSERT_TRUE(m.has_snapshot());
  EXPECT_EQ(m.snapshot().leases_size(), 100);
  const int64_t revision = Acquire(c, 101).revision();
  ASSERT_TRUE(reader->Read(&m));
  ASSERT_TRUE(m.has_events());
  EXPECT_EQ(m.revision(), revision);
  ASSERT_EQ(m.events().events_size(), 1);
  EXPECT_EQ(m.events().events(0).lease().node_name(), "w101");
  ctx.TryCancel();
  while (reader->Read(&m)) {
  }
  reader->Finish().IgnoreError();
}

// At SIGTERM the controller ends its watch streams in batches spread over
// --watch-drain-window, not all at once, so agents resume on the other
// replicas as a ramp rather than a storm; each is told to come back after the
// window if it has nowhere else to go (common/retry_hint.h).
TEST(WatchTest, ShutdownDrainsStreamsGraduallyOverTheWindow) {
  Controller c(DataDir("drain"));
  c.Start({"--watch-drain-window", "2s", "--shutdown-drain", "0s"});
  SetSeedConfig(c);
  struct Ended {
    absl::Time at;
    grpc::StatusCode code;
    std::optional<absl::Duration> retry_after;
  };
  constexpr int kStreams = 20;
  std::vector<Ended> ended(kStreams);
  std::vector<std::thread> readers;
  absl::BlockingCounter started(kStreams);
  for (int i = 0; i < kStreams; ++i) {
    readers.emplace_back([&, i] {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
      auto reader = c.leases()->WatchLeases(&ctx, weft::v1::WatchLeasesRequest());
      WatchLeasesResponse m;
      const bool got_snapshot = reader->Read(&m) && m.has_snapshot();
      started.DecrementCount();
      if (!got_snapshot) return;
      while (reader->Read(&m)) {
      }
      const grpc::StatusCode code = reader->Finish().error_code();
      ended[i] = {absl::Now(), code, weft::RetryAfter(ctx)};
    });
  }
  started.Wait();
  c.Signal(SIGTERM);
  for (auto& t : readers) t.join();
  const int status = c.WaitExit();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  absl::Time first = absl::InfiniteFuture(), last = absl::InfinitePast();
  for (const Ended& e : ended) {
    EXPECT_EQ(e.code, grpc::StatusCode::UNAVAILABLE);
    // An agent with nowhere else to go comes back one window later.
    EXPECT_EQ(e.retry_after, std::optional<absl::Duration>(absl::Seconds(2)));
    first = std::min(first, e.at);
    last = std::max(last, e.at);
  }
  // 20 streams in 20 batches 100 ms apart: the last ends >= 1.9 s after the first.
  EXPECT_GE(last - first, absl::Milliseconds(1500)) << "the streams ended together";
}

TEST(WatchTest, ResumeAheadOfTheStoreGetsASnapshotSayingSoAfterWaiting) {
  Controller c(DataDir("watch-ahead"));
  c.Start({"--watch-bookmark-interval", "1s"});
  SetSeedConfig(c);
  Acquire(c, 1);
  int64_t now = 0;
  {
    Watch w(c, 0);
    now = w.Next().revision();
  }
  // A revision this store never reached (say, restored from an older backup).
  const absl::Time start = absl::Now();
  Watch w(c, now + 1000);
  WatchLeasesResponse m = w.Next();
  while (!w.ended() && m.has_bookmark()) m = w.Next();
  ASSERT_TRUE(m.has_snapshot()) << m.DebugString();
  EXPECT_EQ(m.snapshot().reason(), WatchLeasesResponse::Snapshot::REASON_AHEAD);
  EXPECT_EQ(m.snapshot().leases_size(), 1);
  EXPECT_EQ(m.revision(), now);
  EXPECT_GE(absl::Now() - start, absl::Seconds(4)) << "it waits for the store to get there first";
}

TEST(WatchTest, ResumeOlderThanHistoryGetsASnapshotSayingSo) {
  Controller c(DataDir("watch-compacted"));
  c.Start({"--watch-history", "2"});
  SetSeedConfig(c);
  int64_t old_rev = Acquire(c, 1).revision();
  for (int i = 2; i <= 6; ++i) Acquire(c, i);
  Watch w(c, old_rev);
  WatchLeasesResponse m = w.Next();
  ASSERT_TRUE(m.has_snapshot()) << m.DebugString();
  EXPECT_EQ(m.snapshot().reason(), WatchLeasesResponse::Snapshot::REASON_COMPACTED);
  EXPECT_EQ(m.snapshot().leases_size(), 6);
}

TEST(WatchTest, SlowConsumerIsResyncedNotDroppedAndOthersKeepUp) {
  Controller c(DataDir("watch-slow"));
  c.Start({"--watch-max-queue", "8"});
  SetSeedConfig(c, R"({"Network":"10.0.0.0/12","Backend":{"Type":"vxlan"}})");
  // The slow stream has its own connection with a small, fixed HTTP/2 window, and
  // is not read while the burst happens: its writes stall and its queue fills.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 1024);
  auto slow_stub = weft::v1::LeaseService::NewStub(
      grpc::CreateCustomChannel(c.addr(), grpc::InsecureChannelCredentials(), args));
  Watch slow(slow_stub.get(), 0);
  Watch fast(c, 0);
  ASSERT_TRUE(fast.Next().has_snapshot());
  constexpr int kLeases = 1000;
  int fast_events = 0;
  std::thread reader([&] {
    while (fast_events < kLeases && !fast.ended()) {
      WatchLeasesResponse m = fast.Next();
      fast_events += m.events().events_size();
      if (m.has_snapshot()) break;
    }
  });
  for (int i = 1; i <= kLeases; ++i) Acquire(c, i);
  reader.join();
  EXPECT_EQ(fast_events, kLeases) << "the fast stream missed events";
  // The slow stream: whatever it got queued, then a resync snapshot with everything.
  bool resynced = false;
  std::set<std::string> seen;
  while (seen.size() < static_cast<size_t>(kLeases) && !slow.ended()) {
    WatchLeasesResponse m = slow.Next();
    if (m.has_snapshot()) {
      if (m.snapshot().reason() == WatchLeasesResponse::Snapshot::REASON_RESYNC) resynced = true;
      seen.clear();
      for (const auto& l : m.snapshot().leases()) seen.insert(l.subnet());
    }
    for (const auto& e : m.events().events()) seen.insert(e.lease().subnet());
  }
  EXPECT_TRUE(resynced) << "the slow stream was never told to resync";
  EXPECT_EQ(seen.size(), static_cast<size_t>(kLeases));
}

TEST(WatchTest, HealthServiceAndReflectionAnswer) {
  Controller c(DataDir("health"));
  c.Start();
  grpc::GenericStub stub(c.channel());
  // grpc.health.v1.Health/Check with an empty service name: SERVING is field 1 = 1.
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::ByteBuffer req;  // empty HealthCheckRequest
  grpc::Slice empty("", 0);
  req = grpc::ByteBuffer(&empty, 1);
  grpc::ByteBuffer resp;
  grpc::Status status;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &req, &resp,
                 [&](grpc::Status s) {
                   std::lock_guard<std::mutex> l(mu);
                   status = s;
                   done = true;
                   cv.notify_one();
                 });
  {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return done; });
  }
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(resp.Dump(&slices).ok());
  std::string bytes;
  for (auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));

  // Reflection lists the weft.v1 services.
  grpc::ClientContext rctx;
  rctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(&rctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  void* tag;
  bool ok;
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  grpc::Slice list("\x3a\x00", 2);  // list_services: ""
  grpc::ByteBuffer lreq(&list, 1);
  call->WriteLast(lreq, grpc::WriteOptions(), reinterpret_cast<void*>(2));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  grpc::ByteBuffer lresp;
  call->Read(&lresp, reinterpret_cast<void*>(3));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  slices.clear();
  ASSERT_TRUE(lresp.Dump(&slices).ok());
  bytes.clear();
  for (auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_NE(bytes.find("weft.v1.LeaseService"), std::string::npos);
  EXPECT_NE(bytes.find("weft.v1.NetworkService"), std::string::npos);
  grpc::Status fs;
  call->Finish(&fs, reinterpret_cast<void*>(4));
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

// Listens on 127.0.0.1:port and closes every connection it accepts, as a port
// whose controller is starting would not: it counts the attempts to connect.
class ClosingListener {
 public:
  explicit ClosingListener(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    listening_ = bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 && listen(fd_, 16) == 0;
    if (listening_) {
      thread_ = std::thread([this] {
        for (int c; (c = accept(fd_, nullptr, nullptr)) >= 0;) {
          close(c);
          accepted_.fetch_add(1);
        }
      });
    }
  }
  ~ClosingListener() {
    shutdown(fd_, SHUT_RDWR);  // ends the accept
    if (thread_.joinable()) thread_.join();
    close(fd_);
  }
  bool listening() const { return listening_; }
  int accepted() const { return accepted_.load(); }

 private:
  int fd_ = -1;
  bool listening_ = false;
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

// weft-agent's watch client against a controller killed and started again on
// the same port: while it is down, the client's next call waits for the
// channel to connect (the channel's attempts pace it), then resumes from its
// revision. Calling at once instead (as it did) fails against the dead port
// once per backoff step, and the grown backoff then delays the resume.
TEST(WatchTest, AnAgentWaitsForItsRestartedControllerAndResumesWithOneCall) {
  Controller c(DataDir("restart"));
  c.Start();
  SetSeedConfig(c);
  Acquire(c, 1);
  agent::ControllerClient::Options o;
  o.endpoints = {c.addr()};
  agent::ControllerClient client(o);
  client.StartWatch([](int64_t, bool) {});
  ASSERT_TRUE(Eventually([&] { return client.connected() && client.revision() > 0; }, absl::Seconds(10)));
  const int64_t before = client.revision();

  c.Kill9();
  {
    // Down through 4 of the channel's attempts (200 ms growing by 1.6: ~1.9 s),
    // several of the old backoff's steps.
    ClosingListener down(c.port());
    ASSERT_TRUE(down.listening());
    ASSERT_TRUE(Eventually([&] { return down.accepted() >= 4; }, absl::Seconds(20)));
    EXPECT_EQ(client.reconnects(), 1) << "calls failed against the port while the controller was down";
  }
  c.Restart();
  // An event after its revision, for the resume to bring.
  ASSERT_TRUE(Eventually([&] {
    weft::v1::AcquireLeaseResponse resp;
    return c.leases()->AcquireLease(Ctx().get(), Node(2), &resp).ok();
  }, absl::Seconds(10)));
  ASSERT_TRUE(Eventually([&] { return client.connected() && client.revision() > before; }, absl::Seconds(10)));
  EXPECT_EQ(client.reconnects(), 1);
  EXPECT_EQ(client.snapshots(), 1) << "resumed with a snapshot, not the event";
  client.Stop();
}

}  // namespace
}  // namespace weft::testing
