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
#include "zapd/runs/attempt.hpp"
#include "zapd/secrets/secrets.hpp"
#include "zapd/store/database.hpp"
#include "zapd/templates/mask.hpp"
#include "zapd/templates/template.hpp"
#include "versions.hpp"

namespace zapd::worker {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using settlement = queue::store_publisher::settlement;

constexpr std::chrono::milliseconds k_timeout_margin = 3s; // an attempt ends this long before its lease
constexpr std::chrono::milliseconds k_min_attempt = 1s;     // less lease left than this: give the job back

std::size_t index_of(queue::lane l) { return l == queue::lane::paid ? 0 : 1; }

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

pool::pool(services s, options o)
    : db_(s.db),
      queue_(s.queue),
      in_store_(dynamic_cast<queue::store_publisher*>(&s.queue)),
      executors_(s.executors),
      box_(s.box),
      clock_(s.clk),
      jobs_ready_(s.jobs_ready),
      outbox_ready_(s.outbox_ready),
      opts_(std::move(o)),
      succeeded_(s.metrics.add_counter("zapd_worker_steps_total", "Step attempts by outcome", {{"outcome", "succeeded"}})),
      retried_(s.metrics.add_counter("zapd_worker_steps_total", "Step attempts by outcome", {{"outcome", "retry"}})),
      failed_(s.metrics.add_counter("zapd_worker_steps_total", "Step attempts by outcome", {{"outcome", "failed"}})),
      filtered_(s.metrics.add_counter("zapd_worker_steps_total", "Step attempts by outcome", {{"outcome", "filtered"}})),
      lost_(s.metrics.add_counter("zapd_worker_results_discarded_total", "Results not recorded because the job's lease was lost")),
      deferred_count_(s.metrics.add_counter("zapd_worker_results_deferred_total", "Results handed to the writer again because its queue was full")),
      in_flight_gauge_(s.metrics.add_gauge("zapd_worker_in_flight", "Step attempts executing now")),
      versions_(std::make_unique<version_cache>()) {
  lanes_[0].lane = queue::lane::paid;
  lanes_[0].slots = std::max<std::size_t>(1, opts_.paid_slots);
  lanes_[1].lane = queue::lane::free;
  lanes_[1].slots = std::max<std::size_t>(1, opts_.free_slots);
  listening_ = jobs_ready_.listen([this] { notify(); });
}

pool::~pool() {
  jobs_ready_.forget(listening_);
  stop();
  life_.end();  // late answers and writer callbacks from here on find the pool gone
}

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
    if (!pending_.empty()) {
      lk.unlock();
      settle_pending();
      lk.lock();
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
                   [&] { return stopping_ || ls.woken || !deferred_.empty() || !pending_.empty() || (full && ls.in_flight < ls.slots); });
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

  // The run, then its zap version (cached: versions never change).
  struct loaded {
    runs::step_context run;
    std::shared_ptr<const version_info> version;
  };
  auto data = db_.reads().with([&](store::connection& c) -> result<std::optional<loaded>> {
    auto run = runs::load_for_step(c, j.run_id);
    if (!run) return std::move(run).err();
    if (!*run) return std::optional<loaded>{};
    auto version = versions_->get(c, (*run)->zap_id, (*run)->zap_version);
    if (!version) return std::move(version).err();
    return std::optional<loaded>(loaded{std::move(**run), std::move(*version)});
  });
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
  if (!*data || (*data)->run.status == "cancelled" || (*data)->run.status == "succeeded" || (*data)->run.status == "failed" ||
      (*data)->run.status == "filtered") {
    settle_skip(j, *data ? "run is " + (*data)->run.status : "run no longer exists");
    return;
  }
  const runs::step_context& d = (*data)->run;
  const version_info& version = *(*data)->version;
  a->retry = opts_.retry.with(version.definition.retry);
  a->steps = version.definition.step_count();
  const zaps::step* step = version.definition.step_at(j.step_index);
  if (!step) {
    settle_skip(j, fmt::format("step {} is not in zap version {}", j.step_index, d.zap_version));
    return;
  }
  a->action_id = step->action_id;
  const json& raw = step->metadata;
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
              {"run", {{"id", j.run_id}, {"zapId", d.zap_id}, {"zapName", version.name}, {"zapVersion", d.zap_version},
                       {"step", j.step_index}, {"attempt", j.attempts}}},
              {"secrets", json::object()}};
  if (!version.secrets.empty()) {
    auto found = db_.reads().with([&](store::connection& c) { return secrets::reveal(c, box_, d.user_id, version.secrets); });
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
    (void)queue_.retry(j, clock_.now());  // give it back untried (a claim thread: blocking is fine)
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
  req.zap_name = version.name;
  req.config = std::move(config);
  req.idempotency_key = fmt::format("{}:{}", j.run_id, j.step_index);
  // The answer may come after stop() gave the job back and the pool is gone (an action that
  // outlives the grace): the lifeline drops it then.
  ex->execute(std::move(req), life_.guard([this, a](actions::step_result r) { finish(a, std::move(r)); }));
}

std::chrono::system_clock::time_point pool::next_attempt_at(const retry_policy& policy, int next,
                                                           std::optional<std::chrono::milliseconds> retry_after) {
  double draw = 0.5;
  if (policy.jitter > 0) {
    std::lock_guard lk(mu_);
    draw = std::uniform_real_distribution<double>(0, 1)(rng_);
  }
  return clock_.now() + policy.delay_for(next, draw, retry_after);
}

void pool::finish(const std::shared_ptr<attempt>& a, actions::step_result r) {
  const queue::job& j = a->job;
  // Nothing below records or logs a secret value: the input was masked when rendered.
  r.error = a->mask.str(r.error);
  a->mask.in_place(r.output);
  a->mask.in_place(a->warnings);
  const bool give_up = r.v == actions::verdict::failed ||
                       (r.v == actions::verdict::retry && j.attempts >= a->retry.max_attempts);
  const bool schedules_retry = !give_up && r.v == actions::verdict::retry;
  if (give_up && r.v == actions::verdict::retry)
    r.error = fmt::format("{} (gave up after {} attempts)", r.error, j.attempts);
  if (give_up)
    log::info("worker.step_failed", {{"run", j.run_id}, {"step", j.step_index}, {"attempts", j.attempts}, {"error", r.error}});

  auto rec = std::make_shared<runs::attempt_record>();
  rec->job = j;
  rec->action_id = a->action_id;
  rec->steps = a->steps;
  rec->verdict = r.v == actions::verdict::succeeded  ? runs::attempt_verdict::succeeded
                 : r.v == actions::verdict::filtered ? runs::attempt_verdict::filtered
                 : give_up                           ? runs::attempt_verdict::failed
                                                     : runs::attempt_verdict::retry;
  if (r.v == actions::verdict::succeeded && r.resume_at_ms) rec->resume_at_ms = *r.resume_at_ms;
  if (schedules_retry) {
    // Only a retry has a next attempt (drawing its jitter takes the pool's mutex).
    const auto at = next_attempt_at(a->retry, j.attempts + 1, r.retry_after);
    rec->retry_at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch()).count();
  }
  rec->input = std::move(a->input);
  rec->output = std::move(r.output);
  rec->warnings = std::move(a->warnings);
  rec->error = std::move(r.error);
  rec->started_ms = a->started_ms;
  rec->now_ms = clock_.now_ms();
  rec->duration_ms = r.duration.count();

  // What happened, set by `work` on the writer thread and read by `committed` (same thread)
  // only once the transaction holding it committed.
  auto outcome = std::make_shared<runs::attempt_outcome>();
  // Both run on the writer thread, possibly after the pool is gone (handed over just before
  // a stop): guarded, a result nobody waits for any more is not recorded (its job was given
  // back, so the lease check would refuse it anyway).
  auto work = life_.guard_or(
      [this, rec, outcome](store::connection& c) -> result<bool> {
        auto o = runs::record_attempt(c, *rec, in_store_);
        if (!o) return std::move(o).err();
        *outcome = *o;
        return true;
      },
      result<bool>(make_error(errc::lease_lost, "the worker stopped before its result was recorded")));
  auto committed = life_.guard([this, rec, outcome](result<bool> res) {
    const queue::job& j = rec->job;
    if (!res) {
      if (res.err().code == errc::lease_lost) {
        lost_.inc();
        log::info("worker.result_discarded", {{"run", j.run_id}, {"step", j.step_index}, {"reason", res.err().message}});
      } else {
        log::warn("worker.record_failed", {{"run", j.run_id}, {"step", j.step_index}, {"error", res.err().message}});
      }
      done(j);
      return;
    }
    // Counted once recorded: a result discarded for a lost lease is no outcome.
    (rec->verdict == runs::attempt_verdict::succeeded  ? succeeded_
     : rec->verdict == runs::attempt_verdict::filtered ? filtered_
     : rec->verdict == runs::attempt_verdict::failed   ? failed_
                                                       : retried_)
        .inc();
    // The next step's job is in the queue already (direct), or in the outbox for the relay.
    if (outcome->next_step_enqueued) (in_store_ && in_store_->direct() ? jobs_ready_ : outbox_ready_).ring();
    // Wake a claim loop when a retry or the step after a delay falls due, not at the next poll.
    const std::int64_t due = rec->verdict == runs::attempt_verdict::retry ? rec->retry_at_ms : rec->resume_at_ms;
    if (due > 0) {
      std::int64_t cur = next_due_ms_.load();
      while ((cur == 0 || due < cur) && !next_due_ms_.compare_exchange_weak(cur, due)) {
      }
      cv_.notify_all();
    }
    if (in_store_) {
      in_store_->settled(j, outcome->settlement);
      done(j);
      return;
    }
    // A queue elsewhere: settle through its interface on a claim thread (it blocks); the
    // job's slot stays taken until then.
    {
      std::lock_guard lk(mu_);
      pending_.push_back({j, outcome->settlement, rec->retry_at_ms, rec->error});
    }
    cv_.notify_all();
  });
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

void pool::settle_pending() {
  std::vector<pending_settlement> batch;
  {
    std::lock_guard lk(mu_);
    batch.swap(pending_);
  }
  for (const auto& p : batch) {
    status st = p.how == settlement::acked     ? queue_.ack(p.job)
                : p.how == settlement::retried ? queue_.retry(p.job, std::chrono::system_clock::time_point(
                                                                         std::chrono::milliseconds(p.retry_at_ms)))
                                               : queue_.dead(p.job, p.reason);
    if (!st) {
      // The lease passed on (lease_lost) or the queue is down: it is delivered again, and its
      // record is repeated (at-least-once).
      log::warn("worker.settle_failed", {{"run", p.job.run_id}, {"step", p.job.step_index}, {"error", st.err().message}});
    }
    done(p.job);
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
  if (!in_store_) {
    (void)queue_.ack(j);  // on a claim thread: blocking is fine
    done(j);
    return;
  }
  auto work = life_.guard_or(
      [this, j](store::connection& c) -> result<bool> {
        if (auto s = in_store_->ack_in(c, j); !s) return std::move(s).err();
        return true;
      },
      result<bool>(make_error(errc::lease_lost, "the worker stopped before the skip was recorded")));
  auto st = db_.writes().submit_for<bool>(std::move(work), life_.guard([this, j](result<bool> r) {
    if (r) in_store_->settled(j, settlement::acked);
    done(j);
  }));
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
      if (!pending_.empty()) {
        lk.unlock();
        settle_pending();
        lk.lock();
        continue;
      }
      cv_.wait_for(lk, std::chrono::milliseconds(10), [this] { return running_.empty() || !pending_.empty(); });
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
