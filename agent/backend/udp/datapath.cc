#include "agent/backend/udp/datapath.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "agent/netlink/socket.h"
#include "common/log.h"

#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20  // Linux 6.2
#define TUN_F_USO6 0x40
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103  // Linux 4.18
#endif
#ifndef UDP_GRO
#define UDP_GRO 104  // Linux 5.0
#endif

namespace weft::agent::udp {

struct Datapath::Worker {
  int tun_fd = -1;
  int udp_fd = -1;
};

namespace {

constexpr size_t kTxBatch = 32;        // TUN reads per sendmmsg
constexpr size_t kRxBatch = 32;        // datagrams per recvmmsg
constexpr size_t kRxBufSize = 65536;   // a UDP GRO buffer, or one datagram
constexpr size_t kMaxGsoSegments = 64;  // UDP_MAX_SEGMENTS of older kernels
constexpr size_t kMaxUdpPayload = 65507;
constexpr int kSocketBuffer = 4 << 20;
constexpr int kSendWaitMs = 100;  // a full send buffer: wait this long, then drop

absl::Status Errno(absl::string_view what) {
  const int e = errno;
  return netlink::ErrnoToStatus(e, absl::StrCat(what, ": ", std::strerror(e)));
}

void CloseFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

// One queue of the multi-queue TUN device `name`, non-blocking, with a
// virtio_net_hdr before each packet. Offloads as asked and as the kernel has them.
absl::StatusOr<int> OpenTunQueue(const std::string& name, bool offloads, bool* tso, bool* uso) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return Errno("open /dev/net/tun");
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE | IFF_VNET_HDR;
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    absl::Status s = Errno(absl::StrCat("TUNSETIFF ", name));
    close(fd);
    return s;
  }
  *tso = *uso = false;
  unsigned flags = 0;
  if (offloads) {
    // The kernel then hands over TCP (and UDP) super-packets and partial
    // checksums, which SegmentTunPacket finishes.
    const unsigned base = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO_ECN;
    for (unsigned f : {base | TUN_F_USO4 | TUN_F_USO6, base}) {
      if (ioctl(fd, TUNSETOFFLOAD, f) == 0) {
        flags = f;
        break;
      }
    }
  }
  if (flags == 0 && ioctl(fd, TUNSETOFFLOAD, 0u) < 0) {
    absl::Status s = Errno("TUNSETOFFLOAD");
    close(fd);
    return s;
  }
  *tso = (flags & TUN_F_TSO4) != 0;
  *uso = (flags & TUN_F_USO4) != 0;
  return fd;
}

}  // namespace

absl::Status SetTunMtu(const std::string& name, uint32_t mtu) {
  // No rtnetlink call for this in the KernelProgrammer seam; the ioctl is what
  // `ip link set mtu` amounts to for a device we created ourselves.
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return Errno("socket");
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  ifr.ifr_mtu = static_cast<int>(mtu);
  const int r = ioctl(s, SIOCSIFMTU, &ifr);
  absl::Status st = r < 0 ? Errno(absl::StrCat("set MTU ", mtu, " on ", name)) : absl::OkStatus();
  close(s);
  return st;
}

namespace {

absl::StatusOr<int> OpenUdpSocket(IPv4Addr ip, uint16_t port, bool offloads, bool* gso, bool* gro) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  const int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
    absl::Status s = Errno("SO_REUSEPORT");
    close(fd);
    return s;
  }
  // Bursts of 64 KiB super-packets; the *FORCE variants pass rmem_max as root.
  for (auto [force, plain] : {std::pair{SO_RCVBUFFORCE, SO_RCVBUF}, std::pair{SO_SNDBUFFORCE, SO_SNDBUF}}) {
    if (setsockopt(fd, SOL_SOCKET, force, &kSocketBuffer, sizeof(kSocketBuffer)) < 0) {
      setsockopt(fd, SOL_SOCKET, plain, &kSocketBuffer, sizeof(kSocketBuffer));
    }
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(ip.value());
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) {
    absl::Status s = Errno(absl::StrCat("bind UDP ", ip.ToString(), ":", port));
    close(fd);
    return s;
  }
  const int zero = 0;
  *gso = offloads && setsockopt(fd, SOL_UDP, UDP_SEGMENT, &zero, sizeof(zero)) == 0;
  *gro = offloads && setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one)) == 0;
  return fd;
}

// Between two hosts every datagram has the same outer addresses and ports, so
// SO_REUSEPORT's hash would hand all of them to one socket and one receive
// thread. This classic BPF program on the group picks the socket from the
// inner packet instead (the UDP payload, at offset 0): (source port +
// destination port) mod n, so each inner flow stays on one worker, in order,
// and flows spread. A failed load (a short packet) returns 0: socket 0.
bool SteerByInnerFlow(int fd, int n) {
  sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0),         // A = version/IHL
      BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x0f),     // A = IHL
      BPF_STMT(BPF_ALU | BPF_LSH | BPF_K, 2),        // A = IP header length
      BPF_STMT(BPF_MISC | BPF_TAX, 0),               // X = A
      BPF_STMT(BPF_LD | BPF_H | BPF_IND, 0),         // A = source port
      BPF_STMT(BPF_ST, 0),                           // M[0] = A
      BPF_STMT(BPF_LD | BPF_H | BPF_IND, 2),         // A = destination port
      BPF_STMT(BPF_LDX | BPF_MEM, 0),                // X = M[0]
      BPF_STMT(BPF_ALU | BPF_ADD | BPF_X, 0),        // A += X
      BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, static_cast<uint32_t>(n)),
      BPF_STMT(BPF_RET | BPF_A, 0),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof(code) / sizeof(code[0])), code};
  return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)) == 0;
}

// Waits until `fd` has `events` (or an error); returns its revents, or 0 when
// the stop eventfd fires or `timeout_ms` passes.
short WaitFor(int fd, short events, int stop_fd, int timeout_ms) {
  pollfd p[2] = {{fd, events, 0}, {stop_fd, POLLIN, 0}};
  while (true) {
    const int r = poll(p, 2, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0 || (p[1].revents & POLLIN)) return 0;
    return p[0].revents;
  }
}

constexpr short kPollFailed = POLLERR | POLLHUP | POLLNVAL;

}  // namespace

DatapathStats::DatapathStats(int workers)
    : workers_(std::max(1, workers)), threads_(new ThreadCounters[2 * std::max(1, workers)]) {}

DatapathStats::Totals DatapathStats::Sum() const {
  Totals t;
  for (int i = 0; i < 2 * workers_; ++i) {
    const ThreadCounters& c = threads_[i];
    const uint64_t packets = c.packets.load(std::memory_order_relaxed);
    const uint64_t bytes = c.bytes.load(std::memory_order_relaxed);
    if (i % 2 == 0) {
      t.tx_packets += packets;
      t.tx_bytes += bytes;
    } else {
      t.rx_packets += packets;
      t.rx_bytes += bytes;
    }
    for (size_t d = 0; d < static_cast<size_t>(DropReason::kCount); ++d) {
      t.drops[d] += c.drops[d].load(std::memory_order_relaxed);
    }
    for (size_t k = 0; k < ThreadCounters::kCallCount; ++k) t.calls[k] += c.calls[k].load(std::memory_order_relaxed);
  }
  return t;
}

Datapath::Datapath(const DatapathConfig& config, std::shared_ptr<DatapathStats> stats)
    : config_(config), stats_(std::move(stats)), peers_(2 * static_cast<size_t>(config.workers)) {}

absl::StatusOr<std::unique_ptr<Datapath>> Datapath::Start(const DatapathConfig& config,
                                                          std::shared_ptr<DatapathStats> stats) {
  if (config.workers < 1 || config.workers > stats->workers()) {
    return absl::InvalidArgumentError(absl::StrCat("udp: ", config.workers, " workers, room for ", stats->workers()));
  }
  if (config.mtu < 68 || config.mtu > kMaxIpPacket) {
    return absl::InvalidArgumentError(absl::StrCat("udp: tunnel MTU ", config.mtu, " is out of range"));
  }
  std::unique_ptr<Datapath> d(new Datapath(config, std::move(stats)));
  d->stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (d->stop_fd_ < 0) return Errno("eventfd");
  bool tso = false, uso = false, gso = true, gro = true;
  for (int i = 0; i < config.workers; ++i) {
    auto w = std::make_unique<Worker>();
    bool q_tso = false, q_uso = false, s_gso = false, s_gro = false;
    absl::StatusOr<int> tun = OpenTunQueue(config.device, config.offloads, &q_tso, &q_uso);
    if (!tun.ok()) return tun.status();
    w->tun_fd = *tun;
    d->workers_.push_back(std::move(w));
    absl::StatusOr<int> sock = OpenUdpSocket(config.bind_ip, config.port, config.offloads, &s_gso, &s_gro);
    if (!sock.ok()) return sock.status();
    d->workers_.back()->udp_fd = *sock;
    // The device's offloads are the last queue's; the sockets' are all alike.
    tso = q_tso;
    uso = q_uso;
    gso = gso && s_gso;
    gro = gro && s_gro;
  }
  if (absl::Status s = SetTunMtu(config.device, config.mtu); !s.ok()) return s;
  // Sockets join the group in bind order, which is the worker order.
  const bool steer = config.workers > 1 && SteerByInnerFlow(d->workers_[0]->udp_fd, config.workers);
  d->udp_gso_ = gso;
  d->udp_gro_ = gro;
  DatapathStats& st = *d->stats_;
  st.tun_tso.store(tso);
  st.tun_uso.store(uso);
  st.udp_gso.store(gso);
  st.rx_steering.store(steer);
  st.udp_gro.store(gro);
  for (int i = 0; i < config.workers; ++i) {
    d->threads_.emplace_back([p = d.get(), i] { p->TxLoop(i); });
    d->threads_.emplace_back([p = d.get(), i] { p->RxLoop(i); });
  }
  WEFT_LOG(INFO, "udp data path started")
      .With("dev", config.device)
      .With("port", config.port)
      .With("mtu", config.mtu)
      .With("workers", config.workers)
      .With("tun_tso", tso)
      .With("tun_uso", uso)
      .With("udp_gso", gso)
      .With("udp_gro", gro)
      .With("rx_steering", steer);
  return d;
}

Datapath::~Datapath() { Stop(); }

void Datapath::Stop() {
  if (stop_fd_ >= 0) {
    const uint64_t one = 1;
    if (write(stop_fd_, &one, sizeof(one)) < 0) {
      WEFT_LOG(WARN, "udp: cannot signal the data threads");
    }
  }
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  for (auto& w : workers_) {
    CloseFd(w->tun_fd);
    CloseFd(w->udp_fd);
  }
  workers_.clear();
  CloseFd(stop_fd_);
  peers_.Reclaim();
}

void Datapath::SetPeers(const std::vector<PeerRoute>& routes) {
  peers_.Publish(std::make_unique<PeerTable>(routes));
  stats_->peers.store(static_cast<int>(routes.size()));
}

namespace {

// Writes an ICMP error about `pkt` into the TUN queue; the kernel delivers it
// to the sender. It comes from the packet's destination: any address of this
// host would be a local source arriving from outside, which the kernel drops as
// a martian, while the destination is routed through the tunnel, so the
// reverse-path check passes.
void SendIcmpError(int tun_fd, const uint8_t* pkt, size_t len, uint8_t code, uint32_t mtu, ThreadCounters& c) {
  uint8_t buf[kVnetHdrLen + 576] = {};
  const uint32_t from = Load32(pkt + 16);  // ParseIpv4 accepted pkt
  const size_t n = BuildIcmpError(pkt, len, kIcmpDestUnreachable, code, static_cast<uint16_t>(mtu), from,
                                  buf + kVnetHdrLen, sizeof(buf) - kVnetHdrLen);
  if (n == 0) return;
  ThreadCounters::Add(c.calls[ThreadCounters::kTunWrite], 1);
  if (write(tun_fd, buf, kVnetHdrLen + n) < 0) c.Drop(DropReason::kTunWriteError);
}

}  // namespace

void Datapath::TxLoop(int w) {
  ThreadCounters& c = stats_->tx(w);
  const int tun = workers_[w]->tun_fd;
  const int udp = workers_[w]->udp_fd;
  std::vector<uint8_t> rbuf(kVnetHdrLen + kMaxIpPacket);
  const size_t reserve = MaxSegmentedSize(kMaxIpPacket);
  std::vector<uint8_t> arena(4 * reserve);

  // One sendmmsg entry: `segments` packets of `seg_size` bytes back to back.
  struct Out {
    size_t off, len, seg_size, segments;
    uint32_t peer;
  };
  std::vector<Out> outs;
  std::vector<mmsghdr> mm;
  std::vector<iovec> iov;
  std::vector<sockaddr_in> addrs;
  constexpr size_t kCmsgSpace = CMSG_SPACE(sizeof(uint16_t));
  std::vector<char> cmsgs;

  bool gso = udp_gso_;  // cleared when the route's device refuses UDP GSO

  auto queue = [&](size_t off, size_t len, size_t seg_size, size_t segments, uint32_t peer) {
    outs.push_back(Out{off, len, seg_size, segments, peer});
  };

  auto flush = [&] {
    const size_t n = outs.size();
    if (n == 0) return;
    mm.assign(n, mmsghdr{});
    iov.resize(n);
    addrs.resize(n);
    cmsgs.assign(n * kCmsgSpace, 0);
    for (size_t i = 0; i < n; ++i) {
      const Out& o = outs[i];
      iov[i] = iovec{arena.data() + o.off, o.len};
      addrs[i] = sockaddr_in{};
      addrs[i].sin_family = AF_INET;
      addrs[i].sin_port = htons(config_.port);
      addrs[i].sin_addr.s_addr = htonl(o.peer);
      msghdr& h = mm[i].msg_hdr;
      h.msg_name = &addrs[i];
      h.msg_namelen = sizeof(sockaddr_in);
      h.msg_iov = &iov[i];
      h.msg_iovlen = 1;
      if (o.segments > 1) {
        // One UDP GSO send: the kernel cuts the buffer into seg_size datagrams.
        h.msg_control = cmsgs.data() + i * kCmsgSpace;
        h.msg_controllen = kCmsgSpace;
        cmsghdr* cm = CMSG_FIRSTHDR(&h);
        cm->cmsg_level = SOL_UDP;
        cm->cmsg_type = UDP_SEGMENT;
        cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        const uint16_t gso_size = static_cast<uint16_t>(o.seg_size);
        std::memcpy(CMSG_DATA(cm), &gso_size, sizeof(gso_size));
      }
    }
    size_t i = 0;
    while (i < n) {
      const int r = sendmmsg(udp, &mm[i], static_cast<unsigned>(n - i), 0);
      ThreadCounters::Add(c.calls[ThreadCounters::kSendmmsg], 1);
      if (r > 0) {
        for (size_t j = i; j < i + static_cast<size_t>(r); ++j) {
          ThreadCounters::Add(c.packets, outs[j].segments);
          ThreadCounters::Add(c.bytes, outs[j].len);
        }
        i += static_cast<size_t>(r);
        continue;
      }
      if (errno == EINTR) continue;
      if ((errno == EAGAIN || errno == ENOBUFS) && (WaitFor(udp, POLLOUT, stop_fd_, kSendWaitMs) & POLLOUT)) continue;
      const int err = errno;
      if (outs[i].segments > 1 && (err == EIO || err == EINVAL)) {
        // The outgoing device cannot take UDP GSO (no checksum offload, or the
        // datagrams would need fragmenting): send this run one datagram at a
        // time, and no more GSO from this thread.
        if (gso) {
          WEFT_LOG(WARN, "udp: the kernel refused UDP GSO; sending datagrams one by one")
              .With("error", absl::string_view(std::strerror(err)));
          gso = false;
          stats_->udp_gso.store(false);
        }
        const Out& o = outs[i];
        for (size_t k = 0; k < o.segments; ++k) {
          const size_t off = k * o.seg_size;
          const size_t len = std::min(o.seg_size, o.len - off);
          ThreadCounters::Add(c.calls[ThreadCounters::kSendmmsg], 1);
          if (sendto(udp, arena.data() + o.off + off, len, 0, reinterpret_cast<sockaddr*>(&addrs[i]),
                     sizeof(sockaddr_in)) < 0) {
            c.Drop(DropReason::kSendError);
            continue;
          }
          ThreadCounters::Add(c.packets, 1);
          ThreadCounters::Add(c.bytes, len);
        }
        ++i;
        continue;
      }
      // This message is refused (or the buffer stayed full): drop it, go on.
      c.Drop(DropReason::kSendError, outs[i].segments);
      ++i;
    }
    outs.clear();
  };

  for (short ev; (ev = WaitFor(tun, POLLIN, stop_fd_, -1)) != 0;) {
    if (ev & kPollFailed) {
      // The device was deleted under the queue: spinning on it helps nobody;
      // the backend's next pass makes the device and the workers again.
      WEFT_LOG(WARN, "udp: TUN queue failed; worker stops").With("worker", w);
      return;
    }
    const PeerTable* peers = peers_.Enter(static_cast<size_t>(w));
    size_t used = 0;
    for (size_t reads = 0; reads < kTxBatch && arena.size() - used >= reserve; ++reads) {
      const ssize_t n = read(tun, rbuf.data(), rbuf.size());
      ThreadCounters::Add(c.calls[ThreadCounters::kTunRead], 1);
      if (n < 0) break;  // EAGAIN: drained
      if (static_cast<size_t>(n) < kVnetHdrLen) {
        c.Drop(DropReason::kMalformed);
        continue;
      }
      VnetHdr hdr;
      std::memcpy(&hdr, rbuf.data(), kVnetHdrLen);
      const uint8_t* pkt = rbuf.data() + kVnetHdrLen;
      const size_t len = static_cast<size_t>(n) - kVnetHdrLen;
      Segments segs;
      const DropReason r =
          SegmentTunPacket(hdr, pkt, len, config_.mtu, arena.data() + used, arena.size() - used, &segs);
      if (r != DropReason::kNone) {
        c.Drop(r);
        Ipv4View ip;
        if (r == DropReason::kTooBig && ParseIpv4(pkt, len, &ip) == DropReason::kNone && ip.dont_fragment) {
          SendIcmpError(tun, pkt, len, kIcmpFragNeeded, config_.mtu, c);
        }
        continue;
      }
      uint32_t peer = 0;
      if (!peers->Lookup(segs.dst, &peer)) {
        c.Drop(DropReason::kNoPeer, segs.count);
        SendIcmpError(tun, pkt, len, kIcmpNetUnreachable, 0, c);
        continue;
      }
      if (segs.count > 1 && gso) {
        // Runs the kernel accepts in one send: <= 64 segments, <= 64 KiB.
        const size_t per = std::max<size_t>(1, std::min(kMaxGsoSegments, kMaxUdpPayload / segs.segment_size));
        for (size_t first = 0; first < segs.count; first += per) {
          const size_t k = std::min(per, segs.count - first);
          const size_t off = used + first * segs.segment_size;
          const size_t bytes = first + k < segs.count ? k * segs.segment_size : used + segs.total - off;
          queue(off, bytes, segs.segment_size, k, peer);
        }
      } else {
        for (size_t i = 0; i < segs.count; ++i) {
          const size_t off = used + i * segs.segment_size;
          queue(off, i + 1 < segs.count ? segs.segment_size : used + segs.total - off, segs.segment_size, 1, peer);
        }
      }
      used += segs.total;
    }
    peers_.Exit(static_cast<size_t>(w));
    flush();
  }
}

void Datapath::RxLoop(int w) {
  ThreadCounters& c = stats_->rx(w);
  const int tun = workers_[w]->tun_fd;
  const int udp = workers_[w]->udp_fd;
  std::vector<uint8_t> bufs(kRxBatch * kRxBufSize);
  constexpr size_t kCmsgSpace = CMSG_SPACE(sizeof(int));
  std::vector<char> cmsgs(kRxBatch * kCmsgSpace);
  std::vector<iovec> iov(kRxBatch);
  std::vector<mmsghdr> mm(kRxBatch);
  std::vector<sockaddr_in> from(kRxBatch);
  Coalescer coalescer;
  const size_t reader = static_cast<size_t>(config_.workers + w);  // after the TX threads

  auto emit = [&](const VnetHdr& hdr, absl::Span<const uint8_t> pkt, size_t segments) {
    iovec v[2] = {{const_cast<VnetHdr*>(&hdr), kVnetHdrLen}, {const_cast<uint8_t*>(pkt.data()), pkt.size()}};
    ThreadCounters::Add(c.calls[ThreadCounters::kTunWrite], 1);
    if (writev(tun, v, 2) < 0) c.Drop(DropReason::kTunWriteError, segments);
  };

  for (short ev; (ev = WaitFor(udp, POLLIN, stop_fd_, -1)) != 0;) {
    if (ev & POLLERR) {
      // A pending socket error (an ICMP error about an earlier send): read it to clear it.
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(udp, SOL_SOCKET, SO_ERROR, &err, &len);
    }
    // Drain a few batches before polling again.
    for (int round = 0; round < 8; ++round) {
      for (size_t i = 0; i < kRxBatch; ++i) {
        iov[i] = iovec{bufs.data() + i * kRxBufSize, kRxBufSize};
        mm[i] = mmsghdr{};
        mm[i].msg_hdr.msg_iov = &iov[i];
        mm[i].msg_hdr.msg_iovlen = 1;
        mm[i].msg_hdr.msg_control = cmsgs.data() + i * kCmsgSpace;
        mm[i].msg_hdr.msg_controllen = kCmsgSpace;
        mm[i].msg_hdr.msg_name = &from[i];
        mm[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
      }
      const int r = recvmmsg(udp, mm.data(), kRxBatch, MSG_DONTWAIT, nullptr);
      ThreadCounters::Add(c.calls[ThreadCounters::kRecvmmsg], 1);
      if (r <= 0) break;
      // One snapshot of the peers for the whole batch (no lock per packet).
      const PeerTable* peers = peers_.Enter(reader);
      for (int i = 0; i < r; ++i) {
        const msghdr& h = mm[i].msg_hdr;
        const size_t len = mm[i].msg_len;
        if (h.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
          c.Drop(DropReason::kMalformed);
          continue;
        }
        size_t step = len;
        for (cmsghdr* cm = CMSG_FIRSTHDR(&h); cm != nullptr; cm = CMSG_NXTHDR(const_cast<msghdr*>(&h), cm)) {
          if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
            int gso = 0;
            std::memcpy(&gso, CMSG_DATA(cm), sizeof(gso));
            if (gso > 0) step = static_cast<size_t>(gso);
          }
        }
        // Only the hosts of known leases may put packets into flannel0; anyone
        // else who can reach the port would inject traffic that looks local.
        if (h.msg_namelen < sizeof(sockaddr_in) || from[i].sin_family != AF_INET ||
            !peers->KnownSource(ntohl(from[i].sin_addr.s_addr))) {
          c.Drop(DropReason::kUnknownSource, step > 0 ? (len + step - 1) / step : 1);
          continue;
        }
        const uint8_t* base = bufs.data() + static_cast<size_t>(i) * kRxBufSize;
        for (size_t off = 0; off < len; off += step) {
          const size_t seg = std::min(step, len - off);
          Ipv4View ip;
          if (DropReason d = ParseIpv4(base + off, seg, &ip); d != DropReason::kNone) {
            c.Drop(d);
            continue;
          }
          ThreadCounters::Add(c.packets, 1);
          ThreadCounters::Add(c.bytes, ip.total_len);
          coalescer.Add(base + off, seg, ip, emit);
        }
      }
      peers_.Exit(reader);
      coalescer.Flush(emit);
      if (static_cast<size_t>(r) < kRxBatch) break;
    }
  }
}

}  // namespace weft::agent::udp
