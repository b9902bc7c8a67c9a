#include "zapd/core/wakeup.hpp"

namespace zapd {

void wakeup::ring() const noexcept {
  std::lock_guard lk(mu_);
  for (const auto& [id, fn] : listeners_) fn();
}

wakeup::listener_id wakeup::listen(std::function<void()> fn) {
  std::lock_guard lk(mu_);
  const listener_id id = next_++;
  listeners_.emplace(id, std::move(fn));
  return id;
}

void wakeup::forget(listener_id id) {
  std::lock_guard lk(mu_);
  listeners_.erase(id);
}

}  // namespace zapd
