#pragma once
// The UDP backend's packet code, pure (no syscalls) so that every rule is unit
// tested with handmade packets:
//
//  - TUN -> wire: a packet read from a TUN queue opened with IFF_VNET_HDR comes
//    with a virtio_net_hdr; with TUNSETOFFLOAD it may be a TCP (TSO) or UDP (USO)
//    super-packet of up to 64 KiB, or carry a partial checksum. The wire format is
//    flannel's: plain IPv4 packets no larger than the TUN MTU, so SegmentTunPacket
//    splits and finishes them, writing the pieces back to back (all of one size
//    but the last: exactly what one sendmsg with UDP_SEGMENT sends).
//  - wire -> TUN: Coalescer merges consecutive TCP segments of one flow into one
//    super-packet with a virtio_net_hdr (software GRO), so the kernel's stack
//    handles one packet where the wire carried many.
//  - BuildIcmpError makes the ICMP error a router would send (frag-needed for a
//    DF packet too big, net-unreachable for a destination without a peer).
//
// All multi-byte header fields are network order except the virtio_net_hdr's,
// which are host order (TUN's legacy virtio header on a little-endian host).

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/types/span.h"

namespace weft::agent::udp {

// struct virtio_net_hdr of <linux/virtio_net.h> (which does not compile as C++
// and, in older copies, lacks GSO_UDP_L4): what TUN puts before each packet
// with IFF_VNET_HDR.
struct VnetHdr {
  uint8_t flags = 0;
  uint8_t gso_type = 0;
  uint16_t hdr_len = 0;      // Ethernet + IP + L4 headers
  uint16_t gso_size = 0;     // payload bytes per segment
  uint16_t csum_start = 0;   // where the checksum starts
  uint16_t csum_offset = 0;  // where it goes, from csum_start
};
static_assert(sizeof(VnetHdr) == 10, "virtio_net_hdr is 10 bytes");
inline constexpr size_t kVnetHdrLen = sizeof(VnetHdr);
inline constexpr uint8_t kVnetNeedsCsum = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
inline constexpr uint8_t kGsoNone = 0;
inline constexpr uint8_t kGsoTcpV4 = 1;
inline constexpr uint8_t kGsoUdp = 3;  // UFO: IP fragmentation, never enabled
inline constexpr uint8_t kGsoTcpV6 = 4;
inline constexpr uint8_t kGsoUdpL4 = 5;
inline constexpr uint8_t kGsoEcn = 0x80;
inline constexpr size_t kMaxIpPacket = 65535;

// Why a packet was dropped. kNone: it was not.
enum class DropReason : uint8_t {
  kNone = 0,
  kNoPeer,         // destination in no peer's subnet
  kMalformed,      // truncated, bad lengths, bad virtio_net_hdr
  kNotIpv4,        // IPv6 or garbage version
  kTooBig,         // larger than the tunnel MTU and may not be split
  kSendError,      // sendmsg refused it
  kTunWriteError,  // the TUN write failed
  kUnknownSource,  // received from an address that is no peer's PublicIP
  kCount,
};
// "no_peer", "malformed", ... (the metric's label values).
const char* DropReasonName(DropReason r);

// One's-complement sum of `data` added to `sum` (not folded). An odd length is
// padded with a zero byte.
uint32_t ChecksumAdd(const uint8_t* data, size_t len, uint32_t sum = 0);
// Folds a sum to 16 bits and complements it: the value to store (host order).
uint16_t ChecksumFinish(uint32_t sum);
// The pseudo-header sum (src, dst, protocol, L4 length), not folded.
uint32_t PseudoHeaderSum(const uint8_t* ip_header, uint8_t protocol, uint16_t l4_len);

// Big-endian field access.
inline uint16_t Load16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t Load32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | p[3];
}
inline void Store16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void Store32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

// The checked outline of an IPv4 packet.
struct Ipv4View {
  size_t ip_header_len = 0;  // 20..60
  size_t total_len = 0;      // the header's total length (<= the buffer's)
  uint8_t protocol = 0;
  uint32_t src = 0;  // host order
  uint32_t dst = 0;
  bool dont_fragment = false;
  bool is_fragment = false;  // MF set or a non-zero offset
};
// kNotIpv4 for another version, kMalformed for a bad header (short buffer,
// IHL < 5, total length shorter than the header or longer than `len`).
DropReason ParseIpv4(const uint8_t* pkt, size_t len, Ipv4View* out);

// Recomputes the IPv4 header checksum in place.
void FixIpv4HeaderChecksum(uint8_t* ip);

// Where SegmentTunPacket wrote its packets: `count` packets back to back, each of
// `segment_size` bytes except the last, which may be shorter.
struct Segments {
  size_t count = 0;
  size_t segment_size = 0;
  size_t total = 0;  // bytes written
  uint32_t dst = 0;  // the packets' IPv4 destination (host order)
};

// The worst case of SegmentTunPacket's output for a packet of `len` bytes: size
// output buffers with it. It assumes segments of at least kMinGsoSize bytes,
// TCP's minimum MSS in Linux; a packet cut finer that does not fit is dropped.
inline constexpr size_t kMinGsoSize = 88;
size_t MaxSegmentedSize(size_t len);

// Turns one packet read from TUN (`hdr` and the IP packet after it) into wire
// packets of at most `mtu` bytes in `out` (capacity `out_cap`, at least
// MaxSegmentedSize): a TSO packet (gso_type TCPV4) is split at gso_size with IP
// ID, total length, sequence number and both checksums redone, CWR only on the
// first segment, FIN and PSH only on the last; a USO packet (UDP_L4) likewise
// with UDP lengths; a packet with NEEDS_CSUM gets its checksum finished; a plain
// packet is copied. Returns kNone or why the packet must be dropped (kTooBig for
// a packet over `mtu` that may not be split: the caller answers with ICMP).
DropReason SegmentTunPacket(const VnetHdr& hdr, const uint8_t* pkt, size_t len, uint32_t mtu,
                            uint8_t* out, size_t out_cap, Segments* segs);

// Writes into `out` (at least 576 bytes) the ICMP error `type`/`code` about
// `original` that a router with address `router` would send (RFC 792/1191: the
// original header plus 8 bytes; for type 3 code 4 the next-hop MTU).
// Returns its length, or 0 when no error may be sent about `original` (not a
// first fragment, an ICMP error itself, a broadcast or zero source).
size_t BuildIcmpError(const uint8_t* original, size_t len, uint8_t type, uint8_t code, uint16_t next_hop_mtu,
                      uint32_t router, uint8_t* out, size_t out_cap);
inline constexpr uint8_t kIcmpDestUnreachable = 3;
inline constexpr uint8_t kIcmpNetUnreachable = 0;
inline constexpr uint8_t kIcmpFragNeeded = 4;

// Software GRO for the TUN write side. Feed the packets of one receive batch in
// order with Add, then Flush; `emit` is called once per packet to write to TUN:
// consecutive TCP segments of one flow (same addresses, ports, TTL, TOS, window,
// acknowledgement and options; contiguous sequence numbers; equal sizes but the
// last; only ACK, with PSH allowed on the last) become one TCPV4 GSO packet with
// NEEDS_CSUM; everything else goes through alone with a zero header, right away
// when it cannot be coalesced. TCP segments are copied into the coalescer's own
// buffers, so the receive buffers may be reused as soon as Add returns.
//
// Not thread-safe: one per data thread.
class Coalescer {
 public:
  // Receives one packet to write to TUN after `hdr`, and how many wire packets it
  // stands for. The span is valid during the call only.
  using Emit =
      absl::FunctionRef<void(const VnetHdr& hdr, absl::Span<const uint8_t> packet, size_t segments)>;

  // At most `max_flows` packets are held at once (one more flushes the oldest).
  explicit Coalescer(size_t max_flows = 8);

  // `pkt` is one IPv4 packet that ParseIpv4 accepted as `ip`. Packets of one flow
  // come out in the order they went in.
  void Add(const uint8_t* pkt, size_t len, const Ipv4View& ip, Emit emit);
  // Emits every held packet, oldest first.
  void Flush(Emit emit);

 private:
  struct Slot {
    bool used = false;
    bool coalescable = false;  // a TCP segment that others may extend
    bool closed = false;       // PSH or a short segment seen: nothing may follow
    uint64_t age = 0;
    size_t hdr_len = 0;   // IP + TCP header
    size_t mss = 0;       // payload of the first segment
    size_t segments = 0;
    uint32_t next_seq = 0;
    std::vector<uint8_t> buf;  // the packet being built
  };

  // The slot holding the same TCP flow (addresses, ports), or slots_.size().
  size_t FindFlow(const uint8_t* pkt, const Ipv4View& ip) const;
  bool CanAppend(const Slot& s, const uint8_t* pkt, size_t len, const Ipv4View& ip) const;
  void Append(Slot& s, const uint8_t* pkt, size_t len, const Ipv4View& ip);
  void Fill(Slot& s, const uint8_t* pkt, size_t len, const Ipv4View& ip);
  void EmitSlot(Slot& s, Emit emit);

  std::vector<Slot> slots_;
  uint64_t clock_ = 0;
};

}  // namespace weft::agent::udp
