#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "zapd/actions/executor.hpp"
#include "zapd/core/clock.hpp"
#include "zapd/core/lifeline.hpp"
#include "zapd/core/wakeup.hpp"
#include "zapd/metrics/registry.hpp"
#include "zapd/queue/queue.hpp"
#include "zapd/worker/retry.hpp"
#include "zapd/worker/step.hpp"

namespace zapd::secrets {
class box;
}
namespace zapd::store {
class database;
}

namespace zapd::worker {

/// Executes queued steps: claims jobs per lane, renders the step's config against the run
/// (trigger, earlier steps' outputs, run, secrets), runs the action asynchronously, then in
/// ONE write request records the attempt (`runs::record_attempt`: the step, the next step
/// or the run's end) and, when the queue lives in the store (`queue::store_publisher`),
/// settles the job in the same transaction. With a queue elsewhere the job is settled
/// through `queue::queue` right after that commit, on a start thread. A crash between the
/// action and the write re-runs the step only (at-least-once; actions carry
/// `Idempotency-Key: {runId}:{step}`).
///
/// It knows the queue only by its interface, the store through the modules that own the
/// tables (runs, zaps, secrets), and the relay not at all: it listens on `jobs_ready` and
/// rings `outbox_ready` after a commit that put a next step in the outbox (a queue in the
/// store that `rings_ready()` wakes it itself for a next step that waits for a claim).
///
/// Threads: per lane, a claim thread and a start thread. Claims are blocking writer calls
/// that wait for a commit, so the claim thread claims AHEAD: it keeps up to the lane's slots
/// claimed but not started (`claimed_ahead_per_slot`), and the start thread renders them
/// (context reads use a reader connection) and starts them the moment a slot frees, without
/// waiting for the writer. Actions complete on the outbound driver's thread; results are
/// handed to the writer without waiting. Executing per lane: at most the lane's slots here,
/// and the queue's own per-lane lease limit across every worker.
///
/// Lifecycle: start(); jobs_ready rings (or notify()) when jobs arrive; stop() stops claiming,
/// withdraws from the queue's hand-off and waits for the slots it promised to transactions in
/// progress (the writer ends them at its batch's end: a writer stalled in I/O stalls stop),
/// waits up to `grace` for attempts in flight, then releases the leases of the rest (they
/// are claimable at once by the next start). Stop the worker before the outbound driver,
/// the relay and the database.
class pool : private queue::handoff {
 public:
  struct options {
    std::size_t paid_slots = 64;
    std::size_t free_slots = 64;
    std::size_t claim_batch = 32;
    std::chrono::milliseconds lease{60'000};
    std::chrono::milliseconds poll{1'000};
    std::chrono::milliseconds grace{10'000};
    retry_policy retry;
    std::string name;  // recorded on each step it ran (run_steps.worker): host:pid
  };

  /// What it works with; each must outlive the pool.
  struct services {
    store::database& db;
    queue::queue& queue;
    const actions::executors& executors;
    const secrets::box& box;
    const clock& clk;
    metrics::registry& metrics;
    wakeup& jobs_ready;    // listened to: jobs wait for a claim (the queue or the relay rings it)
    wakeup& outbox_ready;  // rung after a commit that put a next step in the outbox
  };

  pool(services s, options o);
  ~pool() override;
  pool(const pool&) = delete;
  pool& operator=(const pool&) = delete;

  /// Per slot, how many results may wait for their commit besides the executing steps
  /// (lane_state::recording); the store's queue leases up to (1 + this) x slots per lane.
  static constexpr std::size_t recording_per_slot = 4;
  /// Per slot, how many jobs the claim thread keeps claimed and waiting for a free slot.
  static constexpr std::size_t claimed_ahead_per_slot = 1;
  /// Live leases a lane of `slots` may hold: executing, claimed ahead, results being recorded.
  static constexpr std::size_t leases_per_slot = 1 + claimed_ahead_per_slot + recording_per_slot;

  void start();
  void notify() noexcept;
  void stop();

 private:
  struct lane_state {
    queue::lane lane;
    std::size_t slots = 0;
    std::size_t in_flight = 0;  // executing (claimed, action not answered yet); guarded by mu_
    // Answered, its record handed to the writer, not committed yet; guarded by mu_. A slot is
    // an executing step: a result waiting for its group commit gives its slot back and holds
    // one of recording_per_slot * slots places here instead, so the commit's latency (a
    // few ms of fsync) does not cap the lane at slots / commit time (issue 18: 16 slots held
    // ~3 ms each stopped the free lane at 4-5k steps/s).
    std::size_t recording = 0;
    // Places promised to producers' transactions not ended yet (queue::handoff): each is a
    // job that will start at once, or a place given back; guarded by mu_.
    std::size_t reserved = 0;
    // Claimed ahead, in claim order, not started yet (each in running_ too); guarded by mu_.
    std::deque<queue::job> ready;
    bool woken = false;         // jobs may have arrived (the claim thread's); guarded by mu_
    // Each thread sleeps on its own condition variable and is woken only when what it waits
    // for may have changed (a notify_all on one shared one cost ~10 % of the drain's CPU in
    // wake-ups that found nothing to do). Guarded by mu_.
    bool claimer_full = false;  // the claim thread sleeps because enough is claimed
    bool starter_idle = false;  // the start thread sleeps
    std::condition_variable claim_cv, start_cv;
    std::thread claimer;        // claim_loop: fills `ready`
    std::thread starter;        // start_loop: `ready` into free slots; deferred and pending work
  };
  struct attempt;  // one job being executed (pool.cpp)
  // A settlement through the queue interface, for a queue outside the store: made by a
  // start thread after the attempt's record committed (queue calls block).
  struct pending_settlement {
    queue::job job;
    queue::store_publisher::settlement how;
    std::int64_t retry_at_ms = 0;
    std::string reason;
  };

  void claim_loop(lane_state& ls);
  void start_loop(lane_state& ls);
  void begin(const queue::job& j);
  void finish(const std::shared_ptr<attempt>& a, actions::step_result r);
  void settle_skip(const queue::job& j, const std::string& why);
  // Results the writer refused while full, handed over again by the start threads.
  void defer(std::shared_ptr<std::function<status()>> record);
  bool resubmit_deferred();  // true when nothing is left deferred
  void settle_pending();     // pending_ through the queue interface
  void show_in_flight();  // the gauge: steps executing in both lanes; with mu_ held
  // With mu_ held: how many more jobs `ls` may claim ahead, and how many it may start now.
  std::size_t claim_wanted(const lane_state& ls) const;
  std::size_t start_room(const lane_state& ls) const;
  // With mu_ held: whether results waiting for their commit use the lane's whole budget.
  bool recording_full(const lane_state& ls) const;
  // With mu_ held, after `ls`'s counts changed: wakes the threads that may now have work.
  void wake_lane(lane_state& ls);
  void wake_starters();  // deferred or pending work arrived; with mu_ held
  void handed_over(const queue::job& j);  // its record is with the writer: the slot is free
  void done(const queue::job& j);
  // queue::handoff: jobs written leased to this pool by the transactions that produce them.
  std::optional<std::chrono::milliseconds> reserve(queue::lane l) override;
  void take(queue::job j) override;
  void unreserve(queue::lane l) override;
  lane_state& lane_of(queue::lane l);

  store::database& db_;
  queue::queue& queue_;
  queue::store_publisher* in_store_;  // `queue_` itself when it lives in the store, else null
  const actions::executors& executors_;
  const secrets::box& box_;
  const clock& clock_;
  wakeup& jobs_ready_;
  wakeup& outbox_ready_;
  wakeup::listener_id listening_ = 0;
  options opts_;

  metrics::counter& succeeded_;
  metrics::counter& retried_;
  metrics::counter& failed_;
  metrics::counter& filtered_;
  metrics::counter& lost_;
  metrics::counter& deferred_count_;
  metrics::gauge& in_flight_gauge_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::atomic<bool> stop_requested_{false};  // stopping_, readable without mu_ (a start thread mid-batch)
  std::atomic<std::int64_t> next_due_ms_{0};  // earliest scheduled retry (Unix ms), 0 = none
  bool handing_ = false;  // registered with queue_.hand_to; start/stop's (one owner thread)
  std::array<lane_state, 2> lanes_;
  struct claim {
    queue::job job;
    // Where it is counted in its lane: ready (claimed ahead), in_flight, or recording.
    enum class stage { ready, executing, recording } at = stage::ready;
  };
  std::map<std::pair<std::int64_t, int>, claim> running_;  // (job id, attempts) = one claim, until settled
  std::mt19937_64 rng_{std::random_device{}()};
  std::unique_ptr<preparer> preparer_;  // renders claimed steps (step.hpp)
  std::vector<std::shared_ptr<std::function<status()>>> deferred_;  // guarded by mu_
  std::vector<pending_settlement> pending_;                         // guarded by mu_
  lifeline life_;  // the action answers and writer callbacks that may outlive the pool
};

}  // namespace zapd::worker
