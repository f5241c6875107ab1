// The UDP backend's packet code (agent/backend/udp/packet): ParseIpv4, the TSO/USO
// segmenter, the ICMP error builder and the GRO coalescer on hostile packets.
// Input: a 10-byte virtio_net_hdr, a 2-byte MTU, then packets each preceded by a
// 2-byte length (the first one goes to the segmenter, all of them to the coalescer).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "agent/backend/udp/packet.h"
#include "tests/fuzz/fuzz_check.h"

namespace udp = weft::agent::udp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < udp::kVnetHdrLen + 2) return 0;
  udp::VnetHdr hdr;
  std::memcpy(&hdr, data, udp::kVnetHdrLen);
  const uint32_t mtu = 68 + (udp::Load16(data + udp::kVnetHdrLen) % 9000);
  data += udp::kVnetHdrLen + 2;
  size -= udp::kVnetHdrLen + 2;

  std::vector<std::vector<uint8_t>> packets;
  while (size >= 2 && packets.size() < 64) {
    const size_t len = std::min<size_t>(udp::Load16(data), size - 2);
    packets.emplace_back(data + 2, data + 2 + len);
    data += 2 + len;
    size -= 2 + len;
  }
  if (packets.empty()) return 0;

  // Segmenter, into a buffer of exactly the advertised worst case.
  const std::vector<uint8_t>& first = packets[0];
  std::vector<uint8_t> out(udp::MaxSegmentedSize(first.size()));
  udp::Segments segs;
  if (udp::SegmentTunPacket(hdr, first.data(), first.size(), mtu, out.data(), out.size(), &segs) ==
      udp::DropReason::kNone) {
    FUZZ_CHECK(segs.total <= out.size());
    FUZZ_CHECK(segs.count >= 1);
    size_t off = 0;
    for (size_t i = 0; i < segs.count; ++i) {
      const size_t len = i + 1 < segs.count ? segs.segment_size : segs.total - off;
      FUZZ_CHECK(off + len <= segs.total);
      udp::Ipv4View v;
      (void)udp::ParseIpv4(out.data() + off, len, &v);
      off += len;
    }
  }

  // ICMP errors about each packet.
  uint8_t icmp[576];
  for (const auto& p : packets) {
    const size_t n = udp::BuildIcmpError(p.data(), p.size(), udp::kIcmpDestUnreachable, udp::kIcmpFragNeeded,
                                         static_cast<uint16_t>(mtu), 0x0a000001, icmp, sizeof(icmp));
    FUZZ_CHECK(n <= sizeof(icmp));
  }

  // Coalescer: whatever it emits is a packet ParseIpv4 accepts.
  udp::Coalescer gro(4);
  auto emit = [](const udp::VnetHdr&, absl::Span<const uint8_t> pkt, size_t segments) {
    FUZZ_CHECK(segments >= 1);
    udp::Ipv4View v;
    FUZZ_CHECK(udp::ParseIpv4(pkt.data(), pkt.size(), &v) == udp::DropReason::kNone);
  };
  for (const auto& p : packets) {
    udp::Ipv4View ip;
    if (udp::ParseIpv4(p.data(), p.size(), &ip) != udp::DropReason::kNone) continue;
    gro.Add(p.data(), p.size(), ip, emit);
  }
  gro.Flush(emit);
  return 0;
}
