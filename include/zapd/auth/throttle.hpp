#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace zapd::auth {

/// Slows down password guessing: one token bucket per key (a client IP with an
/// account, or a client IP alone).
/// A bucket holds `capacity` attempts and refills completely over `window`; each sign-in
/// attempt takes one, a successful one gives it back. An empty bucket answers with the time
/// until one attempt is available (sent as Retry-After).
///
/// Memory is bounded: at most `max_keys` buckets. When full, buckets that have refilled are
/// dropped; if none has, a new key is let through untracked (logged by the caller) rather than
/// locking everyone out. Thread-safe (one mutex; each call is a hash lookup).
class throttle {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  throttle(std::int64_t capacity, std::chrono::seconds window, std::size_t max_keys);

  /// Takes one attempt for `key`. 0 when allowed; otherwise the seconds to wait (>= 1).
  std::int64_t acquire(const std::string& key, time_point now);
  /// Gives back the attempt taken by `acquire` (the sign-in succeeded).
  void release(const std::string& key, time_point now);
  /// Forgets `key` entirely (the account signed in: its failures no longer count).
  void reset(const std::string& key);

  std::size_t size() const;
  bool saturated() const;

 private:
  struct bucket {
    double tokens;
    time_point updated;
  };
  void refill(bucket& b, time_point now) const;
  void evict_full(time_point now);

  double capacity_;
  double per_second_;
  std::size_t max_keys_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, bucket> buckets_;
  bool saturated_ = false;
  time_point last_sweep_{};
};

}  // namespace zapd::auth
