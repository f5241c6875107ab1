#pragma once
// CNI errors as absl::Status. A status made by CniError carries the CNI error
// code (and the optional long "details") as payloads, so code deep inside the
// plugin says which CNI code applies and main prints it; any other non-OK status is
// reported as 999 ("other"). Thread-safe, value types only.

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace weft::cni {

// The well-known codes of CNI spec 1.0.0 ("Error" section). Plugins may use others
// (100 and up); a delegate's code is relayed as it is.
enum CniCode : int {
  kIncompatibleVersion = 1,
  kUnsupportedField = 2,
  kUnknownContainer = 3,
  kInvalidEnvironment = 4,
  kIoFailure = 5,
  kDecodeFailure = 6,
  kInvalidNetworkConfig = 7,
  kTryAgainLater = 11,
  kOther = 999,
};

// A non-OK status (code UNKNOWN unless a closer absl code fits) carrying `code`.
absl::Status CniError(int code, absl::string_view msg, absl::string_view details = "");

// The CNI code a failed status carries; kOther for a status made elsewhere.
int CniCodeOf(const absl::Status& status);
// The details a status carries ("" when none).
std::string CniDetailsOf(const absl::Status& status);

// The error object of the spec, one line:
//   {"cniVersion":"1.0.0","code":7,"msg":"...","details":"..."}
// `status` must not be OK.
std::string CniErrorJson(const absl::Status& status, absl::string_view cni_version);

}  // namespace weft::cni
