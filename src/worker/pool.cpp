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

namespace zapd::worker {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using settlement = queue::store_publisher::settlement;

constexpr std::chrono::milliseconds k_timeout_margin = 3s; // an attempt ends this long before its lease
constexpr std::chrono::milliseconds k_min_attempt = 1s;     // less lease left than this: give the job back

}  // namespace

struct pool::attempt {
  queue::job job;
  step_meta meta;  // action, steps, retry policy (the zap's override applied), masked input, warnings
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
      preparer_(std::make_unique<preparer>(s.db, s.box, s.executors, opts_.retry)) {
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
  {
    std::lock_guard lk(mu_);
    if (stopping_ || lanes_[0].claimer.joinable()) return;
    for (auto& ls : lanes_) {
      ls.claimer = std::thread([this, &ls] { claim_loop(ls); });
      ls.starter = std::thread([this, &ls] { start_loop(ls); });
    }
  }
  // Not under mu_: a producer holds the queue's registration lock while it reserves here.
  queue_.hand_to(this);
  handing_ = true;
}

void pool::begin(const queue::job& j) {
  auto a = std::make_shared<attempt>();
  a->job = j;
  a->started_ms = clock_.now_ms();
  prepared_step p = preparer_->prepare(j.run_id, j.step_index, j.attempts);
  if (p.what == prepared_step::outcome::skip) {
    settle_skip(j, p.skip_reason);
    return;
  }
  a->meta = std::move(p.meta);
  a->mask = templates::masker(p.secret_values);
  if (p.what == prepared_step::outcome::fail) {
    finish(a, std::move(p.failure));
    return;
  }
  actions::executor* ex = executors_.find(a->meta.action_id);  // found by prepare

  // An attempt ends before its lease does (with time to record the result), so a slow
  // action cannot run twice at once. The lease started at the claim: what is left counts.
  json config = std::move(p.request.config);
  const std::int64_t cap = j.lease_until_ms - clock_.now_ms() - k_timeout_margin.count();
  if (cap < k_min_attempt.count()) {
    log::warn("worker.lease_short", {{"run", j.run_id}, {"step", j.step_index}, {"left_ms", cap}});
    (void)queue_.retry(j, clock_.now());  // give it back untried (a start thread: blocking is fine)
    done(j);
    return;
  }
  cap_timeout(config, cap);

  actions::step_request req = std::move(p.request);
  req.config = std::move(config);
  // The answer may come after stop() gave the job back and the pool is gone (an action that
  // outlives the grace): the lifeline drops it then.
  ex->execute(std::move(req), life_.guard([this, a](actions::step_result r) { finish(a, std::move(r)); }));
}

void pool::finish(const std::shared_ptr<attempt>& a, actions::step_result r) {
  const queue::job& j = a->job;
  // Nothing below records or logs a secret value: the input was masked when rendered.
  r.error = a->mask.str(r.error);
  a->mask.in_place(r.output);
  a->mask.in_place(a->meta.warnings);
  double draw = 0.5;
  if (a->meta.retry.jitter > 0 && r.v == actions::verdict::retry) {
    std::lock_guard lk(mu_);
    draw = std::uniform_real_distribution<double>(0, 1)(rng_);
  }
  auto rec = std::make_shared<runs::attempt_record>(decide(a->meta, j, std::move(r), a->started_ms, clock_.now_ms(), draw));
  rec->worker = opts_.name;

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
    // The next step's job is in the outbox for the relay, or in the queue already (direct),
    // which rang jobs_ready itself if it waits for a claim (store_publisher::rings_ready).
    if (outcome->next_step_enqueued) {
      if (!(in_store_ && in_store_->direct())) outbox_ready_.ring();
      else if (!in_store_->rings_ready()) jobs_ready_.ring();
    }
    // Wake a claim loop when a retry or the step after a delay falls due, not at the next poll.
    const std::int64_t due = rec->verdict == runs::attempt_verdict::retry ? rec->retry_at_ms : rec->resume_at_ms;
    if (due > 0) {
      {
        std::lock_guard lk(mu_);  // the claim loop reads it in its wait's predicate
        std::int64_t cur = next_due_ms_.load();
        while ((cur == 0 || due < cur) && !next_due_ms_.compare_exchange_weak(cur, due)) {
        }
        for (auto& ls : lanes_) ls.claim_cv.notify_one();
      }
    }
    if (in_store_) {
      in_store_->settled(j, outcome->settlement);
      done(j);
      return;
    }
    // A queue elsewhere: settle through its interface on a start thread (it blocks); the
    // job's slot stays taken until then.
    std::lock_guard lk(mu_);
    pending_.push_back({j, outcome->settlement, rec->retry_at_ms, rec->error});
    wake_starters();
  });
  // Kept callable more than once: a writer whose queue is full refuses without taking it,
  // and the result is then handed over again shortly (its slot stays taken meanwhile)
  // instead of being dropped and the action run a second time after the lease.
  auto record = std::make_shared<std::function<status()>>(
      [this, work = std::move(work), committed = std::move(committed)]() { return db_.writes().submit_for<bool>(work, committed); });
  auto st = (*record)();
  if (st) {
    handed_over(j);
  } else if (st.err().code == errc::overloaded) {
    defer(std::move(record));  // its slot stays taken: the writer is behind, so is the lane
  } else {
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
  std::lock_guard lk(mu_);
  deferred_.push_back(std::move(record));
  wake_starters();
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
    (void)queue_.ack(j);  // on a start thread: blocking is fine
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

void pool::show_in_flight() {
  in_flight_gauge_.set(static_cast<std::int64_t>(lanes_[0].in_flight + lanes_[1].in_flight));
}

void pool::handed_over(const queue::job& j) {
  std::lock_guard lk(mu_);
  auto it = running_.find({j.id, j.attempts});
  if (it == running_.end() || it->second.at != claim::stage::executing) return;  // committed already
  it->second.at = claim::stage::recording;
  auto& ls = lane_of(j.lane);
  if (ls.in_flight > 0) --ls.in_flight;
  ++ls.recording;
  show_in_flight();
  wake_lane(ls);
}

void pool::done(const queue::job& j) {
  std::lock_guard lk(mu_);
  auto it = running_.find({j.id, j.attempts});
  if (it == running_.end()) return;
  auto& ls = lane_of(j.lane);
  if (it->second.at != claim::stage::ready) {  // a job still claimed ahead is in `ready` (stop gives it back)
    std::size_t& count = it->second.at == claim::stage::executing ? ls.in_flight : ls.recording;
    if (count > 0) --count;
  }
  running_.erase(it);
  show_in_flight();
  wake_lane(ls);
}

void pool::stop() {
  if (handing_) queue_.hand_to(nullptr);  // no new reservations (not under mu_, as in start)
  handing_ = false;
  {
    std::lock_guard lk(mu_);
    if (stopping_) return;
    stopping_ = true;
    stop_requested_ = true;
    for (auto& ls : lanes_) {
      ls.claim_cv.notify_all();
      ls.start_cv.notify_all();
    }
  }
  cv_.notify_all();
  for (auto& ls : lanes_) {
    if (ls.claimer.joinable()) ls.claimer.join();
    if (ls.starter.joinable()) ls.starter.join();
  }
  // Jobs claimed ahead and never started go back at once: nothing is running them. First the
  // places promised to transactions in progress end: their jobs arrive in `ready` or the
  // places come back (the writer calls back at its batch's end; the pool must outlive that).
  std::vector<queue::job> unstarted;
  {
    std::unique_lock lk(mu_);
    auto promised = [this] { return lanes_[0].reserved + lanes_[1].reserved; };
    while (!cv_.wait_for(lk, opts_.grace, [&] { return promised() == 0; }))
      log::warn("worker.stop_waits_for_writer", {{"reserved", promised()}});
    for (auto& ls : lanes_) {
      for (auto& j : ls.ready) {
        running_.erase({j.id, j.attempts});
        unstarted.push_back(std::move(j));
      }
      ls.ready.clear();
    }
  }
  for (const auto& j : unstarted) (void)queue_.release(j);
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
    for (const auto& [key, c] : running_) left.push_back(c.job);
    deferred_.clear();  // their leases are given back below
  }
  // Attempts still running give their jobs back now; their late results will find the lease
  // gone and be discarded.
  for (const auto& j : left) (void)queue_.retry(j, clock_.now());
  if (!left.empty()) log::warn("worker.released", {{"jobs", left.size()}});
  if (!unstarted.empty()) log::info("worker.unstarted_released", {{"jobs", unstarted.size()}});
}

}  // namespace zapd::worker
