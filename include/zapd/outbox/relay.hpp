#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

#include "zapd/core/result.hpp"
#include "zapd/core/wakeup.hpp"
#include "zapd/metrics/registry.hpp"
#include "zapd/queue/queue.hpp"

namespace zapd::store {
class database;
}

namespace zapd::outbox {

/// Moves `outbox` rows (steps committed with their run) into the queue.
///
/// One thread of its own, asleep until `outbox_ready` rings (hooks, run operations and the
/// worker ring it after a commit that wrote outbox rows, so the happy path has no polling
/// delay; `notify()` does the same) or until
/// `poll` passes (a safety net for a missed wake-up, and the start-up pass for rows left by
/// a previous process). Awake, it drains the outbox in batches of `batch` rows, oldest first:
/// - with a `store_publisher` (the SQLite queue): ONE write request selects the batch,
///   inserts the jobs and deletes the rows, so after a crash each step is in exactly one
///   of outbox/jobs (the queue offers this when it is also a `queue::store_publisher`);
/// - otherwise (a queue outside the store): read the batch, `publish` it, wait for the
///   acknowledgement, then delete the rows. A crash in between publishes them again
///   (at-least-once; the queue and the workers' idempotency keys absorb the duplicate).
///   With `republish_after`, acknowledged rows move to `outbox_published` instead, and the
///   ones whose lease passed are published again with the batch (see options).
/// A thread rather than writer callbacks because the generic path waits for the queue's
/// acknowledgement, and the writer thread must never wait.
///
/// Lifecycle: construct, `start()`, `stop()` (also by the destructor). stop() wakes the
/// thread, lets the batch in progress finish, joins; rows not yet moved stay in the outbox
/// for the next start. Stop the relay before the queue and the database it uses.
/// After a batch reached the queue it rings `jobs_ready` (the workers listen).
/// Threading: `notify` is cheap and safe from any thread (a writer `done` callback too);
/// start/stop from one owner thread.
class relay {
 public:
  struct options {
    std::size_t batch = 256;
    std::chrono::milliseconds poll{1000};
    /// 0: a row goes once the queue acknowledged it. Above 0 (the Kafka fleet, whose queue
    /// reports each step's outcome later through its recorder): the row moves to
    /// `outbox_published` until `outbox::settle`, and is published again when no attempt was
    /// recorded this long after its publishing (a message lost to retention or unreadable),
    /// if the queue's consumers have handled a newer job of its lane
    /// (`queue::handled_past`); else it gets another lease (every worker down: the backlog
    /// waits on the brokers, and is not published again each lease), except one row per lane
    /// and lease, published again as a probe: workers that are up and idle answer it, and
    /// the rest follow.
    std::chrono::milliseconds republish_after{0};
  };

  /// Both bells must outlive the relay.
  relay(store::database& db, queue::queue& q, metrics::registry& m, wakeup& outbox_ready, wakeup& jobs_ready, options o);
  ~relay();
  relay(const relay&) = delete;
  relay& operator=(const relay&) = delete;

  /// Starts the thread, which drains at once. Idempotent.
  void start();
  /// Wakes the thread now (coalesced: many notifies during one pass make one more pass).
  void notify() noexcept;
  /// Finishes the current batch and joins. Idempotent.
  void stop();

 private:
  void run();
  // Moves one batch; the number of rows moved.
  result<std::size_t> move_batch();
  result<std::size_t> move_batch_in_store();
  result<std::size_t> move_batch_via_publish();

  store::database& db_;
  queue::queue& queue_;
  queue::store_publisher* in_store_;  // `queue_` itself when it lives in the store, else null
  metrics::registry& metrics_;
  wakeup& outbox_ready_;
  wakeup& jobs_ready_;
  wakeup::listener_id listening_ = 0;
  options opts_;

  metrics::counter& batches_;
  metrics::counter& rows_;
  metrics::counter& errors_;
  metrics::counter& wakeups_;
  metrics::counter& republished_;
  metrics::gauge& depth_;
  metrics::gauge& in_flight_;
  metrics::gauge& oldest_age_;
  std::uint64_t collector_id_ = 0;
  std::int64_t last_probe_ms_[2] = {0, 0};  // per lane (free, paid): the relay thread's only

  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;
  bool stopping_ = false;
  std::atomic<bool> stop_flag_{false};  // read between batches without the lock
  std::thread thread_;
};

}  // namespace zapd::outbox
