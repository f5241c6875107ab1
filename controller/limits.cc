#include "controller/limits.h"

namespace weft::controller {
namespace {
InputLimits g_limits;  // written once by main before any thread reads it
}  // namespace

const InputLimits& Limits() { return g_limits; }
void SetLimits(const InputLimits& limits) { g_limits = limits; }

json::Limits ValueJsonLimits() {
  json::Limits l;
  l.max_bytes = g_limits.max_value_bytes;
  l.max_depth = g_limits.max_json_depth;
  l.bytes_flag = "--max-value-bytes";
  l.depth_flag = "--max-json-depth";
  return l;
}

json::Limits LeaseJsonLimits() {
  json::Limits l = ValueJsonLimits();
  l.max_bytes = 2 * g_limits.max_value_bytes + 4096;
  l.max_depth = g_limits.max_json_depth + 1;
  return l;
}

}  // namespace weft::controller
