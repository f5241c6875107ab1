#pragma once
// weft-controller's flags for reaching etcd (--store=etcd), with flannel's
// names: --etcd-endpoints, --etcd-cafile, --etcd-certfile, --etcd-keyfile,
// --etcd-username, --etcd-password, plus --etcd-password-file (a secret is
// better kept out of argv; WEFT_ETCD_PASSWORD works too).

#include "absl/status/statusor.h"
#include "storage/etcd/etcd_store.h"

namespace weft::storage {

// EtcdStore::Options from the flags. INVALID_ARGUMENT, naming the flag and the
// path, when a file named by a flag cannot be read, when no endpoint is given,
// or when both --etcd-password and --etcd-password-file are.
absl::StatusOr<EtcdStore::Options> EtcdOptionsFromFlags();

}  // namespace weft::storage
