#include "zapd/runs/runs.hpp"

#include <charconv>

#include <fmt/format.h>

#include "zapd/core/clock.hpp"
#include "zapd/core/ids.hpp"
#include "zapd/core/json.hpp"
#include "zapd/outbox/outbox.hpp"
#include "zapd/zaps/zaps.hpp"

namespace zapd::runs {
namespace {

using json = nlohmann::json;

constexpr const char* k_run_columns =
    "id, zap_id, zap_version, user_id, lane, status, \"trigger\", error, replay_of, created_at, started_at, finished_at, "
    "resume_at";

std::optional<std::int64_t> opt_int(const store::statement& st, int col) {
  if (st.is_null(col)) return std::nullopt;
  return st.int64(col);
}
std::optional<std::string> opt_text(const store::statement& st, int col) {
  if (st.is_null(col)) return std::nullopt;
  return st.text(col);
}
json parse_or_null(const store::statement& st, int col) {
  if (st.is_null(col)) return nullptr;
  auto j = parse_json_or_discarded(st.text(col), json_depth::stored);
  return j.is_discarded() ? json(nullptr) : j;
}

run_record read_run(const store::statement& st) {
  run_record r;
  r.id = st.text(0);
  r.zap_id = st.text(1);
  r.zap_version = st.int64(2);
  r.user_id = st.text(3);
  r.lane = st.text(4);
  r.status = st.text(5);
  r.trigger = parse_or_null(st, 6);
  r.error = opt_text(st, 7);
  r.replay_of = opt_text(st, 8);
  r.created_at = st.int64(9);
  r.started_at = opt_int(st, 10);
  r.finished_at = opt_int(st, 11);
  r.resume_at = opt_int(st, 12);
  return r;
}

// The run if it is the user's; not_found otherwise.
result<run_record> load(store::connection& c, const std::string& user_id, const std::string& run_id) {
  auto st = c.prepare(fmt::format("SELECT {} FROM runs WHERE id = ?", k_run_columns));
  if (!st) return std::move(st).err();
  st->bind_all(run_id);
  auto row = st->step();
  if (!row) return std::move(row).err();
  if (!*row || st->text(3) != user_id) return make_error(errc::not_found, fmt::format("no run {}", run_id));
  return read_run(*st);
}

result<std::vector<step_record>> load_steps(store::connection& c, const std::string& run_id) {
  auto st = c.prepare(
      "SELECT step_index, action_id, status, attempts, input, output, error, warnings, started_at, finished_at, "
      "duration_ms, next_attempt_at, worker FROM run_steps WHERE run_id = ? ORDER BY step_index");
  if (!st) return std::move(st).err();
  st->bind_all(run_id);
  return st->collect<step_record>([](const store::statement& s) {
    step_record r;
    r.index = static_cast<int>(s.int64(0));
    r.action_id = s.text(1);
    r.status = s.text(2);
    r.attempts = static_cast<int>(s.int64(3));
    r.input = parse_or_null(s, 4);
    r.output = parse_or_null(s, 5);
    r.error = opt_text(s, 6);
    r.warnings = parse_or_null(s, 7);
    if (!r.warnings.is_array()) r.warnings = json::array();
    r.started_at = opt_int(s, 8);
    r.finished_at = opt_int(s, 9);
    r.duration_ms = opt_int(s, 10);
    r.next_attempt_at = opt_int(s, 11);
    r.worker = opt_text(s, 12);
    return r;
  });
}


std::optional<std::string> iso_or_null(const std::optional<std::int64_t>& ms) {
  if (!ms) return std::nullopt;
  return iso_time_ms(*ms);
}

json nullable(const std::optional<std::string>& s) { return s ? json(*s) : json(nullptr); }
json nullable(const std::optional<std::int64_t>& v) { return v ? json(*v) : json(nullptr); }

bool valid_status(const std::string& s) {
  return s == "queued" || s == "running" || s == "waiting" || s == "succeeded" || s == "failed" || s == "filtered" ||
         s == "cancelled";
}

}  // namespace

status insert(store::connection& c, queue::store_publisher* jobs, const new_run& r) {
  const std::string_view lane = queue::lane_name(r.lane);
  const bool empty = r.actions == 0;
  {
    auto st = c.prepare(
        "INSERT INTO runs (id, zap_id, zap_version, user_id, lane, status, \"trigger\", dedup_key, replay_of, created_at, "
        "finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    if (!st) return std::move(st).err();
    st->bind_all(r.id, r.zap_id, r.zap_version, r.user_id, lane, empty ? "succeeded" : "queued", r.trigger_json, r.dedup_key,
                 r.replay_of, r.now_ms);
    if (empty) st->bind(11, r.now_ms);
    else st->bind(11, nullptr);
    if (auto s = st->run(); !s) return s;
  }
  if (empty) return {};
  return outbox::enqueue(c, jobs, r.id, 1, r.lane, r.now_ms);
}

result<page> list(store::connection& c, const std::string& user_id, const filter& f) {
  if (f.limit < 1 || f.limit > 200) return make_error(errc::invalid_argument, "limit must be between 1 and 200");
  if (f.status && !valid_status(*f.status))
    return make_error(errc::invalid_argument,
                      "status must be queued, running, waiting, succeeded, failed, filtered or cancelled");
  std::int64_t cur_at = 0;
  std::string cur_id;
  if (f.cursor) {
    auto dot = f.cursor->find('.');
    auto [p, ec] = std::from_chars(f.cursor->data(), f.cursor->data() + (dot == std::string::npos ? 0 : dot), cur_at);
    if (dot == std::string::npos || ec != std::errc{} || p != f.cursor->data() + dot)
      return make_error(errc::invalid_argument, "cursor is not one this API returned");
    cur_id = f.cursor->substr(dot + 1);
  }
  std::string sql = fmt::format("SELECT {} FROM runs WHERE {} = ?1", k_run_columns, f.zap_id ? "zap_id" : "user_id");
  if (f.zap_id) sql += " AND user_id = ?2";
  if (f.status) sql += " AND status = ?3";
  if (f.cursor) sql += " AND (created_at, id) < (?4, ?5)";
  sql += " ORDER BY created_at DESC, id DESC LIMIT ?6";
  auto st = c.prepare(sql);
  if (!st) return std::move(st).err();
  st->bind(1, f.zap_id ? *f.zap_id : user_id);
  if (f.zap_id) st->bind(2, user_id);
  if (f.status) st->bind(3, *f.status);
  if (f.cursor) {
    st->bind(4, cur_at);
    st->bind(5, cur_id);
  }
  st->bind(6, f.limit + 1);
  auto rows = st->collect<run_record>(read_run);
  if (!rows) return std::move(rows).err();
  page p;
  p.runs = std::move(*rows);
  if (p.runs.size() > static_cast<std::size_t>(f.limit)) {
    p.runs.pop_back();
    p.next_cursor = fmt::format("{}.{}", p.runs.back().created_at, p.runs.back().id);
  }
  return p;
}

result<std::optional<run_record>> latest(store::connection& c, const std::string& user_id, const std::string& zap_id) {
  auto st = c.prepare(
      "SELECT id, status, created_at FROM runs WHERE zap_id = ? AND user_id = ? ORDER BY created_at DESC, id DESC LIMIT 1");
  if (!st) return std::move(st).err();
  return st->bind_all(zap_id, user_id).first<run_record>([](const store::statement& row) {
    run_record r;
    r.id = row.text(0);
    r.status = row.text(1);
    r.created_at = row.int64(2);
    return r;
  });
}

result<run_record> get(store::connection& c, const std::string& user_id, const std::string& run_id) {
  auto r = load(c, user_id, run_id);
  if (!r) return r;
  auto steps = load_steps(c, run_id);
  if (!steps) return std::move(steps).err();
  r->steps = std::move(*steps);
  return r;
}

result<run_record> cancel(store::connection& c, queue::store_publisher* jobs, const std::string& user_id, const std::string& run_id,
                          std::int64_t now_ms) {
  auto r = load(c, user_id, run_id);
  if (!r) return r;
  if (r->status != "queued" && r->status != "running" && r->status != "waiting")
    return make_error(errc::invalid_state, fmt::format("run {} is already {}", run_id, r->status));
  if (auto s = c.run("UPDATE runs SET status = 'cancelled', resume_at = NULL, finished_at = ? WHERE id = ?", now_ms, run_id); !s)
    return std::move(s).err();
  // Steps not started yet go away; a leased job finishes and its worker sees the cancel.
  if (auto s = outbox::drop_run(c, run_id); !s) return std::move(s).err();
  if (jobs)
    if (auto s = jobs->discard_in(c, run_id, std::nullopt, false); !s) return std::move(s).err();
  if (auto s = c.run("UPDATE run_steps SET status = 'cancelled', finished_at = ?, next_attempt_at = NULL "
                     "WHERE run_id = ? AND status IN ('queued', 'running')",
                     now_ms, run_id);
      !s)
    return std::move(s).err();
  return get(c, user_id, run_id);
}

result<run_record> retry(store::connection& c, queue::store_publisher* jobs, const std::string& user_id, const std::string& run_id,
                         std::int64_t now_ms) {
  auto r = load(c, user_id, run_id);
  if (!r) return r;
  if (r->status != "failed")
    return make_error(errc::invalid_state, fmt::format("run {} is {}; only a failed run can be retried", run_id, r->status));
  auto failed = c.prepare("SELECT step_index FROM run_steps WHERE run_id = ? AND status = 'failed' ORDER BY step_index LIMIT 1");
  if (!failed) return std::move(failed).err();
  failed->bind_all(run_id);
  auto row = failed->step();
  if (!row) return std::move(row).err();
  if (!*row) return make_error(errc::invalid_state, fmt::format("run {} has no failed step to retry", run_id));
  const int step = static_cast<int>(failed->int64(0));
  // Its dead job would make the queue take the new one for a repeated publish.
  if (jobs)
    if (auto s = jobs->discard_in(c, run_id, step, true); !s) return std::move(s).err();
  if (auto s = c.run("UPDATE run_steps SET status = 'queued', attempts = 0, error = NULL, finished_at = NULL, "
                     "next_attempt_at = NULL WHERE run_id = ? AND step_index = ?",
                     run_id, step);
      !s)
    return std::move(s).err();
  if (auto s = c.run("UPDATE runs SET status = 'running', error = NULL, finished_at = NULL WHERE id = ?", run_id); !s)
    return std::move(s).err();
  if (auto s = outbox::enqueue(c, jobs, run_id, step, queue::parse_lane(r->lane).value_or(queue::lane::free), now_ms); !s)
    return std::move(s).err();
  return get(c, user_id, run_id);
}

result<std::string> replay(store::connection& c, queue::store_publisher* jobs, const std::string& user_id, const std::string& run_id, bool original_version,
                           std::int64_t now_ms) {
  auto r = load(c, user_id, run_id);
  if (!r) return std::move(r).err();
  std::int64_t version = r->zap_version;
  if (!original_version) {
    auto z = zaps::state_of(c, r->zap_id);
    if (!z) return std::move(z).err();
    if (!*z || (*z)->user_id != user_id)
      return make_error(errc::not_found, fmt::format("zap {} of run {} no longer exists", r->zap_id, run_id));
    version = (*z)->version;
  }
  auto def = zaps::version_at(c, r->zap_id, version);
  if (!def) return std::move(def).err();
  new_run n;
  n.id = new_uuid_v7(now_ms);
  n.zap_id = r->zap_id;
  n.user_id = user_id;
  n.zap_version = version;
  n.lane = queue::parse_lane(r->lane).value_or(queue::lane::free);
  n.actions = def->definition.step_count();
  n.trigger_json = dump_safe(r->trigger);
  n.replay_of = run_id;
  n.now_ms = now_ms;
  if (auto s = insert(c, jobs, n); !s) return std::move(s).err();
  return n.id;
}

result<std::int64_t> prune(store::connection& c, queue::store_publisher* jobs, std::int64_t before_ms, int batch) {
  // Oldest first by rowid (runs are appended in time order), so no index on created_at is
  // written on the ingestion path just for this: read the first `batch` rows, stop at the
  // first one young enough to keep. Only final runs go: a run still queued, running or
  // waiting (a delay may be as long as the retention) was accepted and will execute.
  auto ids = c.prepare(
      "SELECT id, created_at FROM runs WHERE status IN ('succeeded', 'failed', 'filtered', 'cancelled') "
      "ORDER BY rowid LIMIT ?");
  if (!ids) return std::move(ids).err();
  ids->bind_all(batch);
  auto rows = ids->collect<std::pair<std::string, std::int64_t>>(
      [](const store::statement& s) { return std::pair{s.text(0), s.int64(1)}; });
  if (!rows) return std::move(rows).err();
  std::vector<std::string> old;
  for (const auto& [id, at] : *rows) {
    if (at >= before_ms) break;
    old.push_back(id);
  }
  for (const auto& id : old) {
    if (auto s = c.run("DELETE FROM run_steps WHERE run_id = ?", id); !s) return std::move(s).err();
    if (auto s = outbox::drop_run(c, id); !s) return std::move(s).err();
    if (jobs)
      if (auto s = jobs->discard_in(c, id, std::nullopt, true); !s) return std::move(s).err();
    if (auto s = c.run("DELETE FROM runs WHERE id = ?", id); !s) return std::move(s).err();
  }
  return static_cast<std::int64_t>(old.size());
}

json to_json(const run_record& r, bool with_steps) {
  std::optional<std::int64_t> duration;
  if (r.started_at && r.finished_at) duration = *r.finished_at - *r.started_at;
  json j = {{"id", r.id},
            {"zapId", r.zap_id},
            {"zapVersion", r.zap_version},
            {"status", r.status},
            {"lane", r.lane},
            {"trigger", r.trigger},
            {"error", nullable(r.error)},
            {"replayOf", nullable(r.replay_of)},
            {"createdAt", iso_time_ms(r.created_at)},
            {"startedAt", nullable(iso_or_null(r.started_at))},
            {"finishedAt", nullable(iso_or_null(r.finished_at))},
            {"resumeAt", nullable(iso_or_null(r.resume_at))},
            {"durationMs", nullable(duration)}};
  if (with_steps) {
    json steps = json::array();
    for (const auto& s : r.steps)
      steps.push_back({{"index", s.index},
                       {"actionId", s.action_id},
                       {"status", s.status},
                       {"attempts", s.attempts},
                       {"input", s.input},
                       {"output", s.output},
                       {"error", nullable(s.error)},
                       {"warnings", s.warnings},
                       {"startedAt", nullable(iso_or_null(s.started_at))},
                       {"finishedAt", nullable(iso_or_null(s.finished_at))},
                       {"durationMs", nullable(s.duration_ms)},
                       {"nextAttemptAt", nullable(iso_or_null(s.next_attempt_at))},
                       {"worker", nullable(s.worker)}});
    j["steps"] = std::move(steps);
  }
  return j;
}

}  // namespace zapd::runs
