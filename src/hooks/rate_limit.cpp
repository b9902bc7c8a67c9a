#include "zapd/hooks/rate_limit.hpp"

#include <algorithm>
#include <cmath>

namespace zapd::hooks {

rate_limiter::rate_limiter(const clock& clk, std::size_t max_keys) : clock_(clk), max_keys_(max_keys) {}

rate_limiter::bucket& rate_limiter::refill(const std::string& key, const rule& r, std::int64_t now_ms) {
  auto [it, fresh] = buckets_.try_emplace(key);
  bucket& b = it->second;
  if (fresh) {
    b.tokens = r.burst;
  } else if (now_ms > b.at_ms) {
    b.tokens = std::min(r.burst, b.tokens + r.per_second * static_cast<double>(now_ms - b.at_ms) / 1000.0);
  }
  b.at_ms = std::max(b.at_ms, now_ms);
  b.last = r;
  return b;
}

void rate_limiter::prune(std::int64_t now_ms) {
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    const rule& r = it->second.last;
    double tokens = std::min(r.burst, it->second.tokens + r.per_second * static_cast<double>(now_ms - it->second.at_ms) / 1000.0);
    if (tokens >= r.burst) {
      it = buckets_.erase(it);
    } else {
      ++it;
    }
  }
}

std::int64_t rate_limiter::take(const std::string& key_a, rule a, const std::string& key_b, rule b) {
  const bool limit_a = a.per_second > 0;
  const bool limit_b = b.per_second > 0;
  if (!limit_a && !limit_b) return 0;
  const std::int64_t now = clock_.now_ms();
  std::lock_guard lk(mu_);
  if (buckets_.size() > max_keys_) prune(now);
  bucket* ba = limit_a ? &refill(key_a, a, now) : nullptr;
  bucket* bb = limit_b ? &refill(key_b, b, now) : nullptr;
  double wait_s = 0;
  if (ba && ba->tokens < 1) wait_s = std::max(wait_s, (1 - ba->tokens) / a.per_second);
  if (bb && bb->tokens < 1) wait_s = std::max(wait_s, (1 - bb->tokens) / b.per_second);
  if (wait_s > 0) return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(wait_s)));
  if (ba) ba->tokens -= 1;
  if (bb) bb->tokens -= 1;
  return 0;
}

}  // namespace zapd::hooks
