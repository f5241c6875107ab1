#include "agent/state.h"

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/status_macros.h"

namespace weft::agent {

MacAddr RandomLocalUnicastMac() {
  absl::BitGen gen;
  std::array<uint8_t, 6> b;
  for (uint8_t& x : b) x = absl::Uniform<uint8_t>(gen);
  b[0] = static_cast<uint8_t>((b[0] & 0xfe) | 0x02);  // unicast, locally administered
  return MacAddr(b);
}

absl::StatusOr<MacAddr> LoadOrCreateVtepMac(const std::string& state_dir) {
  const std::string path = absl::StrCat(state_dir, "/", kVtepMacFile);
  ASSIGN_OR_RETURN(std::optional<std::string> text, ReadFileIfExists(path));
  if (text) {
    absl::StatusOr<MacAddr> mac = MacAddr::Parse(absl::StripAsciiWhitespace(*text));
    if (!mac.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          path, " does not hold a MAC address (", mac.status().message(),
          "); remove the file to give this node a new VTEP MAC"));
    }
    if (mac->IsMulticast() || mac->IsZero()) {
      return absl::FailedPreconditionError(absl::StrCat(
          path, " holds ", mac->ToString(),
          ", which is not a unicast MAC; remove the file to give this node a new VTEP MAC"));
    }
    return *mac;
  }
  const MacAddr mac = RandomLocalUnicastMac();
  RETURN_IF_ERROR(WriteFileAtomically(path, absl::StrCat(mac.ToString(), "\n"), 0644));
  return mac;
}

}  // namespace weft::agent
