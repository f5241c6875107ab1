#include "tests/observability/lease_workload.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "proto/weft/v1/weft.grpc.pb.h"

namespace weft::testing {
namespace {

using weft::v1::LeaseService;
using weft::v1::NetworkService;

std::unique_ptr<grpc::ClientContext> Ctx() {
  auto c = std::make_unique<grpc::ClientContext>();
  c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return c;
}

absl::Status Fail(absl::string_view what, const grpc::Status& s) {
  return absl::InternalError(absl::StrCat(what, ": ", s.error_code(), " ", s.error_message()));
}

// Node i has a stable name and public IP (TEST-NET-2: data only, never a destination).
weft::v1::AcquireLeaseRequest Node(absl::string_view prefix, int i) {
  weft::v1::AcquireLeaseRequest r;
  r.set_node_name(absl::StrCat(prefix, "-", i));
  r.set_public_ip(absl::StrCat("198.51.", 100 + (i / 250) % 100, ".", i % 250 + 1));
  r.set_backend_type("vxlan");
  r.set_backend_data(absl::StrFormat(R"({"VNI":1,"VtepMAC":"02:42:00:00:%02x:%02x"})", (i >> 8) & 0xff, i & 0xff));
  return r;
}

// A watch stream read on its own thread until the run ends.
class Watcher {
 public:
  explicit Watcher(LeaseService::Stub* stub) {
    thread_ = std::thread([this, stub] {
      weft::v1::WatchLeasesRequest req;
      auto reader = stub->WatchLeases(&ctx_, req);
      weft::v1::WatchLeasesResponse resp;
      while (reader->Read(&resp)) messages_.fetch_add(1);
      reader->Finish();
    });
  }
  ~Watcher() {
    ctx_.TryCancel();
    thread_.join();
  }
  int64_t messages() const { return messages_.load(); }

 private:
  grpc::ClientContext ctx_;
  std::atomic<int64_t> messages_{0};
  std::thread thread_;
};

class Workload {
 public:
  explicit Workload(const WorkloadOptions& o) : o_(o) {
    channel_ = grpc::CreateChannel(o.controller, grpc::InsecureChannelCredentials());
    leases_ = LeaseService::NewStub(channel_);
    network_ = NetworkService::NewStub(channel_);
  }

  absl::Status Run(const std::atomic<bool>* stop) {
    if (!channel_->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(20))) {
      return absl::UnavailableError(absl::StrCat("cannot connect to the controller at ", o_.controller));
    }
    if (!o_.network_config.empty()) {
      weft::v1::SetNetworkConfigRequest req;
      req.set_config(o_.network_config);
      weft::v1::SetNetworkConfigResponse resp;
      if (auto s = network_->SetNetworkConfig(Ctx().get(), req, &resp); !s.ok()) return Fail("SetNetworkConfig", s);
    }
    std::vector<std::unique_ptr<Watcher>> watchers;
    for (int i = 0; i < o_.watch_streams; ++i) watchers.push_back(std::make_unique<Watcher>(leases_.get()));

    for (int i = 0; i < o_.nodes; ++i) {
      if (absl::Status s = Acquire(Node("node", i)); !s.ok()) return s;
    }
    if (absl::Status s = Refusals(); !s.ok()) return s;
    if (o_.exhaust_pool) {
      if (absl::Status s = ExhaustPool(); !s.ok()) return s;
    }
    if (absl::Status s = ReserveAndUnreserve(); !s.ok()) return s;
    if (absl::Status s = Throwaway(); !s.ok()) return s;

    const absl::Time end = absl::Now() + o_.duration;
    for (int round = 0;; ++round) {
      if (absl::Status s = Round(round); !s.ok()) return s;
      if (absl::Now() >= end || (stop != nullptr && stop->load())) break;
      absl::SleepFor(o_.period);
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Acquire(const weft::v1::AcquireLeaseRequest& req, std::string* subnet = nullptr) {
    weft::v1::AcquireLeaseResponse resp;
    if (auto s = leases_->AcquireLease(Ctx().get(), req, &resp); !s.ok()) {
      return Fail(absl::StrCat("AcquireLease ", req.node_name()), s);
    }
    if (subnet != nullptr) *subnet = resp.lease().subnet();
    subnets_[req.node_name()] = resp.lease().subnet();
    return absl::OkStatus();
  }

  absl::Status Renew(const weft::v1::AcquireLeaseRequest& node) {
    weft::v1::RenewLeaseRequest req;
    req.set_subnet(subnets_[node.node_name()]);
    req.set_node_name(node.node_name());
    req.set_public_ip(node.public_ip());
    weft::v1::RenewLeaseResponse resp;
    if (auto s = leases_->RenewLease(Ctx().get(), req, &resp); !s.ok()) return Fail("RenewLease", s);
    return absl::OkStatus();
  }

  absl::Status Release(const weft::v1::AcquireLeaseRequest& node) {
    weft::v1::ReleaseLeaseRequest req;
    req.set_subnet(subnets_[node.node_name()]);
    req.set_node_name(node.node_name());
    req.set_public_ip(node.public_ip());
    weft::v1::ReleaseLeaseResponse resp;
    if (auto s = leases_->ReleaseLease(Ctx().get(), req, &resp); !s.ok()) return Fail("ReleaseLease", s);
    return absl::OkStatus();
  }

  static absl::Status Expect(absl::string_view what, const grpc::Status& s, grpc::StatusCode want) {
    if (s.error_code() == want) return absl::OkStatus();
    return absl::InternalError(absl::StrCat(what, ": want code ", want, ", got ", s.error_code(), " ",
                                            s.error_message()));
  }

  // One refused call of each kind an operator would want to see on a dashboard.
  absl::Status Refusals() {
    weft::v1::AcquireLeaseRequest bad = Node("node", 0);
    bad.set_public_ip("300.1.2.3");
    weft::v1::AcquireLeaseResponse acquired;
    if (auto s = Expect("AcquireLease with a bad IP", leases_->AcquireLease(Ctx().get(), bad, &acquired),
                        grpc::StatusCode::INVALID_ARGUMENT);
        !s.ok()) {
      return s;
    }
    // Renewing another node's lease.
    weft::v1::RenewLeaseRequest steal;
    steal.set_subnet(subnets_["node-0"]);
    steal.set_node_name("intruder");
    steal.set_public_ip("203.0.113.9");
    weft::v1::RenewLeaseResponse renewed;
    if (auto s = Expect("RenewLease of another node's lease", leases_->RenewLease(Ctx().get(), steal, &renewed),
                        grpc::StatusCode::PERMISSION_DENIED);
        !s.ok()) {
      return s;
    }
    weft::v1::GetLeaseRequest missing;
    missing.set_subnet("10.255.255.0/24");
    weft::v1::GetLeaseResponse got;
    return Expect("GetLease of a subnet never leased", leases_->GetLease(Ctx().get(), missing, &got),
                  grpc::StatusCode::NOT_FOUND);
  }

  absl::Status ExhaustPool() {
    std::vector<weft::v1::AcquireLeaseRequest> fillers;
    for (int i = 0; i < 4096; ++i) {
      weft::v1::AcquireLeaseRequest node = Node("filler", 2000 + i);
      weft::v1::AcquireLeaseResponse resp;
      grpc::Status s = leases_->AcquireLease(Ctx().get(), node, &resp);
      if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
        for (const auto& f : fillers) {
          if (absl::Status r = Release(f); !r.ok()) return r;
        }
        return absl::OkStatus();
      }
      if (!s.ok()) return Fail("AcquireLease while filling the pool", s);
      subnets_[node.node_name()] = resp.lease().subnet();
      fillers.push_back(node);
    }
    return absl::FailedPreconditionError("the pool did not run out after 4096 acquisitions");
  }

  // A reservation, then Unreserve turns it back into a lease that nobody renews.
  absl::Status ReserveAndUnreserve() {
    std::string subnet;
    weft::v1::AcquireLeaseRequest node = Node("reserved", throwaways_++);
    node.set_public_ip("203.0.113.77");
    if (absl::Status s = Acquire(node, &subnet); !s.ok()) return s;
    weft::v1::ReserveRequest reserve;
    reserve.set_subnet(subnet);
    reserve.set_public_ip(node.public_ip());
    reserve.set_node_name(node.node_name());
    reserve.set_backend_type("vxlan");
    reserve.set_backend_data(node.backend_data());
    weft::v1::ReserveResponse reserved;
    if (auto s = network_->Reserve(Ctx().get(), reserve, &reserved); !s.ok()) return Fail("Reserve", s);
    // A second reservation stays, so that the reservations gauge is not 0.
    weft::v1::AcquireLeaseRequest kept = Node("kept-reserved", 0);
    kept.set_public_ip("203.0.113.78");
    std::string kept_subnet;
    if (absl::Status s = Acquire(kept, &kept_subnet); !s.ok()) return s;
    reserve.set_subnet(kept_subnet);
    reserve.set_public_ip(kept.public_ip());
    reserve.set_node_name(kept.node_name());
    if (auto s = network_->Reserve(Ctx().get(), reserve, &reserved); !s.ok()) return Fail("Reserve", s);
    weft::v1::UnreserveRequest unreserve;
    unreserve.set_subnet(subnet);
    weft::v1::UnreserveResponse unreserved;
    if (auto s = network_->Unreserve(Ctx().get(), unreserve, &unreserved); !s.ok()) return Fail("Unreserve", s);
    return absl::OkStatus();
  }

  // A node that acquires once and is never heard of again: its lease expires.
  absl::Status Throwaway() { return Acquire(Node("gone", 1000 + throwaways_++)); }

  absl::Status Round(int round) {
    const weft::v1::AcquireLeaseRequest node = Node("node", round % o_.nodes);
    if (absl::Status s = Renew(node); !s.ok()) return s;
    weft::v1::GetNetworkConfigResponse cfg;
    if (auto s = network_->GetNetworkConfig(Ctx().get(), {}, &cfg); !s.ok()) return Fail("GetNetworkConfig", s);
    weft::v1::ListLeasesResponse list;
    if (auto s = leases_->ListLeases(Ctx().get(), {}, &list); !s.ok()) return Fail("ListLeases", s);
    weft::v1::GetLeaseRequest get;
    get.set_subnet(subnets_[node.node_name()]);
    weft::v1::GetLeaseResponse got;
    if (auto s = leases_->GetLease(Ctx().get(), get, &got); !s.ok()) return Fail("GetLease", s);
    if (round % o_.churn_every == 0) {
      if (absl::Status s = Release(node); !s.ok()) return s;
      if (absl::Status s = Acquire(node); !s.ok()) return s;
      if (absl::Status s = Throwaway(); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  const WorkloadOptions o_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<LeaseService::Stub> leases_;
  std::unique_ptr<NetworkService::Stub> network_;
  std::map<std::string, std::string> subnets_;  // node name -> subnet
  int throwaways_ = 0;
};

}  // namespace

absl::Status RunWorkload(const WorkloadOptions& options, const std::atomic<bool>* stop) {
  if (options.nodes < 1) return absl::InvalidArgumentError("nodes must be >= 1");
  return Workload(options).Run(stop);
}

}  // namespace weft::testing
