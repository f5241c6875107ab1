#include "cni/cni_error.h"

#include <nlohmann/json.hpp>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "common/check.h"

namespace weft::cni {
namespace {

constexpr char kCodeUrl[] = "weft.cni/code";
constexpr char kDetailsUrl[] = "weft.cni/details";

absl::StatusCode AbslCodeFor(int code) {
  switch (code) {
    case kIncompatibleVersion:
    case kUnsupportedField:
      return absl::StatusCode::kFailedPrecondition;
    case kUnknownContainer:
      return absl::StatusCode::kNotFound;
    case kInvalidEnvironment:
    case kDecodeFailure:
    case kInvalidNetworkConfig:
      return absl::StatusCode::kInvalidArgument;
    case kTryAgainLater:
      return absl::StatusCode::kUnavailable;
    default:
      return absl::StatusCode::kUnknown;
  }
}

}  // namespace

absl::Status CniError(int code, absl::string_view msg, absl::string_view details) {
  absl::Status status(AbslCodeFor(code), msg);
  status.SetPayload(kCodeUrl, absl::Cord(std::to_string(code)));
  if (!details.empty()) status.SetPayload(kDetailsUrl, absl::Cord(details));
  return status;
}

int CniCodeOf(const absl::Status& status) {
  WEFT_CHECK(!status.ok(), "an OK status has no CNI code");
  int code;
  if (auto payload = status.GetPayload(kCodeUrl);
      payload && absl::SimpleAtoi(std::string(*payload), &code)) {
    return code;
  }
  return kOther;
}

std::string CniDetailsOf(const absl::Status& status) {
  auto payload = status.GetPayload(kDetailsUrl);
  return payload ? std::string(*payload) : std::string();
}

std::string CniErrorJson(const absl::Status& status, absl::string_view cni_version) {
  nlohmann::ordered_json j;  // in the spec's order, for people reading logs
  j["cniVersion"] = std::string(cni_version);
  j["code"] = CniCodeOf(status);
  j["msg"] = std::string(status.message());
  j["details"] = CniDetailsOf(status);
  // Messages may quote bytes from a malformed config: never fail on bad UTF-8.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace weft::cni
