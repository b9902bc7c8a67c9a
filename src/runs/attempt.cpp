#include "zapd/runs/attempt.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "zapd/core/json.hpp"
#include "zapd/outbox/outbox.hpp"
#include "zapd/store/connection.hpp"

namespace zapd::runs {
namespace {

using json = nlohmann::json;
using settlement = queue::store_publisher::settlement;

// A run whose step is being retried or has a next step is running (unless it ended meanwhile).
// A run is live while queued, running or waiting (a delay); a later step's record moves it on.
constexpr const char* k_mark_running =
    "UPDATE runs SET status = 'running', resume_at = NULL, started_at = COALESCE(started_at, ?) "
    "WHERE id = ? AND status IN ('queued', 'running', 'waiting')";
constexpr const char* k_mark_waiting =
    "UPDATE runs SET status = 'waiting', resume_at = ?, started_at = COALESCE(started_at, ?) "
    "WHERE id = ? AND status IN ('queued', 'running', 'waiting')";
constexpr const char* k_mark_succeeded =
    "UPDATE runs SET status = 'succeeded', resume_at = NULL, started_at = COALESCE(started_at, ?), finished_at = ? "
    "WHERE id = ? AND status IN ('queued', 'running', 'waiting')";
constexpr const char* k_mark_filtered =
    "UPDATE runs SET status = 'filtered', resume_at = NULL, started_at = COALESCE(started_at, ?), finished_at = ? "
    "WHERE id = ? AND status IN ('queued', 'running', 'waiting')";
constexpr const char* k_mark_failed =
    "UPDATE runs SET status = 'failed', resume_at = NULL, error = ?, started_at = COALESCE(started_at, ?), finished_at = ? "
    "WHERE id = ? AND status IN ('queued', 'running', 'waiting')";
constexpr const char* k_upsert_step =
    "INSERT INTO run_steps (run_id, step_index, action_id, status, attempts, input, output, error, warnings, "
    "started_at, finished_at, duration_ms, next_attempt_at, worker) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (run_id, step_index) DO UPDATE SET action_id = excluded.action_id, status = excluded.status, "
    "attempts = excluded.attempts, input = excluded.input, output = excluded.output, error = excluded.error, "
    "warnings = excluded.warnings, started_at = COALESCE(run_steps.started_at, excluded.started_at), "
    "finished_at = excluded.finished_at, duration_ms = excluded.duration_ms, next_attempt_at = excluded.next_attempt_at, "
    "worker = excluded.worker";

// The run's status; nullopt when the run is gone (pruned meanwhile).
result<std::optional<std::string>> run_status(store::connection& c, const std::string& run_id) {
  auto st = c.prepare("SELECT status FROM runs WHERE id = ?");
  if (!st) return std::move(st).err();
  st->bind_all(run_id);
  auto row = st->step();
  if (!row) return std::move(row).err();
  return *row ? std::optional<std::string>(st->text(0)) : std::nullopt;
}

}  // namespace

result<std::optional<step_context>> load_for_step(store::connection& c, const std::string& run_id, int step_index) {
  step_context d;
  {
    auto st = c.prepare("SELECT status, user_id, zap_id, zap_version, \"trigger\" FROM runs WHERE id = ?");
    if (!st) return std::move(st).err();
    st->bind_all(run_id);
    auto row = st->step();
    if (!row) return std::move(row).err();
    if (!*row) return std::optional<step_context>{};
    d.status = st->text(0);
    d.user_id = st->text(1);
    d.zap_id = st->text(2);
    d.zap_version = st->int64(3);
    d.trigger = parse_json_or_discarded(st->text(4), json_depth::stored);
    if (d.trigger.is_discarded()) d.trigger = nullptr;
  }
  // Steps are numbered from 1: the first has no earlier outputs, and needs no second read.
  if (step_index <= 1) return std::optional<step_context>(std::move(d));
  auto st = c.prepare("SELECT step_index, output FROM run_steps WHERE run_id = ? AND step_index < ? AND status = 'succeeded'");
  if (!st) return std::move(st).err();
  st->bind_all(run_id, step_index);
  for (;;) {
    auto row = st->step();
    if (!row) return std::move(row).err();
    if (!*row) break;
    json out = st->is_null(1) ? json(nullptr) : parse_json_or_discarded(st->text(1), json_depth::stored);
    d.outputs[std::to_string(st->int64(0))] = out.is_discarded() ? json(nullptr) : std::move(out);
  }
  return std::optional<step_context>(std::move(d));
}

result<std::optional<step_progress>> progress_of(store::connection& c, const std::string& run_id, int step_index) {
  auto st = c.prepare("SELECT status, attempts FROM run_steps WHERE run_id = ? AND step_index = ?");
  if (!st) return std::move(st).err();
  st->bind_all(run_id, step_index);
  auto row = st->step();
  if (!row) return std::move(row).err();
  if (!*row) return std::optional<step_progress>{};
  return std::optional<step_progress>(step_progress{st->text(0), static_cast<int>(st->int64(1))});
}

result<attempt_outcome> record_attempt(store::connection& c, const attempt_record& a, queue::store_publisher* jobs) {
  const queue::job& j = a.job;
  const bool ok = a.verdict == attempt_verdict::succeeded;
  const bool filtered = a.verdict == attempt_verdict::filtered;
  const bool give_up = a.verdict == attempt_verdict::failed;
  const bool next_step = ok && static_cast<std::size_t>(j.step_index) < a.steps;
  const bool waits = next_step && a.resume_at_ms > a.now_ms;

  // The run's status moves first, only while the run is live (each statement's WHERE). When
  // no row moved, the run was cancelled or pruned meanwhile, or had already ended: only then
  // is its status read. One statement per step, not two. (A run that had ended still gets
  // the step's row and, after a success, its next step's job, which the worker skips.)
  status moved = filtered    ? c.run(k_mark_filtered, a.started_ms, a.now_ms, j.run_id)
                 : next_step ? (waits ? c.run(k_mark_waiting, a.resume_at_ms, a.started_ms, j.run_id)
                                      : c.run(k_mark_running, a.started_ms, j.run_id))
                 : ok        ? c.run(k_mark_succeeded, a.started_ms, a.now_ms, j.run_id)
                 : give_up   ? c.run(k_mark_failed, fmt::format("step {}: {}", j.step_index, a.error), a.started_ms, a.now_ms,
                                     j.run_id)
                             : c.run(k_mark_running, a.started_ms, j.run_id);
  if (!moved) return std::move(moved).err();
  bool cancelled = false;
  bool gone = false;
  if (c.changes() == 0) {
    auto state = run_status(c, j.run_id);
    if (!state) return std::move(state).err();
    gone = !*state;
    cancelled = gone || **state == "cancelled";  // a pruned run: nothing after it runs
  }
  const bool final_step = ok || filtered || give_up || cancelled;
  const char* step_status = ok         ? "succeeded"
                            : filtered ? "filtered"
                            : cancelled ? "cancelled"
                            : give_up  ? "failed"
                                       : "running";
  // A pruned run's steps went with it: a row now would belong to no run and never be pruned.
  if (!gone) {
    auto st = c.prepare(k_upsert_step);
    if (!st) return std::move(st).err();
    st->bind_all(j.run_id, j.step_index, a.action_id, step_status, j.attempts, a.input, a.output,
                 a.error.empty() ? std::optional<std::string>{} : std::optional<std::string>(a.error), a.warnings,
                 a.started_ms);
    if (final_step) st->bind(11, a.now_ms);
    else st->bind(11, nullptr);
    st->bind(12, std::max<std::int64_t>(a.duration_ms, a.now_ms - a.started_ms));
    if (final_step) st->bind(13, nullptr);
    else st->bind(13, a.retry_at_ms);
    if (a.worker.empty()) st->bind(14, nullptr);
    else st->bind(14, a.worker);
    if (auto s = st->run(); !s) return std::move(s).err();
  }

  attempt_outcome out;
  out.settlement = cancelled || ok || filtered ? settlement::acked : give_up ? settlement::dead : settlement::retried;
  if (jobs) {
    status s = out.settlement == settlement::acked     ? jobs->ack_in(c, j)
               : out.settlement == settlement::retried ? jobs->retry_in(c, j, std::chrono::system_clock::time_point(
                                                                                 std::chrono::milliseconds(a.retry_at_ms)))
                                                       : jobs->dead_in(c, j, a.error);
    if (!s) return std::move(s).err();
  }
  if (cancelled || !next_step) return out;
  if (auto s = outbox::enqueue(c, jobs, j.run_id, j.step_index + 1, j.lane, a.now_ms, waits ? a.resume_at_ms : 0); !s)
    return std::move(s).err();
  out.next_step_enqueued = true;
  return out;
}

}  // namespace zapd::runs
