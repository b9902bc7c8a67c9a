#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <utility>

namespace zapd {

/// Lets callbacks that may run after their owner is gone (an action's completion after the
/// worker gave its job back, a writer callback of a result handed over before a stop) call
/// into the owner only while it lives. The owner holds a `lifeline`, wraps each such
/// callback with `guard`, and calls `end()` first thing in its destructor: `end` waits for
/// guarded calls that are running to return, and every guarded call after it does nothing.
///
/// Threading: guarded calls may run on any thread and may nest (a guarded callback that
/// calls another one on the same thread does not deadlock); `end` must not be called from a
/// guarded call.
class lifeline {
 public:
  lifeline() : s_(std::make_shared<state>()) {}
  lifeline(const lifeline&) = delete;
  lifeline& operator=(const lifeline&) = delete;
  ~lifeline() { end(); }

  void end() {
    std::unique_lock lk(s_->mu);
    s_->alive = false;
    s_->cv.wait(lk, [this] { return s_->inside == 0; });
  }

  /// `fn` wrapped: calls it while the owner lives, else does nothing (`fn` returns void).
  template <class Fn>
  auto guard(Fn fn) const {
    return [s = s_, fn = std::move(fn)](auto&&... args) mutable {
      if (!s->enter()) return;
      const leaving l{*s};
      fn(std::forward<decltype(args)>(args)...);
    };
  }

  /// `fn` wrapped: calls it while the owner lives, else returns a copy of `dead`.
  template <class Fn, class R>
  auto guard_or(Fn fn, R dead) const {
    return [s = s_, fn = std::move(fn), dead = std::move(dead)](auto&&... args) mutable -> R {
      if (!s->enter()) return dead;
      const leaving l{*s};
      return fn(std::forward<decltype(args)>(args)...);
    };
  }

 private:
  struct state {
    std::mutex mu;
    std::condition_variable cv;
    bool alive = true;
    int inside = 0;
    bool enter() {
      std::lock_guard lk(mu);
      if (!alive) return false;
      ++inside;
      return true;
    }
    void leave() {
      std::lock_guard lk(mu);
      if (--inside == 0) cv.notify_all();
    }
  };
  struct leaving {
    state& st;
    ~leaving() { st.leave(); }
  };
  std::shared_ptr<state> s_;
};

}  // namespace zapd
