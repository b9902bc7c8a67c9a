#pragma once

#include <chrono>
#include <optional>

#include "zapd/zaps/definition.hpp"

namespace zapd::worker {

/// When a failed attempt is tried again, Svix-like: attempt 1 at once, then attempt 2 after
/// 5 s, 3 after 5 min, then 30 min, 2 h, 5 h, 10 h, 10 h; each delay +-`jitter`, scaled by
/// base / 5 s and capped at 24 h; at most `max_attempts` attempts. A Retry-After longer than
/// the delay wins.
/// A zap may override both: {"retry": {"attempts": N, "baseDelayMs": M}} in its definition.
struct retry_policy {
  std::chrono::milliseconds base{5000};
  int max_attempts = 8;
  double jitter = 0.2;

  /// Delay before attempt `next` (2..max_attempts), without jitter.
  std::chrono::milliseconds delay_before(int next) const;
  /// The delay before attempt `next` with jitter applied: `draw` in [0, 1) picks where in
  /// [1 - jitter, 1 + jitter] it falls. A longer `retry_after` (the server's) wins.
  std::chrono::milliseconds delay_for(int next, double draw, std::optional<std::chrono::milliseconds> retry_after) const;
  /// This policy with a zap's own settings applied over it.
  retry_policy with(const zaps::retry_override& o) const;
};

}  // namespace zapd::worker
