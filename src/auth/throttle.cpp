#include "zapd/auth/throttle.hpp"

#include <algorithm>
#include <cmath>

namespace zapd::auth {

throttle::throttle(std::int64_t capacity, std::chrono::seconds window, std::size_t max_keys)
    : capacity_(static_cast<double>(std::max<std::int64_t>(capacity, 1))),
      per_second_(capacity_ / static_cast<double>(std::max<std::int64_t>(window.count(), 1))),
      max_keys_(std::max<std::size_t>(max_keys, 1)) {}

void throttle::refill(bucket& b, time_point now) const {
  double elapsed = std::chrono::duration<double>(now - b.updated).count();
  if (elapsed > 0) {
    b.tokens = std::min(capacity_, b.tokens + elapsed * per_second_);
    b.updated = now;
  }
}

void throttle::evict_full(time_point now) {
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    refill(it->second, now);
    it = it->second.tokens >= capacity_ ? buckets_.erase(it) : std::next(it);
  }
}

std::int64_t throttle::acquire(const std::string& key, time_point now) {
  std::lock_guard lk(mu_);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    // A full sweep is O(keys): at most once a second, so a flood of new keys stays cheap.
    if (buckets_.size() >= max_keys_ && now - last_sweep_ >= std::chrono::seconds(1)) {
      evict_full(now);
      last_sweep_ = now;
    }
    saturated_ = buckets_.size() >= max_keys_;
    if (saturated_) return 0;
    it = buckets_.emplace(key, bucket{capacity_, now}).first;
  }
  bucket& b = it->second;
  refill(b, now);
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return 0;
  }
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil((1.0 - b.tokens) / per_second_)));
}

void throttle::release(const std::string& key, time_point now) {
  std::lock_guard lk(mu_);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) return;
  refill(it->second, now);
  it->second.tokens = std::min(capacity_, it->second.tokens + 1.0);
}

void throttle::reset(const std::string& key) {
  std::lock_guard lk(mu_);
  buckets_.erase(key);
}

std::size_t throttle::size() const {
  std::lock_guard lk(mu_);
  return buckets_.size();
}

bool throttle::saturated() const {
  std::lock_guard lk(mu_);
  return saturated_;
}

}  // namespace zapd::auth
