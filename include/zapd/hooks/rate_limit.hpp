#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "zapd/core/clock.hpp"

namespace zapd::hooks {

/// Token buckets keyed by name ("zap:<id>", "user:<id>"), refilled continuously.
///
/// `take` takes one token from BOTH buckets or from neither, so a request refused by the
/// user's bucket does not spend the zap's. Buckets start full. A rate of 0 is no limit.
/// Memory is bounded: when more than `max_keys` buckets exist, full ones are dropped (a
/// full bucket is the same as a fresh one).
/// Threading: thread-safe (one mutex held for a few hash lookups).
class rate_limiter {
 public:
  struct rule {
    double per_second = 0;  // 0: unlimited
    double burst = 1;       // bucket capacity
  };

  explicit rate_limiter(const clock& clk, std::size_t max_keys = 100'000);

  /// 0 when allowed; otherwise the whole seconds until a token is available (for Retry-After, >= 1).
  std::int64_t take(const std::string& key_a, rule a, const std::string& key_b, rule b);

 private:
  struct bucket {
    double tokens = 0;
    std::int64_t at_ms = 0;
    rule last;  // the rule it was last refilled with (pruning needs it)
  };
  bucket& refill(const std::string& key, const rule& r, std::int64_t now_ms);
  void prune(std::int64_t now_ms);

  const clock& clock_;
  std::size_t max_keys_;
  std::mutex mu_;
  std::unordered_map<std::string, bucket> buckets_;
};

}  // namespace zapd::hooks
