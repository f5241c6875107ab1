#include "agent/backend/udp/peer_table.h"

#include <algorithm>

namespace weft::agent::udp {

PeerTable::PeerTable(const std::vector<PeerRoute>& routes) {
  for (const PeerRoute& r : routes) {
    sources_.insert(r.public_ip.value());
    const int len = r.subnet.prefix_len();
    if (map_.emplace(Key(r.subnet.network().value(), len), r.public_ip.value()).second &&
        std::find(prefix_lens_.begin(), prefix_lens_.end(), len) == prefix_lens_.end()) {
      prefix_lens_.push_back(len);
    }
  }
  std::sort(prefix_lens_.begin(), prefix_lens_.end(), std::greater<int>());
}

PeerTablePublisher::PeerTablePublisher(size_t readers)
    : current_(new PeerTable()), readers_(new Reader[readers]), num_readers_(readers) {}

PeerTablePublisher::~PeerTablePublisher() { delete current_.load(); }

void PeerTablePublisher::Publish(std::unique_ptr<PeerTable> table) {
  const PeerTable* old = current_.exchange(table.release(), std::memory_order_seq_cst);
  Retired r;
  r.table.reset(const_cast<PeerTable*>(old));
  r.seen.resize(num_readers_);
  for (size_t i = 0; i < num_readers_; ++i) r.seen[i] = readers_[i].seq.load(std::memory_order_seq_cst);
  retired_.push_back(std::move(r));
  Reclaim();
}

size_t PeerTablePublisher::Reclaim() {
  // A reader that was outside (even) at the swap, or has moved on since, can
  // only have loaded the new pointer.
  auto done = [this](const Retired& r) {
    for (size_t i = 0; i < num_readers_; ++i) {
      if (r.seen[i] % 2 == 1 && readers_[i].seq.load(std::memory_order_acquire) == r.seen[i]) return false;
    }
    return true;
  };
  retired_.erase(std::remove_if(retired_.begin(), retired_.end(), done), retired_.end());
  return retired_.size();
}

}  // namespace weft::agent::udp
