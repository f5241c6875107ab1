// etcdserverpb.KV over the store, with etcd 3.4's checks, errors and headers.

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "controller/etcd_api/internal.h"
#include "storage/etcdwire/etcd_wire.h"

namespace weft::controller::etcd_api {
namespace {

namespace wire = storage::etcdwire;
using etcdserverpb::RangeRequest;

grpc::Status Invalid(const char* message) { return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message); }

// A validator's refusal, passed on as it is (code and message).
grpc::Status Refused(const absl::Status& s) { return ToGrpcStatus(s); }

// Sorting and revision filters need every key of the range before the limit.
bool NeedsWholeRange(const RangeRequest& r) {
  return r.sort_order() != RangeRequest::NONE || r.sort_target() != RangeRequest::KEY ||
         r.min_mod_revision() != 0 || r.max_mod_revision() != 0 || r.min_create_revision() != 0 ||
         r.max_create_revision() != 0;
}

// The limit an answer is cut at: the client's, and never above max_keys
// (EtcdApiOptions::max_range_keys): beyond it the answer says more=true.
int64_t EffectiveLimit(const RangeRequest& r, int64_t max_keys) {
  return r.limit() > 0 ? std::min<int64_t>(r.limit(), max_keys) : max_keys;
}

storage::RangeRequest StoreRange(const RangeRequest& r, int64_t max_keys) {
  storage::RangeRequest s = wire::FromProto(r);
  // A range that sorts or filters is read whole (CheckWholeRange has bounded
  // it); the limit only caps a range that grew since.
  s.limit = NeedsWholeRange(r) ? max_keys : EffectiveLimit(r, max_keys);
  return s;
}

// A range that sorts or filters by revision is read whole before its limit
// applies: one over max_keys keys is refused before anything runs, rather than
// read into memory (or answered sorted over only part of it).
grpc::Status CheckWholeRange(storage::Store* store, const RangeRequest& r, int64_t max_keys) {
  if (!NeedsWholeRange(r) || r.count_only()) return grpc::Status::OK;
  storage::RangeRequest count = wire::FromProto(r);
  count.count_only = true;
  count.limit = 0;
  absl::StatusOr<storage::RangeResponse> c = store->Range(count);
  if (!c.ok()) return ToEtcdStatus(c.status());
  if (c->count <= max_keys) return grpc::Status::OK;
  return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                      absl::StrCat("etcdserver: a sorted or revision-filtered range is read whole, and this one has ",
                                   c->count, " keys, over --max-range-keys (", max_keys,
                                   "): narrow it, or read it unsorted (in pages with limit)"));
}

// etcd's applierV3backend.Range after the read: revision filters, sort, limit.
void ShapeRange(const RangeRequest& r, int64_t max_keys, storage::RangeResponse in,
                etcdserverpb::RangeResponse* out) {
  std::vector<storage::KeyValue>& kvs = in.kvs;
  auto prune = [&kvs](auto drop) { kvs.erase(std::remove_if(kvs.begin(), kvs.end(), drop), kvs.end()); };
  if (r.max_mod_revision() != 0) prune([&](const auto& kv) { return kv.mod_revision > r.max_mod_revision(); });
  if (r.min_mod_revision() != 0) prune([&](const auto& kv) { return kv.mod_revision < r.min_mod_revision(); });
  if (r.max_create_revision() != 0) {
    prune([&](const auto& kv) { return kv.create_revision > r.max_create_revision(); });
  }
  if (r.min_create_revision() != 0) {
    prune([&](const auto& kv) { return kv.create_revision < r.min_create_revision(); });
  }
  RangeRequest::SortOrder order = r.sort_order();
  // The store answers in key order; etcd sorts ascending by default only for
  // another target.
  if (r.sort_target() != RangeRequest::KEY && order == RangeRequest::NONE) order = RangeRequest::ASCEND;
  if (order != RangeRequest::NONE) {
    auto less = [&r](const storage::KeyValue& a, const storage::KeyValue& b) {
      switch (r.sort_target()) {
        case RangeRequest::VERSION: return a.version < b.version;
        case RangeRequest::CREATE: return a.create_revision < b.create_revision;
        case RangeRequest::MOD: return a.mod_revision < b.mod_revision;
        case RangeRequest::VALUE: return a.value < b.value;
        default: return a.key < b.key;
      }
    };
    if (order == RangeRequest::DESCEND) {
      std::stable_sort(kvs.begin(), kvs.end(), [&](const auto& a, const auto& b) { return less(b, a); });
    } else {
      std::stable_sort(kvs.begin(), kvs.end(), less);
    }
  }
  bool more = in.more;
  if (const int64_t limit = EffectiveLimit(r, max_keys); kvs.size() > static_cast<size_t>(limit)) {
    kvs.resize(limit);
    more = true;
  }
  out->set_more(more);
  out->set_count(in.count);
  for (const auto& kv : kvs) wire::ToProto(kv, out->add_kvs());
}

// etcd's checkPutRequest / checkRequestOp.
grpc::Status CheckPut(const etcdserverpb::PutRequest& p) {
  if (p.key().empty()) return Invalid(wire::kErrEmptyKey);
  if (p.ignore_value() && !p.value().empty()) return Invalid("etcdserver: value is provided");
  if (p.ignore_lease() && p.lease() != 0) return Invalid("etcdserver: lease is provided");
  return grpc::Status::OK;
}

grpc::Status CheckOp(const etcdserverpb::RequestOp& op) {
  switch (op.request_case()) {
    case etcdserverpb::RequestOp::kRequestRange:
      if (op.request_range().key().empty()) return Invalid(wire::kErrEmptyKey);
      break;
    case etcdserverpb::RequestOp::kRequestPut:
      return CheckPut(op.request_put());
    case etcdserverpb::RequestOp::kRequestDeleteRange:
      if (op.request_delete_range().key().empty()) return Invalid(wire::kErrEmptyKey);
      break;
    default:
      break;  // nested or empty: refused by the conversion
  }
  return grpc::Status::OK;
}

// Every compare and every op of both branches (which one runs is only known
// inside the store).
grpc::Status CheckTxnAccess(const EtcdAccessCheck& check, const etcdserverpb::TxnRequest& req) {
  for (const auto& c : req.compare()) {
    if (grpc::Status s = check(EtcdOp::kRange, c.key(), c.range_end()); !s.ok()) return s;
  }
  for (const auto* ops : {&req.success(), &req.failure()}) {
    for (const auto& op : *ops) {
      grpc::Status s;
      if (op.has_request_range()) {
        s = check(EtcdOp::kRange, op.request_range().key(), op.request_range().range_end());
      } else if (op.has_request_put()) {
        s = check(EtcdOp::kPut, op.request_put().key(), "");
      } else if (op.has_request_delete_range()) {
        s = check(EtcdOp::kDeleteRange, op.request_delete_range().key(), op.request_delete_range().range_end());
      }
      if (!s.ok()) return s;
    }
  }
  return grpc::Status::OK;
}

class KvService final : public etcdserverpb::KV::Service {
 public:
  explicit KvService(EtcdApiServer::Core* core) : core_(core), store_(core->store()) {}

  grpc::Status Range(grpc::ServerContext* ctx, const RangeRequest* req, etcdserverpb::RangeResponse* resp) override {
    if (req->key().empty()) return Invalid(wire::kErrEmptyKey);
    if (grpc::Status s = core_->Access(*ctx)(EtcdOp::kRange, req->key(), req->range_end()); !s.ok()) return s;
    const int64_t max_keys = core_->options().max_range_keys;
    if (grpc::Status s = CheckWholeRange(store_, *req, max_keys); !s.ok()) return s;
    absl::StatusOr<storage::RangeResponse> r = store_->Range(StoreRange(*req, max_keys));
    if (!r.ok()) return ToEtcdStatus(r.status());
    const int64_t revision = r->revision;
    ShapeRange(*req, max_keys, *std::move(r), resp);
    core_->FillHeader(resp->mutable_header(), revision);
    return grpc::Status::OK;
  }

  grpc::Status Put(grpc::ServerContext* ctx, const etcdserverpb::PutRequest* req,
                   etcdserverpb::PutResponse* resp) override {
    if (grpc::Status s = CheckPut(*req); !s.ok()) return s;
    if (grpc::Status s = core_->Access(*ctx)(EtcdOp::kPut, req->key(), ""); !s.ok()) return s;
    std::optional<absl::MutexLock> serialized;
    if (core_->has_validator()) serialized.emplace(core_->validated_writes());
    if (req->ignore_value() || req->ignore_lease()) return PutKeepingOld(*req, resp);
    if (absl::Status v = core_->ValidatePut(req->key(), req->value()); !v.ok()) return Refused(v);
    absl::StatusOr<storage::PutResponse> r = store_->Put(wire::FromProto(*req));
    if (!r.ok()) return ToEtcdStatus(r.status());
    core_->FillHeader(resp->mutable_header(), r->revision);
    if (r->prev_kv) wire::ToProto(*r->prev_kv, resp->mutable_prev_kv());
    return grpc::Status::OK;
  }

  grpc::Status DeleteRange(grpc::ServerContext* ctx, const etcdserverpb::DeleteRangeRequest* req,
                           etcdserverpb::DeleteRangeResponse* resp) override {
    if (req->key().empty()) return Invalid(wire::kErrEmptyKey);
    if (grpc::Status s = core_->Access(*ctx)(EtcdOp::kDeleteRange, req->key(), req->range_end()); !s.ok()) {
      return s;
    }
    absl::StatusOr<storage::DeleteRangeResponse> r = store_->DeleteRange(wire::FromProto(*req));
    if (!r.ok()) return ToEtcdStatus(r.status());
    core_->FillHeader(resp->mutable_header(), r->revision);
    resp->set_deleted(r->deleted);
    for (const auto& kv : r->prev_kvs) wire::ToProto(kv, resp->add_prev_kvs());
    return grpc::Status::OK;
  }

  grpc::Status Txn(grpc::ServerContext* ctx, const etcdserverpb::TxnRequest* req,
                   etcdserverpb::TxnResponse* resp) override {
    const int max_ops = core_->options().max_txn_ops;
    if (req->compare_size() > max_ops || req->success_size() > max_ops || req->failure_size() > max_ops) {
      return Invalid(wire::kErrTooManyOps);
    }
    for (const auto& c : req->compare()) {
      if (c.key().empty()) return Invalid(wire::kErrEmptyKey);
    }
    bool has_put = false;
    for (const auto* ops : {&req->success(), &req->failure()}) {
      for (const auto& op : *ops) {
        if (grpc::Status s = CheckOp(op); !s.ok()) return s;
        has_put |= op.has_request_put();
      }
    }
    if (grpc::Status s = CheckTxnAccess(core_->Access(*ctx), *req); !s.ok()) return s;
    absl::StatusOr<storage::TxnRequest> txn = wire::FromProto(*req);
    if (!txn.ok()) return ToEtcdStatus(txn.status());
    // Ranges that sort or filter read the whole range; ShapeRange cuts after.
    auto adjust = [max_keys = core_->options().max_range_keys](const auto& from, std::vector<storage::RequestOp>* to) {
      for (int i = 0; i < from.size(); ++i) {
        if (from[i].has_request_range()) (*to)[i].range = StoreRange(from[i].request_range(), max_keys);
      }
    };
    adjust(req->success(), &txn->success);
    adjust(req->failure(), &txn->failure);
    for (const auto* ops : {&req->success(), &req->failure()}) {
      for (const auto& op : *ops) {
        if (!op.has_request_range()) continue;
        if (grpc::Status s = CheckWholeRange(store_, op.request_range(), core_->options().max_range_keys); !s.ok()) {
          return s;
        }
      }
    }

    std::optional<absl::MutexLock> serialized;
    if (has_put && core_->has_validator()) {
      serialized.emplace(core_->validated_writes());
      // Both branches: which one runs is only known inside the store.
      for (const auto* ops : {&txn->success, &txn->failure}) {
        for (const auto& op : *ops) {
          if (op.type != storage::RequestOp::Type::kPut) continue;
          if (absl::Status v = core_->ValidatePut(op.put.key, op.put.value); !v.ok()) return Refused(v);
        }
      }
    }
    absl::StatusOr<storage::TxnResponse> r = store_->Txn(*txn);
    if (!r.ok()) return ToEtcdStatus(r.status());
    core_->FillHeader(resp->mutable_header(), r->revision);
    resp->set_succeeded(r->succeeded);
    FillTxnResponses(r->succeeded ? req->success() : req->failure(), *r, resp);
    return grpc::Status::OK;
  }

  grpc::Status Compact(grpc::ServerContext* ctx, const etcdserverpb::CompactionRequest* req,
                       etcdserverpb::CompactionResponse* resp) override {
    if (grpc::Status s = core_->Access(*ctx)(EtcdOp::kCompact, "", ""); !s.ok()) return s;
    if (req->revision() > store_->CurrentRevision()) {
      return grpc::Status(grpc::StatusCode::OUT_OF_RANGE, wire::kErrFutureRev);
    }
    if (absl::Status s = store_->Compact(req->revision()); !s.ok()) return ToEtcdStatus(s);
    core_->FillHeader(resp->mutable_header());
    return grpc::Status::OK;
  }

 private:
  // ignore_value / ignore_lease: read the key, then write it back with the old
  // value or lease if nothing changed it meanwhile (retried otherwise).
  grpc::Status PutKeepingOld(const etcdserverpb::PutRequest& req, etcdserverpb::PutResponse* resp) {
    for (int attempt = 0; attempt < 100; ++attempt) {
      storage::RangeRequest get;
      get.key = req.key();
      absl::StatusOr<storage::RangeResponse> cur = store_->Range(get);
      if (!cur.ok()) return ToEtcdStatus(cur.status());
      if (cur->kvs.empty()) return Invalid(wire::kErrKeyNotFound);
      const storage::KeyValue& old = cur->kvs[0];
      storage::RequestOp put;
      put.type = storage::RequestOp::Type::kPut;
      put.put.key = req.key();
      put.put.value = req.ignore_value() ? old.value : req.value();
      put.put.lease = req.ignore_lease() ? old.lease : req.lease();
      put.put.prev_kv = req.prev_kv();
      if (absl::Status v = core_->ValidatePut(put.put.key, put.put.value); !v.ok()) return Refused(v);
      storage::TxnRequest txn;
      storage::Compare unchanged;
      unchanged.key = req.key();
      unchanged.target = storage::Compare::Target::kModRevision;
      unchanged.operand = old.mod_revision;
      txn.compares.push_back(unchanged);
      txn.success.push_back(put);
      absl::StatusOr<storage::TxnResponse> r = store_->Txn(txn);
      if (!r.ok()) return ToEtcdStatus(r.status());
      if (!r->succeeded) continue;
      core_->FillHeader(resp->mutable_header(), r->revision);
      if (r->responses[0].put.prev_kv) wire::ToProto(*r->responses[0].put.prev_kv, resp->mutable_prev_kv());
      return grpc::Status::OK;
    }
    return grpc::Status(grpc::StatusCode::ABORTED, "etcdserver: key kept changing during put");
  }

  // etcd's per-op headers inside a txn carry only a revision: the revision
  // before the txn until an op of it writes, the txn's revision after.
  void FillTxnResponses(const google::protobuf::RepeatedPtrField<etcdserverpb::RequestOp>& ops,
                               const storage::TxnResponse& r, etcdserverpb::TxnResponse* resp) {
    bool writes = false;
    for (const auto& op : r.responses) {
      if (op.type == storage::RequestOp::Type::kPut ||
          (op.type == storage::RequestOp::Type::kDeleteRange && op.delete_range.deleted > 0)) {
        writes = true;
      }
    }
    const int64_t before = writes ? r.revision - 1 : r.revision;
    bool changed = false;
    for (size_t i = 0; i < r.responses.size(); ++i) {
      const storage::ResponseOp& op = r.responses[i];
      etcdserverpb::ResponseOp* out = resp->add_responses();
      switch (op.type) {
        case storage::RequestOp::Type::kRange: {
          etcdserverpb::RangeResponse* rr = out->mutable_response_range();
          ShapeRange(ops[i].request_range(), core_->options().max_range_keys, op.range, rr);
          rr->mutable_header()->set_revision(changed ? before + 1 : before);
          break;
        }
        case storage::RequestOp::Type::kPut: {
          changed = true;
          etcdserverpb::PutResponse* pr = out->mutable_response_put();
          pr->mutable_header()->set_revision(before + 1);
          if (op.put.prev_kv) wire::ToProto(*op.put.prev_kv, pr->mutable_prev_kv());
          break;
        }
        case storage::RequestOp::Type::kDeleteRange: {
          if (op.delete_range.deleted > 0) changed = true;
          etcdserverpb::DeleteRangeResponse* dr = out->mutable_response_delete_range();
          dr->mutable_header()->set_revision(changed ? before + 1 : before);
          dr->set_deleted(op.delete_range.deleted);
          for (const auto& kv : op.delete_range.prev_kvs) wire::ToProto(kv, dr->add_prev_kvs());
          break;
        }
      }
    }
  }

  EtcdApiServer::Core* const core_;
  storage::Store* const store_;
};

}  // namespace

std::unique_ptr<grpc::Service> NewKvService(EtcdApiServer::Core* core) { return std::make_unique<KvService>(core); }

}  // namespace weft::controller::etcd_api
