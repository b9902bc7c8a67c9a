#include "zapd/kafka/offset_tracker.hpp"

#include <algorithm>

namespace zapd::kafka {

void offset_tracker::started(std::string_view topic, std::int32_t partition, std::int64_t offset) {
  auto [it, fresh] = parts_.try_emplace({std::string(topic), partition});
  // The first message polled is where this member started: storing it would change nothing.
  if (fresh) it->second.stored = offset;
  it->second.in_flight.insert(offset);
}

std::optional<std::int64_t> offset_tracker::finished(std::string_view topic, std::int32_t partition,
                                                     std::int64_t offset) {
  auto it = parts_.find(std::pair<std::string, std::int32_t>(topic, partition));
  if (it == parts_.end()) return std::nullopt;
  auto& p = it->second;
  if (p.in_flight.erase(offset) == 0) return std::nullopt;
  p.highest_done = std::max(p.highest_done, offset);
  // Everything below the lowest unfinished message is done; with none left, all polled are.
  std::int64_t next = p.in_flight.empty() ? p.highest_done + 1 : *p.in_flight.begin();
  if (next <= p.stored) return std::nullopt;
  p.stored = next;
  return next;
}

void offset_tracker::drop(std::string_view topic, std::int32_t partition) {
  parts_.erase(std::pair<std::string, std::int32_t>(topic, partition));
}

std::size_t offset_tracker::in_flight() const {
  std::size_t n = 0;
  for (const auto& [key, p] : parts_) n += p.in_flight.size();
  return n;
}

}  // namespace zapd::kafka
