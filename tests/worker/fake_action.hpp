#pragma once
// An action for worker tests: records every call and answers it at once or holds its
// callback until the test releases it (a fault the real executors cannot be made to show
// on cue: a result that arrives after the lease passed on, after a cancel, into a full writer).

#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>

#include "zapd/actions/executor.hpp"

namespace zapd::test {

/// Threading: execute runs on the pool's start threads, the test reads and releases from its
/// own; everything is under one mutex. A held callback is called outside it (it takes the
/// pool's locks). Destroy it after the pool: held callbacks point into the pool.
class fake_action final : public actions::executor {
 public:
  /// The answer to a call, or nullopt to hold it.
  using answer_fn = std::function<std::optional<actions::step_result>(const actions::step_request&)>;

  void answer_with(answer_fn fn) {
    std::lock_guard lk(mu_);
    answer_ = std::move(fn);
  }

  void execute(actions::step_request req, done_fn done) override {
    std::optional<actions::step_result> r;
    {
      std::lock_guard lk(mu_);
      calls_.push_back(req);
      if (answer_) r = answer_(req);
      if (!r) held_.push_back({std::move(req), std::move(done)});
    }
    if (r) done(std::move(*r));
  }

  std::size_t calls() const {
    std::lock_guard lk(mu_);
    return calls_.size();
  }
  actions::step_request call(std::size_t i) const {
    std::lock_guard lk(mu_);
    return calls_.at(i);
  }
  std::size_t held() const {
    std::lock_guard lk(mu_);
    return held_.size();
  }

  /// Answers the held call of (step, attempt) on the calling thread; false when none is held.
  bool release(int step, int attempt, actions::step_result r) {
    done_fn done;
    {
      std::lock_guard lk(mu_);
      for (auto it = held_.begin(); it != held_.end(); ++it) {
        if (it->req.step_index == step && it->req.attempt == attempt) {
          done = std::move(it->done);
          held_.erase(it);
          break;
        }
      }
    }
    if (!done) return false;
    done(std::move(r));
    return true;
  }

 private:
  struct held_call {
    actions::step_request req;
    done_fn done;
  };
  mutable std::mutex mu_;
  answer_fn answer_;
  std::vector<actions::step_request> calls_;
  std::vector<held_call> held_;
};

inline actions::step_result succeeded(nlohmann::json output = nlohmann::json::object()) {
  actions::step_result r;
  r.v = actions::verdict::succeeded;
  r.output = std::move(output);
  return r;
}

inline actions::step_result retry_later(std::string error, std::optional<std::chrono::milliseconds> retry_after = {}) {
  actions::step_result r;
  r.v = actions::verdict::retry;
  r.error = std::move(error);
  r.retry_after = retry_after;
  return r;
}

inline actions::step_result failed(std::string error) {
  actions::step_result r;
  r.v = actions::verdict::failed;
  r.error = std::move(error);
  return r;
}

}  // namespace zapd::test
