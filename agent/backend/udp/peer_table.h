#pragma once
// Which peer (PublicIP) carries packets for which subnet, and which source
// addresses may send encapsulated packets in (the PublicIPs of the peers'
// leases), read by the data threads on every packet without a lock.
//
// PeerTable is an immutable snapshot. PeerTablePublisher hands snapshots to a
// fixed set of reader threads RCU-style: a reader brackets each batch of
// packets with Enter/Exit (one seq_cst store per batch, none per packet); the
// writer swaps the pointer and frees an old snapshot only once every reader has
// been outside a batch since the swap.

#include <atomic>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "common/net.h"

namespace weft::agent::udp {

struct PeerRoute {
  IPv4Net subnet;
  IPv4Addr public_ip;
};

class PeerTable {
 public:
  PeerTable() = default;
  // When two routes have the same subnet the first wins.
  explicit PeerTable(const std::vector<PeerRoute>& routes);

  // The PublicIP of the peer whose subnet holds `dst` (host order); the most
  // specific subnet wins. False when none does.
  bool Lookup(uint32_t dst, uint32_t* public_ip) const {
    for (int len : prefix_lens_) {
      const uint32_t mask = len == 0 ? 0 : ~uint32_t{0} << (32 - len);
      auto it = map_.find(Key(dst & mask, len));
      if (it != map_.end()) {
        *public_ip = it->second;
        return true;
      }
    }
    return false;
  }
  size_t size() const { return map_.size(); }

  // Whether `ip` (host order) is the PublicIP of a peer in the table: only
  // those may send encapsulated packets in.
  bool KnownSource(uint32_t ip) const { return sources_.contains(ip); }

 private:
  static uint64_t Key(uint32_t network, int len) { return uint64_t{static_cast<uint32_t>(len)} << 32 | network; }

  std::vector<int> prefix_lens_;  // distinct, longest first; usually one (SubnetLen)
  absl::flat_hash_map<uint64_t, uint32_t> map_;
  absl::flat_hash_set<uint32_t> sources_;
};

class PeerTablePublisher {
 public:
  // `readers` threads may read, each with its own index 0..readers-1.
  explicit PeerTablePublisher(size_t readers);
  ~PeerTablePublisher();
  PeerTablePublisher(const PeerTablePublisher&) = delete;
  PeerTablePublisher& operator=(const PeerTablePublisher&) = delete;

  // Reader `r` only. The table stays valid until Exit(r). Never null.
  const PeerTable* Enter(size_t r) {
    Reader& rd = readers_[r];
    rd.seq.store(rd.seq.load(std::memory_order_relaxed) + 1, std::memory_order_seq_cst);  // odd: inside
    return current_.load(std::memory_order_seq_cst);
  }
  void Exit(size_t r) {
    Reader& rd = readers_[r];
    rd.seq.store(rd.seq.load(std::memory_order_relaxed) + 1, std::memory_order_release);  // even: outside
  }

  // Writer side, one caller at a time: makes `table` current and frees the old
  // snapshots no reader can still hold.
  void Publish(std::unique_ptr<PeerTable> table);
  // Frees what can be freed now; returns how many old snapshots are still held.
  size_t Reclaim();

 private:
  struct alignas(64) Reader {
    std::atomic<uint64_t> seq{0};
  };
  struct Retired {
    std::unique_ptr<PeerTable> table;
    std::vector<uint64_t> seen;  // each reader's seq at the swap
  };

  std::atomic<const PeerTable*> current_;
  std::unique_ptr<Reader[]> readers_;
  const size_t num_readers_;
  std::vector<Retired> retired_;  // writer only
};

}  // namespace weft::agent::udp
