#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "zapd/core/result.hpp"
#include "zapd/queue/job.hpp"

namespace zapd::store {
class connection;
}

namespace zapd::queue {

class handoff;

/// The job queue between the outbox relay and the workers (docs: "Queue semantics").
/// Delivery is at-least-once: a claimed job not acked before its lease ends is claimed
/// again, and a publish may be repeated after a crash (adapters ignore a (run, step) they
/// already hold where they can; workers carry a per-(run, step) idempotency key anyway).
///
/// Implementations: `sqlite_queue` (embedded, the default); a Kafka adapter later, where
/// publish = idempotent produce whose delivery report is `done`, claim = consumer poll
/// with the lease as max processing time, ack = offset commit.
/// Threading: every method may be called from any thread. `claim`, `ack`, `retry` and
/// `dead` block until the change is durable; call them from worker threads, never from
/// an I/O thread.
class queue {
 public:
  virtual ~queue();

  using done_fn = std::function<void(status)>;

  /// Hands a batch over asynchronously. Ok: `done` is called exactly once, with success
  /// only when the queue durably holds every job of the batch (with an error: possibly
  /// none). Error (`overloaded`, `unavailable`): nothing was taken and `done` is not called.
  /// `done` may run on an internal thread and must not block.
  virtual status publish(std::vector<job_spec> batch, done_fn done) = 0;

  /// Whether a published job may be due later (`job_spec::run_at_ms`) and the queue holds it
  /// until then. False (Kafka: a message is for now): the relay publishes a row only once it
  /// is due.
  virtual bool holds_delayed() const { return true; }
  /// Whether the queue's consumers have handled a job of lane `l` published after
  /// `published_ms` (Unix ms). The outbox relay asks before publishing again a row whose
  /// outcome never came (relay option `republish_after`): while nothing newer is handled (every
  /// consumer down, a backlog older than the row), the row is waiting, not lost, and it only
  /// gets a new lease. A queue that cannot tell answers true.
  virtual bool handled_past(lane l, std::int64_t published_ms) const {
    (void)l;
    (void)published_ms;
    return true;
  }

  /// Leases up to `max` claimable jobs of `lane` for `lease`, fewer when the lane's
  /// concurrency limit allows fewer. Each returned job's attempts is one more than before.
  virtual result<std::vector<job>> claim(lane l, std::size_t max, std::chrono::milliseconds lease) = 0;

  /// Done: the job leaves the queue.
  virtual status ack(const job& j) = 0;
  /// Failed for now: claimable again from `at` (its lease ends now).
  virtual status retry(const job& j, std::chrono::system_clock::time_point at) = 0;
  /// Failed for good: kept as a dead letter with `reason`, never claimed again.
  virtual status dead(const job& j, std::string_view reason) = 0;
  /// Never started (a worker claimed it ahead of a free slot): claimable again at once, and,
  /// where the queue can, its claim is not counted as an attempt. The caller drops the claim
  /// and must not have executed it. By default the same as retry(j, now).
  virtual status release(const job& j) { return retry(j, std::chrono::system_clock::time_point{}); }

  /// Registers (null: unregisters) a worker of this process that takes jobs straight from
  /// the transactions that produce them (see `handoff`). A queue that cannot ignores it.
  /// Not while a producer holds a reservation of the previous one.
  virtual void hand_to(handoff* h) { (void)h; }
};

/// A worker in this process that starts a due job the moment the transaction producing it
/// commits, with no claim (issue 18: at a steady rate a claim is a second commit, after the
/// webhook's, on every run's path). A queue in the store asks, inside the producer's
/// transaction on the writer thread, for a place (`reserve`); given one, it writes the job
/// already leased (attempts 1) and, once the transaction ended, either hands it over
/// (`take`) or gives the place back (`unreserve`). A crash before the job started leaves a
/// lease that the next start gives back (`sqlite_queue::release_all_leases`), as for a
/// claimed job. Threading: called on the writer thread; must not call the writer.
class handoff {
 public:
  virtual ~handoff();
  /// A free slot of lane `l` for a job due now: the lease to write; nullopt when none. The
  /// queue does not count these against its lane limit: the worker's slots must stay within it
  /// (worker::pool: slots x leases_per_slot is the limit it is given).
  virtual std::optional<std::chrono::milliseconds> reserve(lane l) = 0;
  /// The reserving transaction committed: `j` is leased to this worker; run it.
  virtual void take(job j) = 0;
  /// The reserving transaction was undone, or wrote no job: the place is free again.
  virtual void unreserve(lane l) = 0;
};

/// Optional capability of a queue that lives in the store itself: publish inside the
/// caller's write transaction (on the writer thread), so the relay inserts jobs and deletes
/// their outbox rows atomically. A queue elsewhere (Kafka) does not offer it.
class store_publisher {
 public:
  virtual ~store_publisher();
  /// Inserts the batch through `c` (the writer's connection, transaction open). Nothing is
  /// durable until the caller's transaction commits.
  virtual status publish_in(store::connection& c, const std::vector<job_spec>& batch) = 0;

  /// Whether producers publish a due step with `publish_in` in the very transaction that made
  /// it due (`outbox::enqueue` then writes the job, not an outbox row): the queue is in the
  /// same database, so the outbox hop would buy nothing. False (`outbox.direct=off`): through
  /// the outbox and the relay, the path a queue outside the store takes.
  virtual bool direct() const = 0;

  /// Whether `publish_in` wakes the workers itself, after the commit, for a job due now that
  /// waits for a claim (and only for one: a job handed to a free slot needs none). Then
  /// producers and the relay ring nothing for the jobs they publish here.
  virtual bool rings_ready() const { return false; }

  /// ack / retry / dead inside the caller's write transaction, so a worker records a step's
  /// result, enqueues the next step and settles the job atomically. `lease_lost` when the
  /// lease was lost (the caller's request must then fail so the transaction undoes it).
  /// Nothing is counted here: the transaction may still roll back. Once it has committed,
  /// the caller reports what it did with `settled`.
  virtual status ack_in(store::connection& c, const job& j) = 0;
  virtual status retry_in(store::connection& c, const job& j, std::chrono::system_clock::time_point at) = 0;
  virtual status dead_in(store::connection& c, const job& j, std::string_view reason) = 0;

  /// Drops jobs of `run_id` (only step `step` when given) inside the caller's write
  /// transaction: those not leased when `leased_too` is false (a cancelled run's pending
  /// steps; a step retried by hand, whose dead job would hide the new one), every one when
  /// true (a pruned run; a late worker's result then finds its lease gone). A queue outside
  /// the store cannot: its workers see the run's state instead.
  virtual status discard_in(store::connection& c, const std::string& run_id, std::optional<int> step, bool leased_too) = 0;

  enum class settlement { acked, retried, dead };
  /// Counts a settlement made by ack_in / retry_in / dead_in whose transaction committed.
  virtual void settled(const job& j, settlement s) = 0;
};

}  // namespace zapd::queue
