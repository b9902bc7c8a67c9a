#include "zapd/auth/hash_pool.hpp"

namespace zapd::auth {

hash_pool::hash_pool(std::size_t threads, std::size_t queue_max) : queue_max_(queue_max) {
  if (threads == 0) threads = 1;
  for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

hash_pool::~hash_pool() { stop(); }

status hash_pool::submit(std::function<void()> job) {
  {
    std::lock_guard lk(mu_);
    if (stopping_) return make_error(errc::unavailable, "password hashing is shutting down");
    if (queue_.size() >= queue_max_)
      return make_error(errc::too_many_requests, "too many sign-ins in progress; try again shortly");
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
  return {};
}

void hash_pool::stop() {
  {
    std::lock_guard lk(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

std::size_t hash_pool::queued() const {
  std::lock_guard lk(mu_);
  return queue_.size();
}

void hash_pool::run() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job();
  }
}

}  // namespace zapd::auth
