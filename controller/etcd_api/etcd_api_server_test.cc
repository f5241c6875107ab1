// EtcdApiServer over a real RocksDbStore in a temp dir, through an in-process
// gRPC channel with etcd's own stubs.

#include "common/testing.h"
#include "controller/etcd_api/etcd_api_server.h"

#include <cstdlib>
#include <deque>
#include <filesystem>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "proto/etcd/rpc.grpc.pb.h"
#include "storage/rocksdb/rocksdb_store.h"

namespace weft::controller::etcd_api {
namespace {

using etcdserverpb::RangeRequest;

std::unique_ptr<grpc::ClientContext> Ctx() {
  auto c = std::make_unique<grpc::ClientContext>();
  c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return c;
}

// Reads a client stream on its own thread, so tests can wait with a timeout.
template <typename Stream, typename Resp>
class Reader {
 public:
  explicit Reader(Stream* stream) : stream_(stream) {
    thread_ = std::thread([this] {
      Resp r;
      while (stream_->Read(&r)) {
        absl::MutexLock l(&mu_);
        queue_.push_back(r);
      }
      absl::MutexLock l(&mu_);
      ended_ = true;
    });
  }
  ~Reader() { thread_.join(); }

  std::optional<Resp> Next(absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock l(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !queue_.empty() || ended_; };
    mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
    if (queue_.empty()) return std::nullopt;
    Resp r = queue_.front();
    queue_.pop_front();
    return r;
  }
  bool ended() {
    absl::MutexLock l(&mu_);
    return ended_;
  }

 private:
  Stream* stream_;
  std::thread thread_;
  absl::Mutex mu_;
  std::deque<Resp> queue_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
};

using WatchStream = grpc::ClientReaderWriter<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>;
using WatchReader = Reader<WatchStream, etcdserverpb::WatchResponse>;
using KeepAliveStream = grpc::ClientReaderWriter<etcdserverpb::LeaseKeepAliveRequest, etcdserverpb::LeaseKeepAliveResponse>;
using KeepAliveReader = Reader<KeepAliveStream, etcdserverpb::LeaseKeepAliveResponse>;

class EtcdApiServerTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(EtcdApiOptions()); }
  void TearDown() override { Stop(); }

  void Start(EtcdApiOptions opts) {
    storage::RocksDbStore::Options so;
    so.path = dir_.Join(absl::StrCat("store", starts_++));  // a fresh store at every start
    so.lease_expiry_interval = absl::ZeroDuration();
    auto store = storage::RocksDbStore::Open(so);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    opts.name = "test";
    grpc::ServerBuilder builder;
    api_ = RegisterEtcdApi(builder, store_.get(), opts);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    auto channel = server_->InProcessChannel(grpc::ChannelArguments());
    kv_ = etcdserverpb::KV::NewStub(channel);
    watch_ = etcdserverpb::Watch::NewStub(channel);
    lease_ = etcdserverpb::Lease::NewStub(channel);
    maintenance_ = etcdserverpb::Maintenance::NewStub(channel);
    cluster_ = etcdserverpb::Cluster::NewStub(channel);
  }

  void Stop() {
    if (!server_) return;
    api_->Shutdown();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_.reset();
    api_.reset();
    store_.reset();
  }

  etcdserverpb::PutResponse Put(const std::string& k, const std::string& v, int64_t lease = 0) {
    etcdserverpb::PutRequest req;
    req.set_key(k);
    req.set_value(v);
    req.set_lease(lease);
    etcdserverpb::PutResponse resp;
    grpc::Status s = kv_->Put(Ctx().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }

  grpc::Status Range(const RangeRequest& req, etcdserverpb::RangeResponse* resp) {
    return kv_->Range(Ctx().get(), req, resp);
  }

  etcdserverpb::RangeResponse Get(const std::string& k, const std::string& end = "") {
    RangeRequest req;
    req.set_key(k);
    req.set_range_end(end);
    etcdserverpb::RangeResponse resp;
    grpc::Status s = Range(req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }

  int64_t Grant(int64_t ttl) {
    etcdserverpb::LeaseGrantRequest req;
    req.set_ttl(ttl);
    etcdserverpb::LeaseGrantResponse resp;
    grpc::Status s = lease_->LeaseGrant(Ctx().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.id();
  }

  static etcdserverpb::WatchRequest Create(const std::string& key, const std::string& end = "", int64_t start = 0) {
    etcdserverpb::WatchRequest req;
    auto* c = req.mutable_create_request();
    c->set_key(key);
    c->set_range_end(end);
    c->set_start_revision(start);
    return req;
  }

  const TempDir dir_{"etcd-api-"};  // outlives the store
  int starts_ = 0;
  std::unique_ptr<storage::RocksDbStore> store_;
  std::unique_ptr<EtcdApiServer> api_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<etcdserverpb::KV::Stub> kv_;
  std::unique_ptr<etcdserverpb::Watch::Stub> watch_;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease_;
  std::unique_ptr<etcdserverpb::Maintenance::Stub> maintenance_;
  std::unique_ptr<etcdserverpb::Cluster::Stub> cluster_;
};

TEST_F(EtcdApiServerTest, PutAndRangeCarryRevisionsVersionsAndHeaders) {
  EXPECT_EQ(Put("a", "1").header().revision(), 2);
  EXPECT_EQ(Put("a", "2").header().revision(), 3);
  etcdserverpb::PutResponse p = Put("b", "x");
  EXPECT_EQ(p.header().revision(), 4);
  EXPECT_EQ(p.header().cluster_id(), api_->cluster_id());
  EXPECT_EQ(p.header().member_id(), api_->member_id());
  EXPECT_NE(p.header().cluster_id(), 0u);
  EXPECT_EQ(p.header().raft_term(), 1u);

  etcdserverpb::RangeResponse r = Get("a");
  ASSERT_EQ(r.kvs_size(), 1);
  EXPECT_EQ(r.kvs(0).value(), "2");
  EXPECT_EQ(r.kvs(0).create_revision(), 2);
  EXPECT_EQ(r.kvs(0).mod_revision(), 3);
  EXPECT_EQ(r.kvs(0).version(), 2);
  EXPECT_EQ(r.count(), 1);
  EXPECT_EQ(r.header().revision(), 4);

  RangeRequest old;
  old.set_key("a");
  old.set_revision(2);
  ASSERT_TRUE(Range(old, &r).ok());
  ASSERT_EQ(r.kvs_size(), 1);
  EXPECT_EQ(r.kvs(0).value(), "1");
  EXPECT_EQ(r.header().revision(), 4);  // as etcd: the current revision

  etcdserverpb::PutRequest pr;
  pr.set_key("a");
  pr.set_value("3");
  pr.set_prev_kv(true);
  etcdserverpb::PutResponse presp;
  ASSERT_TRUE(kv_->Put(Ctx().get(), pr, &presp).ok());
  EXPECT_EQ(presp.prev_kv().value(), "2");
}

TEST_F(EtcdApiServerTest, RangeSortsFiltersAndLimitsAsEtcd) {
  Put("k/c", "1");  // rev 2
  Put("k/a", "3");  // rev 3
  Put("k/b", "2");  // rev 4
  Put("k/a", "4");  // rev 5
  RangeRequest req;
  req.set_key("k/");
  req.set_range_end("k0");
  etcdserverpb::RangeResponse r;

  req.set_sort_target(RangeRequest::CREATE);  // NONE order + another target = ascending
  ASSERT_TRUE(Range(req, &r).ok());
  ASSERT_EQ(r.kvs_size(), 3);
  EXPECT_EQ(r.kvs(0).key(), "k/c");
  EXPECT_EQ(r.kvs(2).key(), "k/b");

  req.set_sort_target(RangeRequest::MOD);
  req.set_sort_order(RangeRequest::DESCEND);
  req.set_limit(2);
  r.Clear();
  ASSERT_TRUE(Range(req, &r).ok());
  ASSERT_EQ(r.kvs_size(), 2);
  EXPECT_EQ(r.kvs(0).key(), "k/a");
  EXPECT_EQ(r.kvs(1).key(), "k/b");
  EXPECT_TRUE(r.more());
  EXPECT_EQ(r.count(), 3);

  RangeRequest filtered;
  filtered.set_key("k/");
  filtered.set_range_end("k0");
  filtered.set_min_mod_revision(4);
  r.Clear();
  ASSERT_TRUE(Range(filtered, &r).ok());
  ASSERT_EQ(r.kvs_size(), 2);
  EXPECT_EQ(r.kvs(0).key(), "k/a");
  EXPECT_EQ(r.kvs(1).key(), "k/b");

  RangeRequest keys;
  keys.set_key("k/");
  keys.set_range_end("k0");
  keys.set_keys_only(true);
  keys.set_limit(1);
  r.Clear();
  ASSERT_TRUE(Range(keys, &r).ok());
  ASSERT_EQ(r.kvs_size(), 1);
  EXPECT_EQ(r.kvs(0).key(), "k/a");
  EXPECT_EQ(r.kvs(0).value(), "");
  EXPECT_TRUE(r.more());

  RangeRequest count;
  count.set_key("\0", 1);
  count.set_range_end("\0", 1);
  count.set_count_only(true);
  r.Clear();
  ASSERT_TRUE(Range(count, &r).ok());
  EXPECT_EQ(r.kvs_size(), 0);
  EXPECT_EQ(r.count(), 3);
}

TEST_F(EtcdApiServerTest, ErrorsCarryEtcdCodesAndMessages) {
  Put("a", "1");
  etcdserverpb::RangeResponse r;
  RangeRequest empty;
  grpc::Status s = Range(empty, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "etcdserver: key is not provided");

  RangeRequest future;
  future.set_key("a");
  future.set_revision(100);
  s = Range(future, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(s.error_message(), "etcdserver: mvcc: required revision is a future revision");

  etcdserverpb::PutRequest bad_lease;
  bad_lease.set_key("a");
  bad_lease.set_lease(12345);
  etcdserverpb::PutResponse pr;
  s = kv_->Put(Ctx().get(), bad_lease, &pr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "etcdserver: requested lease not found");

  etcdserverpb::PutRequest ignore;
  ignore.set_key("missing");
  ignore.set_ignore_value(true);
  s = kv_->Put(Ctx().get(), ignore, &pr);
  EXPECT_EQ(s.error_message(), "etcdserver: key not found");
  ignore.set_key("a");
  ignore.set_value("v");
  s = kv_->Put(Ctx().get(), ignore, &pr);
  EXPECT_EQ(s.error_message(), "etcdserver: value is provided");

  // Compaction.
  Put("a", "2");
  Put("a", "3");  // rev 4
  etcdserverpb::CompactionRequest c;
  etcdserverpb::CompactionResponse cr;
  c.set_revision(10);
  s = kv_->Compact(Ctx().get(), c, &cr);
  EXPECT_EQ(s.error_message(), "etcdserver: mvcc: required revision is a future revision");
  c.set_revision(3);
  ASSERT_TRUE(kv_->Compact(Ctx().get(), c, &cr).ok());
  EXPECT_EQ(cr.header().revision(), 4);
  s = kv_->Compact(Ctx().get(), c, &cr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(s.error_message(), "etcdserver: mvcc: required revision has been compacted");
  RangeRequest old;
  old.set_key("a");
  old.set_revision(2);
  s = Range(old, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(s.error_message(), "etcdserver: mvcc: required revision has been compacted");
  old.set_revision(3);
  EXPECT_TRUE(Range(old, &r).ok());
}

TEST_F(EtcdApiServerTest, PutIgnoreValueAndLeaseKeepTheOldOnes) {
  const int64_t lease = Grant(100);
  Put("k", "v", lease);
  etcdserverpb::PutRequest req;
  req.set_key("k");
  req.set_ignore_value(true);
  etcdserverpb::PutResponse resp;
  ASSERT_TRUE(kv_->Put(Ctx().get(), req, &resp).ok());
  etcdserverpb::RangeResponse r = Get("k");
  EXPECT_EQ(r.kvs(0).value(), "v");
  EXPECT_EQ(r.kvs(0).lease(), 0);  // ignore_value alone drops the lease, as etcd
  EXPECT_EQ(r.kvs(0).version(), 2);

  Put("k", "v2", lease);
  req.Clear();
  req.set_key("k");
  req.set_value("v3");
  req.set_ignore_lease(true);
  ASSERT_TRUE(kv_->Put(Ctx().get(), req, &resp).ok());
  r = Get("k");
  EXPECT_EQ(r.kvs(0).value(), "v3");
  EXPECT_EQ(r.kvs(0).lease(), lease);
}

TEST_F(EtcdApiServerTest, TxnAppliesOneBranchWithEtcdHeaders) {
  Put("a", "1");  // rev 2
  etcdserverpb::TxnRequest txn;
  auto* cmp = txn.add_compare();
  cmp->set_key("a");
  cmp->set_target(etcdserverpb::Compare::VALUE);
  cmp->set_result(etcdserverpb::Compare::EQUAL);
  cmp->set_value("1");
  txn.add_success()->mutable_request_range()->set_key("a");
  auto* put = txn.add_success()->mutable_request_put();
  put->set_key("a");
  put->set_value("2");
  put->set_prev_kv(true);
  txn.add_success()->mutable_request_range()->set_key("a");
  txn.add_success()->mutable_request_delete_range()->set_key("nothing");
  txn.add_failure()->mutable_request_put()->set_key("failed");
  etcdserverpb::TxnResponse resp;
  ASSERT_TRUE(kv_->Txn(Ctx().get(), txn, &resp).ok());
  EXPECT_TRUE(resp.succeeded());
  EXPECT_EQ(resp.header().revision(), 3);
  EXPECT_EQ(resp.header().member_id(), api_->member_id());
  ASSERT_EQ(resp.responses_size(), 4);
  // Per-op headers: only a revision, the one before the txn until it writes.
  EXPECT_EQ(resp.responses(0).response_range().header().revision(), 2);
  EXPECT_EQ(resp.responses(0).response_range().header().member_id(), 0u);
  EXPECT_EQ(resp.responses(0).response_range().kvs(0).value(), "1");
  EXPECT_EQ(resp.responses(1).response_put().header().revision(), 3);
  EXPECT_EQ(resp.responses(1).response_put().prev_kv().value(), "1");
  EXPECT_EQ(resp.responses(2).response_range().header().revision(), 3);
  EXPECT_EQ(resp.responses(2).response_range().kvs(0).value(), "2");
  EXPECT_EQ(resp.responses(3).response_delete_range().deleted(), 0);

  // Now the compare fails: the failure branch runs.
  resp.Clear();
  ASSERT_TRUE(kv_->Txn(Ctx().get(), txn, &resp).ok());
  EXPECT_FALSE(resp.succeeded());
  EXPECT_EQ(resp.header().revision(), 4);
  EXPECT_EQ(Get("failed").count(), 1);

  etcdserverpb::TxnRequest dup;
  dup.add_success()->mutable_request_put()->set_key("x");
  dup.add_success()->mutable_request_put()->set_key("x");
  grpc::Status s = kv_->Txn(Ctx().get(), dup, &resp);
  EXPECT_EQ(s.error_message(), "etcdserver: duplicate key given in txn request");

  etcdserverpb::TxnRequest many;
  for (int i = 0; i < 129; ++i) many.add_success()->mutable_request_put()->set_key(absl::StrCat("m", i));
  s = kv_->Txn(Ctx().get(), many, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "etcdserver: too many operations in txn request");

  etcdserverpb::TxnRequest nested;
  nested.add_success()->mutable_request_txn();
  s = kv_->Txn(Ctx().get(), nested, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

TEST_F(EtcdApiServerTest, WatchStreamsCreatedEventsAndCanceled) {
  Put("w/old", "0");  // rev 2
  auto ctx = std::make_unique<grpc::ClientContext>();
  auto stream = watch_->Watch(ctx.get());
  WatchReader reader(stream.get());

  auto create = Create("w/", "w0");
  create.mutable_create_request()->set_prev_kv(true);
  ASSERT_TRUE(stream->Write(create));
  auto created = reader.Next();
  ASSERT_TRUE(created);
  EXPECT_TRUE(created->created());
  EXPECT_EQ(created->watch_id(), 0);
  EXPECT_EQ(created->header().revision(), 2);

  Put("w/a", "1");  // rev 3
  Put("other", "x");
  Put("w/a", "2");  // rev 5
  auto ev = reader.Next();
  ASSERT_TRUE(ev);
  ASSERT_EQ(ev->events_size(), 1);
  EXPECT_EQ(ev->events(0).kv().key(), "w/a");
  EXPECT_EQ(ev->events(0).kv().mod_revision(), 3);
  EXPECT_FALSE(ev->events(0).has_prev_kv());  // a create has none
  ev = reader.Next();
  ASSERT_TRUE(ev);
  ASSERT_EQ(ev->events_size(), 1);
  EXPECT_EQ(ev->events(0).kv().value(), "2");
  EXPECT_EQ(ev->events(0).prev_kv().value(), "1");
  EXPECT_EQ(ev->header().revision(), 5);

  // A second watch on the same stream, from history, with a NOPUT filter.
  etcdserverpb::RangeResponse unused;
  etcdserverpb::DeleteRangeRequest del;
  del.set_key("w/a");
  etcdserverpb::DeleteRangeResponse dresp;
  ASSERT_TRUE(kv_->DeleteRange(Ctx().get(), del, &dresp).ok());  // rev 6
  auto from_history = Create("w/", "w0", 1);
  from_history.mutable_create_request()->add_filters(etcdserverpb::WatchCreateRequest::NOPUT);
  ASSERT_TRUE(stream->Write(from_history));
  // The first watch sees the delete, the second is created and sees only it.
  int deletes = 0;
  bool second_created = false;
  for (int i = 0; i < 3; ++i) {
    auto r = reader.Next();
    ASSERT_TRUE(r);
    if (r->created()) {
      EXPECT_EQ(r->watch_id(), 1);
      second_created = true;
      continue;
    }
    ASSERT_EQ(r->events_size(), 1);
    EXPECT_EQ(r->events(0).type(), mvccpb::Event::DELETE);
    EXPECT_EQ(r->events(0).kv().mod_revision(), 6);
    ++deletes;
  }
  EXPECT_TRUE(second_created);
  EXPECT_EQ(deletes, 2);

  etcdserverpb::WatchRequest cancel;
  cancel.mutable_cancel_request()->set_watch_id(0);
  ASSERT_TRUE(stream->Write(cancel));
  auto canceled = reader.Next();
  ASSERT_TRUE(canceled);
  EXPECT_TRUE(canceled->canceled());
  EXPECT_EQ(canceled->watch_id(), 0);
  Put("w/b", "1");
  EXPECT_FALSE(reader.Next(absl::Milliseconds(500)));  // watch 1 filters puts, watch 0 is gone

  etcdserverpb::WatchRequest progress;
  progress.mutable_progress_request();
  ASSERT_TRUE(stream->Write(progress));
  auto p = reader.Next();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->watch_id(), -1);
  EXPECT_EQ(p->events_size(), 0);

  ctx->TryCancel();
}

TEST_F(EtcdApiServerTest, WatchFromACompactedRevisionIsCanceledWithTheCompactRevision) {
  for (int i = 0; i < 5; ++i) Put("c", absl::StrCat(i));  // revs 2..6
  etcdserverpb::CompactionRequest c;
  c.set_revision(5);
  etcdserverpb::CompactionResponse cr;
  ASSERT_TRUE(kv_->Compact(Ctx().get(), c, &cr).ok());

  auto ctx = std::make_unique<grpc::ClientContext>();
  auto stream = watch_->Watch(ctx.get());
  WatchReader reader(stream.get());
  ASSERT_TRUE(stream->Write(Create("c", "", 3)));
  auto created = reader.Next();
  ASSERT_TRUE(created);
  EXPECT_TRUE(created->created());
  EXPECT_FALSE(created->canceled());
  auto compacted = reader.Next();
  ASSERT_TRUE(compacted);
  EXPECT_TRUE(compacted->canceled());
  EXPECT_EQ(compacted->compact_revision(), 5);
  EXPECT_EQ(compacted->watch_id(), created->watch_id());

  // At the compact revision itself history is still there.
  ASSERT_TRUE(stream->Write(Create("c", "", 5)));
  created = reader.Next();
  ASSERT_TRUE(created);
  EXPECT_TRUE(created->created());
  auto events = reader.Next();
  ASSERT_TRUE(events);
  ASSERT_EQ(events->events_size(), 2);
  EXPECT_EQ(events->events(0).kv().value(), "3");
  ctx->TryCancel();
}

TEST_F(EtcdApiServerTest, WatchIdsChosenByTheClientAndDuplicates) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  auto stream = watch_->Watch(ctx.get());
  WatchReader reader(stream.get());
  auto create = Create("x");
  create.mutable_create_request()->set_watch_id(7);
  ASSERT_TRUE(stream->Write(create));
  auto r = reader.Next();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->watch_id(), 7);
  ASSERT_TRUE(stream->Write(create));
  r = reader.Next();
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->created());
  EXPECT_TRUE(r->canceled());
  EXPECT_EQ(r->watch_id(), -1);
  EXPECT_NE(r->cancel_reason(), "");
  ASSERT_TRUE(stream->Write(Create("y")));
  r = reader.Next();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->watch_id(), 0);
  ctx->TryCancel();
}

TEST_F(EtcdApiServerTest, RangeAnswersAndWatchesPerStreamAreBounded) {
  Stop();
  EtcdApiOptions opts;
  opts.max_range_keys = 3;
  opts.max_watches_per_stream = 2;
  Start(opts);
  for (const char* k : {"a", "b", "c", "d", "e"}) Put(k, "v");
  // No limit asked: the first max_range_keys keys, more=true, the full count (etcd's paging).
  etcdserverpb::RangeResponse all = Get("a", "z");
  EXPECT_EQ(all.kvs_size(), 3);
  EXPECT_TRUE(all.more());
  EXPECT_EQ(all.count(), 5);
  // A smaller limit is the client's; a larger one is cut to the bound.
  RangeRequest req;
  req.set_key("a");
  req.set_range_end("z");
  req.set_limit(2);
  etcdserverpb::RangeResponse two;
  ASSERT_TRUE(Range(req, &two).ok());
  EXPECT_EQ(two.kvs_size(), 2);
  EXPECT_TRUE(two.more());
  req.set_limit(100);
  req.set_sort_order(RangeRequest::DESCEND);  // sorting reads the whole range, then cuts
  etcdserverpb::RangeResponse sorted;
  // Five keys to sort are over the bound: refused, not read whole.
  grpc::Status refused = Range(req, &sorted);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_NE(refused.error_message().find("--max-range-keys"), std::string::npos) << refused.error_message();
  req.set_range_end("d");
  req.set_limit(2);
  ASSERT_TRUE(Range(req, &sorted).ok());
  ASSERT_EQ(sorted.kvs_size(), 2);
  EXPECT_EQ(sorted.kvs(0).key(), "c");
  EXPECT_EQ(sorted.kvs(1).key(), "b");
  EXPECT_TRUE(sorted.more());
  EXPECT_EQ(sorted.count(), 3);
  // In a transaction too, before anything in it runs.
  etcdserverpb::TxnRequest txn;
  auto* sorted_op = txn.add_success()->mutable_request_range();
  sorted_op->set_key("a");
  sorted_op->set_range_end("z");
  sorted_op->set_sort_target(RangeRequest::MOD);
  auto* put = txn.add_success()->mutable_request_put();
  put->set_key("f");
  put->set_value("v");
  etcdserverpb::TxnResponse txn_resp;
  refused = kv_->Txn(Ctx().get(), txn, &txn_resp);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_EQ(Get("f", "").kvs_size(), 0) << "the refused transaction's put did not run";
  // Paging on from the last key reaches the rest.
  etcdserverpb::RangeResponse rest = Get("c\x01", "z");
  EXPECT_EQ(rest.kvs_size(), 2);
  EXPECT_FALSE(rest.more());

  auto ctx = std::make_unique<grpc::ClientContext>();
  auto stream = watch_->Watch(ctx.get());
  WatchReader reader(stream.get());
  for (const char* k : {"a", "b", "c"}) ASSERT_TRUE(stream->Write(Create(k)));
  for (int i = 0; i < 2; ++i) {
    auto r = reader.Next();
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->created());
    EXPECT_FALSE(r->canceled());
  }
  auto third = reader.Next();
  ASSERT_TRUE(third);
  EXPECT_TRUE(third->canceled());
  EXPECT_EQ(third->watch_id(), -1);
  EXPECT_NE(third->cancel_reason().find("--max-watches-per-stream"), std::string::npos) << third->cancel_reason();
  ctx->TryCancel();
}

TEST_F(EtcdApiServerTest, ProgressNotifyOnlyWhenIdle) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  auto stream = watch_->Watch(ctx.get());
  WatchReader reader(stream.get());
  auto create = Create("p");
  create.mutable_create_request()->set_progress_notify(true);
  ASSERT_TRUE(stream->Write(create));
  ASSERT_TRUE(reader.Next());
  ASSERT_TRUE(stream->Write(Create("q")));  // no progress_notify
  ASSERT_TRUE(reader.Next());

  api_->ProgressTick();
  auto p = reader.Next();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->watch_id(), 0);
  EXPECT_EQ(p->events_size(), 0);
  EXPECT_FALSE(reader.Next(absl::Milliseconds(300)));  // only the watch that asked

  Put("p", "1");
  ASSERT_TRUE(reader.Next());
  api_->ProgressTick();  // events since the last tick: skipped, as etcd
  EXPECT_FALSE(reader.Next(absl::Milliseconds(300)));
  api_->ProgressTick();
  p = reader.Next();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->header().revision(), 2);
  ctx->TryCancel();
}

TEST_F(EtcdApiServerTest, LeasesGrantKeepAliveTimeToLiveRevoke) {
  etcdserverpb::LeaseGrantRequest g;
  g.set_ttl(1);
  etcdserverpb::LeaseGrantResponse gr;
  ASSERT_TRUE(lease_->LeaseGrant(Ctx().get(), g, &gr).ok());
  EXPECT_EQ(gr.ttl(), 2);  // etcd's minimum
  EXPECT_NE(gr.id(), 0);
  g.set_ttl(9000000001);
  grpc::Status s = lease_->LeaseGrant(Ctx().get(), g, &gr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(s.error_message(), "etcdserver: too large lease TTL");
  g.set_ttl(50);
  g.set_id(4242);
  ASSERT_TRUE(lease_->LeaseGrant(Ctx().get(), g, &gr).ok());
  EXPECT_EQ(gr.id(), 4242);
  s = lease_->LeaseGrant(Ctx().get(), g, &gr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(), "etcdserver: lease already exists");

  Put("l/1", "a", 4242);
  Put("l/2", "b", 4242);
  etcdserverpb::LeaseTimeToLiveRequest t;
  t.set_id(4242);
  t.set_keys(true);
  etcdserverpb::LeaseTimeToLiveResponse tr;
  ASSERT_TRUE(lease_->LeaseTimeToLive(Ctx().get(), t, &tr).ok());
  EXPECT_EQ(tr.grantedttl(), 50);
  EXPECT_GT(tr.ttl(), 45);
  EXPECT_EQ(tr.keys_size(), 2);

  etcdserverpb::LeaseLeasesResponse lr;
  ASSERT_TRUE(lease_->LeaseLeases(Ctx().get(), etcdserverpb::LeaseLeasesRequest(), &lr).ok());
  EXPECT_EQ(lr.leases_size(), 2);

  {
    grpc::ClientContext ctx;
    auto stream = lease_->LeaseKeepAlive(&ctx);
    etcdserverpb::LeaseKeepAliveRequest k;
    etcdserverpb::LeaseKeepAliveResponse kr;
    k.set_id(4242);
    ASSERT_TRUE(stream->Write(k));
    ASSERT_TRUE(stream->Read(&kr));
    EXPECT_EQ(kr.id(), 4242);
    EXPECT_EQ(kr.ttl(), 50);
    k.set_id(999);
    ASSERT_TRUE(stream->Write(k));
    ASSERT_TRUE(stream->Read(&kr));
    EXPECT_EQ(kr.ttl(), 0);  // unknown: TTL 0, no error
    stream->WritesDone();
    EXPECT_TRUE(stream->Finish().ok());
  }

  etcdserverpb::LeaseRevokeRequest rv;
  rv.set_id(4242);
  etcdserverpb::LeaseRevokeResponse rvr;
  ASSERT_TRUE(lease_->LeaseRevoke(Ctx().get(), rv, &rvr).ok());
  EXPECT_EQ(rvr.header().revision(), 4);  // both keys deleted in one revision
  EXPECT_EQ(Get("l/", "l0").count(), 0);
  s = lease_->LeaseRevoke(Ctx().get(), rv, &rvr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "etcdserver: requested lease not found");
  tr.Clear();
  ASSERT_TRUE(lease_->LeaseTimeToLive(Ctx().get(), t, &tr).ok());
  EXPECT_EQ(tr.ttl(), -1);
}

TEST_F(EtcdApiServerTest, StatusAndMemberList) {
  Put("a", "1");
  etcdserverpb::StatusResponse st;
  ASSERT_TRUE(maintenance_->Status(Ctx().get(), etcdserverpb::StatusRequest(), &st).ok());
  EXPECT_EQ(st.version(), "3.4.0");
  EXPECT_EQ(st.leader(), api_->member_id());
  EXPECT_EQ(st.header().revision(), 2);
  EXPECT_EQ(st.raftindex(), 2u);
  etcdserverpb::MemberListResponse ml;
  ASSERT_TRUE(cluster_->MemberList(Ctx().get(), etcdserverpb::MemberListRequest(), &ml).ok());
  ASSERT_EQ(ml.members_size(), 1);
  EXPECT_EQ(ml.members(0).id(), api_->member_id());
  EXPECT_EQ(ml.members(0).name(), "test");
}

TEST_F(EtcdApiServerTest, ShutdownEndsStreamsWithUnavailable) {
  grpc::ClientContext wctx;
  auto watch = watch_->Watch(&wctx);
  ASSERT_TRUE(watch->Write(Create("a")));
  etcdserverpb::WatchResponse wr;
  ASSERT_TRUE(watch->Read(&wr));
  grpc::ClientContext kctx;
  auto keepalive = lease_->LeaseKeepAlive(&kctx);
  etcdserverpb::LeaseKeepAliveRequest k;
  k.set_id(1);
  etcdserverpb::LeaseKeepAliveResponse kr;
  ASSERT_TRUE(keepalive->Write(k));
  ASSERT_TRUE(keepalive->Read(&kr));

  api_->Shutdown();
  EXPECT_FALSE(watch->Read(&wr));
  grpc::Status s = watch->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(s.error_message(), "etcdserver: server stopped");
  EXPECT_FALSE(keepalive->Read(&kr));
  s = keepalive->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
}

class ValidatedTest : public EtcdApiServerTest {
 protected:
  void SetUp() override {
    EtcdApiOptions opts;
    opts.validate_put = [](const std::string& key, const std::string& value) {
      if (key.rfind("guarded/", 0) == 0 && value != "good") return absl::InvalidArgumentError("bad value for " + key);
      return absl::OkStatus();
    };
    Start(opts);
  }
};

TEST_F(ValidatedTest, RefusedPutsAndTxnsStoreNothing) {
  Put("guarded/a", "good");
  etcdserverpb::PutRequest p;
  p.set_key("guarded/a");
  p.set_value("bad");
  etcdserverpb::PutResponse pr;
  grpc::Status s = kv_->Put(Ctx().get(), p, &pr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "bad value for guarded/a");

  // A bad put in the branch that would not even run still refuses the txn.
  etcdserverpb::TxnRequest txn;
  auto* put = txn.add_success()->mutable_request_put();
  put->set_key("free");
  put->set_value("x");
  put = txn.add_failure()->mutable_request_put();
  put->set_key("guarded/b");
  put->set_value("bad");
  etcdserverpb::TxnResponse tr;
  s = kv_->Txn(Ctx().get(), txn, &tr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Get("free").count(), 0);
  EXPECT_EQ(Get("guarded/a").kvs(0).value(), "good");
  EXPECT_EQ(Get("guarded/a").header().revision(), 2);
}

}  // namespace
}  // namespace weft::controller::etcd_api
