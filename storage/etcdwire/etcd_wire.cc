#include "storage/etcdwire/etcd_wire.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace weft::storage::etcdwire {

void ToProto(const KeyValue& kv, mvccpb::KeyValue* out) {
  out->set_key(kv.key);
  out->set_value(kv.value);
  out->set_create_revision(kv.create_revision);
  out->set_mod_revision(kv.mod_revision);
  out->set_version(kv.version);
  out->set_lease(kv.lease);
}

KeyValue FromProto(const mvccpb::KeyValue& kv) {
  KeyValue out;
  out.key = kv.key();
  out.value = kv.value();
  out.create_revision = kv.create_revision();
  out.mod_revision = kv.mod_revision();
  out.version = kv.version();
  out.lease = kv.lease();
  return out;
}

void ToProto(const Event& ev, mvccpb::Event* out) {
  out->set_type(ev.type == Event::Type::kPut ? mvccpb::Event::PUT : mvccpb::Event::DELETE);
  ToProto(ev.kv, out->mutable_kv());
  if (ev.prev_kv) ToProto(*ev.prev_kv, out->mutable_prev_kv());
}

Event FromProto(const mvccpb::Event& ev) {
  Event out;
  out.type = ev.type() == mvccpb::Event::DELETE ? Event::Type::kDelete : Event::Type::kPut;
  out.kv = FromProto(ev.kv());
  if (ev.has_prev_kv()) out.prev_kv = FromProto(ev.prev_kv());
  return out;
}

etcdserverpb::RangeRequest ToProto(const RangeRequest& req) {
  etcdserverpb::RangeRequest out;
  out.set_key(req.key);
  out.set_range_end(req.range_end);
  out.set_revision(req.revision);
  out.set_limit(req.limit);
  out.set_keys_only(req.keys_only);
  out.set_count_only(req.count_only);
  return out;
}

RangeRequest FromProto(const etcdserverpb::RangeRequest& req) {
  RangeRequest out;
  out.key = req.key();
  out.range_end = req.range_end();
  out.revision = req.revision();
  out.limit = req.limit();
  out.keys_only = req.keys_only();
  out.count_only = req.count_only();
  return out;
}

etcdserverpb::PutRequest ToProto(const PutRequest& req) {
  etcdserverpb::PutRequest out;
  out.set_key(req.key);
  out.set_value(req.value);
  out.set_lease(req.lease);
  out.set_prev_kv(req.prev_kv);
  return out;
}

PutRequest FromProto(const etcdserverpb::PutRequest& req) {
  PutRequest out;
  out.key = req.key();
  out.value = req.value();
  out.lease = req.lease();
  out.prev_kv = req.prev_kv();
  return out;
}

etcdserverpb::DeleteRangeRequest ToProto(const DeleteRangeRequest& req) {
  etcdserverpb::DeleteRangeRequest out;
  out.set_key(req.key);
  out.set_range_end(req.range_end);
  out.set_prev_kv(req.prev_kv);
  return out;
}

DeleteRangeRequest FromProto(const etcdserverpb::DeleteRangeRequest& req) {
  DeleteRangeRequest out;
  out.key = req.key();
  out.range_end = req.range_end();
  out.prev_kv = req.prev_kv();
  return out;
}

etcdserverpb::Compare ToProto(const Compare& c) {
  etcdserverpb::Compare out;
  out.set_key(c.key);
  out.set_range_end(c.range_end);
  switch (c.result) {
    case Compare::Result::kEqual: out.set_result(etcdserverpb::Compare::EQUAL); break;
    case Compare::Result::kNotEqual: out.set_result(etcdserverpb::Compare::NOT_EQUAL); break;
    case Compare::Result::kGreater: out.set_result(etcdserverpb::Compare::GREATER); break;
    case Compare::Result::kLess: out.set_result(etcdserverpb::Compare::LESS); break;
  }
  switch (c.target) {
    case Compare::Target::kVersion:
      out.set_target(etcdserverpb::Compare::VERSION);
      out.set_version(c.operand);
      break;
    case Compare::Target::kCreateRevision:
      out.set_target(etcdserverpb::Compare::CREATE);
      out.set_create_revision(c.operand);
      break;
    case Compare::Target::kModRevision:
      out.set_target(etcdserverpb::Compare::MOD);
      out.set_mod_revision(c.operand);
      break;
    case Compare::Target::kValue:
      out.set_target(etcdserverpb::Compare::VALUE);
      out.set_value(c.value);
      break;
    case Compare::Target::kLease:
      out.set_target(etcdserverpb::Compare::LEASE);
      out.set_lease(c.operand);
      break;
  }
  return out;
}

absl::StatusOr<Compare> FromProto(const etcdserverpb::Compare& c) {
  Compare out;
  out.key = c.key();
  out.range_end = c.range_end();
  switch (c.result()) {
    case etcdserverpb::Compare::EQUAL: out.result = Compare::Result::kEqual; break;
    case etcdserverpb::Compare::NOT_EQUAL: out.result = Compare::Result::kNotEqual; break;
    case etcdserverpb::Compare::GREATER: out.result = Compare::Result::kGreater; break;
    case etcdserverpb::Compare::LESS: out.result = Compare::Result::kLess; break;
    default: return absl::InvalidArgumentError(absl::StrCat("unknown compare result ", c.result()));
  }
  // As etcd, the operand is read from the oneof whatever case is set (an unset
  // oneof reads as 0 / "").
  switch (c.target()) {
    case etcdserverpb::Compare::VERSION:
      out.target = Compare::Target::kVersion;
      out.operand = c.version();
      break;
    case etcdserverpb::Compare::CREATE:
      out.target = Compare::Target::kCreateRevision;
      out.operand = c.create_revision();
      break;
    case etcdserverpb::Compare::MOD:
      out.target = Compare::Target::kModRevision;
      out.operand = c.mod_revision();
      break;
    case etcdserverpb::Compare::VALUE:
      out.target = Compare::Target::kValue;
      out.value = c.value();
      break;
    case etcdserverpb::Compare::LEASE:
      out.target = Compare::Target::kLease;
      out.operand = c.lease();
      break;
    default: return absl::InvalidArgumentError(absl::StrCat("unknown compare target ", c.target()));
  }
  return out;
}

namespace {

etcdserverpb::RequestOp OpToProto(const RequestOp& op) {
  etcdserverpb::RequestOp out;
  switch (op.type) {
    case RequestOp::Type::kRange: *out.mutable_request_range() = ToProto(op.range); break;
    case RequestOp::Type::kPut: *out.mutable_request_put() = ToProto(op.put); break;
    case RequestOp::Type::kDeleteRange: *out.mutable_request_delete_range() = ToProto(op.delete_range); break;
  }
  return out;
}

absl::StatusOr<RequestOp> OpFromProto(const etcdserverpb::RequestOp& op) {
  RequestOp out;
  switch (op.request_case()) {
    case etcdserverpb::RequestOp::kRequestRange:
      out.type = RequestOp::Type::kRange;
      out.range = FromProto(op.request_range());
      return out;
    case etcdserverpb::RequestOp::kRequestPut:
      if (op.request_put().ignore_value() || op.request_put().ignore_lease()) {
        return absl::UnimplementedError("ignore_value and ignore_lease are not supported inside a txn");
      }
      out.type = RequestOp::Type::kPut;
      out.put = FromProto(op.request_put());
      return out;
    case etcdserverpb::RequestOp::kRequestDeleteRange:
      out.type = RequestOp::Type::kDeleteRange;
      out.delete_range = FromProto(op.request_delete_range());
      return out;
    case etcdserverpb::RequestOp::kRequestTxn:
      return absl::UnimplementedError("nested transactions are not supported");
    case etcdserverpb::RequestOp::REQUEST_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("empty request op in txn");
}

}  // namespace

etcdserverpb::TxnRequest ToProto(const TxnRequest& req) {
  etcdserverpb::TxnRequest out;
  for (const Compare& c : req.compares) *out.add_compare() = ToProto(c);
  for (const RequestOp& op : req.success) *out.add_success() = OpToProto(op);
  for (const RequestOp& op : req.failure) *out.add_failure() = OpToProto(op);
  return out;
}

absl::StatusOr<TxnRequest> FromProto(const etcdserverpb::TxnRequest& req) {
  TxnRequest out;
  for (const auto& c : req.compare()) {
    ASSIGN_OR_RETURN(Compare cmp, FromProto(c));
    out.compares.push_back(std::move(cmp));
  }
  for (const auto& op : req.success()) {
    ASSIGN_OR_RETURN(RequestOp o, OpFromProto(op));
    out.success.push_back(std::move(o));
  }
  for (const auto& op : req.failure()) {
    ASSIGN_OR_RETURN(RequestOp o, OpFromProto(op));
    out.failure.push_back(std::move(o));
  }
  return out;
}

RangeResponse FromProto(const etcdserverpb::RangeResponse& resp) {
  RangeResponse out;
  out.kvs.reserve(resp.kvs_size());
  for (const auto& kv : resp.kvs()) out.kvs.push_back(FromProto(kv));
  out.count = resp.count();
  out.more = resp.more();
  out.revision = resp.header().revision();
  return out;
}

PutResponse FromProto(const etcdserverpb::PutResponse& resp) {
  PutResponse out;
  out.revision = resp.header().revision();
  if (resp.has_prev_kv()) out.prev_kv = FromProto(resp.prev_kv());
  return out;
}

DeleteRangeResponse FromProto(const etcdserverpb::DeleteRangeResponse& resp) {
  DeleteRangeResponse out;
  out.revision = resp.header().revision();
  out.deleted = resp.deleted();
  for (const auto& kv : resp.prev_kvs()) out.prev_kvs.push_back(FromProto(kv));
  return out;
}

TxnResponse FromProto(const etcdserverpb::TxnResponse& resp) {
  TxnResponse out;
  out.succeeded = resp.succeeded();
  out.revision = resp.header().revision();
  for (const auto& r : resp.responses()) {
    ResponseOp op;
    switch (r.response_case()) {
      case etcdserverpb::ResponseOp::kResponseRange:
        op.type = RequestOp::Type::kRange;
        op.range = FromProto(r.response_range());
        break;
      case etcdserverpb::ResponseOp::kResponsePut:
        op.type = RequestOp::Type::kPut;
        op.put = FromProto(r.response_put());
        break;
      case etcdserverpb::ResponseOp::kResponseDeleteRange:
        op.type = RequestOp::Type::kDeleteRange;
        op.delete_range = FromProto(r.response_delete_range());
        break;
      default:
        break;
    }
    out.responses.push_back(std::move(op));
  }
  return out;
}

}  // namespace weft::storage::etcdwire
