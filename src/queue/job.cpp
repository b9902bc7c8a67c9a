#include "zapd/queue/job.hpp"

namespace zapd::queue {

std::string_view lane_name(lane l) noexcept { return l == lane::paid ? "paid" : "free"; }

std::optional<lane> parse_lane(std::string_view s) noexcept {
  if (s == "paid") return lane::paid;
  if (s == "free") return lane::free;
  return std::nullopt;
}

}  // namespace zapd::queue
