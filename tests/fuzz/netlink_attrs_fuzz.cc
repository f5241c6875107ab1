// Netlink attribute parsing (agent/netlink Attrs): an arbitrary message after a
// family header of 0..32 bytes, every getter and every nest, bounded by the buffer.
#include <linux/netlink.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "agent/netlink/socket.h"

namespace nl = weft::netlink;

namespace {
void Walk(const nl::Attrs& a, int depth) {
  for (uint16_t t = 0; t <= nl::Attrs::kMaxType; ++t) {
    if (!a.Has(t)) continue;
    (void)a.U8(t);
    (void)a.U16(t);
    (void)a.U32(t);
    (void)a.Str(t);
    (void)a.Bytes<4>(t);
    (void)a.Bytes<16>(t);
    if (depth < 3) Walk(nl::Attrs::Nested(a.Get(t)), depth + 1);
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t header_len = data[0] % 33;
  // The message as the kernel would frame it: nlmsghdr with the true length,
  // aligned storage (netlink buffers are 4-byte aligned).
  std::vector<uint32_t> buf((NLMSG_HDRLEN + size + 3) / 4 + 1, 0);
  auto* nlh = reinterpret_cast<nlmsghdr*>(buf.data());
  nlh->nlmsg_len = static_cast<uint32_t>(NLMSG_HDRLEN + size - 1);
  std::memcpy(reinterpret_cast<uint8_t*>(buf.data()) + NLMSG_HDRLEN, data + 1, size - 1);
  Walk(nl::Attrs::Of(nlh, header_len), 0);
  return 0;
}
