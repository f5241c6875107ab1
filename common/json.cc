#include "common/json.h"

#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"

namespace weft::json {
namespace {

// nlohmann's DOM builder, with a depth counter in front: returning false from
// a SAX callback stops the parser at once.
template <typename J>
class BoundedSax {
 public:
  BoundedSax(J* out, int max_depth) : dom_(*out, /*allow_exceptions=*/false), max_depth_(max_depth) {}

  bool null() { return dom_.null(); }
  bool boolean(bool v) { return dom_.boolean(v); }
  bool number_integer(typename J::number_integer_t v) { return dom_.number_integer(v); }
  bool number_unsigned(typename J::number_unsigned_t v) { return dom_.number_unsigned(v); }
  bool number_float(typename J::number_float_t v, const typename J::string_t& s) { return dom_.number_float(v, s); }
  bool string(typename J::string_t& v) { return dom_.string(v); }
  bool binary(typename J::binary_t& v) { return dom_.binary(v); }
  bool key(typename J::string_t& v) { return dom_.key(v); }
  bool start_object(std::size_t n) { return Enter() && dom_.start_object(n); }
  bool end_object() {
    --depth_;
    return dom_.end_object();
  }
  bool start_array(std::size_t n) { return Enter() && dom_.start_array(n); }
  bool end_array() {
    --depth_;
    return dom_.end_array();
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& ex) {
    position_ = position;
    error_ = ex.what();
    return false;
  }

  bool too_deep() const { return too_deep_; }
  size_t position() const { return position_; }
  const std::string& error() const { return error_; }

 private:
  bool Enter() {
    if (++depth_ <= max_depth_) return true;
    too_deep_ = true;
    return false;
  }

  nlohmann::detail::json_sax_dom_parser<J> dom_;
  const int max_depth_;
  int depth_ = 0;
  bool too_deep_ = false;
  size_t position_ = 0;
  std::string error_;
};

// nlohmann's message without its "[json.exception.parse_error.101] " tag and
// without the "; last read: '...'" token, which can be as long as the input.
std::string ShortReason(std::string what) {
  if (size_t p = what.find("] "); what.rfind("[json.exception.", 0) == 0 && p != std::string::npos) {
    what.erase(0, p + 2);
  }
  if (size_t p = what.find("; last read:"); p != std::string::npos) what.erase(p);
  if (what.size() > 200) what.resize(200);
  return what;
}

std::string FlagHint(const std::string& flag) { return flag.empty() ? "" : absl::StrCat(" (", flag, ")"); }

template <typename J>
absl::StatusOr<J> ParseImpl(absl::string_view text, absl::string_view what, const Limits& limits) {
  if (text.size() > limits.max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", text.size(), " bytes is over the limit of ",
                                                   limits.max_bytes, " bytes", FlagHint(limits.bytes_flag)));
  }
  J out;
  BoundedSax<J> sax(&out, limits.max_depth);
  const bool ok = J::sax_parse(text.begin(), text.end(), &sax, nlohmann::detail::input_format_t::json,
                               /*strict=*/true);
  if (sax.too_deep()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": JSON nested deeper than the limit of ", limits.max_depth,
                                                   " levels", FlagHint(limits.depth_flag)));
  }
  if (!ok) {
    if (text.empty()) return absl::InvalidArgumentError(absl::StrCat(what, ": empty, not JSON"));
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": not valid JSON at byte ", sax.position(), ": ", ShortReason(sax.error())));
  }
  return out;
}

const char* TypeName(const Json* v) { return v->type_name(); }

absl::Status WrongType(absl::string_view field, absl::string_view want, const Json* v) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": must be ", want, " (got ", TypeName(v), ")"));
}

}  // namespace

absl::StatusOr<Json> Parse(absl::string_view text, absl::string_view what, const Limits& limits) {
  return ParseImpl<Json>(text, what, limits);
}

absl::StatusOr<OrderedJson> ParseOrdered(absl::string_view text, absl::string_view what, const Limits& limits) {
  return ParseImpl<OrderedJson>(text, what, limits);
}

const Json* Find(const Json& obj, absl::string_view field) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(std::string(field));
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

absl::StatusOr<std::string> GetString(const Json& obj, absl::string_view field, absl::string_view dflt) {
  const Json* v = Find(obj, field);
  if (v == nullptr) return std::string(dflt);
  if (!v->is_string()) return WrongType(field, "a string", v);
  return v->get_ref<const std::string&>();
}

absl::StatusOr<int64_t> GetInt(const Json& obj, absl::string_view field, int64_t dflt) {
  const Json* v = Find(obj, field);
  if (v == nullptr) return dflt;
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", v->get<uint64_t>(), " is too large"));
  }
  if (v->is_number_integer()) return v->get<int64_t>();  // signed or unsigned
  return WrongType(field, "an integer", v);
}

absl::StatusOr<bool> GetBool(const Json& obj, absl::string_view field, bool dflt) {
  const Json* v = Find(obj, field);
  if (v == nullptr) return dflt;
  if (!v->is_boolean()) return WrongType(field, "true or false", v);
  return v->get<bool>();
}

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }
std::string Dump(const OrderedJson& j) { return j.dump(-1, ' ', false, OrderedJson::error_handler_t::replace); }

}  // namespace weft::json
