#include "zapd/fleet/fleet.hpp"

#include <fmt/format.h>

#include "zapd/core/log.hpp"
#include "zapd/outbox/outbox.hpp"
#include "zapd/runs/attempt.hpp"
#include "zapd/store/database.hpp"
#include "zapd/templates/mask.hpp"
#include "outcomes.hpp"

namespace zapd::fleet {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr std::size_t k_record_batch = 256;

std::size_t verdict_index(runs::attempt_verdict v) {
  switch (v) {
    case runs::attempt_verdict::succeeded: return 0;
    case runs::attempt_verdict::retry: return 1;
    case runs::attempt_verdict::failed: return 2;
    case runs::attempt_verdict::filtered: return 3;
  }
  return 2;
}

bool is_final_step(const std::string& status) { return status != "running" && status != "queued"; }

}  // namespace

std::string steps_topic(const kafka::settings& s, queue::lane l) {
  return kafka::topic(s, l == queue::lane::paid ? "steps.paid" : "steps.free");
}
std::string results_topic(const kafka::settings& s) { return kafka::topic(s, "results"); }
std::vector<std::string> all_topics(const kafka::settings& s) {
  return {steps_topic(s, queue::lane::free), steps_topic(s, queue::lane::paid), results_topic(s)};
}

void lane_progress::handled(queue::lane l, std::int64_t published_ms) {
  auto& at = through_[l == queue::lane::paid ? 1 : 0];
  std::int64_t seen = at.load(std::memory_order_relaxed);
  while (published_ms > seen && !at.compare_exchange_weak(seen, published_ms, std::memory_order_relaxed)) {
  }
}

std::int64_t lane_progress::through(queue::lane l) const {
  return through_[l == queue::lane::paid ? 1 : 0].load(std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------------------
// step_queue

step_queue::step_queue(store::database& db, const worker::preparer& prep, kafka::producer& producer, const kafka::settings& s,
                       const sealer& seal, const clock& clk, metrics::registry& m, const lane_progress& progress)
    : db_(db),
      prep_(prep),
      producer_(producer),
      settings_(s),
      seal_(seal),
      clock_(clk),
      progress_(progress),
      published_(m.add_counter("zapd_fleet_steps_published_total", "Steps produced to Kafka with a delivery report")),
      skipped_(m.add_counter("zapd_fleet_steps_skipped_total", "Due steps not published: their run or step was already final")) {}

status step_queue::publish(std::vector<zapd::queue::job_spec> batch, done_fn done) {
  // Every message's delivery report, then `done` once: ok only when all were delivered.
  struct pending {
    std::mutex mu;
    std::size_t left = 1;  // the loop below holds one until it has produced everything
    status first_error;
    done_fn done;
  };
  auto p = std::make_shared<pending>();
  p->done = std::move(done);
  auto settle = [p](status s) {
    done_fn fire;
    status out;
    {
      std::lock_guard lk(p->mu);
      if (!s && p->first_error) p->first_error = std::move(s);
      if (--p->left > 0) return;
      fire = std::move(p->done);
      out = p->first_error;
    }
    fire(std::move(out));
  };

  std::size_t produced = 0;
  std::vector<std::int64_t> done_rows;  // skipped: nothing will record them, so settle them here
  for (const auto& spec : batch) {
    bool stale = false;
    auto progress = db_.reads().with([&](store::connection& c) -> result<std::optional<runs::step_progress>> {
      auto p = runs::progress_of(c, spec.run_id, spec.step_index);
      if (!p || spec.outbox_id <= 0) return p;
      // Read after the progress: a row still there means no attempt was recorded before that
      // read either (recording settles the row in the same transaction). A row gone was
      // settled since the relay read it: its attempt is recorded, a message now would run the
      // step again ahead of its retry time.
      auto still = outbox::pending(c, spec.outbox_id);
      if (!still) return std::move(still).err();
      stale = !*still;
      return p;
    });
    if (!progress) {
      if (produced == 0) return std::move(progress).err();
      settle(std::move(progress).err());
      return {};
    }
    if (stale) {
      skipped_.inc();
      continue;
    }
    if (*progress && is_final_step((*progress)->status)) {
      skipped_.inc();
      done_rows.push_back(spec.outbox_id);
      continue;
    }
    const int attempt = (*progress ? (*progress)->attempts : 0) + 1;
    worker::prepared_step prep = prep_.prepare(spec.run_id, spec.step_index, attempt);
    if (prep.what == worker::prepared_step::outcome::skip) {
      log::info("worker.step_skipped", {{"run", spec.run_id}, {"step", spec.step_index}, {"reason", prep.skip_reason}});
      skipped_.inc();
      done_rows.push_back(spec.outbox_id);
      continue;
    }
    templates::masker mask(prep.secret_values);
    mask.in_place(prep.meta.warnings);
    step_message m;
    m.run_id = spec.run_id;
    m.step_index = spec.step_index;
    m.attempt = attempt;
    m.lane = spec.lane;
    m.action_id = prep.meta.action_id;
    m.meta = meta_to_json(prep.meta);
    m.published_ms = clock_.now_ms();
    m.outbox_id = spec.outbox_id;
    if (prep.what == worker::prepared_step::outcome::fail) {
      prep.failure.error = mask.str(prep.failure.error);
      m.precomputed = std::move(prep.failure);
      m.request.run_id = spec.run_id;
      m.request.step_index = spec.step_index;
      m.request.attempt = attempt;
    } else {
      m.request = std::move(prep.request);
      m.secret_values = std::move(prep.secret_values);
    }
    {
      std::lock_guard lk(p->mu);
      ++p->left;
    }
    auto produce = [&](const step_message& msg) {
      return producer_.produce(steps_topic(settings_, spec.lane), spec.run_id, seal_.seal("step", encode(msg)),
                               [this, settle](status s) {
                                 if (s) published_.inc();
                                 settle(std::move(s));
                               });
    };
    auto st = produce(m);
    if (!st && st.err().code == errc::payload_too_large) {
      // Larger than the brokers take (a huge rendered body): no retry makes it fit, and a row
      // that never publishes would hold up every row behind it. The step fails, saying why.
      step_message failed;
      failed.run_id = m.run_id;
      failed.step_index = m.step_index;
      failed.attempt = m.attempt;
      failed.lane = m.lane;
      failed.action_id = m.action_id;
      failed.published_ms = m.published_ms;
      failed.outbox_id = m.outbox_id;
      worker::step_meta small = prep.meta;
      small.input = nullptr;
      failed.meta = meta_to_json(small);
      failed.request.run_id = m.run_id;
      failed.request.step_index = m.step_index;
      failed.request.attempt = m.attempt;
      actions::step_result r;
      r.v = actions::verdict::failed;
      r.error = "the rendered step is larger than the Kafka message size limit (message.max.bytes); make its input smaller";
      failed.precomputed = std::move(r);
      st = produce(failed);
    }
    if (!st) {
      {
        std::lock_guard lk(p->mu);
        --p->left;
      }
      if (produced == 0) return st;  // nothing taken: the relay tries again later
      settle(std::move(st));
      return {};
    }
    ++produced;
  }
  if (!done_rows.empty()) {
    // Before `done` can fire: the relay then finds these rows gone and does not keep them.
    auto st = db_.writes().execute<bool>([&](store::connection& c) -> result<bool> {
      for (auto id : done_rows)
        if (auto s = outbox::settle(c, id); !s) return std::move(s).err();
      return true;
    });
    if (!st) log::warn("fleet.settle_failed", {{"rows", done_rows.size()}, {"error", st.err().message}});  // republished later, skipped again
  }
  settle({});
  return {};
}

result<std::vector<zapd::queue::job>> step_queue::claim(zapd::queue::lane, std::size_t, std::chrono::milliseconds) {
  return make_error(errc::internal, "the Kafka queue is consumed by the workers of the fleet, not claimed");
}
status step_queue::ack(const zapd::queue::job&) { return make_error(errc::internal, "the Kafka queue has no claims to ack"); }
status step_queue::retry(const zapd::queue::job&, std::chrono::system_clock::time_point) {
  return make_error(errc::internal, "the Kafka queue has no claims to retry");
}
status step_queue::dead(const zapd::queue::job&, std::string_view) {
  return make_error(errc::internal, "the Kafka queue has no claims to kill");
}

// ---------------------------------------------------------------------------------------
// recorder

recorder::recorder(store::database& db, const kafka::settings& s, const sealer& seal, const clock& clk, metrics::registry& m,
                   wakeup& outbox_ready, worker::retry_policy fallback, lane_progress& progress)
    : db_(db),
      settings_(s),
      seal_(seal),
      clock_(clk),
      metrics_(m),
      outbox_ready_(outbox_ready),
      fallback_(fallback),
      progress_(progress),
      duplicates_(m.add_counter("zapd_fleet_results_duplicate_total",
                                "Results dropped because their attempt was already recorded (at-least-once delivery)")),
      undecodable_(m.add_counter("zapd_fleet_results_undecodable_total", "Result messages that did not open or decode")) {
  for (std::size_t i = 0; i < k_outcomes.size(); ++i)
    outcomes_[i] = &m.add_counter("zapd_fleet_results_total", "Step results recorded from the fleet, by outcome",
                                  {{"outcome", k_outcomes[i]}});
}

recorder::~recorder() { stop(); }

status recorder::start() {
  if (thread_.joinable()) return {};
  auto c = kafka::consumer::open(settings_, settings_.group + ".primary", {results_topic(settings_)}, "recorder", metrics_);
  if (!c) return std::move(c).err();
  consumer_ = std::move(*c);
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
  return {};
}

void recorder::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
  if (consumer_) consumer_->close();
}

void recorder::run() {
  log::info("fleet.recorder_started", {{"topic", results_topic(settings_)}});
  while (!stopping_) {
    auto m = consumer_->poll(200ms);
    if (!m) continue;
    std::vector<kafka::consumer::message> batch;
    batch.push_back(std::move(*m));
    while (batch.size() < k_record_batch) {
      auto more = consumer_->poll(0ms);
      if (!more) break;
      batch.push_back(std::move(*more));
    }
    record(std::move(batch));
  }
}

void recorder::record(std::vector<kafka::consumer::message> batch) {
  struct item {
    const kafka::consumer::message* msg;
    runs::attempt_record rec;
    std::string worker;
    std::int64_t outbox_id = 0;
    std::int64_t published_ms = 0;
    bool duplicate = false;
    bool next = false;
  };
  std::vector<item> items;
  const std::int64_t now = clock_.now_ms();
  for (const auto& msg : batch) {
    auto plain = seal_.open("result", msg.value);
    auto res = plain ? decode_result(*plain) : result<result_message>(std::move(plain).err());
    if (!res) {
      // Nothing to record from it; a primary with the wrong key says so for every message.
      undecodable_.inc();
      log::error("fleet.result_undecodable", {{"partition", msg.partition}, {"offset", msg.offset}, {"error", res.err().message}});
      consumer_->done(msg);
      continue;
    }
    worker::step_meta meta = meta_from_json(res->meta, fallback_);
    queue::job j;
    j.run_id = res->run_id;
    j.step_index = res->step_index;
    j.lane = res->lane;
    j.attempts = res->attempt;
    double draw = 0.5;
    if (meta.retry.jitter > 0) draw = std::uniform_real_distribution<double>(0, 1)(rng_);
    items.push_back(item{&msg, worker::decide(meta, j, std::move(res->result), res->started_ms, now, draw), res->worker});
    items.back().rec.worker = res->worker;
    items.back().outbox_id = res->outbox_id;
    items.back().published_ms = res->published_ms;
  }
  if (items.empty()) return;

  for (std::chrono::milliseconds backoff = 5ms; !stopping_; backoff = std::min<std::chrono::milliseconds>(backoff * 2, 1s)) {
    auto done = db_.writes().execute<bool>([&](store::connection& c) -> result<bool> {
      for (auto& it : items) {
        const queue::job& j = it.rec.job;
        it.duplicate = it.next = false;
        auto p = runs::progress_of(c, j.run_id, j.step_index);
        if (!p) return std::move(p).err();
        // The step's outbox row is done either way: this attempt is recorded now, or was
        // (a duplicate), or the step is final. Before a retry's new row below.
        if (auto s = outbox::settle(c, it.outbox_id); !s) return std::move(s).err();
        if (*p && (is_final_step((*p)->status) || (*p)->attempts >= j.attempts)) {
          it.duplicate = true;
          continue;
        }
        // A result without its row's id (a worker older than outboxId): its step's published
        // row would otherwise go again after its lease, ahead of a retry's time.
        if (it.outbox_id <= 0)
          if (auto s = outbox::settle_step(c, j.run_id, j.step_index); !s) return std::move(s).err();
        auto o = runs::record_attempt(c, it.rec, nullptr);
        if (!o) return std::move(o).err();
        it.next = o->next_step_enqueued;
        if (o->settlement == queue::store_publisher::settlement::retried) {
          // The primary decides retries: the same step again, due at its retry time.
          if (auto s = outbox::enqueue(c, nullptr, j.run_id, j.step_index, j.lane, it.rec.now_ms, it.rec.retry_at_ms); !s)
            return std::move(s).err();
          it.next = true;
        }
      }
      return true;
    });
    if (done) break;
    if (done.err().code != errc::overloaded)
      log::warn("fleet.record_failed", {{"results", items.size()}, {"error", done.err().message}});
    std::this_thread::sleep_for(backoff);
  }
  if (stopping_) return;  // not recorded: re-read from the last committed offset next start
  bool ring = false;
  for (const auto& it : items) {
    consumer_->done(*it.msg);
    progress_.handled(it.rec.job.lane, it.published_ms);
    if (it.duplicate) {
      duplicates_.inc();
      log::info("fleet.result_duplicate", {{"run", it.rec.job.run_id}, {"step", it.rec.job.step_index},
                                           {"attempt", it.rec.job.attempts}, {"worker", it.worker}});
      continue;
    }
    outcomes_[verdict_index(it.rec.verdict)]->inc();
    ring = ring || it.next;
  }
  if (ring) outbox_ready_.ring();
}

}  // namespace zapd::fleet
