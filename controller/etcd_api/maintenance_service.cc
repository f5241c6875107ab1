// etcd's Maintenance service over a storage::Store: Status (with the store's
// real size and faults), Alarm (the store's NOSPACE alarm), Defragment and
// Snapshot (the store's own consistent snapshot, streamed as etcd streams its
// bolt file: data chunks, then a last message carrying the SHA-256 of them all).

#include <algorithm>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "controller/etcd_api/internal.h"
#include "storage/rocksdb/snapshot_archive.h"

namespace weft::controller::etcd_api {

namespace {

// A store that cannot write because its disk is full is etcd's NOSPACE too.
bool NoSpace(const storage::StoreHealth& h) {
  if (h.space_alarm) return true;
  return !h.writable && (absl::StrContains(h.reason, "No space") || absl::StrContains(h.reason, "NoSpace") ||
                         absl::StrContains(h.reason, "no space"));
}

class MaintenanceService final : public etcdserverpb::Maintenance::Service {
 public:
  explicit MaintenanceService(EtcdApiServer::Core* core) : core_(core) {}

  grpc::Status Status(grpc::ServerContext* ctx, const etcdserverpb::StatusRequest*,
                      etcdserverpb::StatusResponse* resp) override {
    if (grpc::Status s = core_->Access(*ctx)(EtcdOp::kStatus, "", ""); !s.ok()) return s;
    const int64_t revision = core_->store()->CurrentRevision();
    core_->FillHeader(resp->mutable_header(), revision);
    const EtcdApiOptions& o = core_->options();
    resp->set_version(o.version);
    const storage::StoreHealth health = core_->store()->Health();
    int64_t size = health.db_size_bytes;
    if (size < 0) size = o.db_size ? o.db_size() : 0;
    resp->set_dbsize(size);
    resp->set_dbsizeinuse(size);
    // One member, always the leader; the store revision stands in for the raft
    // index (both only grow, with every write).
    resp->set_leader(core_->member_id());
    resp->set_raftindex(static_cast<uint64_t>(revision));
    resp->set_raftappliedindex(static_cast<uint64_t>(revision));
    resp->set_raftterm(o.raft_term);
    if (NoSpace(health)) resp->add_errors(absl::StrCat("memberID:", core_->member_id(), " alarm:NOSPACE "));
    if (!health.writable) resp->add_errors(health.reason);
    return grpc::Status::OK;
  }

  grpc::Status Alarm(grpc::ServerContext* ctx, const etcdserverpb::AlarmRequest* req,
                     etcdserverpb::AlarmResponse* resp) override {
    // Listing alarms is a read (as Status); raising or clearing one is an operator's.
    const EtcdOp op = req->action() == etcdserverpb::AlarmRequest::GET ? EtcdOp::kStatus : EtcdOp::kMaintenance;
    if (grpc::Status s = core_->Access(*ctx)(op, "", ""); !s.ok()) return s;
    storage::Store* store = core_->store();
    const bool mine = req->memberid() == 0 || req->memberid() == core_->member_id();
    switch (req->action()) {
      case etcdserverpb::AlarmRequest::ACTIVATE:
        if (req->alarm() != etcdserverpb::NOSPACE) {
          return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "only the NOSPACE alarm can be raised");
        }
        if (mine) {
          if (absl::Status s = store->RaiseSpaceAlarm(); !s.ok()) return ToEtcdStatus(s);
        }
        break;
      case etcdserverpb::AlarmRequest::DEACTIVATE:
        if (mine && (req->alarm() == etcdserverpb::NOSPACE || req->alarm() == etcdserverpb::NONE)) {
          if (absl::Status s = store->DisarmSpaceAlarm(); !s.ok()) return ToEtcdStatus(s);
        }
        break;
      default:
        break;
    }
    core_->FillHeader(resp->mutable_header());
    if (NoSpace(store->Health())) {
      etcdserverpb::AlarmMember* m = resp->add_alarms();
      m->set_memberid(core_->member_id());
      m->set_alarm(etcdserverpb::NOSPACE);
    }
    return grpc::Status::OK;
  }

  grpc::Status Defragment(grpc::ServerContext* ctx, const etcdserverpb::DefragmentRequest*,
                          etcdserverpb::DefragmentResponse* resp) override {
    if (grpc::Status s = core_->Access(*ctx)(EtcdOp::kMaintenance, "", ""); !s.ok()) return s;
    if (absl::Status s = core_->store()->Defragment(); !s.ok()) return ToEtcdStatus(s);
    core_->FillHeader(resp->mutable_header());
    return grpc::Status::OK;
  }

  grpc::Status Snapshot(grpc::ServerContext* ctx, const etcdserverpb::SnapshotRequest*,
                        grpc::ServerWriter<etcdserverpb::SnapshotResponse>* writer) override {
    // A snapshot is every key, the election's included: an operator's.
    if (grpc::Status s = core_->Access(*ctx)(EtcdOp::kMaintenance, "", ""); !s.ok()) return s;
    storage::Store* store = core_->store();
    // The archive is streamed as it is read: its size is known only at the end,
    // so remaining_bytes counts down from the database size (an estimate, never
    // 0 before the last message).
    const int64_t estimate = std::max<int64_t>(store->Health().db_size_bytes, 0);
    storage::snapshot_archive::Sha256 sha;
    int64_t sent = 0;
    etcdserverpb::SnapshotResponse msg;
    absl::Status s = store->WriteSnapshot([&](absl::string_view chunk) -> absl::Status {
      if (ctx->IsCancelled()) return absl::CancelledError("client went away");
      sha.Update(chunk);
      sent += static_cast<int64_t>(chunk.size());
      msg.set_remaining_bytes(static_cast<uint64_t>(std::max<int64_t>(estimate - sent, 1)));
      msg.set_blob(chunk.data(), chunk.size());
      if (!writer->Write(msg)) return absl::CancelledError("client went away");
      return absl::OkStatus();
    });
    if (!s.ok()) {
      WEFT_LOG(WARN, "etcd api: snapshot failed").Err(s);
      return ToEtcdStatus(s);
    }
    msg.set_remaining_bytes(0);
    msg.set_blob(sha.Final());
    if (!writer->Write(msg)) return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
    WEFT_LOG(INFO, "etcd api: snapshot sent").With("bytes", sent);
    return grpc::Status::OK;
  }

 private:
  EtcdApiServer::Core* const core_;
};

}  // namespace

std::unique_ptr<grpc::Service> NewMaintenanceService(EtcdApiServer::Core* core) {
  return std::make_unique<MaintenanceService>(core);
}

}  // namespace weft::controller::etcd_api
