// common/net parsers: IPv4/IPv6 addresses, CIDRs (strict, loose, flannel keys),
// MAC addresses, host:port and node names. Whatever parses must print back to
// something that parses to the same value.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "common/net.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view s(reinterpret_cast<const char*>(data), size);
  if (auto a = weft::IPv4Addr::Parse(s); a.ok()) {
    auto b = weft::IPv4Addr::Parse(a->ToString());
    FUZZ_CHECK(b.ok() && *b == *a);
  }
  if (auto a = weft::IPv6Addr::Parse(s); a.ok()) {
    auto b = weft::IPv6Addr::Parse(a->ToString());
    FUZZ_CHECK(b.ok() && *b == *a);
  }
  if (auto n = weft::IPv4Net::Parse(s); n.ok()) {
    auto m = weft::IPv4Net::Parse(n->ToString());
    FUZZ_CHECK(m.ok() && *m == *n);
    FUZZ_CHECK(n->Contains(*n));
  }
  if (auto n = weft::IPv6Net::Parse(s); n.ok()) {
    auto m = weft::IPv6Net::Parse(n->ToString());
    FUZZ_CHECK(m.ok() && *m == *n);
  }
  (void)weft::IPv4Net::ParseLoose(s);
  (void)weft::IPv6Net::ParseLoose(s);
  (void)weft::IPv4Net::ParseFlannelKey(s);
  (void)weft::IPv6Net::ParseFlannelKey(s);
  if (auto m = weft::MacAddr::Parse(s); m.ok()) {
    auto m2 = weft::MacAddr::Parse(m->ToString());
    FUZZ_CHECK(m2.ok() && m2->ToString() == m->ToString());
  }
  if (auto hp = weft::ParseHostPort(s); hp.ok()) {
    (void)hp->ToString();
  }
  (void)weft::ValidateNodeName(s);
  return 0;
}
