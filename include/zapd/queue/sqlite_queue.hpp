#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <mutex>

#include "zapd/core/clock.hpp"
#include "zapd/core/wakeup.hpp"
#include "zapd/metrics/registry.hpp"
#include "zapd/queue/queue.hpp"

namespace zapd::store {
class database;
}

namespace zapd::queue {

/// The embedded queue: the `jobs` table (schema/0004_runs_queue.sql), written only through
/// the store's writer thread, so publishing, claiming and acking join its group commits.
///
/// claim is ONE write request: count the lane's live leases, select claimable jobs (expired
/// leases first, then ready jobs with run_at <= now in run_at order), lease them. So the
/// per-lane limit holds across every worker and survives restarts (it is in the data), and
/// a lease that expires frees its slot. `attempts` doubles as the lease's fencing token:
/// ack/retry/dead match (id, attempts, state='leased') and answer lease_lost when the lease
/// was lost to a newer claim.
///
/// Lifecycle: constructed by `app` after the database; destroyed before it (and after the
/// relay and workers that use it). Registers metrics in `m`, which must outlive it.
/// Threading: thread-safe; blocking calls wait for the group commit.
class sqlite_queue final : public queue, public store_publisher {
 public:
  struct options {
    std::size_t paid_concurrency = 64;  // most live leases in the paid lane
    std::size_t free_concurrency = 64;  // most live leases in the free lane
    bool direct = true;                 // takes new jobs in the producer's transaction (outbox.direct)
    /// Rung after a commit that wrote a job due now that no worker slot took (it waits in
    /// `jobs` for a claim). A job handed to a slot rings nothing: waking the claim loops
    /// for it made an empty claim per lane per step. Null: `rings_ready()` is false, and the
    /// worker pool and the relay ring `jobs_ready` after their commits as producers.
    wakeup* ready = nullptr;
  };

  sqlite_queue(store::database& db, const clock& clk, metrics::registry& m, options o);
  ~sqlite_queue() override;
  sqlite_queue(const sqlite_queue&) = delete;
  sqlite_queue& operator=(const sqlite_queue&) = delete;

  status publish(std::vector<job_spec> batch, done_fn done) override;
  status publish_in(store::connection& c, const std::vector<job_spec>& batch) override;
  result<std::vector<job>> claim(lane l, std::size_t max, std::chrono::milliseconds lease) override;
  status ack(const job& j) override;
  status release(const job& j) override;  // attempts - 1: the claim never ran
  status retry(const job& j, std::chrono::system_clock::time_point at) override;
  status dead(const job& j, std::string_view reason) override;
  status ack_in(store::connection& c, const job& j) override;
  status retry_in(store::connection& c, const job& j, std::chrono::system_clock::time_point at) override;
  status dead_in(store::connection& c, const job& j, std::string_view reason) override;
  status discard_in(store::connection& c, const std::string& run_id, std::optional<int> step, bool leased_too) override;
  void settled(const job& j, settlement s) override;
  bool direct() const override { return opts_.direct; }
  bool rings_ready() const override { return opts_.ready != nullptr; }
  /// With `direct`: publish_in on the writer writes a job due now leased to `h` when `h` has
  /// a free slot and its lane has no ready job waiting (first in, first out), and hands it
  /// over after the commit: no claim.
  void hand_to(handoff* h) override;

  /// Start-up recovery for the embedded queue: every leased job belonged to a previous
  /// process (the data dir lock guarantees one process per database), so its lease is
  /// ended now instead of when it expires. Returns how many jobs were released.
  result<std::int64_t> release_all_leases();

  /// Jobs of a lane by state, read from a reader connection (committed state).
  struct depth {
    std::int64_t ready = 0;   // waiting (including not yet due)
    std::int64_t leased = 0;  // claimed, lease live or expired
    std::int64_t dead = 0;
  };
  result<depth> depth_of(lane l);

 private:
  struct lane_metrics {
    metrics::counter* claimed = nullptr;
    metrics::counter* handed = nullptr;  // of claimed: leased at their commit, with no claim
    metrics::counter* claims = nullptr;  // claim transactions, those that found nothing included
    metrics::counter* acked = nullptr;
    metrics::counter* retried = nullptr;
    metrics::counter* dead = nullptr;
    metrics::gauge* ready = nullptr;
    metrics::gauge* leased = nullptr;
    metrics::gauge* dead_now = nullptr;
  };
  std::size_t limit(lane l) const;
  // Writes `s` (due now) leased to the registered handoff when it has room; false when not
  // (the caller inserts it ready).
  result<bool> hand_over_in(store::connection& c, const job_spec& s, std::int64_t now);
  // Runs `sql` (bound: id, attempts, then `extra`) on the writer; lease_lost when no row matched.
  template <class... Extra>
  status settle(const job& j, const char* sql, const Extra&... extra);

  store::database& db_;
  const clock& clock_;
  metrics::registry& metrics_;
  options opts_;
  std::array<lane_metrics, 2> m_;
  std::uint64_t collector_id_ = 0;
  // When the depth gauges were last read (clock ms): a scrape within a second of it keeps them.
  // Counting a backlog's jobs reads every entry of jobs_claim (100k jobs: milliseconds), and
  // a scraper polling ten times a second made that 2 % of a draining zapd's CPU.
  std::atomic<std::int64_t> depth_read_ms_{std::numeric_limits<std::int64_t>::min()};
  std::mutex handoff_mu_;        // held while a producer reserves, and by hand_to
  handoff* handoff_ = nullptr;   // guarded by handoff_mu_
};

}  // namespace zapd::queue
