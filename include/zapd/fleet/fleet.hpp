#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "zapd/actions/executor.hpp"
#include "zapd/core/clock.hpp"
#include "zapd/core/lifeline.hpp"
#include "zapd/core/wakeup.hpp"
#include "zapd/fleet/wire.hpp"
#include "zapd/kafka/kafka.hpp"
#include "zapd/metrics/registry.hpp"
#include "zapd/queue/queue.hpp"
#include "zapd/worker/retry.hpp"
#include "zapd/worker/step.hpp"

namespace zapd::store {
class database;
}

namespace zapd::fleet {

/// Topic names: `{prefix}.steps.free`, `{prefix}.steps.paid`, `{prefix}.results`.
std::string steps_topic(const kafka::settings& s, zapd::queue::lane l);
std::string results_topic(const kafka::settings& s);
std::vector<std::string> all_topics(const kafka::settings& s);

/// How far the fleet's workers have got, per lane: the latest publishing time (Unix ms) of a
/// step whose result the recorder has read (since this process started). The recorder writes
/// it, `step_queue::handled_past` reads it. Thread-safe.
class lane_progress {
 public:
  void handled(zapd::queue::lane l, std::int64_t published_ms);
  std::int64_t through(zapd::queue::lane l) const;

 private:
  std::array<std::atomic<std::int64_t>, 2> through_{};
};

/// The primary's queue when `queue.backend = "kafka"`: what the outbox relay publishes to.
/// Each due step is rendered here (`worker::preparer`, on the relay's thread: it reads the
/// store), sealed, and produced to its lane's topic keyed by run id (a run's steps stay in
/// one partition, in order). `done` is called once every message of the batch has its
/// delivery report, and the relay deletes the outbox rows only then. The attempt number is
/// the step's recorded attempts + 1; a step already final (a repeated publish after a crash)
/// is not published again. It holds no delayed job: the relay publishes a row when it is due.
/// Not claimable: the workers of the fleet consume the topics (`node`).
class step_queue final : public zapd::queue::queue {
 public:
  step_queue(store::database& db, const worker::preparer& prep, kafka::producer& producer, const kafka::settings& s,
             const sealer& seal, const clock& clk, metrics::registry& m, const lane_progress& progress);

  bool holds_delayed() const override { return false; }
  /// A step of the lane published later than `published_ms` has its result read: the workers
  /// are past it, so a row still without a result was lost (retention, an unreadable result).
  bool handled_past(zapd::queue::lane l, std::int64_t published_ms) const override {
    return progress_.through(l) > published_ms;
  }
  status publish(std::vector<zapd::queue::job_spec> batch, done_fn done) override;
  result<std::vector<zapd::queue::job>> claim(zapd::queue::lane l, std::size_t max, std::chrono::milliseconds lease) override;
  status ack(const zapd::queue::job& j) override;
  status retry(const zapd::queue::job& j, std::chrono::system_clock::time_point at) override;
  status dead(const zapd::queue::job& j, std::string_view reason) override;

 private:
  store::database& db_;
  const worker::preparer& prep_;
  kafka::producer& producer_;
  const kafka::settings& settings_;
  const sealer& seal_;
  const clock& clock_;
  const lane_progress& progress_;
  metrics::counter& published_;
  metrics::counter& skipped_;
};

/// The primary's result recorder: consumes `{prefix}.results` (group `{group}.primary`),
/// decides each attempt as the embedded pool does (`worker::decide`: give up, retry time) and
/// records it through the single writer, batched: `runs::record_attempt` (the step, the next
/// step as an outbox row, or the run's end) and, for a retry, the same step again as an
/// outbox row due at its retry time, in ONE transaction. Deduplicated by (run, step,
/// attempt): a result for an attempt already recorded, or for a step already final, is
/// dropped (a step published twice, a worker that died after producing its result). Offsets
/// are stored only after the transaction committed: a primary killed before re-reads them.
class recorder {
 public:
  recorder(store::database& db, const kafka::settings& s, const sealer& seal, const clock& clk, metrics::registry& m,
           wakeup& outbox_ready, worker::retry_policy fallback, lane_progress& progress);
  ~recorder();
  status start();
  void stop();

 private:
  void run();
  void record(std::vector<kafka::consumer::message> batch);

  store::database& db_;
  const kafka::settings& settings_;
  const sealer& seal_;
  const clock& clock_;
  metrics::registry& metrics_;
  wakeup& outbox_ready_;
  worker::retry_policy fallback_;
  lane_progress& progress_;
  std::unique_ptr<kafka::consumer> consumer_;
  std::array<metrics::counter*, 4> outcomes_{};  // succeeded, retry, failed, filtered
  metrics::counter& duplicates_;
  metrics::counter& undecodable_;
  std::mt19937_64 rng_{std::random_device{}()};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

/// A worker of the fleet: consumes the step topics in the workers' consumer group, executes
/// each step with the executors (no store: everything comes in the sealed message), masks
/// the secrets in what it sends back, produces the sealed result, and lets the step's offset
/// be committed only once the result's delivery report came. `zapd worker` runs one; so does
/// the primary unless worker.enabled = off.
/// One consumer and one thread per lane, each with its own slots, so a flood of free steps
/// cannot starve paid ones. A message sealed with another fleet key stops the node: it
/// refuses work (`refused()`, logged with both key fingerprints) and leaves the group, so the
/// other workers take the partitions.
class node {
 public:
  struct options {
    std::size_t paid_slots = 64;
    std::size_t free_slots = 64;
    std::chrono::milliseconds grace{10'000};
    std::chrono::milliseconds max_step{600'000};  // cap on a step's own timeoutMs
    std::string name;  // host:pid, recorded on each step it ran
  };
  node(const kafka::settings& s, const sealer& seal, const actions::executors& executors, kafka::producer& producer,
       const clock& clk, metrics::registry& m, options o);
  ~node();
  status start();
  /// Stops fetching, waits up to the grace for steps in flight (their results are produced
  /// and their offsets stored), then leaves the group (committing); the rest are redelivered.
  void stop();
  bool refused() const { return refused_.load(); }
  /// Rung when the node refused (a process can exit on it).
  wakeup& refused_bell() { return refused_bell_; }

 private:
  struct lane_state {
    zapd::queue::lane lane;
    std::size_t slots = 0;
    std::size_t in_flight = 0;  // guarded by mu_
    std::unique_ptr<kafka::consumer> consumer;
    std::thread thread;
  };
  void loop(lane_state& ls);
  void handle(lane_state& ls, kafka::consumer::message msg);
  void answer(lane_state& ls, const kafka::consumer::message& msg, const step_message& step, actions::step_result r,
              std::int64_t started_ms);
  void release(lane_state& ls);
  // A result to deliver; sent again (its step's slot still taken) until the brokers take it.
  struct outgoing {
    lane_state* ls;
    kafka::consumer::message msg;
    std::string key;
    result_message out;  // sealed at each send
  };
  void send(std::shared_ptr<outgoing> o);
  void resend_later(std::shared_ptr<outgoing> o);

  const kafka::settings& settings_;
  const sealer& seal_;
  const actions::executors& executors_;
  kafka::producer& producer_;
  const clock& clock_;
  metrics::registry& metrics_;  // the consumers' gauges, at start()
  options opts_;
  std::array<metrics::counter*, 4> executed_{};
  metrics::counter& refused_count_;
  metrics::gauge& in_flight_gauge_;
  std::array<lane_state, 2> lanes_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<std::shared_ptr<outgoing>> resend_;  // guarded by mu_
  std::chrono::steady_clock::time_point resend_at_;  // guarded by mu_
  std::atomic<bool> refused_{false};
  wakeup refused_bell_;
  lifeline life_;  // executor answers and delivery reports that may come after the node is gone
};

}  // namespace zapd::fleet
