#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

namespace zapd::kafka {

/// Which offset a consumer may store for each partition when messages finish out of order.
/// Per (topic, partition): the offsets polled and not done yet, the highest done offset, and
/// the last offset handed out for storing. `finished` answers the offset to store: the lowest
/// offset still in flight when some remain, else the highest done + 1; only when that is
/// above what it answered before (or, at first, the partition's first polled offset, where
/// this member started), never past an unfinished message.
///
/// Not thread-safe: `consumer` guards it with its mutex. Pure bookkeeping, no Kafka.
class offset_tracker {
 public:
  /// A message was handed out (poll).
  void started(std::string_view topic, std::int32_t partition, std::int64_t offset);
  /// A message is done: the offset to store now, or nullopt when the stored offset does not
  /// move (an earlier message is still in flight) or the message is unknown (its partition
  /// was revoked and dropped since, or it was finished already).
  std::optional<std::int64_t> finished(std::string_view topic, std::int32_t partition, std::int64_t offset);
  /// Forgets a partition (revoked: its in-flight messages go to another member).
  void drop(std::string_view topic, std::int32_t partition);
  void clear() { parts_.clear(); }
  /// Messages started and not finished, over every partition.
  std::size_t in_flight() const;

 private:
  struct partition_state {
    std::set<std::int64_t> in_flight;
    std::int64_t highest_done = -1;
    std::int64_t stored = -1;  // the last offset `finished` answered, at first the first started
  };
  std::map<std::pair<std::string, std::int32_t>, partition_state, std::less<>> parts_;
};

}  // namespace zapd::kafka
