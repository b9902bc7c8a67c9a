#include "zapd/worker/retry.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>

namespace zapd::worker {
namespace {

using namespace std::chrono_literals;

constexpr std::array<std::chrono::milliseconds, 7> k_schedule = {5s, 5min, 30min, 2h, 5h, 10h, 10h};
constexpr std::chrono::milliseconds k_schedule_unit = 5s;  // `base` scales the schedule from this
constexpr std::chrono::milliseconds k_max_delay = 24h;     // no retry waits longer

}  // namespace

std::chrono::milliseconds retry_policy::delay_before(int next) const {
  if (next <= 1) return 0ms;
  const auto i = std::min<std::size_t>(static_cast<std::size_t>(next - 2), k_schedule.size() - 1);
  const double scaled = static_cast<double>(k_schedule[i].count()) * static_cast<double>(base.count()) /
                        static_cast<double>(k_schedule_unit.count());
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::min(scaled, static_cast<double>(k_max_delay.count()))));
}

std::chrono::milliseconds retry_policy::delay_for(int next, double draw, std::optional<std::chrono::milliseconds> retry_after) const {
  auto delay = delay_before(next);
  if (delay.count() > 0 && jitter > 0) {
    const double factor = 1 - jitter + 2 * jitter * std::clamp(draw, 0.0, 1.0);
    delay = std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(static_cast<double>(delay.count()) * factor)));
  }
  if (retry_after && *retry_after > delay) delay = *retry_after;
  return delay;
}

retry_policy retry_policy::with(const zaps::retry_override& o) const {
  retry_policy p = *this;
  if (o.attempts) p.max_attempts = *o.attempts;
  if (o.base_delay_ms) p.base = std::chrono::milliseconds(*o.base_delay_ms);
  return p;
}

}  // namespace zapd::worker
