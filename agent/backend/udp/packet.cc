#include "agent/backend/udp/packet.h"

#include <algorithm>
#include <cstring>

namespace weft::agent::udp {
namespace {

constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
constexpr size_t kIpv4MinHeader = 20;
constexpr size_t kTcpMinHeader = 20;
constexpr size_t kUdpHeader = 8;

constexpr uint8_t kTcpFin = 0x01;
constexpr uint8_t kTcpPsh = 0x08;
constexpr uint8_t kTcpAck = 0x10;
constexpr uint8_t kTcpCwr = 0x80;

// Writes the finished L4 checksum of the `l4_len` bytes at `l4` (whose checksum
// field, at `field`, is zeroed first).
void FillL4Checksum(uint8_t* ip, uint8_t* l4, size_t l4_len, size_t field, uint8_t protocol) {
  Store16(l4 + field, 0);
  uint32_t sum = PseudoHeaderSum(ip, protocol, static_cast<uint16_t>(l4_len));
  uint16_t c = ChecksumFinish(ChecksumAdd(l4, l4_len, sum));
  // A UDP checksum of 0 means "none"; the same value is sent as all ones.
  if (protocol == kProtoUdp && c == 0) c = 0xffff;
  Store16(l4 + field, c);
}

DropReason CopyPlain(const VnetHdr& hdr, const uint8_t* pkt, const Ipv4View& ip, uint32_t mtu,
                     uint8_t* out, size_t out_cap, Segments* segs) {
  const size_t len = ip.total_len;
  if (len > mtu) return DropReason::kTooBig;
  if (len > out_cap) return DropReason::kMalformed;
  std::memcpy(out, pkt, len);
  if (hdr.flags & kVnetNeedsCsum) {
    // The field already holds the pseudo-header sum; the sum runs from
    // csum_start to the end (virtio's contract, as a NIC would do it).
    const size_t start = hdr.csum_start;
    const size_t field = start + hdr.csum_offset;
    if (start < ip.ip_header_len || field + 2 > len) return DropReason::kMalformed;
    uint16_t c = ChecksumFinish(ChecksumAdd(out + start, len - start));
    if (ip.protocol == kProtoUdp && c == 0) c = 0xffff;
    Store16(out + field, c);
  }
  *segs = Segments{1, len, len, ip.dst};
  return DropReason::kNone;
}

}  // namespace

const char* DropReasonName(DropReason r) {
  switch (r) {
    case DropReason::kNone: return "none";
    case DropReason::kNoPeer: return "no_peer";
    case DropReason::kMalformed: return "malformed";
    case DropReason::kNotIpv4: return "not_ipv4";
    case DropReason::kTooBig: return "too_big";
    case DropReason::kSendError: return "send_error";
    case DropReason::kTunWriteError: return "tun_write_error";
    case DropReason::kUnknownSource: return "unknown_source";
    case DropReason::kCount: break;
  }
  return "unknown";
}

uint32_t ChecksumAdd(const uint8_t* data, size_t len, uint32_t sum) {
  uint64_t s = sum;
  size_t i = 0;
  // 4 bytes at a time into a 64-bit accumulator: no carry is lost below 2^32 words.
  for (; i + 4 <= len; i += 4) s += Load32(data + i);
  for (; i + 2 <= len; i += 2) s += Load16(data + i);
  if (i < len) s += static_cast<uint32_t>(data[i]) << 8;
  while (s >> 32) s = (s & 0xffffffffu) + (s >> 32);
  return static_cast<uint32_t>(s);
}

uint16_t ChecksumFinish(uint32_t sum) {
  uint64_t s = sum;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s & 0xffff);
}

uint32_t PseudoHeaderSum(const uint8_t* ip, uint8_t protocol, uint16_t l4_len) {
  uint32_t sum = ChecksumAdd(ip + 12, 8);  // source and destination
  return sum + protocol + l4_len;
}

DropReason ParseIpv4(const uint8_t* pkt, size_t len, Ipv4View* out) {
  if (len < 1) return DropReason::kMalformed;
  if (pkt[0] >> 4 != 4) return DropReason::kNotIpv4;
  if (len < kIpv4MinHeader) return DropReason::kMalformed;
  const size_t ihl = static_cast<size_t>(pkt[0] & 0x0f) * 4;
  const size_t total = Load16(pkt + 2);
  if (ihl < kIpv4MinHeader || ihl > len || total < ihl || total > len) return DropReason::kMalformed;
  const uint16_t frag = Load16(pkt + 6);
  out->ip_header_len = ihl;
  out->total_len = total;
  out->protocol = pkt[9];
  out->src = Load32(pkt + 12);
  out->dst = Load32(pkt + 16);
  out->dont_fragment = (frag & 0x4000) != 0;
  out->is_fragment = (frag & 0x2000) != 0 || (frag & 0x1fff) != 0;
  return DropReason::kNone;
}

void FixIpv4HeaderChecksum(uint8_t* ip) {
  const size_t ihl = static_cast<size_t>(ip[0] & 0x0f) * 4;
  Store16(ip + 10, 0);
  Store16(ip + 10, ChecksumFinish(ChecksumAdd(ip, ihl)));
}

size_t MaxSegmentedSize(size_t len) {
  // Every segment repeats at most 60 + 60 bytes of headers and carries at least
  // kMinGsoSize bytes.
  return len + (len / kMinGsoSize + 1) * 120;
}

DropReason SegmentTunPacket(const VnetHdr& hdr, const uint8_t* pkt, size_t len, uint32_t mtu,
                            uint8_t* out, size_t out_cap, Segments* segs) {
  Ipv4View ip;
  if (DropReason r = ParseIpv4(pkt, len, &ip); r != DropReason::kNone) return r;
  const uint8_t gso = hdr.gso_type & ~kGsoEcn;
  if (gso == kGsoNone) return CopyPlain(hdr, pkt, ip, mtu, out, out_cap, segs);

  const size_t ihl = ip.ip_header_len;
  const size_t total = ip.total_len;
  size_t l4_hdr = 0;
  if (gso == kGsoTcpV4) {
    if (ip.protocol != kProtoTcp || ihl + kTcpMinHeader > total) return DropReason::kMalformed;
    l4_hdr = static_cast<size_t>(pkt[ihl + 12] >> 4) * 4;
    if (l4_hdr < kTcpMinHeader || ihl + l4_hdr > total) return DropReason::kMalformed;
  } else if (gso == kGsoUdpL4) {
    if (ip.protocol != kProtoUdp || ihl + kUdpHeader > total) return DropReason::kMalformed;
    l4_hdr = kUdpHeader;
  } else {
    return DropReason::kMalformed;  // UFO, TCPv6: never enabled with TUNSETOFFLOAD
  }
  if (ip.is_fragment || hdr.gso_size == 0) return DropReason::kMalformed;
  const size_t hlen = ihl + l4_hdr;
  if (mtu <= hlen) return DropReason::kTooBig;
  const size_t payload = total - hlen;
  size_t mss = hdr.gso_size;
  if (hlen + mss > mtu) {
    // TCP may be cut anywhere; UDP datagrams are the sender's messages.
    if (gso != kGsoTcpV4) return DropReason::kTooBig;
    mss = mtu - hlen;
  }
  const size_t count = payload == 0 ? 1 : (payload + mss - 1) / mss;
  if (payload + count * hlen > out_cap) return mss < kMinGsoSize ? DropReason::kMalformed : DropReason::kTooBig;

  const uint16_t id0 = Load16(pkt + 4);
  const uint32_t seq0 = gso == kGsoTcpV4 ? Load32(pkt + ihl + 4) : 0;
  const uint8_t flags = gso == kGsoTcpV4 ? pkt[ihl + 13] : 0;
  uint8_t* p = out;
  for (size_t i = 0; i < count; ++i) {
    const size_t off = i * mss;
    const size_t chunk = std::min(mss, payload - off);
    std::memcpy(p, pkt, hlen);
    std::memcpy(p + hlen, pkt + hlen + off, chunk);
    Store16(p + 2, static_cast<uint16_t>(hlen + chunk));
    Store16(p + 4, static_cast<uint16_t>(id0 + i));  // as the kernel's TSO does
    FixIpv4HeaderChecksum(p);
    uint8_t* l4 = p + ihl;
    if (gso == kGsoTcpV4) {
      Store32(l4 + 4, seq0 + static_cast<uint32_t>(off));
      uint8_t f = flags;
      if (i > 0) f &= static_cast<uint8_t>(~kTcpCwr);
      if (i + 1 < count) f &= static_cast<uint8_t>(~(kTcpFin | kTcpPsh));
      l4[13] = f;
      FillL4Checksum(p, l4, l4_hdr + chunk, 16, kProtoTcp);
    } else {
      Store16(l4 + 4, static_cast<uint16_t>(kUdpHeader + chunk));
      FillL4Checksum(p, l4, kUdpHeader + chunk, 6, kProtoUdp);
    }
    p += hlen + chunk;
  }
  segs->count = count;
  segs->segment_size = count > 1 ? hlen + mss : static_cast<size_t>(p - out);
  segs->total = static_cast<size_t>(p - out);
  segs->dst = ip.dst;
  return DropReason::kNone;
}

size_t BuildIcmpError(const uint8_t* original, size_t len, uint8_t type, uint8_t code, uint16_t next_hop_mtu,
                      uint32_t router, uint8_t* out, size_t out_cap) {
  Ipv4View ip;
  if (ParseIpv4(original, len, &ip) != DropReason::kNone) return 0;
  // RFC 1122 3.2.2: never about a non-first fragment, an ICMP error, or a
  // source that is not one host.
  if ((Load16(original + 6) & 0x1fff) != 0) return 0;
  const uint32_t src = ip.src;
  if (src == 0 || src == 0xffffffffu || (src >> 28) == 0xe || (src >> 24) == 127) return 0;
  if (ip.protocol == kProtoIcmp) {
    if (ip.total_len < ip.ip_header_len + 1) return 0;
    const uint8_t t = original[ip.ip_header_len];
    const bool query = t == 0 || t == 8 || t == 13 || t == 14 || t == 15 || t == 16 || t == 17 || t == 18;
    if (!query) return 0;
  }
  const size_t quote = std::min(ip.total_len, ip.ip_header_len + 8);
  const size_t total = kIpv4MinHeader + 8 + quote;
  if (total > out_cap) return 0;
  std::memset(out, 0, kIpv4MinHeader + 8);
  out[0] = 0x45;
  out[1] = 0xc0;  // internetwork control, as the kernel's own ICMP errors
  Store16(out + 2, static_cast<uint16_t>(total));
  out[8] = 64;
  out[9] = kProtoIcmp;
  Store32(out + 12, router);
  Store32(out + 16, src);
  FixIpv4HeaderChecksum(out);
  uint8_t* icmp = out + kIpv4MinHeader;
  icmp[0] = type;
  icmp[1] = code;
  if (type == kIcmpDestUnreachable && code == kIcmpFragNeeded) Store16(icmp + 6, next_hop_mtu);
  std::memcpy(icmp + 8, original, quote);
  Store16(icmp + 2, ChecksumFinish(ChecksumAdd(icmp, 8 + quote)));
  return total;
}

// --- Coalescer ----------------------------------------------------------------

namespace {

// A TCP segment that may start or extend a super-packet: no IP options (so the
// headers of a flow compare byte for byte), not a fragment, data, and only ACK
// or ACK|PSH among the flags.
bool Coalescable(const uint8_t* pkt, const Ipv4View& ip, size_t* hdr_len) {
  if (ip.protocol != kProtoTcp || ip.is_fragment || ip.ip_header_len != kIpv4MinHeader) return false;
  if (ip.total_len < kIpv4MinHeader + kTcpMinHeader) return false;
  const uint8_t* tcp = pkt + kIpv4MinHeader;
  const size_t doff = static_cast<size_t>(tcp[12] >> 4) * 4;
  if (doff < kTcpMinHeader || kIpv4MinHeader + doff >= ip.total_len) return false;  // no payload
  const uint8_t flags = tcp[13];
  if ((flags & ~(kTcpAck | kTcpPsh)) != 0 || (flags & kTcpAck) == 0) return false;
  *hdr_len = kIpv4MinHeader + doff;
  return true;
}

bool SameFlow(const uint8_t* a, const uint8_t* b) {
  // Addresses (12..19), then the TCP ports right after a 20-byte IP header.
  return std::memcmp(a + 12, b + 12, 8) == 0 && std::memcmp(a + 20, b + 20, 4) == 0;
}

}  // namespace

Coalescer::Coalescer(size_t max_flows) : slots_(std::max<size_t>(1, max_flows)) {
  for (Slot& s : slots_) s.buf.reserve(kMaxIpPacket);
}

size_t Coalescer::FindFlow(const uint8_t* pkt, const Ipv4View& ip) const {
  if (ip.protocol != kProtoTcp || ip.ip_header_len != kIpv4MinHeader || ip.total_len < 24) return slots_.size();
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].used && SameFlow(slots_[i].buf.data(), pkt)) return i;
  }
  return slots_.size();
}

bool Coalescer::CanAppend(const Slot& s, const uint8_t* pkt, size_t len, const Ipv4View& ip) const {
  size_t hdr_len = 0;
  if (s.closed || !Coalescable(pkt, ip, &hdr_len) || hdr_len != s.hdr_len) return false;
  const size_t payload = len - hdr_len;
  if (payload > s.mss || s.buf.size() + payload > kMaxIpPacket) return false;
  const uint8_t* first = s.buf.data();
  const uint8_t* tcp = pkt + kIpv4MinHeader;
  const uint8_t* ftcp = first + kIpv4MinHeader;
  if (Load32(tcp + 4) != s.next_seq) return false;
  // IP: version/IHL, TOS; flags/offset, TTL, protocol (ID and checksum may differ).
  if (std::memcmp(pkt, first, 2) != 0 || std::memcmp(pkt + 6, first + 6, 4) != 0) return false;
  // TCP: acknowledgement, data offset, window, then the options, all as the
  // kernel's GRO compares them; flags but PSH.
  if (std::memcmp(tcp + 8, ftcp + 8, 5) != 0 || std::memcmp(tcp + 14, ftcp + 14, 2) != 0) return false;
  if ((tcp[13] & ~kTcpPsh) != (ftcp[13] & ~kTcpPsh)) return false;
  return std::memcmp(tcp + kTcpMinHeader, ftcp + kTcpMinHeader, hdr_len - kIpv4MinHeader - kTcpMinHeader) == 0;
}

void Coalescer::Fill(Slot& s, const uint8_t* pkt, size_t len, const Ipv4View& ip) {
  s.used = true;
  s.age = clock_++;
  s.buf.assign(pkt, pkt + len);
  s.segments = 1;
  size_t hdr_len = 0;
  s.coalescable = Coalescable(pkt, ip, &hdr_len);
  s.hdr_len = hdr_len;
  s.mss = len - hdr_len;
  s.next_seq = Load32(pkt + kIpv4MinHeader + 4) + static_cast<uint32_t>(s.mss);
  s.closed = (pkt[kIpv4MinHeader + 13] & kTcpPsh) != 0;
}

void Coalescer::Append(Slot& s, const uint8_t* pkt, size_t len, const Ipv4View& ip) {
  const size_t payload = len - s.hdr_len;
  s.buf.insert(s.buf.end(), pkt + s.hdr_len, pkt + len);
  s.next_seq += static_cast<uint32_t>(payload);
  ++s.segments;
  if (pkt[kIpv4MinHeader + 13] & kTcpPsh) {
    s.buf[kIpv4MinHeader + 13] |= kTcpPsh;
    s.closed = true;
  }
  if (payload < s.mss) s.closed = true;  // a short segment ends the run
}

void Coalescer::EmitSlot(Slot& s, Emit emit) {
  VnetHdr hdr{};
  if (s.segments > 1) {
    uint8_t* p = s.buf.data();
    const size_t len = s.buf.size();
    Store16(p + 2, static_cast<uint16_t>(len));
    FixIpv4HeaderChecksum(p);
    // NEEDS_CSUM: the field holds the pseudo-header sum and the kernel sums the rest.
    Store16(p + kIpv4MinHeader + 16,
            static_cast<uint16_t>(~ChecksumFinish(
                PseudoHeaderSum(p, kProtoTcp, static_cast<uint16_t>(len - kIpv4MinHeader)))));
    hdr.flags = kVnetNeedsCsum;
    hdr.gso_type = kGsoTcpV4;
    hdr.hdr_len = static_cast<uint16_t>(s.hdr_len);
    hdr.gso_size = static_cast<uint16_t>(s.mss);
    hdr.csum_start = static_cast<uint16_t>(kIpv4MinHeader);
    hdr.csum_offset = 16;
  }
  emit(hdr, absl::Span<const uint8_t>(s.buf.data(), s.buf.size()), s.segments);
  s.used = false;
}

void Coalescer::Add(const uint8_t* pkt, size_t len, const Ipv4View& ip, Emit emit) {
  len = ip.total_len;
  const size_t flow = FindFlow(pkt, ip);
  if (flow < slots_.size()) {
    Slot& s = slots_[flow];
    if (s.coalescable && CanAppend(s, pkt, len, ip)) {
      Append(s, pkt, len, ip);
      return;
    }
    EmitSlot(s, emit);  // what came first of this flow goes first
  }
  size_t hdr_len = 0;
  if (!Coalescable(pkt, ip, &hdr_len)) {
    emit(VnetHdr{}, absl::Span<const uint8_t>(pkt, len), 1);
    return;
  }
  size_t idx = slots_.size();
  for (size_t i = 0; i < slots_.size() && idx == slots_.size(); ++i) {
    if (!slots_[i].used) idx = i;
  }
  if (idx == slots_.size()) {
    idx = 0;
    for (size_t i = 1; i < slots_.size(); ++i) {
      if (slots_[i].age < slots_[idx].age) idx = i;
    }
    EmitSlot(slots_[idx], emit);
  }
  Fill(slots_[idx], pkt, len, ip);
}

void Coalescer::Flush(Emit emit) {
  // Oldest first: the order the flows' first packets arrived in.
  while (true) {
    Slot* oldest = nullptr;
    for (Slot& s : slots_) {
      if (s.used && (oldest == nullptr || s.age < oldest->age)) oldest = &s;
    }
    if (oldest == nullptr) break;
    EmitSlot(*oldest, emit);
  }
}

}  // namespace weft::agent::udp
