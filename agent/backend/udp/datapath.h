#pragma once
// The UDP backend's data path: the TUN device (flannel0) and the UDP sockets,
// and the threads that move packets between them.
//
// Per worker: one TUN queue (IFF_MULTI_QUEUE) and one UDP socket (SO_REUSEPORT
// on the same port), and two threads: TUN -> UDP (read a possibly 64 KiB TSO
// packet, cut it into MTU-sized IP packets, send them to the peer in batches
// with sendmmsg, runs of equal size as one UDP GSO send) and UDP -> TUN
// (recvmmsg, with UDP GRO where the kernel has it, TCP segments merged back into
// GSO packets before the TUN write). Offloads the kernel lacks are probed and
// left out; the wire format stays flannel's either way.
//
// Thread-safety: Start, SetPeers, Stop and the destructor from one thread (the
// backend's); counters are read from any thread.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/backend/udp/packet.h"
#include "agent/backend/udp/peer_table.h"
#include "common/net.h"

namespace weft::agent::udp {

// Counters of one data thread: written by that thread only (a plain load and
// store, no read-modify-write), summed when scraped.
struct alignas(64) ThreadCounters {
  enum Call { kTunRead, kTunWrite, kSendmmsg, kRecvmmsg, kCallCount };
  std::atomic<uint64_t> packets{0};  // inner packets sent (TUN -> UDP) or received
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> drops[static_cast<size_t>(DropReason::kCount)] = {};
  std::atomic<uint64_t> calls[kCallCount] = {};

  static void Add(std::atomic<uint64_t>& c, uint64_t n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void Drop(DropReason r, uint64_t n = 1) { Add(drops[static_cast<size_t>(r)], n); }
};

// What the metrics read; outlives any Datapath (the registry keeps it).
class DatapathStats {
 public:
  // Room for `workers` workers (two threads each).
  explicit DatapathStats(int workers);

  int workers() const { return workers_; }
  ThreadCounters& tx(int worker) { return threads_[2 * worker]; }
  ThreadCounters& rx(int worker) { return threads_[2 * worker + 1]; }
  const ThreadCounters& tx(int worker) const { return threads_[2 * worker]; }
  const ThreadCounters& rx(int worker) const { return threads_[2 * worker + 1]; }

  struct Totals {
    uint64_t tx_packets = 0, tx_bytes = 0, rx_packets = 0, rx_bytes = 0;
    uint64_t drops[static_cast<size_t>(DropReason::kCount)] = {};
    uint64_t calls[ThreadCounters::kCallCount] = {};
  };
  Totals Sum() const;

  // Set by the data path when it starts; read by the metrics.
  std::atomic<bool> tun_tso{false}, tun_uso{false}, udp_gso{false}, udp_gro{false};
  std::atomic<bool> rx_steering{false};  // datagrams spread over the workers by inner flow
  std::atomic<int> peers{0};

 private:
  const int workers_;
  std::unique_ptr<ThreadCounters[]> threads_;
};

struct DatapathConfig {
  std::string device = "flannel0";
  uint32_t mtu = 1472;           // of the TUN device: the largest inner packet
  uint16_t port = 8285;          // UDP, local and the peers'
  IPv4Addr bind_ip;              // local UDP address (the external interface's)
  int workers = 1;               // <= stats->workers()
  bool offloads = true;          // false: no TUN offloads, UDP GSO or GRO (for tests)
};

// Sets the MTU of device `name` in the calling thread's network namespace.
absl::Status SetTunMtu(const std::string& name, uint32_t mtu);

class Datapath {
 public:
  // Creates the TUN device (or attaches to an existing multi-queue one of that
  // name), sets its MTU, opens the sockets and starts the threads. The device
  // is not brought up nor addressed here (the backend does that through the
  // kernel programmer). The device disappears when the data path stops.
  static absl::StatusOr<std::unique_ptr<Datapath>> Start(const DatapathConfig& config,
                                                         std::shared_ptr<DatapathStats> stats);
  ~Datapath();  // Stop()

  // Replaces the subnet -> peer table the TUN -> UDP threads use.
  void SetPeers(const std::vector<PeerRoute>& routes);
  // Stops and joins the threads, closes the queues and sockets. Idempotent.
  void Stop();

  const DatapathConfig& config() const { return config_; }

 private:
  struct Worker;
  Datapath(const DatapathConfig& config, std::shared_ptr<DatapathStats> stats);
  void TxLoop(int w);
  void RxLoop(int w);

  const DatapathConfig config_;
  std::shared_ptr<DatapathStats> stats_;
  PeerTablePublisher peers_;
  int stop_fd_ = -1;  // eventfd: readable once Stop was called
  bool udp_gso_ = false;
  bool udp_gro_ = false;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
};

}  // namespace weft::agent::udp
