// weft-etcd-compat-dev: serves etcd v3's API over a RocksDB store (or, with
// --store=etcd, over a real etcd through EtcdStore), with the flannel put
// validator, for tests and experiments (etcdctl against Weft's implementation
// without a whole controller). Stops on SIGTERM / SIGINT.

#include <csignal>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/flags.h"
#include "common/log.h"
#include "controller/etcd_api/etcd_api_server.h"
#include "controller/etcd_api/flannel_validator.h"
#include "grpcpp/grpcpp.h"
#include "storage/etcd/etcd_store.h"
#include "storage/rocksdb/rocksdb_store.h"

ABSL_FLAG(std::string, store, "rocksdb", "rocksdb (--data-dir) or etcd (--etcd-endpoints).");
ABSL_FLAG(std::string, data_dir, "", "Directory of the RocksDB store (created if missing).");
ABSL_FLAG(std::vector<std::string>, etcd_endpoints, {}, "etcd endpoints for --store=etcd (comma-separated).");
ABSL_FLAG(std::string, listen, "127.0.0.1:2379", "etcd API listen address (host:port).");
ABSL_FLAG(std::string, etcd_prefix, "/coreos.com/network",
          "Flannel's key prefix: puts under it are validated. Empty: no validation.");
ABSL_FLAG(std::string, name, "weft", "Member name (Status, MemberList).");
ABSL_FLAG(absl::Duration, progress_notify_interval, absl::Minutes(10),
          "Progress notifications for idle watches that asked for them.");
ABSL_FLAG(absl::Duration, lease_expiry_interval, absl::Milliseconds(500), "How often expired leases are revoked.");

namespace {

absl::Notification* g_stop = nullptr;
void OnSignal(int) {
  if (g_stop && !g_stop->HasBeenNotified()) g_stop->Notify();
}

int64_t DirectorySize(const std::string& dir) {
  std::error_code ec;
  int64_t total = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec)) total += static_cast<int64_t>(it->file_size(ec));
  }
  return total;
}

int Run() {
  using namespace weft;
  const std::string data_dir = absl::GetFlag(FLAGS_data_dir);
  absl::StatusOr<std::unique_ptr<storage::Store>> store;
  std::function<int64_t()> db_size;
  if (absl::GetFlag(FLAGS_store) == "etcd") {
    storage::EtcdStore::Options eo;
    eo.endpoints = absl::GetFlag(FLAGS_etcd_endpoints);
    auto etcd = storage::EtcdStore::Open(eo);
    if (etcd.ok()) {
      storage::EtcdStore* e = etcd->get();
      db_size = [e] { return e->DbSize().value_or(0); };
      store = std::unique_ptr<storage::Store>(std::move(*etcd));
    } else {
      store = etcd.status();
    }
  } else if (absl::GetFlag(FLAGS_store) == "rocksdb") {
    if (data_dir.empty()) {
      WEFT_LOG(ERROR, "--data-dir is required with --store=rocksdb");
      return 2;
    }
    storage::RocksDbStore::Options so;
    so.path = data_dir;
    so.lease_expiry_interval = absl::GetFlag(FLAGS_lease_expiry_interval);
    store = storage::RocksDbStore::Open(so);
    db_size = [data_dir] { return DirectorySize(data_dir); };
  } else {
    WEFT_LOG(ERROR, "--store must be rocksdb or etcd").With("store", absl::GetFlag(FLAGS_store));
    return 2;
  }
  if (!store.ok()) {
    WEFT_LOG(ERROR, "cannot open the store").With("store", absl::GetFlag(FLAGS_store)).Err(store.status());
    return 1;
  }

  const std::string listen = absl::GetFlag(FLAGS_listen);
  controller::etcd_api::EtcdApiOptions opts;
  opts.name = absl::GetFlag(FLAGS_name);
  opts.client_urls = {absl::StrCat("http://", listen)};
  opts.progress_notify_interval = absl::GetFlag(FLAGS_progress_notify_interval);
  opts.db_size = db_size;
  if (const std::string prefix = absl::GetFlag(FLAGS_etcd_prefix); !prefix.empty()) {
    controller::etcd_api::FlannelValidator validator(
        prefix, controller::etcd_api::FlannelStateFromStore(store->get(), prefix));
    opts.validate_put = validator.AsPutValidator();
  }

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(4 << 20);
  std::unique_ptr<controller::etcd_api::EtcdApiServer> etcd =
      controller::etcd_api::RegisterEtcdApi(builder, store->get(), opts);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    WEFT_LOG(ERROR, "cannot listen").With("listen", listen);
    return 1;
  }
  WEFT_LOG(INFO, "weft-etcd-compat-dev serving")
      .With("listen", listen)
      .With("port", port)
      .With("store", absl::GetFlag(FLAGS_store))
      .With("revision", (*store)->CurrentRevision());

  absl::Notification stop;
  g_stop = &stop;
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  stop.WaitForNotification();

  WEFT_LOG(INFO, "weft-etcd-compat-dev stopping");
  etcd->Shutdown();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  etcd.reset();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  auto args = weft::ParseFlagsWithEnv(argc, argv, "WEFT_");
  if (!args.ok()) {
    WEFT_LOG(ERROR, "bad flags").Err(args.status());
    return 2;
  }
  if (args->size() > 1) {
    WEFT_LOG(ERROR, "unexpected argument").With("arg", std::string((*args)[1]));
    return 2;
  }
  return Run();
}
