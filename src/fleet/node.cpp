#include "zapd/fleet/fleet.hpp"

#include <fmt/format.h>

#include "zapd/core/log.hpp"
#include "zapd/templates/mask.hpp"
#include "outcomes.hpp"

// `fleet::node`: a worker of the fleet (fleet.hpp). step_queue and recorder: fleet.cpp.
namespace zapd::fleet {
namespace {

using namespace std::chrono_literals;

std::size_t verdict_index(actions::verdict v) {
  switch (v) {
    case actions::verdict::succeeded: return 0;
    case actions::verdict::retry: return 1;
    case actions::verdict::failed: return 2;
    case actions::verdict::filtered: return 3;
  }
  return 2;
}

}  // namespace

node::node(const kafka::settings& s, const sealer& seal, const actions::executors& executors, kafka::producer& producer,
           const clock& clk, metrics::registry& m, options o)
    : settings_(s),
      seal_(seal),
      executors_(executors),
      producer_(producer),
      clock_(clk),
      metrics_(m),
      opts_(std::move(o)),
      refused_count_(m.add_counter("zapd_fleet_refused_total", "Step messages refused: sealed with another fleet key")),
      in_flight_gauge_(m.add_gauge("zapd_fleet_in_flight", "Steps this worker is executing now")) {
  for (std::size_t i = 0; i < k_outcomes.size(); ++i)
    executed_[i] = &m.add_counter("zapd_fleet_steps_executed_total", "Steps this worker executed, by the executor's verdict",
                                  {{"outcome", k_outcomes[i]}});
  lanes_[0].lane = queue::lane::paid;
  lanes_[0].slots = std::max<std::size_t>(1, opts_.paid_slots);
  lanes_[1].lane = queue::lane::free;
  lanes_[1].slots = std::max<std::size_t>(1, opts_.free_slots);
}

node::~node() {
  stop();
  life_.end();
}

status node::start() {
  // A lane whose slots are all busy does not poll; librdkafka must not take that for a dead
  // member while its steps may still run (up to max_step) and then stop (the grace).
  kafka::settings s = settings_;
  if (!s.properties.contains("max.poll.interval.ms"))
    s.properties["max.poll.interval.ms"] = std::to_string((opts_.max_step + opts_.grace + std::chrono::minutes(1)).count());
  for (auto& ls : lanes_) {
    if (ls.consumer) continue;
    // A group per lane (GROUP.paid, GROUP.free): each member then subscribes to the same
    // topic as every other member of its group, which keeps rebalances simple.
    auto c = kafka::consumer::open(s, fmt::format("{}.{}", settings_.group, queue::lane_name(ls.lane)),
                                   {steps_topic(settings_, ls.lane)},
                                   fmt::format("worker-{}", queue::lane_name(ls.lane)), metrics_);
    if (!c) return std::move(c).err();
    ls.consumer = std::move(*c);
  }
  for (auto& ls : lanes_)
    if (!ls.thread.joinable()) ls.thread = std::thread([this, &ls] { loop(ls); });
  log::info("fleet.worker_started", {{"name", opts_.name}, {"group", settings_.group}, {"key", seal_.fingerprint()}});
  return {};
}

void node::loop(lane_state& ls) {
  for (;;) {
    std::vector<std::shared_ptr<outgoing>> again;
    {
      std::unique_lock lk(mu_);
      cv_.wait_for(lk, 200ms, [&] { return stopping_ || ls.in_flight < ls.slots || !resend_.empty(); });
      if (stopping_) return;
      if (!resend_.empty() && std::chrono::steady_clock::now() >= resend_at_) again.swap(resend_);
    }
    for (auto& o : again) send(std::move(o));
    {
      std::lock_guard lk(mu_);
      if (ls.in_flight >= ls.slots) continue;
    }
    auto m = ls.consumer->poll(200ms);
    if (!m) continue;
    {
      std::lock_guard lk(mu_);
      if (stopping_) return;  // not done: redelivered to whoever holds the partition next
      ++ls.in_flight;
    }
    handle(ls, std::move(*m));
  }
}

void node::release(lane_state& ls) {
  {
    std::lock_guard lk(mu_);
    if (ls.in_flight > 0) --ls.in_flight;
    in_flight_gauge_.set(static_cast<std::int64_t>(lanes_[0].in_flight + lanes_[1].in_flight));
  }
  cv_.notify_all();
}

void node::handle(lane_state& ls, kafka::consumer::message msg) {
  auto plain = seal_.open("step", msg.value);
  if (!plain && plain.err().code == errc::forbidden) {
    // Another fleet's key: refuse all work (nothing is done with the message, so the group
    // hands it to a worker with the right key once this one leaves).
    refused_count_.inc();
    log::error("fleet.refused", {{"error", plain.err().message}});
    refused_ = true;
    {
      std::lock_guard lk(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    release(ls);
    refused_bell_.ring();
    return;
  }
  auto step = plain ? decode_step(*plain) : result<step_message>(std::move(plain).err());
  if (!step) {
    log::error("fleet.step_undecodable", {{"topic", msg.topic}, {"partition", msg.partition}, {"offset", msg.offset},
                                          {"error", step.err().message}});
    ls.consumer->done(msg);
    release(ls);
    return;
  }
  const std::int64_t started = clock_.now_ms();
  auto shared = std::make_shared<step_message>(std::move(*step));
  if (shared->precomputed) {
    actions::step_result r = std::move(*shared->precomputed);
    answer(ls, msg, *shared, std::move(r), started);
    return;
  }
  actions::executor* ex = executors_.find(shared->action_id);
  if (!ex) {
    actions::step_result r;
    r.v = actions::verdict::failed;
    r.error = fmt::format("the '{}' action cannot run in this worker's version of zapd", shared->action_id);
    answer(ls, msg, *shared, std::move(r), started);
    return;
  }
  worker::cap_timeout(shared->request.config, opts_.max_step.count());
  actions::step_request req = std::move(shared->request);
  ex->execute(std::move(req), life_.guard([this, &ls, msg, shared, started](actions::step_result r) {
    answer(ls, msg, *shared, std::move(r), started);
  }));
}

void node::answer(lane_state& ls, const kafka::consumer::message& msg, const step_message& step, actions::step_result r,
                  std::int64_t started_ms) {
  executed_[verdict_index(r.v)]->inc();
  // Nothing leaves this process with a secret value in it.
  templates::masker mask(step.secret_values);
  r.error = mask.str(r.error);
  mask.in_place(r.output);
  result_message out;
  out.run_id = step.run_id;
  out.step_index = step.step_index;
  out.attempt = step.attempt;
  out.lane = step.lane;
  out.outbox_id = step.outbox_id;
  out.published_ms = step.published_ms;
  out.result = std::move(r);
  out.started_ms = started_ms;
  out.worker = opts_.name;
  out.meta = step.meta;
  auto o = std::make_shared<outgoing>(outgoing{&ls, msg, step.run_id, std::move(out)});
  send(std::move(o));
}

void node::send(std::shared_ptr<outgoing> o) {
  // The step's slot stays taken until its result is delivered: a worker that cannot reach
  // the brokers stops taking steps instead of piling up results.
  auto st = producer_.produce(results_topic(settings_), o->key, seal_.seal("result", encode(o->out)), life_.guard([this, o](status s) {
    if (s) {
      o->ls->consumer->done(o->msg);  // the step's offset may move past it now
      release(*o->ls);
      return;
    }
    log::warn("fleet.result_undelivered", {{"run", o->key}, {"offset", o->msg.offset}, {"error", s.err().message}, {"then", "sent again"}});
    resend_later(std::move(o));
  }));
  if (!st && st.err().code == errc::payload_too_large) {
    // No retry makes it fit: the step fails with a result that does, saying why.
    o->out.result.v = actions::verdict::failed;
    o->out.result.output = nullptr;
    o->out.result.error = "the step's output is larger than the Kafka message size limit (message.max.bytes)";
    o->out.meta["input"] = nullptr;
    send(std::move(o));
    return;
  }
  if (!st) {
    log::warn("fleet.result_not_produced", {{"run", o->key}, {"error", st.err().message}, {"then", "sent again"}});
    resend_later(std::move(o));
  }
}

void node::resend_later(std::shared_ptr<outgoing> o) {
  {
    std::lock_guard lk(mu_);
    if (!stopping_) {
      resend_.push_back(std::move(o));
      resend_at_ = std::chrono::steady_clock::now() + 200ms;
      return;
    }
  }
  // Stopping: not done, so the step is delivered again to whoever holds its partition next.
  release(*o->ls);
}

void node::stop() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& ls : lanes_)
    if (ls.thread.joinable()) ls.thread.join();
  std::vector<std::shared_ptr<outgoing>> undelivered;
  {
    std::lock_guard lk(mu_);
    undelivered.swap(resend_);
  }
  for (auto& o : undelivered) release(*o->ls);  // not done: delivered again after a restart or rebalance
  {
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, opts_.grace, [&] { return lanes_[0].in_flight + lanes_[1].in_flight == 0; });
    if (lanes_[0].in_flight + lanes_[1].in_flight > 0)
      log::warn("fleet.released", {{"steps", lanes_[0].in_flight + lanes_[1].in_flight}, {"why", "still running after the grace"}});
  }
  producer_.flush(5s);
  for (auto& ls : lanes_)
    if (ls.consumer) ls.consumer->close();
}

}  // namespace zapd::fleet
