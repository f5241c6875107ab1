#pragma once
// Address literals for tests: Ip("192.0.2.1"), Net("198.18.2.0/24"),
// Ip6("fd77:1::1"), Net6("fd42:0:2::/64"), Mac("0a:58:00:00:00:01"). A literal
// that does not parse aborts the test binary.

#include "absl/strings/string_view.h"
#include "common/check.h"
#include "common/net.h"

namespace weft::test_literals {

template <typename T>
T Literal(absl::string_view s, const char* what) {
  absl::StatusOr<T> v = T::Parse(s);
  WEFT_CHECK(v.ok(), what);
  return *v;
}

inline IPv4Addr Ip(absl::string_view s) { return Literal<IPv4Addr>(s, "bad IPv4 literal"); }
inline IPv4Net Net(absl::string_view s) { return Literal<IPv4Net>(s, "bad IPv4 network literal"); }
inline IPv6Addr Ip6(absl::string_view s) { return Literal<IPv6Addr>(s, "bad IPv6 literal"); }
inline IPv6Net Net6(absl::string_view s) { return Literal<IPv6Net>(s, "bad IPv6 network literal"); }
inline MacAddr Mac(absl::string_view s) { return Literal<MacAddr>(s, "bad MAC literal"); }

}  // namespace weft::test_literals
