#pragma once
// Helpers shared by lease_manager.cc and acquisition.cc: errors as callers get
// them, and pieces of the lease transactions. Private to the lease_manager
// target (in its srcs), so its using-declarations reach only those two files.

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "controller/lease_codec.h"
#include "controller/network_config.h"
#include "storage/store.h"

namespace weft::controller::lease_internal {

inline absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

// A store failure as callers get it: the store over its space quota (the
// NOSPACE alarm) stays RESOURCE_EXHAUSTED, as etcd answers it, so a client can
// tell it from a store it cannot reach (UNAVAILABLE, worth retrying soon).
inline absl::Status StoreError(const absl::Status& s) {
  const std::string message = absl::StrCat("store: ", s.message());
  return absl::IsResourceExhausted(s) ? absl::ResourceExhaustedError(message) : absl::UnavailableError(message);
}

inline absl::Status NoConfig() {
  return absl::FailedPreconditionError("no network config: set one first (weftctl config set FILE)");
}

// Whether `k` has a subnet in the config's pool of that family, or the config
// does not enable the family: a lease that fits both is used as it is.
inline bool FitsIPv4(const NetworkConfig& c, const SubnetKey& k) {
  return !c.enable_ipv4 || (k.ipv4 && c.PoolIndex(*k.ipv4));
}
inline bool FitsIPv6(const NetworkConfig& c, const SubnetKey& k) {
  return !c.enable_ipv6 || (k.ipv6 && c.InIPv6Pool(*k.ipv6));
}

// Deletes `key` if unchanged since `mod_revision`.
storage::TxnRequest DeleteIf(const std::string& key, int64_t mod_revision);
// Adds to `txn`, before its other writes, the delete of `key` if unchanged
// since `mod_revision`: a lease whose key changes (its IPv6 part) is replaced
// in one transaction, so its node never holds two.
void PrependDeleteIf(storage::TxnRequest* txn, const std::string& key, int64_t mod_revision);

}  // namespace weft::controller::lease_internal

namespace weft::controller {
using lease_internal::DeleteIf;
using lease_internal::FitsIPv4;
using lease_internal::FitsIPv6;
using lease_internal::Invalid;
using lease_internal::NoConfig;
using lease_internal::PrependDeleteIf;
using lease_internal::StoreError;
}  // namespace weft::controller
