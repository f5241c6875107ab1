#pragma once
// The --max-* flags of weft-controller, read into InputLimits.

#include "absl/status/statusor.h"
#include "controller/limits.h"

namespace weft::controller {

// INVALID_ARGUMENT naming the flag when a value is out of range.
absl::StatusOr<InputLimits> InputLimitsFromFlags();

}  // namespace weft::controller
