#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>

namespace zapd {

/// A doorbell between components that must not know each other: whoever produces work rings
/// it, whoever consumes that work listens. `app` creates one per hand-over before the
/// components (outbox rows ready -> the relay; jobs ready -> the workers), so neither needs a
/// pointer to the other set after construction, and a ring before anyone listens is simply
/// not heard (listeners do a first pass when they start).
///
/// Threading: ring, listen and forget from any thread. Listeners run on the ringing thread,
/// under the bell's lock: they must be quick and must not block or ring this bell (a
/// condition-variable notify is the intended use). `forget` returns once no call of that
/// listener is running, so a listener may capture `this` and forget itself in a destructor.
class wakeup {
 public:
  using listener_id = std::uint64_t;

  void ring() const noexcept;
  listener_id listen(std::function<void()> fn);
  void forget(listener_id id);

 private:
  mutable std::mutex mu_;
  std::map<listener_id, std::function<void()>> listeners_;
  listener_id next_ = 1;
};

}  // namespace zapd
