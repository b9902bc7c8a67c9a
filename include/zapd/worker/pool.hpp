#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "zapd/actions/catalog.hpp"
#include "zapd/actions/executor.hpp"
#include "zapd/core/clock.hpp"
#include "zapd/metrics/registry.hpp"
#include "zapd/queue/sqlite_queue.hpp"

namespace zapd::secrets {
class box;
}
namespace zapd::store {
class database;
}

namespace zapd::worker {

/// When a failed attempt is tried again, Svix-like: attempt 1 at once, then attempt 2 after
/// 5 s, 3 after 5 min, then 30 min, 2 h, 5 h, 10 h, 10 h; each delay +-`jitter`, scaled by
/// base / 5 s and capped at 24 h; at most `max_attempts` attempts. A Retry-After longer than
/// the delay wins.
/// A zap may override both: {"retry": {"attempts": N, "baseDelayMs": M}} in its body.
struct retry_policy {
  std::chrono::milliseconds base{5000};
  int max_attempts = 8;
  double jitter = 0.2;
  /// Delay before attempt `next` (2..max_attempts), without jitter.
  std::chrono::milliseconds delay_before(int next) const;
};

/// Executes queued steps: claims jobs per lane, renders the step's config against the run
/// (trigger, earlier steps' outputs, run, secrets), runs the action asynchronously, then in
/// ONE write request records the step, settles the job and enqueues the next step or
/// finishes the run. A crash between the action and that write re-runs the step only
/// (at-least-once; actions carry `Idempotency-Key: {runId}:{step}`).
///
/// Threads: one claim thread per lane (claims are blocking writer calls; context reads use
/// a reader connection); actions complete on the outbound driver's thread; results are
/// handed to the writer without waiting. In flight per lane: at most the lane's slots here,
/// and the queue's own per-lane limit across every worker.
///
/// Lifecycle: start(); notify() when jobs arrive (the relay does); stop() stops claiming,
/// waits up to `grace` for attempts in flight, then releases the leases of the rest (they
/// are claimable at once by the next start). Stop the worker before the outbound driver,
/// the relay and the database.
class pool {
 public:
  struct options {
    std::size_t paid_slots = 64;
    std::size_t free_slots = 16;
    std::size_t claim_batch = 32;
    std::chrono::milliseconds lease{60'000};
    std::chrono::milliseconds poll{1'000};
    std::chrono::milliseconds grace{10'000};
    retry_policy retry;
    /// Called after a commit that put a next step into the outbox (wakes the relay).
    std::function<void()> enqueued;
  };

  pool(store::database& db, queue::sqlite_queue& q, const actions::catalog& cat, const actions::executors& ex,
       const secrets::box& box, const clock& clk, metrics::registry& m, options o);
  ~pool();
  pool(const pool&) = delete;
  pool& operator=(const pool&) = delete;

  void start();
  void notify() noexcept;
  void stop();

 private:
  struct lane_state {
    queue::lane lane;
    std::size_t slots = 0;
    std::size_t in_flight = 0;  // guarded by mu_
    bool woken = false;         // guarded by mu_
    std::thread thread;
  };
  struct attempt;           // one job being executed (pool.cpp)
  struct definition_cache;  // parsed zap versions (immutable), bounded (pool.cpp)

  void claim_loop(lane_state& ls);
  void begin(const queue::job& j);
  void finish(const std::shared_ptr<attempt>& a, actions::step_result r);
  void settle_skip(const queue::job& j, const std::string& why);
  // Results the writer refused while full, handed over again by the claim threads.
  void defer(std::shared_ptr<std::function<status()>> record);
  bool resubmit_deferred();  // true when nothing is left deferred
  void done(const queue::job& j);
  std::chrono::system_clock::time_point next_attempt_at(const retry_policy& policy, int next,
                                                        std::optional<std::chrono::milliseconds> retry_after);

  store::database& db_;
  queue::sqlite_queue& queue_;
  const actions::catalog& catalog_;
  const actions::executors& executors_;
  const secrets::box& box_;
  const clock& clock_;
  options opts_;

  metrics::counter& succeeded_;
  metrics::counter& retried_;
  metrics::counter& failed_;
  metrics::counter& lost_;
  metrics::counter& deferred_count_;
  metrics::gauge& in_flight_gauge_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::atomic<std::int64_t> next_due_ms_{0};  // earliest scheduled retry (Unix ms), 0 = none
  std::array<lane_state, 2> lanes_;
  std::map<std::pair<std::int64_t, int>, queue::job> running_;  // (job id, attempts) = one claim
  std::mt19937_64 rng_{std::random_device{}()};
  std::unique_ptr<definition_cache> definitions_;
  std::vector<std::shared_ptr<std::function<status()>>> deferred_;  // guarded by mu_
};

}  // namespace zapd::worker
