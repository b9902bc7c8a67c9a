#include "zapd/worker/pool.hpp"

#include <algorithm>
#include <limits>
#include <cmath>
#include <memory>
#include <unordered_map>

#include <fmt/format.h>

#include "zapd/actions/spec.hpp"
#include "zapd/core/json.hpp"
#include "zapd/core/log.hpp"
#include "zapd/runs/runs.hpp"
#include "zapd/secrets/secrets.hpp"
#include "zapd/store/database.hpp"
#include "zapd/templates/mask.hpp"
#include "zapd/templates/template.hpp"

namespace zapd::worker {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr std::array<std::chrono::milliseconds, 7> k_schedule = {5s, 5min, 30min, 2h, 5h, 10h, 10h};
constexpr std::chrono::milliseconds k_schedule_unit = 5s;  // `base` scales the schedule from this
constexpr std::chrono::milliseconds k_timeout_margin = 3s; // an attempt ends this long before its lease
constexpr std::chrono::milliseconds k_min_attempt = 1s;     // less lease left than this: give the job back
constexpr std::chrono::milliseconds k_max_delay = 24h;      // no retry waits longer

std::size_t index_of(queue::lane l) { return l == queue::lane::paid ? 0 : 1; }

// A zap version as the worker uses it. Versions are immutable, so this is built once per
// version and cached.
struct version_info {
  json definition;
  // The secrets it references anywhere: revealed for each of its steps so their values can be
  // masked in everything recorded for the run (a secret used by step 1 and echoed back by its
  // server must not show in step 2's input either).
  std::vector<std::string> secrets;
};

// What a step needs to know about its run, read on a reader connection.
struct run_data {
  std::string status;
  std::string user_id;
  std::string zap_id;
  std::string zap_name;
  std::int64_t zap_version = 0;
  json trigger;
  std::shared_ptr<const version_info> version;  // shared: versions never change, so they are cached
  json outputs = json::object();  // "N" -> output of succeeded step N
};

// Zap versions are immutable: their parsed definitions are kept (bounded) instead of parsing
// the same JSON for every job.
class version_cache {
 public:
  result<std::shared_ptr<const version_info>> get(store::connection& c, const std::string& zap_id, std::int64_t version) {
    std::string key = fmt::format("{}:{}", zap_id, version);
    {
      std::lock_guard lk(mu_);
      if (auto it = map_.find(key); it != map_.end()) return it->second;
    }
    auto def = runs::zap_definition(c, zap_id, version);
    if (!def) return std::move(def).err();
    auto secrets = templates::referenced_secrets(*def);
    auto shared = std::make_shared<const version_info>(version_info{std::move(*def), std::move(secrets)});
    std::lock_guard lk(mu_);
    if (map_.size() >= 1024) map_.clear();
    map_.emplace(std::move(key), shared);
    return shared;
  }

 private:
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const version_info>> map_;
};

result<std::optional<run_data>> load_run(store::connection& c, version_cache& definitions, const std::string& run_id) {
  run_data d;
  {
    auto st = c.prepare(
        "SELECT r.status, r.user_id, r.zap_id, r.zap_version, r.\"trigger\", v.name FROM runs r "
        "LEFT JOIN zap_versions v ON v.zap_id = r.zap_id AND v.version = r.zap_version WHERE r.id = ?");
    if (!st) return std::move(st).err();
    st->bind_all(run_id);
    auto row = st->step();
    if (!row) return std::move(row).err();
    if (!*row) return std::optional<run_data>{};
    d.status = st->text(0);
    d.user_id = st->text(1);
    d.zap_id = st->text(2);
    d.zap_version = st->int64(3);
    d.trigger = parse_json_or_discarded(st->text(4), json_depth::stored);
    d.zap_name = st->is_null(5) ? std::string{} : st->text(5);
  }
  auto def = definitions.get(c, d.zap_id, d.zap_version);
  if (!def) return std::move(def).err();
  d.version = std::move(*def);
  auto st = c.prepare("SELECT step_index, output FROM run_steps WHERE run_id = ? AND status = 'succeeded'");
  if (!st) return std::move(st).err();
  st->bind_all(run_id);
  for (;;) {
    auto row = st->step();
    if (!row) return std::move(row).err();
    if (!*row) break;
    d.outputs[std::to_string(st->int64(0))] = st->is_null(1) ? json(nullptr) : parse_json_or_discarded(st->text(1), json_depth::stored);
  }
  return std::optional<run_data>(std::move(d));
}

// The step's error when its config names secrets that do not exist (deleted since the zap
// was saved): running it would send an empty string in their place, e.g. an unsigned request.
std::string missing_secrets_error(const std::vector<std::string>& names) {
  std::string list;
  for (const auto& n : names) {
    if (!list.empty()) list += ", ";
    // A name is a template path segment: short in practice, but cut like any echoed input.
    list += fmt::format("\"{}\"", n.size() > 64 ? n.substr(0, 64) + "..." : n);
  }
  return fmt::format("{} {} {}", names.size() == 1 ? "secret" : "secrets", list, names.size() == 1 ? "does not exist" : "do not exist");
}

}  // namespace

struct pool::definition_cache : version_cache {};

std::chrono::milliseconds retry_policy::delay_before(int next) const {
  if (next <= 1) return 0ms;
  const auto i = std::min<std::size_t>(static_cast<std::size_t>(next - 2), k_schedule.size() - 1);
  const double scaled = static_cast<double>(k_schedule[i].count()) * static_cast<double>(base.count()) /
                        static_cast<double>(k_schedule_unit.count());
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::min(scaled, static_cast<double>(k_max_delay.count()))));
}

struct pool::attempt {
  queue::job job;
  retry_policy retry;  // the pool's, with the zap's override applied
  std::size_t steps = 0;
  std::string action_id;
  json input;  // rendered, secrets masked
  json warnings = json::array();
  // The values of the secrets the run's zap references; `finish` masks them in the output,
  // the error, the warnings and log lines before anything is recorded.
  templates::masker mask;
  std::int64_t started_ms = 0;
};

pool::pool(store::database& db, queue::sqlite_queue& q, const actions::catalog& cat, const actions::executors& ex,
           const secrets::box& box, const clock& clk, metrics::registry& m, options o)
    : db_(db),
      queue_(q),
      catalog_(cat),
      executors_(ex),
      box_(box),
      clock_(clk),
      opts_(std::move(o)),
      succeeded_(m.add_counter("zapd_worker_steps_total", "Step attempts by outcome", {{"outcome", "succeeded"}})),
      retried_(m.add_counter("zapd_worker_steps_total", "Step attempts by outcome", {{"outcome", "retry"}})),
      failed_(m.add_counter("zapd_worker_steps_total", "Step attempts by outcome", {{"outcome", "failed"}})),
      lost_(m.add_counter("zapd_worker_results_discarded_total", "Results not recorded because the job's lease was lost")),
      deferred_count_(m.add_counter("zapd_worker_results_deferred_total", "Results handed to the writer again because its queue was full")),
      in_flight_gauge_(m.add_gauge("zapd_worker_in_flight", "Step attempts executing now")),
      definitions_(std::make_unique<definition_cache>()) {
  lanes_[0].lane = queue::lane::paid;
  lanes_[0].slots = std::max<std::size_t>(1, opts_.paid_slots);
  lanes_[1].lane = queue::lane::free;
  lanes_[1].slots = std::max<std::size_t>(1, opts_.free_slots);
}

pool::~pool() { stop(); }

void pool::start() {
  std::lock_guard lk(mu_);
  if (stopping_ || lanes_[0].thread.joinable()) return;
  for (auto& ls : lanes_) ls.thread = std::thread([this, &ls] { claim_loop(ls); });
}

void pool::notify() noexcept {
  {
    std::lock_guard lk(mu_);
    for (auto& ls : lanes_) ls.woken = true;
  }
  cv_.notify_all();
}

void pool::claim_loop(lane_state& ls) {
  std::unique_lock lk(mu_);
  while (!stopping_) {
    if (!deferred_.empty()) {
      lk.unlock();
      const bool all = resubmit_deferred();
      lk.lock();
      if (!all) {  // the writer is still full: let it drain before trying again
        cv_.wait_for(lk, std::chrono::milliseconds(5), [this] { return stopping_; });
        continue;
      }
    }
    ls.woken = false;
    const std::size_t room = ls.slots - std::min(ls.slots, ls.in_flight);
    bool full = room == 0;
    if (room > 0) {
      lk.unlock();
      auto jobs = queue_.claim(ls.lane, std::min(room, opts_.claim_batch), opts_.lease);
      if (!jobs) log::warn("worker.claim_failed", {{"lane", queue::lane_name(ls.lane)}, {"error", jobs.err().message}});
      lk.lock();
      if (jobs && !jobs->empty()) {
        for (const auto& j : *jobs) {
          ++ls.in_flight;
          running_[{j.id, j.attempts}] = j;
        }
        in_flight_gauge_.set(static_cast<std::int64_t>(running_.size()));
        lk.unlock();
        for (const auto& j : *jobs) begin(j);
        lk.lock();
        continue;  // there may be more
      }
    }
    // Sleep until notified, a slot frees (when full), a retry falls due, or the poll passes.
    auto until = std::chrono::steady_clock::now() + opts_.poll;
    const std::int64_t due = next_due_ms_.load();
    if (due > 0) {
      auto wait = std::chrono::milliseconds(std::max<std::int64_t>(0, due - clock_.now_ms()));
      until = std::min(until, std::chrono::steady_clock::now() + wait);
    }
    cv_.wait_until(lk, until,
                   [&] { return stopping_ || ls.woken || !deferred_.empty() || (full && ls.in_flight < ls.slots); });
    if (due > 0 && clock_.now_ms() >= due) {
      std::int64_t expected = due;  // clear it unless a sooner retry was scheduled meanwhile
      next_due_ms_.compare_exchange_strong(expected, 0);
    }
  }
}

void pool::begin(const queue::job& j) {
  auto a = std::make_shared<attempt>();
  a->job = j;
  a->retry = opts_.retry;
  a->started_ms = clock_.now_ms();

  auto data = db_.reads().with([&](store::connection& c) { return load_run(c, *definitions_, j.run_id); });
  if (!data) {
    log::warn("worker.load_failed", {{"run", j.run_id}, {"step", j.step_index}, {"error", data.err().message}});
    actions::step_result r;
    // The zap version is gone (zap deleted) or unreadable: no retry can help. A busy
    // database can.
    const bool permanent = data.err().code == errc::not_found || data.err().code == errc::internal;
    r.v = permanent ? actions::verdict::failed : actions::verdict::retry;
    r.error = "could not read the run: " + data.err().message;
    finish(a, std::move(r));
    return;
  }
  if (!*data || (*data)->status == "cancelled" || (*data)->status == "succeeded" || (*data)->status == "failed") {
    settle_skip(j, *data ? "run is " + (*data)->status : "run no longer exists");
    return;
  }
  run_data& d = **data;
  const json& definition = d.version->definition;
  if (auto r = definition.find("retry"); r != definition.end() && r->is_object()) {
    if (auto n = r->find("attempts"); n != r->end() && n->is_number_integer()) a->retry.max_attempts = n->get<int>();
    if (auto b = r->find("baseDelayMs"); b != r->end() && b->is_number_integer())
      a->retry.base = std::chrono::milliseconds(b->get<std::int64_t>());
  }
  static const json k_none = json::array();
  auto acts_it = definition.find("actions");
  const json& acts = acts_it != definition.end() ? *acts_it : k_none;
  a->steps = acts.is_array() ? acts.size() : 0;
  if (j.step_index < 1 || static_cast<std::size_t>(j.step_index) > a->steps) {
    settle_skip(j, fmt::format("step {} is not in zap version {}", j.step_index, d.zap_version));
    return;
  }
  const json& act = acts[static_cast<std::size_t>(j.step_index - 1)];
  a->action_id = act.value("actionId", "");
  json raw = act.value("metadata", json::object());
  actions::executor* ex = executors_.find(a->action_id);
  if (!ex) {
    actions::step_result r;
    r.v = actions::verdict::failed;
    r.error = fmt::format("the '{}' action cannot run in this version of zapd", a->action_id);
    finish(a, std::move(r));
    return;
  }

  json ctx = {{"trigger", d.trigger},
              {"steps", d.outputs},
              {"run", {{"id", j.run_id}, {"zapId", d.zap_id}, {"zapName", d.zap_name}, {"zapVersion", d.zap_version},
                       {"step", j.step_index}, {"attempt", j.attempts}}},
              {"secrets", json::object()}};
  if (!d.version->secrets.empty()) {
    auto found = db_.reads().with([&](store::connection& c) { return secrets::reveal(c, box_, d.user_id, d.version->secrets); });
    if (!found) {
      actions::step_result r;
      r.v = actions::verdict::retry;
      r.error = "could not read secrets: " + found.err().message;
      finish(a, std::move(r));
      return;
    }
    std::vector<std::string> values;
    for (auto& [name, value] : *found) {
      values.push_back(value);
      ctx["secrets"][name] = std::move(value);
    }
    a->mask = templates::masker(values);
  }
  auto rendered = templates::render_config(raw, ctx, [&](std::string_view field) { return ex->render_options(field, raw); });
  a->input = std::move(rendered.masked);
  for (auto& w : rendered.warnings) a->warnings.push_back(std::move(w));
  if (!rendered.missing_secrets.empty()) {
    // Permanent: the secret does not come back by itself (a new one with that name is used
    // by a retry or replay of the run).
    actions::step_result r;
    r.v = actions::verdict::failed;
    r.error = missing_secrets_error(rendered.missing_secrets);
    finish(a, std::move(r));
    return;
  }

  // An attempt ends before its lease does (with time to record the result), so a slow
  // action cannot run twice at once. The lease started at the claim: what is left counts.
  json config = std::move(rendered.value);
  const std::int64_t cap = j.lease_until_ms - clock_.now_ms() - k_timeout_margin.count();
  if (cap < k_min_attempt.count()) {
    log::warn("worker.lease_short", {{"run", j.run_id}, {"step", j.step_index}, {"left_ms", cap}});
    (void)queue_.retry(j, clock_.now());  // give it back untried
    done(j);
    return;
  }
  std::int64_t timeout = 30'000;
  // A zap saved before timeoutMs was range-checked may hold anything (2^63 read as int64 was
  // negative, i.e. a 1 ms timeout): out of any sane range means the default.
  if (auto t = config.find("timeoutMs"); t != config.end())
    if (auto v = actions::bounded_integer(*t, 1, std::numeric_limits<std::int32_t>::max())) timeout = *v;
  config["timeoutMs"] = std::clamp<std::int64_t>(timeout, 1, cap);

  actions::step_request req;
  req.run_id = j.run_id;
  req.step_index = j.step_index;
  req.attempt = j.attempts;
  req.zap_name = d.zap_name;
  req.config = std::move(config);
  req.idempotency_key = fmt::format("{}:{}", j.run_id, j.step_index);
  ex->execute(std::move(req), [this, a](actions::step_result r) { finish(a, std::move(r)); });
}

std::chrono::system_clock::time_point pool::next_attempt_at(const retry_policy& policy, int next,
                                                           std::optional<std::chrono::milliseconds> retry_after) {
  auto delay = policy.delay_before(next);
  if (delay.count() > 0 && policy.jitter > 0) {
    std::lock_guard lk(mu_);
    std::uniform_real_distribution<double> d(1 - policy.jitter, 1 + policy.jitter);
    delay = std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(static_cast<double>(delay.count()) * d(rng_))));
  }
  if (retry_after && *retry_after > delay) delay = *retry_after;
  return clock_.now() + delay;
}

// A run whose step is being retried or has a next step is running (unless it ended meanwhile).
constexpr const char* k_mark_running =
    "UPDATE runs SET status = 'running', started_at = COALESCE(started_at, ?) WHERE id = ? AND status IN ('queued', 'running')";

void pool::finish(const std::shared_ptr<attempt>& a, actions::step_result r) {
  const queue::job& j = a->job;
  // Nothing below records or logs a secret value: the input was masked when rendered.
  r.error = a->mask.str(r.error);
  a->mask.in_place(r.output);
  a->mask.in_place(a->warnings);
  const bool give_up = r.v == actions::verdict::failed ||
                       (r.v == actions::verdict::retry && j.attempts >= a->retry.max_attempts);
  const bool schedules_retry = !give_up && r.v == actions::verdict::retry;
  // Only a retry has a next attempt (drawing its jitter takes the pool's mutex).
  const auto at = schedules_retry ? next_attempt_at(a->retry, j.attempts + 1, r.retry_after)
                                  : std::chrono::system_clock::time_point{};
  const std::int64_t at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch()).count();
  const std::int64_t now = clock_.now_ms();
  (r.v == actions::verdict::succeeded ? succeeded_ : give_up ? failed_ : retried_).inc();
  if (give_up && r.v == actions::verdict::retry)
    r.error = fmt::format("{} (gave up after {} attempts)", r.error, j.attempts);
  if (give_up)
    log::info("worker.step_failed", {{"run", j.run_id}, {"step", j.step_index}, {"attempts", j.attempts}, {"error", r.error}});

  // What the job's settlement was, set by `work` on the writer thread and counted by
  // `committed` (same thread) only once the transaction holding it committed.
  auto settled_as = std::make_shared<queue::store_publisher::settlement>(queue::store_publisher::settlement::acked);
  auto work = [this, a, r, give_up, at, at_ms, now, settled_as](store::connection& c) -> result<bool> {
    const queue::job& j = a->job;
    std::string run_status;
    {
      auto st = c.prepare("SELECT status FROM runs WHERE id = ?");
      if (!st) return std::move(st).err();
      st->bind_all(j.run_id);
      auto row = st->step();
      if (!row) return std::move(row).err();
      run_status = *row ? st->text(0) : "cancelled";
    }
    const bool cancelled = run_status == "cancelled";
    const bool ok = r.v == actions::verdict::succeeded;
    const char* step_status = ok ? "succeeded" : cancelled ? "cancelled" : give_up ? "failed" : "running";
    const bool final_step = ok || give_up || cancelled;
    {
      auto st = c.prepare(
          "INSERT INTO run_steps (run_id, step_index, action_id, status, attempts, input, output, error, warnings, "
          "started_at, finished_at, duration_ms, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
          "ON CONFLICT (run_id, step_index) DO UPDATE SET action_id = excluded.action_id, status = excluded.status, "
          "attempts = excluded.attempts, input = excluded.input, output = excluded.output, error = excluded.error, "
          "warnings = excluded.warnings, started_at = COALESCE(run_steps.started_at, excluded.started_at), "
          "finished_at = excluded.finished_at, duration_ms = excluded.duration_ms, next_attempt_at = excluded.next_attempt_at");
      if (!st) return std::move(st).err();
      st->bind_all(j.run_id, j.step_index, a->action_id, step_status, j.attempts, dump_safe(a->input), dump_safe(r.output),
                   r.error.empty() ? std::optional<std::string>{} : std::optional<std::string>(r.error), dump_safe(a->warnings),
                   a->started_ms);
      if (final_step) st->bind(11, now);
      else st->bind(11, nullptr);
      st->bind(12, std::max<std::int64_t>(r.duration.count(), now - a->started_ms));
      if (final_step) st->bind(13, nullptr);
      else st->bind(13, at_ms);
      if (auto s = st->run(); !s) return std::move(s).err();
    }
    if (cancelled || ok) *settled_as = queue::store_publisher::settlement::acked;
    else if (!give_up) *settled_as = queue::store_publisher::settlement::retried;
    else *settled_as = queue::store_publisher::settlement::dead;
    if (cancelled) {
      if (auto s = queue_.ack_in(c, j); !s) return std::move(s).err();
      return false;
    }
    if (ok) {
      if (auto s = queue_.ack_in(c, j); !s) return std::move(s).err();
      if (static_cast<std::size_t>(j.step_index) < a->steps) {
        if (auto s = c.run("INSERT INTO outbox (run_id, step_index, lane, created_at) VALUES (?, ?, ?, ?)", j.run_id,
                          j.step_index + 1, queue::lane_name(j.lane), now);
            !s)
          return std::move(s).err();
        if (auto s = c.run(k_mark_running, a->started_ms, j.run_id); !s) return std::move(s).err();
        return true;
      }
      if (auto s = c.run(
                        "UPDATE runs SET status = 'succeeded', started_at = COALESCE(started_at, ?), finished_at = ? "
                        "WHERE id = ? AND status IN ('queued', 'running')",
                        a->started_ms, now, j.run_id);
          !s)
        return std::move(s).err();
      return false;
    }
    if (!give_up) {
      if (auto s = queue_.retry_in(c, j, at); !s) return std::move(s).err();
      if (auto s = c.run(k_mark_running, a->started_ms, j.run_id); !s) return std::move(s).err();
      return false;
    }
    if (auto s = queue_.dead_in(c, j, r.error); !s) return std::move(s).err();
    if (auto s = c.run(
                      "UPDATE runs SET status = 'failed', error = ?, started_at = COALESCE(started_at, ?), finished_at = ? "
                      "WHERE id = ? AND status IN ('queued', 'running')",
                      fmt::format("step {}: {}", j.step_index, r.error), a->started_ms, now, j.run_id);
        !s)
      return std::move(s).err();
    return false;
  };
  auto committed = [this, a, schedules_retry, at_ms, settled_as](result<bool> res) {
    if (!res) {
      if (res.err().code == errc::lease_lost) {
        lost_.inc();
        log::info("worker.result_discarded", {{"run", a->job.run_id}, {"step", a->job.step_index}, {"reason", res.err().message}});
      } else {
        log::warn("worker.record_failed", {{"run", a->job.run_id}, {"step", a->job.step_index}, {"error", res.err().message}});
      }
    } else {
      queue_.settled(a->job, *settled_as);
      if (*res && opts_.enqueued) opts_.enqueued();
      if (schedules_retry) {
        // Wake a claim loop when the retry falls due rather than at the next poll.
        std::int64_t cur = next_due_ms_.load();
        while ((cur == 0 || at_ms < cur) && !next_due_ms_.compare_exchange_weak(cur, at_ms)) {
        }
        cv_.notify_all();
      }
    }
    done(a->job);
  };
  // Kept callable more than once: a writer whose queue is full refuses without taking it,
  // and the result is then handed over again shortly (its slot stays taken meanwhile)
  // instead of being dropped and the action run a second time after the lease.
  auto record = std::make_shared<std::function<status()>>(
      [this, work = std::move(work), committed = std::move(committed)]() { return db_.writes().submit_for<bool>(work, committed); });
  auto st = (*record)();
  if (!st && st.err().code == errc::overloaded) {
    defer(std::move(record));
  } else if (!st) {
    // The writer is stopping: the lease ends and the step runs again (at-least-once).
    log::warn("worker.record_refused", {{"run", j.run_id}, {"step", j.step_index}, {"error", st.err().message}});
    done(j);
  }
}

void pool::defer(std::shared_ptr<std::function<status()>> record) {
  deferred_count_.inc();
  {
    std::lock_guard lk(mu_);
    deferred_.push_back(std::move(record));
  }
  cv_.notify_all();
}

bool pool::resubmit_deferred() {
  std::vector<std::shared_ptr<std::function<status()>>> batch;
  {
    std::lock_guard lk(mu_);
    batch.swap(deferred_);
  }
  if (batch.empty()) return true;
  std::vector<std::shared_ptr<std::function<status()>>> still;
  for (auto& rec : batch) {
    auto st = (*rec)();
    if (!st && st.err().code == errc::overloaded) still.push_back(std::move(rec));
    else if (!st) log::warn("worker.record_refused", {{"error", st.err().message}});
  }
  if (still.empty()) return true;
  std::lock_guard lk(mu_);
  deferred_.insert(deferred_.end(), std::make_move_iterator(still.begin()), std::make_move_iterator(still.end()));
  return false;
}

void pool::settle_skip(const queue::job& j, const std::string& why) {
  log::info("worker.step_skipped", {{"run", j.run_id}, {"step", j.step_index}, {"reason", why}});
  auto work = [this, j](store::connection& c) -> result<bool> {
    if (auto s = queue_.ack_in(c, j); !s) return std::move(s).err();
    return true;
  };
  auto st = db_.writes().submit_for<bool>(std::move(work), [this, j](result<bool> r) {
    if (r) queue_.settled(j, queue::store_publisher::settlement::acked);
    done(j);
  });
  if (!st) done(j);
}

void pool::done(const queue::job& j) {
  {
    std::lock_guard lk(mu_);
    if (running_.erase({j.id, j.attempts}) == 0) return;
    auto& ls = lanes_[index_of(j.lane)];
    if (ls.in_flight > 0) --ls.in_flight;
    in_flight_gauge_.set(static_cast<std::int64_t>(running_.size()));
  }
  cv_.notify_all();
}

void pool::stop() {
  {
    std::lock_guard lk(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& ls : lanes_)
    if (ls.thread.joinable()) ls.thread.join();
  std::vector<queue::job> left;
  {
    const auto deadline = std::chrono::steady_clock::now() + opts_.grace;
    std::unique_lock lk(mu_);
    while (!running_.empty() && std::chrono::steady_clock::now() < deadline) {
      if (!deferred_.empty()) {
        lk.unlock();
        (void)resubmit_deferred();
        lk.lock();
      }
      cv_.wait_for(lk, std::chrono::milliseconds(10), [this] { return running_.empty(); });
    }
    for (const auto& [claim, j] : running_) left.push_back(j);
    deferred_.clear();  // their leases are given back below
  }
  // Attempts still running give their jobs back now; their late results will find the lease
  // gone and be discarded.
  for (const auto& j : left) (void)queue_.retry(j, clock_.now());
  if (!left.empty()) log::warn("worker.released", {{"jobs", left.size()}});
}

}  // namespace zapd::worker
