#include "storage/etcdwire/etcd_wire.h"

#include "gtest/gtest.h"
#include "proto/etcd/kv.pb.h"
#include "proto/etcd/rpc.pb.h"
#include "storage/store.h"

namespace weft::storage::etcdwire {
namespace {

KeyValue Kv(const std::string& key, const std::string& value) {
  KeyValue kv;
  kv.key = key;
  kv.value = value;
  kv.create_revision = 7;
  kv.mod_revision = 9;
  kv.version = 3;
  kv.lease = 0x1234;
  return kv;
}

void ExpectSameKv(const KeyValue& a, const KeyValue& b) {
  EXPECT_EQ(a.key, b.key);
  EXPECT_EQ(a.value, b.value);
  EXPECT_EQ(a.create_revision, b.create_revision);
  EXPECT_EQ(a.mod_revision, b.mod_revision);
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.lease, b.lease);
}

TEST(EtcdWireTest, KeyValueAndEventRoundTrip) {
  KeyValue kv = Kv("/coreos.com/network/subnets/10.1.7.0-24", std::string("{\"PublicIP\":\"\0\"}", 16));
  mvccpb::KeyValue pb;
  ToProto(kv, &pb);
  EXPECT_EQ(pb.mod_revision(), 9);
  ExpectSameKv(FromProto(pb), kv);

  Event del;
  del.type = Event::Type::kDelete;
  del.kv = Kv("/k", "");
  del.prev_kv = Kv("/k", "old");
  mvccpb::Event epb;
  ToProto(del, &epb);
  EXPECT_EQ(epb.type(), mvccpb::Event::DELETE);
  Event back = FromProto(epb);
  EXPECT_EQ(back.type, Event::Type::kDelete);
  ASSERT_TRUE(back.prev_kv.has_value());
  EXPECT_EQ(back.prev_kv->value, "old");

  Event put;
  put.kv = Kv("/k", "v");
  mvccpb::Event put_pb;
  ToProto(put, &put_pb);
  Event put_back = FromProto(put_pb);
  EXPECT_EQ(put_back.type, Event::Type::kPut);
  EXPECT_FALSE(put_back.prev_kv.has_value()) << "no prev_kv on the wire must not read as one";
}

TEST(EtcdWireTest, TxnRoundTripKeepsEveryCompareTargetAndOp) {
  TxnRequest txn;
  const Compare::Target targets[] = {Compare::Target::kVersion, Compare::Target::kCreateRevision,
                                     Compare::Target::kModRevision, Compare::Target::kValue, Compare::Target::kLease};
  const Compare::Result results[] = {Compare::Result::kEqual, Compare::Result::kNotEqual, Compare::Result::kGreater,
                                     Compare::Result::kLess, Compare::Result::kEqual};
  for (int i = 0; i < 5; ++i) {
    Compare c;
    c.key = "/k" + std::to_string(i);
    c.range_end = i == 2 ? "/l" : "";
    c.target = targets[i];
    c.result = results[i];
    if (c.target == Compare::Target::kValue) {
      c.value = "v";
    } else {
      c.operand = 100 + i;
    }
    txn.compares.push_back(c);
  }
  RequestOp put;
  put.type = RequestOp::Type::kPut;
  put.put.key = "/a";
  put.put.value = "1";
  put.put.lease = 5;
  put.put.prev_kv = true;
  RequestOp range;
  range.type = RequestOp::Type::kRange;
  range.range.key = "/a";
  range.range.range_end = "/b";
  range.range.limit = 10;
  range.range.count_only = true;
  RequestOp del;
  del.type = RequestOp::Type::kDeleteRange;
  del.delete_range.key = "/c";
  del.delete_range.prev_kv = true;
  txn.success = {put, range};
  txn.failure = {del};

  absl::StatusOr<TxnRequest> back = FromProto(ToProto(txn));
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->compares.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(back->compares[i].key, txn.compares[i].key);
    EXPECT_EQ(back->compares[i].range_end, txn.compares[i].range_end);
    EXPECT_EQ(back->compares[i].target, txn.compares[i].target) << i;
    EXPECT_EQ(back->compares[i].result, txn.compares[i].result) << i;
    EXPECT_EQ(back->compares[i].operand, txn.compares[i].operand) << i;
    EXPECT_EQ(back->compares[i].value, txn.compares[i].value) << i;
  }
  ASSERT_EQ(back->success.size(), 2u);
  EXPECT_EQ(back->success[0].type, RequestOp::Type::kPut);
  EXPECT_EQ(back->success[0].put.value, "1");
  EXPECT_EQ(back->success[0].put.lease, 5);
  EXPECT_TRUE(back->success[0].put.prev_kv);
  EXPECT_EQ(back->success[1].type, RequestOp::Type::kRange);
  EXPECT_EQ(back->success[1].range.range_end, "/b");
  EXPECT_EQ(back->success[1].range.limit, 10);
  EXPECT_TRUE(back->success[1].range.count_only);
  ASSERT_EQ(back->failure.size(), 1u);
  EXPECT_EQ(back->failure[0].type, RequestOp::Type::kDeleteRange);
  EXPECT_EQ(back->failure[0].delete_range.key, "/c");
  EXPECT_TRUE(back->failure[0].delete_range.prev_kv);
}

// What a client may send that the store cannot express is refused with the
// code the etcd API answers with, never misread as something else.
TEST(EtcdWireTest, RefusesWhatTheStoreCannotExpress) {
  etcdserverpb::TxnRequest empty_op;
  empty_op.add_success();
  EXPECT_EQ(FromProto(empty_op).status().code(), absl::StatusCode::kInvalidArgument);

  etcdserverpb::TxnRequest nested;
  nested.add_failure()->mutable_request_txn();
  EXPECT_EQ(FromProto(nested).status().code(), absl::StatusCode::kUnimplemented);

  etcdserverpb::TxnRequest ignore_value;
  ignore_value.add_success()->mutable_request_put()->set_ignore_value(true);
  EXPECT_EQ(FromProto(ignore_value).status().code(), absl::StatusCode::kUnimplemented);

  etcdserverpb::Compare bad_result;
  bad_result.set_result(static_cast<etcdserverpb::Compare::CompareResult>(42));
  EXPECT_EQ(FromProto(bad_result).status().code(), absl::StatusCode::kInvalidArgument);

  etcdserverpb::Compare bad_target;
  bad_target.set_target(static_cast<etcdserverpb::Compare::CompareTarget>(42));
  EXPECT_EQ(FromProto(bad_target).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(EtcdWireTest, ResponsesTakeTheHeaderRevision) {
  etcdserverpb::TxnResponse resp;
  resp.set_succeeded(true);
  resp.mutable_header()->set_revision(42);
  auto* r = resp.add_responses()->mutable_response_range();
  r->mutable_header()->set_revision(41);
  ToProto(Kv("/a", "1"), r->add_kvs());
  r->set_count(1);
  auto* d = resp.add_responses()->mutable_response_delete_range();
  d->set_deleted(2);
  ToProto(Kv("/b", "2"), d->add_prev_kvs());
  TxnResponse out = FromProto(resp);
  EXPECT_TRUE(out.succeeded);
  EXPECT_EQ(out.revision, 42);
  ASSERT_EQ(out.responses.size(), 2u);
  EXPECT_EQ(out.responses[0].type, RequestOp::Type::kRange);
  EXPECT_EQ(out.responses[0].range.revision, 41);
  ASSERT_EQ(out.responses[0].range.kvs.size(), 1u);
  EXPECT_EQ(out.responses[0].range.kvs[0].key, "/a");
  EXPECT_EQ(out.responses[1].type, RequestOp::Type::kDeleteRange);
  EXPECT_EQ(out.responses[1].delete_range.deleted, 2);
  ASSERT_EQ(out.responses[1].delete_range.prev_kvs.size(), 1u);
  EXPECT_EQ(out.responses[1].delete_range.prev_kvs[0].value, "2");
}

}  // namespace
}  // namespace weft::storage::etcdwire
