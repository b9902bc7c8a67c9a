#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "zapd/core/result.hpp"
#include "zapd/queue/job.hpp"
#include "zapd/queue/queue.hpp"
#include "zapd/store/connection.hpp"

namespace zapd::runs {

/// A run to insert: by ingestion (hooks) or by a replay.
struct new_run {
  std::string id;  // UUIDv7
  std::string zap_id;
  std::string user_id;
  std::int64_t zap_version = 0;
  queue::lane lane = queue::lane::free;
  std::size_t actions = 0;  // steps of that zap version
  std::string trigger_json;
  std::optional<std::string> dedup_key;
  std::optional<std::string> replay_of;
  std::int64_t now_ms = 0;
};

/// Inserts the run and its first step (`outbox::enqueue` through `jobs`: the job itself with
/// a direct queue in the store, else an outbox row), in the caller's write transaction. A zap
/// version without actions makes a run that is already succeeded (nothing to queue).
status insert(store::connection& c, queue::store_publisher* jobs, const new_run& r);

struct step_record {
  int index = 0;
  std::string action_id;
  std::string status;
  int attempts = 0;
  nlohmann::json input;   // null when not rendered yet
  nlohmann::json output;
  std::optional<std::string> error;
  nlohmann::json warnings = nlohmann::json::array();
  std::optional<std::int64_t> started_at, finished_at, duration_ms, next_attempt_at;
  std::optional<std::string> worker;  // host:pid of the worker that ran the last attempt
};

struct run_record {
  std::string id;
  std::string zap_id;
  std::int64_t zap_version = 0;
  std::string user_id;
  std::string lane;
  std::string status;
  nlohmann::json trigger;
  std::optional<std::string> error;
  std::optional<std::string> replay_of;
  std::int64_t created_at = 0;
  std::optional<std::int64_t> started_at, finished_at;
  std::optional<std::int64_t> resume_at;  // while `waiting` (a delay step): when the next step is due
  std::vector<step_record> steps;  // filled by `get`, not by `list`
};

struct filter {
  std::optional<std::string> zap_id;
  std::optional<std::string> status;
  int limit = 50;                     // 1..200
  std::optional<std::string> cursor;  // from a previous page's next_cursor
};
struct page {
  std::vector<run_record> runs;
  std::optional<std::string> next_cursor;
};

/// A user's runs, newest first. Bad filter values are `invalid_argument` naming the field.
result<page> list(store::connection& c, const std::string& user_id, const filter& f);
/// The zap's newest run with only id, status and created_at filled (the zaps list shows
/// them; the trigger payload is not read), or nullopt when it has none.
result<std::optional<run_record>> latest(store::connection& c, const std::string& user_id, const std::string& zap_id);
/// One run with its steps. Another user's run is `not_found`, like a missing one.
result<run_record> get(store::connection& c, const std::string& user_id, const std::string& run_id);

// Operator actions, each inside the caller's write transaction. `jobs` is the queue when it
// lives in the store (its jobs of the run are settled in the same transaction), else null.
/// queued/running -> cancelled: pending steps are dropped from the outbox and the queue; a
/// step in flight finishes but nothing after it runs. A finished run is `invalid_state`.
result<run_record> cancel(store::connection& c, queue::store_publisher* jobs, const std::string& user_id, const std::string& run_id,
                          std::int64_t now_ms);
/// failed -> running: the failed step is queued again (attempts start over). Other states: `invalid_state`.
result<run_record> retry(store::connection& c, queue::store_publisher* jobs, const std::string& user_id, const std::string& run_id,
                         std::int64_t now_ms);
/// A new run with the same trigger payload, on the zap's current version (or the original
/// run's version). Returns the new run's id. A deleted zap is `not_found`.
result<std::string> replay(store::connection& c, queue::store_publisher* jobs, const std::string& user_id, const std::string& run_id, bool original_version,
                           std::int64_t now_ms);

/// Deletes up to `batch` runs created before `before_ms` (finished or not) with their steps,
/// outbox rows and jobs. The number of runs deleted.
result<std::int64_t> prune(store::connection& c, queue::store_publisher* jobs, std::int64_t before_ms, int batch);

/// The API shape: {id, zapId, zapVersion, status, lane, trigger, error, replayOf, createdAt,
/// startedAt, finishedAt, durationMs[, steps:[...]]} with ISO-8601 times.
nlohmann::json to_json(const run_record& r, bool with_steps);

}  // namespace zapd::runs
