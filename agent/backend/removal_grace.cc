#include "agent/backend/removal_grace.h"

#include <utility>

namespace weft::agent {

std::vector<std::string> RemovalGrace::Due(const std::vector<std::string>& unwanted_keys, absl::Time now,
                                           std::vector<Held>* newly_held) {
  absl::flat_hash_map<std::string, Entry> still;
  std::vector<std::string> due;
  for (const std::string& key : unwanted_keys) {
    if (still.contains(key)) continue;  // listed twice
    auto seen = unwanted_.find(key);
    Entry e;
    if (seen != unwanted_.end()) {
      e = seen->second;
    } else {
      e.due = now + grace_;
      if (e.due > now && newly_held != nullptr) newly_held->push_back({key, e.due});
    }
    if (e.due <= now) {
      e.released = true;
      due.push_back(key);
    }
    still.emplace(key, e);
  }
  unwanted_ = std::move(still);
  return due;
}

absl::Time RemovalGrace::NextDue() const {
  absl::Time next = absl::InfiniteFuture();
  for (const auto& [key, e] : unwanted_) {
    if (!e.released && e.due < next) next = e.due;
  }
  return next;
}

}  // namespace weft::agent
