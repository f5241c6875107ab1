#pragma once
// Address literals for tests: Ip("192.0.2.1"), Net("198.18.2.0/24"),
// Mac("0a:58:00:00:00:01"). A literal that does not parse aborts the test binary.

#include "absl/strings/string_view.h"
#include "common/check.h"
#include "common/net.h"

namespace weft::test_literals {

inline IPv4Addr Ip(absl::string_view s) {
  absl::StatusOr<IPv4Addr> v = IPv4Addr::Parse(s);
  WEFT_CHECK(v.ok(), "bad IPv4 literal");
  return *v;
}

inline IPv4Net Net(absl::string_view s) {
  absl::StatusOr<IPv4Net> v = IPv4Net::Parse(s);
  WEFT_CHECK(v.ok(), "bad IPv4 network literal");
  return *v;
}

inline MacAddr Mac(absl::string_view s) {
  absl::StatusOr<MacAddr> v = MacAddr::Parse(s);
  WEFT_CHECK(v.ok(), "bad MAC literal");
  return *v;
}

}  // namespace weft::test_literals
