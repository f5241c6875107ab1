// The UDP backend's packet code on handmade packets. Checksums are verified with
// a separate, naive RFC 1071 implementation (RefSum) rather than the code under
// test.

#include "agent/backend/udp/packet.h"

#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace weft::agent::udp {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint8_t kFin = 0x01, kSyn = 0x02, kPsh = 0x08, kAck = 0x10, kCwr = 0x80;
constexpr uint32_t kSrc = 0x0a010502;  // 10.1.5.2
constexpr uint32_t kDst = 0x0a010703;  // 10.1.7.3

// RFC 1071, the slow obvious way: 16-bit big-endian words, end-around carry.
uint16_t RefSum(const Bytes& b) {
  uint32_t sum = 0;
  for (size_t i = 0; i < b.size(); i += 2) {
    uint32_t w = static_cast<uint32_t>(b[i]) << 8;
    if (i + 1 < b.size()) w |= b[i + 1];
    sum += w;
    sum = (sum & 0xffff) + (sum >> 16);
  }
  return static_cast<uint16_t>(sum);
}

uint16_t Get16(const Bytes& b, size_t off) { return static_cast<uint16_t>(b[off] << 8 | b[off + 1]); }
uint32_t Get32(const Bytes& b, size_t off) {
  return static_cast<uint32_t>(Get16(b, off)) << 16 | Get16(b, off + 2);
}
void Put16(Bytes& b, size_t off, uint16_t v) {
  b[off] = static_cast<uint8_t>(v >> 8);
  b[off + 1] = static_cast<uint8_t>(v);
}
void Put32(Bytes& b, size_t off, uint32_t v) {
  Put16(b, off, static_cast<uint16_t>(v >> 16));
  Put16(b, off + 2, static_cast<uint16_t>(v));
}

size_t Ihl(const Bytes& p) { return static_cast<size_t>(p[0] & 0xf) * 4; }

bool IpChecksumOk(const Bytes& p) { return RefSum(Bytes(p.begin(), p.begin() + Ihl(p))) == 0xffff; }

// The L4 checksum over the pseudo header and the L4 bytes sums to all ones.
bool L4ChecksumOk(const Bytes& p) {
  const size_t ihl = Ihl(p);
  const size_t total = Get16(p, 2);
  Bytes pseudo(p.begin() + 12, p.begin() + 20);
  pseudo.push_back(0);
  pseudo.push_back(p[9]);
  pseudo.push_back(static_cast<uint8_t>((total - ihl) >> 8));
  pseudo.push_back(static_cast<uint8_t>(total - ihl));
  pseudo.insert(pseudo.end(), p.begin() + ihl, p.begin() + total);
  return RefSum(pseudo) == 0xffff;
}

void SetIpChecksum(Bytes& p) {
  Put16(p, 10, 0);
  Put16(p, 10, static_cast<uint16_t>(~RefSum(Bytes(p.begin(), p.begin() + Ihl(p)))));
}

void SetL4Checksum(Bytes& p) {
  const size_t ihl = Ihl(p);
  const size_t field = ihl + (p[9] == 6 ? 16 : 6);
  Put16(p, field, 0);
  const size_t total = Get16(p, 2);
  Bytes pseudo(p.begin() + 12, p.begin() + 20);
  pseudo.insert(pseudo.end(), {0, p[9], static_cast<uint8_t>((total - ihl) >> 8), static_cast<uint8_t>(total - ihl)});
  pseudo.insert(pseudo.end(), p.begin() + ihl, p.begin() + total);
  uint16_t c = static_cast<uint16_t>(~RefSum(pseudo));
  if (p[9] == 17 && c == 0) c = 0xffff;
  Put16(p, field, c);
}

struct TcpSpec {
  uint32_t src = kSrc, dst = kDst;
  uint16_t sport = 40000, dport = 5201;
  uint32_t seq = 1000, ack = 7777;
  uint8_t flags = kAck;
  uint16_t window = 502;
  uint16_t id = 100;
  bool df = true;
  uint8_t ttl = 63;
  size_t payload = 100;
  Bytes ip_options;   // a multiple of 4
  Bytes tcp_options;  // a multiple of 4
  uint8_t fill = 0;   // payload byte i is (fill + i) % 251
};

Bytes MakeTcp(const TcpSpec& s) {
  const size_t ihl = 20 + s.ip_options.size();
  const size_t thl = 20 + s.tcp_options.size();
  Bytes p(ihl + thl + s.payload, 0);
  p[0] = static_cast<uint8_t>(0x40 | ihl / 4);
  Put16(p, 2, static_cast<uint16_t>(p.size()));
  Put16(p, 4, s.id);
  Put16(p, 6, s.df ? 0x4000 : 0);
  p[8] = s.ttl;
  p[9] = 6;
  Put32(p, 12, s.src);
  Put32(p, 16, s.dst);
  std::copy(s.ip_options.begin(), s.ip_options.end(), p.begin() + 20);
  Put16(p, ihl, s.sport);
  Put16(p, ihl + 2, s.dport);
  Put32(p, ihl + 4, s.seq);
  Put32(p, ihl + 8, s.ack);
  p[ihl + 12] = static_cast<uint8_t>(thl / 4 << 4);
  p[ihl + 13] = s.flags;
  Put16(p, ihl + 14, s.window);
  std::copy(s.tcp_options.begin(), s.tcp_options.end(), p.begin() + ihl + 20);
  for (size_t i = 0; i < s.payload; ++i) p[ihl + thl + i] = static_cast<uint8_t>((s.fill + i) % 251);
  SetIpChecksum(p);
  SetL4Checksum(p);
  return p;
}

Bytes MakeUdp(size_t payload, uint16_t id = 9) {
  Bytes p(28 + payload, 0);
  p[0] = 0x45;
  Put16(p, 2, static_cast<uint16_t>(p.size()));
  Put16(p, 4, id);
  Put16(p, 6, 0x4000);
  p[8] = 64;
  p[9] = 17;
  Put32(p, 12, kSrc);
  Put32(p, 16, kDst);
  Put16(p, 20, 5353);
  Put16(p, 22, 8285);
  Put16(p, 24, static_cast<uint16_t>(8 + payload));
  for (size_t i = 0; i < payload; ++i) p[28 + i] = static_cast<uint8_t>(i * 7);
  SetIpChecksum(p);
  SetL4Checksum(p);
  return p;
}

VnetHdr Gso(uint8_t type, uint16_t gso_size) {
  VnetHdr h{};
  h.gso_type = type;
  h.gso_size = gso_size;
  h.flags = kVnetNeedsCsum;
  return h;
}

struct SegOut {
  DropReason reason = DropReason::kNone;
  Segments segs;
  std::vector<Bytes> packets;
};

SegOut Segment(const VnetHdr& h, const Bytes& pkt, uint32_t mtu) {
  SegOut o;
  Bytes out(MaxSegmentedSize(pkt.size()));
  o.reason = SegmentTunPacket(h, pkt.data(), pkt.size(), mtu, out.data(), out.size(), &o.segs);
  if (o.reason != DropReason::kNone) return o;
  size_t off = 0;
  for (size_t i = 0; i < o.segs.count; ++i) {
    const size_t n = i + 1 < o.segs.count ? o.segs.segment_size : o.segs.total - off;
    o.packets.emplace_back(out.begin() + off, out.begin() + off + n);
    off += n;
  }
  return o;
}

TEST(ChecksumTest, Rfc1071Example) {
  const uint8_t data[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  EXPECT_EQ(ChecksumFinish(ChecksumAdd(data, sizeof(data))), static_cast<uint16_t>(~0xddf2));
  // An odd length pads with a zero byte.
  const uint8_t odd[] = {0x12, 0x34, 0x56};
  EXPECT_EQ(ChecksumFinish(ChecksumAdd(odd, 3)), static_cast<uint16_t>(~(0x1234 + 0x5600)));
}

TEST(ChecksumTest, AgreesWithReferenceOnManyLengths) {
  Bytes b(3000);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(i * 131 + 7);
  for (size_t len : {0, 1, 2, 3, 4, 5, 63, 64, 65, 1499, 3000}) {
    Bytes part(b.begin(), b.begin() + len);
    EXPECT_EQ(ChecksumFinish(ChecksumAdd(part.data(), len)), static_cast<uint16_t>(~RefSum(part))) << len;
  }
}

TEST(ParseIpv4Test, AcceptsAndRejects) {
  Bytes p = MakeTcp({});
  Ipv4View ip;
  ASSERT_EQ(ParseIpv4(p.data(), p.size(), &ip), DropReason::kNone);
  EXPECT_EQ(ip.ip_header_len, 20u);
  EXPECT_EQ(ip.total_len, p.size());
  EXPECT_EQ(ip.protocol, 6);
  EXPECT_EQ(ip.src, kSrc);
  EXPECT_EQ(ip.dst, kDst);
  EXPECT_TRUE(ip.dont_fragment);
  EXPECT_FALSE(ip.is_fragment);

  Bytes v6(40, 0);
  v6[0] = 0x60;
  EXPECT_EQ(ParseIpv4(v6.data(), v6.size(), &ip), DropReason::kNotIpv4);
  EXPECT_EQ(ParseIpv4(p.data(), 0, &ip), DropReason::kMalformed);
  EXPECT_EQ(ParseIpv4(p.data(), 19, &ip), DropReason::kMalformed);
  EXPECT_EQ(ParseIpv4(p.data(), p.size() - 1, &ip), DropReason::kMalformed);  // total > buffer
  Bytes short_ihl = p;
  short_ihl[0] = 0x44;
  EXPECT_EQ(ParseIpv4(short_ihl.data(), short_ihl.size(), &ip), DropReason::kMalformed);
  Bytes tiny_total = p;
  Put16(tiny_total, 2, 12);
  EXPECT_EQ(ParseIpv4(tiny_total.data(), tiny_total.size(), &ip), DropReason::kMalformed);
  // Trailing bytes past the total length are tolerated (and ignored).
  Bytes padded = p;
  padded.push_back(0);
  ASSERT_EQ(ParseIpv4(padded.data(), padded.size(), &ip), DropReason::kNone);
  EXPECT_EQ(ip.total_len, p.size());
  Bytes frag = p;
  Put16(frag, 6, 0x2000);
  ASSERT_EQ(ParseIpv4(frag.data(), frag.size(), &ip), DropReason::kNone);
  EXPECT_TRUE(ip.is_fragment);
}

TEST(SegmentTest, PlainPacketIsCopied) {
  const Bytes p = MakeTcp({.payload = 1000});
  SegOut o = Segment(VnetHdr{}, p, 1472);
  ASSERT_EQ(o.reason, DropReason::kNone);
  ASSERT_EQ(o.packets.size(), 1u);
  EXPECT_EQ(o.packets[0], p);
  EXPECT_EQ(o.segs.dst, kDst);
}

TEST(SegmentTest, PlainPacketOverMtuIsTooBig) {
  const Bytes p = MakeTcp({.payload = 1500});
  EXPECT_EQ(Segment(VnetHdr{}, p, 1472).reason, DropReason::kTooBig);
}

TEST(SegmentTest, FinishesPartialChecksum) {
  for (bool udp : {false, true}) {
    Bytes p = udp ? MakeUdp(333) : MakeTcp({.payload = 777});
    const Bytes good = p;
    const size_t field = 20 + (udp ? 6 : 16);
    // What the kernel leaves with CHECKSUM_PARTIAL: the folded pseudo-header sum.
    Bytes pseudo(p.begin() + 12, p.begin() + 20);
    pseudo.insert(pseudo.end(), {0, p[9], static_cast<uint8_t>((p.size() - 20) >> 8),
                                 static_cast<uint8_t>(p.size() - 20)});
    Put16(p, field, RefSum(pseudo));
    ASSERT_FALSE(L4ChecksumOk(p));
    VnetHdr h{};
    h.flags = kVnetNeedsCsum;
    h.csum_start = 20;
    h.csum_offset = static_cast<uint16_t>(field - 20);
    SegOut o = Segment(h, p, 1472);
    ASSERT_EQ(o.reason, DropReason::kNone);
    ASSERT_EQ(o.packets.size(), 1u);
    EXPECT_TRUE(L4ChecksumOk(o.packets[0])) << "udp=" << udp;
    EXPECT_EQ(o.packets[0], good);
  }
}

TEST(SegmentTest, PartialChecksumOutsideThePacketIsMalformed) {
  Bytes p = MakeTcp({.payload = 10});
  VnetHdr h{};
  h.flags = kVnetNeedsCsum;
  h.csum_start = static_cast<uint16_t>(p.size() - 1);
  h.csum_offset = 16;
  EXPECT_EQ(Segment(h, p, 1472).reason, DropReason::kMalformed);
  h.csum_start = 4;  // inside the IP header
  h.csum_offset = 0;
  EXPECT_EQ(Segment(h, p, 1472).reason, DropReason::kMalformed);
}

TEST(SegmentTest, TsoSplitsWithFixedHeaders) {
  TcpSpec spec;
  spec.payload = 4000;
  spec.flags = kAck | kPsh | kFin | kCwr;
  spec.seq = 0xfffff000;  // wraps during the split
  spec.id = 0xffff;       // so does the IP ID
  const Bytes p = MakeTcp(spec);
  SegOut o = Segment(Gso(kGsoTcpV4, 1400), p, 1500);
  ASSERT_EQ(o.reason, DropReason::kNone);
  ASSERT_EQ(o.packets.size(), 3u);
  EXPECT_EQ(o.segs.segment_size, 1440u);
  EXPECT_EQ(o.segs.total, 4000u + 3 * 40);
  Bytes payload;
  for (size_t i = 0; i < 3; ++i) {
    const Bytes& s = o.packets[i];
    SCOPED_TRACE(i);
    EXPECT_EQ(Get16(s, 2), s.size());
    EXPECT_EQ(s.size(), i < 2 ? 1440u : 1240u);
    EXPECT_EQ(Get16(s, 4), static_cast<uint16_t>(0xffff + i));
    EXPECT_EQ(Get32(s, 24), static_cast<uint32_t>(0xfffff000u + i * 1400));
    EXPECT_EQ(Get32(s, 28), spec.ack);
    const uint8_t flags = s[33];
    EXPECT_EQ((flags & kCwr) != 0, i == 0);
    EXPECT_EQ((flags & kPsh) != 0, i == 2);
    EXPECT_EQ((flags & kFin) != 0, i == 2);
    EXPECT_TRUE(flags & kAck);
    EXPECT_TRUE(IpChecksumOk(s));
    EXPECT_TRUE(L4ChecksumOk(s));
    // Everything else in the headers is the original's.
    EXPECT_EQ(Bytes(s.begin() + 6, s.begin() + 10), Bytes(p.begin() + 6, p.begin() + 10));
    EXPECT_EQ(Bytes(s.begin() + 12, s.begin() + 24), Bytes(p.begin() + 12, p.begin() + 24));
    payload.insert(payload.end(), s.begin() + 40, s.end());
  }
  EXPECT_EQ(payload, Bytes(p.begin() + 40, p.end()));
}

TEST(SegmentTest, TsoCopiesIpAndTcpOptionsIntoEverySegment) {
  TcpSpec spec;
  spec.payload = 3000;
  spec.ip_options = {0x94, 0x04, 0x00, 0x00};  // router alert
  // NOP NOP timestamp(10): 12 bytes.
  spec.tcp_options = {0x01, 0x01, 0x08, 0x0a, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78};
  const Bytes p = MakeTcp(spec);
  const size_t hlen = 24 + 32;
  SegOut o = Segment(Gso(kGsoTcpV4, 1000), p, 1500);
  ASSERT_EQ(o.reason, DropReason::kNone);
  ASSERT_EQ(o.packets.size(), 3u);
  EXPECT_EQ(o.segs.segment_size, hlen + 1000);
  for (const Bytes& s : o.packets) {
    EXPECT_EQ(Ihl(s), 24u);
    EXPECT_EQ(Bytes(s.begin() + 20, s.begin() + 24), spec.ip_options);
    EXPECT_EQ(Bytes(s.begin() + 44, s.begin() + hlen), spec.tcp_options);
    EXPECT_TRUE(IpChecksumOk(s));
    EXPECT_TRUE(L4ChecksumOk(s));
  }
}

TEST(SegmentTest, TsoExactMultipleAndSingleSegment) {
  SegOut o = Segment(Gso(kGsoTcpV4, 1000), MakeTcp({.payload = 2000}), 1500);
  ASSERT_EQ(o.reason, DropReason::kNone);
  ASSERT_EQ(o.packets.size(), 2u);
  EXPECT_EQ(o.packets[1].size(), o.segs.segment_size);
  // A "super-packet" that fits in one segment still gets its checksum finished.
  Bytes one = MakeTcp({.payload = 500});
  Put16(one, 36, 0x1234);  // a stale checksum
  o = Segment(Gso(kGsoTcpV4, 1000), one, 1500);
  ASSERT_EQ(o.reason, DropReason::kNone);
  ASSERT_EQ(o.packets.size(), 1u);
  EXPECT_TRUE(L4ChecksumOk(o.packets[0]));
}

TEST(SegmentTest, TsoLargerThanMtuIsCutAtMtu) {
  // gso_size 1448 but the tunnel carries 1472: cut at 1432.
  SegOut o = Segment(Gso(kGsoTcpV4 | kGsoEcn, 1448), MakeTcp({.payload = 3000}),
                     1472);
  ASSERT_EQ(o.reason, DropReason::kNone);
  ASSERT_EQ(o.packets.size(), 3u);
  for (const Bytes& s : o.packets) {
    EXPECT_LE(s.size(), 1472u);
    EXPECT_TRUE(L4ChecksumOk(s));
  }
  EXPECT_EQ(o.packets[0].size(), 1472u);
}

TEST(SegmentTest, UsoSplitsIntoDatagrams) {
  const Bytes p = MakeUdp(2500, 0x10);
  SegOut o = Segment(Gso(kGsoUdpL4, 1000), p, 1472);
  ASSERT_EQ(o.reason, DropReason::kNone);
  ASSERT_EQ(o.packets.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const Bytes& s = o.packets[i];
    const size_t chunk = i < 2 ? 1000 : 500;
    EXPECT_EQ(s.size(), 28 + chunk);
    EXPECT_EQ(Get16(s, 24), 8 + chunk);
    EXPECT_EQ(Get16(s, 4), 0x10 + i);
    EXPECT_TRUE(IpChecksumOk(s));
    EXPECT_TRUE(L4ChecksumOk(s));
    EXPECT_EQ(Bytes(s.begin() + 28, s.end()), Bytes(p.begin() + 28 + i * 1000, p.begin() + 28 + i * 1000 + chunk));
  }
  // A datagram may not be re-cut: too big for the tunnel.
  EXPECT_EQ(Segment(Gso(kGsoUdpL4, 1460), p, 1472).reason, DropReason::kTooBig);
}

TEST(SegmentTest, BadGsoPacketsAreMalformed) {
  const Bytes tcp = MakeTcp({.payload = 3000});
  const Bytes udp = MakeUdp(3000);
  EXPECT_EQ(Segment(Gso(kGsoTcpV4, 1000), udp, 1500).reason, DropReason::kMalformed);
  EXPECT_EQ(Segment(Gso(kGsoUdpL4, 1000), tcp, 1500).reason, DropReason::kMalformed);
  EXPECT_EQ(Segment(Gso(kGsoTcpV4, 0), tcp, 1500).reason, DropReason::kMalformed);
  EXPECT_EQ(Segment(Gso(kGsoUdp, 1000), udp, 1500).reason, DropReason::kMalformed);
  EXPECT_EQ(Segment(Gso(kGsoTcpV6, 1000), tcp, 1500).reason, DropReason::kMalformed);
  Bytes bad_doff = tcp;
  bad_doff[32] = 0x40;  // 16-byte TCP header
  EXPECT_EQ(Segment(Gso(kGsoTcpV4, 1000), bad_doff, 1500).reason, DropReason::kMalformed);
  Bytes huge_doff = MakeTcp({.payload = 10});
  huge_doff[32] = 0xf0;  // 60-byte header in a 30-byte segment
  EXPECT_EQ(Segment(Gso(kGsoTcpV4, 1000), huge_doff, 1500).reason, DropReason::kMalformed);
  Bytes frag = tcp;
  Put16(frag, 6, 0x2000);
  EXPECT_EQ(Segment(Gso(kGsoTcpV4, 1000), frag, 1500).reason, DropReason::kMalformed);
  Bytes truncated(tcp.begin(), tcp.begin() + 1000);  // total length says 3040
  EXPECT_EQ(Segment(Gso(kGsoTcpV4, 1000), truncated, 1500).reason, DropReason::kMalformed);
  Bytes v6(60, 0);
  v6[0] = 0x60;
  EXPECT_EQ(Segment(VnetHdr{}, v6, 1500).reason, DropReason::kNotIpv4);
}

TEST(IcmpErrorTest, FragNeededQuotesTheOriginal) {
  const Bytes p = MakeTcp({.payload = 1500});
  Bytes out(576);
  const uint32_t router = 0x0a010500;
  const size_t n = BuildIcmpError(p.data(), p.size(), kIcmpDestUnreachable, kIcmpFragNeeded, 1472, router,
                                  out.data(), out.size());
  ASSERT_EQ(n, 20u + 8 + 28);
  out.resize(n);
  EXPECT_TRUE(IpChecksumOk(out));
  EXPECT_EQ(Get16(out, 2), n);
  EXPECT_EQ(out[9], 1);
  EXPECT_EQ(Get32(out, 12), router);
  EXPECT_EQ(Get32(out, 16), kSrc);
  EXPECT_EQ(out[20], 3);
  EXPECT_EQ(out[21], 4);
  EXPECT_EQ(Get16(out, 26), 1472);
  EXPECT_EQ(RefSum(Bytes(out.begin() + 20, out.end())), 0xffff);
  EXPECT_EQ(Bytes(out.begin() + 28, out.end()), Bytes(p.begin(), p.begin() + 28));
}

TEST(IcmpErrorTest, NeverAboutErrorsFragmentsOrBroadcast) {
  Bytes out(576);
  auto build = [&](const Bytes& p) {
    return BuildIcmpError(p.data(), p.size(), kIcmpDestUnreachable, kIcmpNetUnreachable, 0, 1, out.data(),
                          out.size());
  };
  Bytes icmp = MakeUdp(40);
  icmp[9] = 1;
  icmp[20] = 8;  // echo request: an error about it is fine
  EXPECT_GT(build(icmp), 0u);
  EXPECT_EQ(out[21], 0);
  EXPECT_EQ(Get16(out, 26), 0);  // no MTU outside frag-needed
  icmp[20] = 3;  // an error about an error: never
  EXPECT_EQ(build(icmp), 0u);
  Bytes frag = MakeTcp({});
  Put16(frag, 6, 0x0010);  // offset 128
  EXPECT_EQ(build(frag), 0u);
  Bytes bcast = MakeTcp({});
  Put32(bcast, 12, 0xffffffff);
  EXPECT_EQ(build(bcast), 0u);
  EXPECT_EQ(build(Bytes(10, 0x45)), 0u);
}

// Every emitted packet, with its virtio_net_hdr.
struct Emitted {
  VnetHdr hdr;
  Bytes pkt;
  size_t segments;
};

struct Collector {
  std::vector<Emitted> out;
};

void Add(Coalescer& c, Collector& col, const Bytes& p) {
  Ipv4View ip;
  ASSERT_EQ(ParseIpv4(p.data(), p.size(), &ip), DropReason::kNone);
  auto emit = [&col](const VnetHdr& h, absl::Span<const uint8_t> s, size_t n) {
    col.out.push_back({h, Bytes(s.begin(), s.end()), n});
  };
  c.Add(p.data(), p.size(), ip, emit);
}

void Flush(Coalescer& c, Collector& col) {
  auto emit = [&col](const VnetHdr& h, absl::Span<const uint8_t> s, size_t n) {
    col.out.push_back({h, Bytes(s.begin(), s.end()), n});
  };
  c.Flush(emit);
}

// What the kernel does with NEEDS_CSUM: sum from csum_start, store at the offset.
Bytes CompleteChecksum(const Emitted& e) {
  Bytes p = e.pkt;
  const size_t start = e.hdr.csum_start;
  Bytes tail(p.begin() + start, p.end());
  Put16(p, start + e.hdr.csum_offset, static_cast<uint16_t>(~RefSum(tail)));
  return p;
}

TEST(CoalescerTest, MergesASegmentedSuperPacketBack) {
  TcpSpec spec;
  spec.payload = 5000;
  spec.flags = kAck | kPsh;
  spec.tcp_options = {0x01, 0x01, 0x08, 0x0a, 0, 0, 0, 1, 0, 0, 0, 2};
  const Bytes super = MakeTcp(spec);
  SegOut o = Segment(Gso(kGsoTcpV4, 1388), super, 1440);
  ASSERT_EQ(o.reason, DropReason::kNone);
  ASSERT_EQ(o.packets.size(), 4u);
  Coalescer c;
  Collector col;
  for (const Bytes& s : o.packets) Add(c, col, s);
  EXPECT_TRUE(col.out.empty());
  Flush(c, col);
  ASSERT_EQ(col.out.size(), 1u);
  const Emitted& e = col.out[0];
  EXPECT_EQ(e.segments, 4u);
  EXPECT_EQ(e.hdr.gso_type, kGsoTcpV4);
  EXPECT_EQ(e.hdr.flags, kVnetNeedsCsum);
  EXPECT_EQ(e.hdr.gso_size, 1388);
  EXPECT_EQ(e.hdr.hdr_len, 52);
  EXPECT_EQ(e.hdr.csum_start, 20);
  EXPECT_EQ(e.hdr.csum_offset, 16);
  EXPECT_TRUE(IpChecksumOk(e.pkt));
  const Bytes done = CompleteChecksum(e);
  EXPECT_TRUE(L4ChecksumOk(done));
  // The same packet as before segmentation, but for the IP ID of the first segment.
  EXPECT_EQ(Bytes(done.begin() + 20, done.end()), Bytes(super.begin() + 20, super.end()));
  EXPECT_EQ(Get16(done, 2), super.size());
  EXPECT_EQ(done[33] & kPsh, kPsh);
}

TEST(CoalescerTest, GapInSequenceStartsANewPacketInOrder) {
  Coalescer c;
  Collector col;
  Add(c, col, MakeTcp({.seq = 0, .payload = 100}));
  Add(c, col, MakeTcp({.seq = 100, .payload = 100}));
  Add(c, col, MakeTcp({.seq = 300, .payload = 100}));  // 200..299 lost
  Add(c, col, MakeTcp({.seq = 400, .payload = 100}));
  Flush(c, col);
  ASSERT_EQ(col.out.size(), 2u);
  EXPECT_EQ(col.out[0].segments, 2u);
  EXPECT_EQ(Get32(col.out[0].pkt, 24), 0u);
  EXPECT_EQ(col.out[1].segments, 2u);
  EXPECT_EQ(Get32(col.out[1].pkt, 24), 300u);
}

TEST(CoalescerTest, ShortSegmentOrPshEndsTheRun) {
  Coalescer c;
  Collector col;
  Add(c, col, MakeTcp({.seq = 0, .payload = 100}));
  Add(c, col, MakeTcp({.seq = 100, .payload = 50}));   // short: last of its run
  Add(c, col, MakeTcp({.seq = 150, .payload = 100}));  // must not be glued after a short one
  Add(c, col, MakeTcp({.seq = 250, .flags = kAck | kPsh, .payload = 100}));
  Add(c, col, MakeTcp({.seq = 350, .payload = 100}));
  Add(c, col, MakeTcp({.seq = 450, .payload = 200}));  // larger than the run's size
  Flush(c, col);
  ASSERT_EQ(col.out.size(), 4u);
  EXPECT_EQ(col.out[0].segments, 2u);
  EXPECT_EQ(col.out[1].segments, 2u);
  EXPECT_EQ(col.out[1].pkt[33] & kPsh, kPsh);
  EXPECT_EQ(col.out[2].segments, 1u);
  EXPECT_EQ(col.out[3].segments, 1u);
  // A lone segment goes out as it came, checksum included, with a zero header.
  EXPECT_EQ(col.out[2].hdr.gso_type, kGsoNone);
  EXPECT_EQ(col.out[2].hdr.flags, 0);
  EXPECT_EQ(col.out[2].pkt, MakeTcp({.seq = 350, .payload = 100}));
}

TEST(CoalescerTest, HeadersThatDifferAreNotMerged) {
  Coalescer c;
  Collector col;
  Add(c, col, MakeTcp({.seq = 0, .payload = 100}));
  Add(c, col, MakeTcp({.seq = 100, .ack = 1, .payload = 100}));     // another ack
  Add(c, col, MakeTcp({.seq = 200, .ack = 1, .window = 9, .payload = 100}));  // window
  Add(c, col, MakeTcp({.seq = 300, .ack = 1, .window = 9, .ttl = 5, .payload = 100}));  // TTL
  Add(c, col, MakeTcp({.seq = 400, .ack = 1, .window = 9, .ttl = 5, .payload = 100,
                       .tcp_options = {1, 1, 1, 1}}));  // options
  Flush(c, col);
  EXPECT_EQ(col.out.size(), 5u);
  for (const Emitted& e : col.out) EXPECT_EQ(e.segments, 1u);
}

TEST(CoalescerTest, FlowsAreKeptApartAndOthersPassAtOnce) {
  Coalescer c;
  Collector col;
  Add(c, col, MakeTcp({.sport = 1, .seq = 0, .payload = 100}));
  Add(c, col, MakeTcp({.sport = 2, .seq = 0, .payload = 100}));
  Add(c, col, MakeUdp(50));  // not TCP: written right away
  ASSERT_EQ(col.out.size(), 1u);
  EXPECT_EQ(col.out[0].pkt[9], 17);
  Add(c, col, MakeTcp({.sport = 1, .seq = 100, .payload = 100}));
  Add(c, col, MakeTcp({.sport = 2, .seq = 100, .payload = 100}));
  // A SYN|ACK of flow 1 is not coalescable: flow 1's data goes first, then it.
  Add(c, col, MakeTcp({.sport = 1, .seq = 200, .flags = kSyn | kAck, .payload = 0}));
  ASSERT_EQ(col.out.size(), 3u);
  EXPECT_EQ(Get16(col.out[1].pkt, 20), 1);
  EXPECT_EQ(col.out[1].segments, 2u);
  EXPECT_EQ(col.out[2].pkt[33], kSyn | kAck);
  Flush(c, col);
  ASSERT_EQ(col.out.size(), 4u);
  EXPECT_EQ(Get16(col.out[3].pkt, 20), 2);
  EXPECT_EQ(col.out[3].segments, 2u);
}

TEST(CoalescerTest, MoreFlowsThanSlotsEvictsTheOldest) {
  Coalescer c(2);
  Collector col;
  Add(c, col, MakeTcp({.sport = 1, .payload = 100}));
  Add(c, col, MakeTcp({.sport = 2, .payload = 100}));
  Add(c, col, MakeTcp({.sport = 3, .payload = 100}));
  ASSERT_EQ(col.out.size(), 1u);
  EXPECT_EQ(Get16(col.out[0].pkt, 20), 1);
  Flush(c, col);
  ASSERT_EQ(col.out.size(), 3u);
  EXPECT_EQ(Get16(col.out[1].pkt, 20), 2);
  EXPECT_EQ(Get16(col.out[2].pkt, 20), 3);
}

TEST(CoalescerTest, StopsBeforeTheIpLengthLimit) {
  Coalescer c;
  Collector col;
  uint32_t seq = 0;
  for (int i = 0; i < 50; ++i) {
    Add(c, col, MakeTcp({.seq = seq, .payload = 1400}));
    seq += 1400;
  }
  Flush(c, col);
  ASSERT_EQ(col.out.size(), 2u);
  size_t segments = 0;
  for (const Emitted& e : col.out) {
    EXPECT_LE(e.pkt.size(), 65535u);
    EXPECT_TRUE(L4ChecksumOk(CompleteChecksum(e)));
    segments += e.segments;
  }
  EXPECT_EQ(segments, 50u);
  EXPECT_EQ(col.out[0].segments, 46u);  // 40 + 46 * 1400 = 64440
}

TEST(DropReasonTest, Names) {
  EXPECT_STREQ(DropReasonName(DropReason::kNoPeer), "no_peer");
  EXPECT_STREQ(DropReasonName(DropReason::kTooBig), "too_big");
  EXPECT_STREQ(DropReasonName(DropReason::kTunWriteError), "tun_write_error");
}

}  // namespace
}  // namespace weft::agent::udp
