// wireguard-go's UAPI answers (agent/backend/wireguard/uapi) and the key
// parsers. A device answer that decodes must encode as a Set that decodes to
// the same peers' configuration; keys print back to what parses to them.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "agent/backend/wireguard/uapi.h"
#include "agent/backend/wireguard/wg_types.h"
#include "tests/fuzz/fuzz_check.h"

namespace wg = weft::agent::wg;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view s(reinterpret_cast<const char*>(data), size);
  (void)wg::DecodeSetAnswer(s);
  if (auto k = wg::ParseBase64Key(s, "key"); k.ok()) {
    auto again = wg::ParseBase64Key(wg::ToBase64(*k), "key");
    FUZZ_CHECK(again.ok() && *again == *k);
  }
  if (auto k = wg::ParseHexKey(s, "key"); k.ok()) {
    auto again = wg::ParseHexKey(wg::ToHex(*k), "key");
    FUZZ_CHECK(again.ok() && *again == *k);
  }
  auto device = wg::DecodeGet(s);
  if (!device.ok()) return 0;
  // The Set for the decoded device's peers, answered as a device would list
  // them: "set=1" replaced by a get answer's errno line.
  wg::DeviceChange change;
  for (const wg::Peer& p : device->peers) change.peers.push_back({p, false});
  std::string set = wg::EncodeSet(change);
  FUZZ_CHECK(set.rfind("set=1\n", 0) == 0);
  set = set.substr(6);
  set.resize(set.size() - 1);  // the final empty line
  std::string answer;
  for (absl::string_view line : absl::StrSplit(set, '\n', absl::SkipEmpty())) {
    if (line == "replace_allowed_ips=true") continue;
    absl::StrAppend(&answer, line, "\n");
  }
  answer += "errno=0\n\n";
  auto back = wg::DecodeGet(answer);
  FUZZ_CHECK(back.ok());
  FUZZ_CHECK(back->peers.size() == device->peers.size());
  for (size_t i = 0; i < back->peers.size(); ++i) {
    FUZZ_CHECK(back->peers[i].public_key == device->peers[i].public_key);
    FUZZ_CHECK(back->peers[i].allowed_ips == device->peers[i].allowed_ips);
    FUZZ_CHECK(back->peers[i].endpoint_port == device->peers[i].endpoint_port);
  }
  return 0;
}
