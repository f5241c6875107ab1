#pragma once
// Hostile JSON in one place. Every JSON text Weft reads (API fields, store
// values, cloud metadata, CNI stdin and delegate output, files) goes through
// Parse: a byte cap checked before parsing, a nesting cap enforced while
// parsing (nothing deeper is ever built, so no later recursive dump or
// destructor can overflow the stack), and no exception escapes. The getters
// below are total: a field of the wrong type is an error, never a throw
// (nlohmann's value()/get<>() throw, which here means std::terminate).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace weft::json {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;  // keeps the input's key order (for printing)

inline constexpr size_t kDefaultMaxBytes = 1 << 20;
inline constexpr int kDefaultMaxDepth = 64;

struct Limits {
  size_t max_bytes = kDefaultMaxBytes;
  int max_depth = kDefaultMaxDepth;  // objects and arrays nested; 1 = "{}"
  // Named in the error when a limit is hit, e.g. "--max-json-depth".
  std::string bytes_flag;
  std::string depth_flag;
};

// Parses any bytes. INVALID_ARGUMENT "<what>: ..." when `text` is larger than
// limits.max_bytes, nested deeper than limits.max_depth, or not one valid JSON
// value (the message gives the position and quotes no more than a short prefix).
absl::StatusOr<Json> Parse(absl::string_view text, absl::string_view what, const Limits& limits = {});
absl::StatusOr<OrderedJson> ParseOrdered(absl::string_view text, absl::string_view what, const Limits& limits = {});

// The member `field` of `obj`; nullptr when `obj` is not an object, lacks the
// field, or the field is JSON null (flannel's Go decoder treats null as absent).
const Json* Find(const Json& obj, absl::string_view field);

// Absent (or null) -> `dflt`; present with another type -> INVALID_ARGUMENT
// "<field>: must be a string (got number)".
absl::StatusOr<std::string> GetString(const Json& obj, absl::string_view field, absl::string_view dflt = "");
absl::StatusOr<int64_t> GetInt(const Json& obj, absl::string_view field, int64_t dflt = 0);
absl::StatusOr<bool> GetBool(const Json& obj, absl::string_view field, bool dflt = false);

// Text of a value built by Weft (or parsed by Parse, so of bounded depth).
// Invalid UTF-8 in strings is replaced rather than thrown on.
std::string Dump(const Json& j);
std::string Dump(const OrderedJson& j);

}  // namespace weft::json
