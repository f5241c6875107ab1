#pragma once
// Conversions between the store's types (storage/store.h) and etcd v3's wire
// messages (proto/etcd), and etcd's error messages: shared by the etcd store (a
// client of real etcd) and the controller's etcd-compatible server.

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/etcd/kv.pb.h"
#include "proto/etcd/rpc.pb.h"
#include "storage/store.h"

namespace weft::storage::etcdwire {

// The messages etcd 3.4 answers with (etcdserver/api/v3rpc/rpctypes), which
// clients match on. Codes: see ToGrpcCode's callers.
inline constexpr char kErrEmptyKey[] = "etcdserver: key is not provided";            // INVALID_ARGUMENT
inline constexpr char kErrKeyNotFound[] = "etcdserver: key not found";               // INVALID_ARGUMENT
inline constexpr char kErrTooManyOps[] = "etcdserver: too many operations in txn request";  // INVALID_ARGUMENT
inline constexpr char kErrDuplicateKey[] = "etcdserver: duplicate key given in txn request";  // INVALID_ARGUMENT
inline constexpr char kErrCompacted[] = "etcdserver: mvcc: required revision has been compacted";  // OUT_OF_RANGE
inline constexpr char kErrFutureRev[] = "etcdserver: mvcc: required revision is a future revision";  // OUT_OF_RANGE
inline constexpr char kErrLeaseNotFound[] = "etcdserver: requested lease not found";  // NOT_FOUND
inline constexpr char kErrLeaseExist[] = "etcdserver: lease already exists";          // FAILED_PRECONDITION
inline constexpr char kErrLeaseTtlTooLarge[] = "etcdserver: too large lease TTL";     // OUT_OF_RANGE
inline constexpr char kErrNoLeader[] = "etcdserver: no leader";                       // UNAVAILABLE
// etcd's largest lease TTL (lease.MaxLeaseTTL).
inline constexpr int64_t kMaxLeaseTtlSeconds = 9000000000;

void ToProto(const KeyValue& kv, mvccpb::KeyValue* out);
KeyValue FromProto(const mvccpb::KeyValue& kv);

void ToProto(const Event& ev, mvccpb::Event* out);
Event FromProto(const mvccpb::Event& ev);

// Only the fields the store models (key, range, revision, limit, keys/count
// only); sorting and revision filters are the caller's business.
etcdserverpb::RangeRequest ToProto(const RangeRequest& req);
RangeRequest FromProto(const etcdserverpb::RangeRequest& req);
etcdserverpb::PutRequest ToProto(const PutRequest& req);
PutRequest FromProto(const etcdserverpb::PutRequest& req);
etcdserverpb::DeleteRangeRequest ToProto(const DeleteRangeRequest& req);
DeleteRangeRequest FromProto(const etcdserverpb::DeleteRangeRequest& req);

etcdserverpb::Compare ToProto(const Compare& c);
// INVALID_ARGUMENT for an unknown target or result.
absl::StatusOr<Compare> FromProto(const etcdserverpb::Compare& c);

etcdserverpb::TxnRequest ToProto(const TxnRequest& req);
// INVALID_ARGUMENT for an empty RequestOp; UNIMPLEMENTED for what the store
// cannot express: nested transactions, puts with ignore_value / ignore_lease.
absl::StatusOr<TxnRequest> FromProto(const etcdserverpb::TxnRequest& req);

RangeResponse FromProto(const etcdserverpb::RangeResponse& resp);
PutResponse FromProto(const etcdserverpb::PutResponse& resp);
DeleteRangeResponse FromProto(const etcdserverpb::DeleteRangeResponse& resp);
// The outer header's revision becomes the response revision; ops keep theirs.
TxnResponse FromProto(const etcdserverpb::TxnResponse& resp);

}  // namespace weft::storage::etcdwire
