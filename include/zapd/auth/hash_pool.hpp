#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "zapd/core/result.hpp"

namespace zapd::auth {

/// A few threads that run password hashes (argon2id: ~tens of MiB and tens to hundreds of ms
/// each) away from the HTTP threads, with a bounded queue. Peak memory is `threads` hashes, and
/// a flood of sign-ins waits in at most `queue_max` slots, then is refused (429) instead of
/// growing without bound.
///
/// Lifecycle: threads start in the constructor; `stop()` (or the destructor) runs the jobs
/// already queued, then joins. Thread-safe: `submit` from any thread; `stop` from the owner's
/// thread only. Jobs must not throw.
class hash_pool {
 public:
  hash_pool(std::size_t threads, std::size_t queue_max);
  ~hash_pool();
  hash_pool(const hash_pool&) = delete;
  hash_pool& operator=(const hash_pool&) = delete;

  /// Queues `job`. `too_many_requests` when `queue_max` jobs already wait, `unavailable`
  /// after stop; in both cases `job` is dropped without running.
  status submit(std::function<void()> job);

  void stop();
  std::size_t queued() const;

 private:
  void run();

  std::size_t queue_max_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace zapd::auth
