#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "zapd/core/result.hpp"
#include "zapd/store/connection.hpp"

namespace zapd::store {

/// The one thread that writes to the database, with group commit.
///
/// Callers hand it small write requests (`work` runs on the writer thread with the write
/// connection inside an open transaction). It takes up to `batch_max` queued requests, runs
/// each inside its own SAVEPOINT (a failing request is rolled back alone), COMMITs once, and
/// only then calls every request's `done` with its outcome. So a `done` that sees success
/// knows its rows are durable (as durable as `synchronous` makes them).
///
/// Lifecycle: starts its thread in the constructor; `stop()` (or the destructor) completes
/// every request already queued, then joins. Thread-safe: submit from any thread. `done`
/// runs on the writer thread and must not block; post elsewhere for real work.
class writer {
 public:
  struct options {
    std::size_t batch_max = 512;
    std::size_t max_pending = 20'000;
  };
  using work_fn = std::function<status(connection&)>;
  using done_fn = std::function<void(status)>;

  writer(connection conn, options opts);
  ~writer();
  writer(const writer&) = delete;
  writer& operator=(const writer&) = delete;

  /// Queues a request. Ok: `done` will be called exactly once, after the commit (or with the
  /// error that undid it). Error (`overloaded` when `max_pending` requests wait, `unavailable`
  /// after stop): nothing was queued and `done` will not be called.
  status submit(work_fn work, done_fn done);

  /// Typed form: `work` returns result<T>; `done` receives it after the commit.
  template <class T, class Work, class Done>
  status submit_for(Work&& work, Done&& done) {
    auto slot = std::make_shared<std::optional<result<T>>>();
    return submit(
        [slot, w = std::forward<Work>(work)](connection& c) mutable -> status {
          slot->emplace(w(c));
          if (slot->value().ok()) return {};
          return slot->value().err();
        },
        [slot, d = std::forward<Done>(done)](status st) mutable {
          if (!st) {
            d(result<T>(std::move(st).err()));
          } else {
            d(std::move(slot->value()));
          }
        });
  }

  /// Blocking helper for start-up, CLI commands and tests: submits and waits.
  template <class T, class Work>
  result<T> execute(Work&& work) {
    std::promise<result<T>> p;
    auto f = p.get_future();
    auto st = submit_for<T>(std::forward<Work>(work), [&p](result<T> r) { p.set_value(std::move(r)); });
    if (!st) return std::move(st).err();
    return f.get();
  }

  /// Completes what is queued, then stops the thread. Idempotent.
  void stop();

  std::size_t pending() const;
  std::uint64_t commits() const;
  /// Requests completed by those commits (requests / commits = mean group-commit size).
  std::uint64_t requests() const;

 private:
  struct request {
    work_fn work;
    done_fn done;
  };
  void run();
  void commit_batch(std::vector<request>& batch);

  connection conn_;
  options opts_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<request> queue_;
  bool stopping_ = false;
  std::uint64_t commits_ = 0;
  std::uint64_t requests_ = 0;
  std::thread thread_;
};

}  // namespace zapd::store
