#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "zapd/core/clock.hpp"
#include "zapd/core/result.hpp"
#include "zapd/core/wakeup.hpp"
#include "zapd/metrics/registry.hpp"
#include "zapd/queue/job.hpp"
#include "zapd/queue/queue.hpp"
#include "zapd/runs/runs.hpp"
#include "zapd/store/connection.hpp"
#include "zapd/store/database.hpp"
#include "zapd/zaps/schedule.hpp"

namespace zapd::schedule {

/// A schedule zap's row in `schedules` (this module owns the table).
struct slot_state {
  std::int64_t zap_version = 0;
  std::int64_t through_ms = 0;  // every slot <= this has fired or was skipped
  std::optional<std::int64_t> last_slot_ms;
};

/// What the scheduler does with a zap it (re)loads: pure, from the zap's config, its row
/// and the time. Rules (docs/ARCHITECTURE.md, "Schedules"):
///   - no row, or a row of another zap version (created, edited, enabled again): no catch-up;
///     `baseline` = now (slots up to now are skipped), the next slot after now.
///   - same version, the next slot after `through_ms` is still ahead: that slot.
///   - same version, slots missed (zapd was down): catchUp none skips them (the next slot
///     after now); catchUp last fires the latest missed slot now (`fire_now`), then goes on.
struct plan {
  std::optional<std::int64_t> baseline;  // write through_ms = this (and the version) first
  std::optional<std::int64_t> fire_now;  // a missed slot to fire at once (catchUp last)
  std::optional<std::int64_t> next;      // the next slot to fire
  bool missed = false;                   // slots were missed while zapd was down
};
plan plan_on_load(const zaps::schedule_config& cfg, const std::optional<slot_state>& row, std::int64_t zap_version,
                  std::int64_t now_ms);

/// The latest slot in (after_ms, upto_ms], or nullopt. Bounded: looks back in growing
/// windows from `upto_ms` and walks at most 100,000 slots.
std::optional<std::int64_t> latest_slot(const cron::schedule& s, std::int64_t after_ms, std::int64_t upto_ms);

/// One slot of one zap, as the scheduler fires it.
struct slot_run {
  std::string zap_id;
  std::string user_id;
  std::int64_t zap_version = 0;
  std::size_t actions = 0;
  queue::lane lane = queue::lane::free;
  std::int64_t slot_ms = 0;
  std::int64_t now_ms = 0;
};

/// The run a slot makes: id a UUIDv7 of `now_ms`, dedup key "schedule:<slot RFC 3339>",
/// trigger payload {"body": {scheduledFor, firedAt}, scheduledFor, firedAt, receivedAt} (bare
/// template paths read the body, like a webhook's: `{{scheduledFor}}`).
runs::new_run make_run(const slot_run& s);

enum class fire_result { fired, already_fired, gone, disabled, stale };
/// The write of one slot, on the writer inside its transaction: checks the zap is still the
/// owner's, enabled and at `zap_version`, that the slot is after the row's through_ms, then
/// inserts the run (with its first step's outbox row) and moves the row to the slot. All or
/// nothing with the transaction, so a slot makes one run even across kill -9.
result<fire_result> fire(store::connection& c, queue::store_publisher* jobs, const slot_run& s);

/// Rows of `schedules` by zap id.
result<std::map<std::string, slot_state>> load_states(store::connection& c);
/// Upserts a row's version and through_ms (never moving through_ms backwards).
status set_baseline(store::connection& c, const std::string& zap_id, std::int64_t zap_version, std::int64_t through_ms);
/// Deletes the rows of zaps not in `keep` (deleted zaps, zaps no longer on a schedule).
status drop_others(store::connection& c, const std::vector<std::string>& keep);

struct options {
  std::chrono::milliseconds reload{30'000};  // safety net: re-read every schedule zap this often
  std::chrono::milliseconds late{10'000};    // a slot later than this (a stalled process) counts as missed
};

/// Fires schedule zaps. One thread sleeps until the earliest next slot (or a reload), fires
/// every due slot through `fire` on the writer (the first step through `jobs`, see
/// `outbox::enqueue`), rings `step_due` after each commit.
/// `zaps_changed()` (the zap routes call it after a write) wakes it to re-read at once; it
/// also re-reads every `options::reload`. A zap disabled or deleted stops firing; an edited
/// one restarts from its new schedule at once.
/// Lifecycle: construct; `start()`; `stop()` (idempotent, the destructor calls it) before the
/// database stops. Threading: `zaps_changed` from any thread; the rest from the owner.
class scheduler {
 public:
  scheduler(store::database& db, queue::store_publisher* jobs, const clock& clk, metrics::registry& m,
            const wakeup& step_due, options o = {});
  ~scheduler();
  scheduler(const scheduler&) = delete;
  scheduler& operator=(const scheduler&) = delete;

  void start();
  void stop();
  void zaps_changed();

 private:
  struct entry {
    slot_run base;  // zap fields; slot/now set per fire
    zaps::schedule_config cfg;
    std::optional<std::int64_t> next;
  };
  void loop();
  void reload(std::int64_t now);
  void fire_due(std::int64_t now);
  bool fire_one(entry& e, std::int64_t slot, std::int64_t now);

  store::database& db_;
  const clock& clock_;
  queue::store_publisher* jobs_;
  const wakeup& step_due_;
  options opts_;
  metrics::counter& fired_;
  metrics::counter& skipped_;
  metrics::gauge& lag_ms_;
  metrics::gauge& zaps_;
  std::map<std::string, entry> entries_;  // by zap id; the scheduler thread only
  std::mutex mu_;
  std::condition_variable cv_;
  std::int64_t backoff_until_ = 0;  // after a failed write: no retry before this (Unix ms)
  bool changed_ = true;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace zapd::schedule
