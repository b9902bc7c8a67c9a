// The worker pool alone (issue 14 item 3): the real SQLite store, the real embedded queue
// and the real outbox relay on a temp file; fakes only for the clock and the action. What
// is asserted is what the pool recorded: the run, its run_steps rows, the jobs table and the
// worker's counters. tests/integration/worker_test.cpp covers the same rules end to end.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <mutex>
#include <set>
#include <thread>

#include <catch2/catch.hpp>

#include "fake_action.hpp"
#include "fake_clock.hpp"
#include "outside_queue.hpp"
#include "zapd/actions/catalog.hpp"
#include "zapd/core/wakeup.hpp"
#include "zapd/metrics/registry.hpp"
#include "zapd/outbox/relay.hpp"
#include "zapd/queue/sqlite_queue.hpp"
#include "zapd/runs/runs.hpp"
#include "zapd/secrets/secrets.hpp"
#include "zapd/store/database.hpp"
#include "zapd/worker/pool.hpp"
#include "zapd/zaps/zaps.hpp"

using namespace zapd;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

constexpr const char* k_user = "user-1";

// Polls `pred` every 2 ms for up to `limit`; whether it held.
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds limit = 5s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(2ms);
  }
}

// Small numbers so each case takes well under a second of real time. The lease is in fake
// time: the pool ends an attempt 3 s before its lease and gives back a job with < 1 s left.
worker::pool::options small_options() {
  worker::pool::options o;
  o.paid_slots = 4;
  o.free_slots = 4;
  o.claim_batch = 4;
  o.lease = 10s;
  o.poll = 20ms;
  o.grace = 300ms;
  o.retry.max_attempts = 3;
  return o;
}

struct setup {
  worker::pool::options pool = small_options();
  std::size_t writer_max_pending = 20'000;
  bool outside = false;  // the pool sees the queue only through queue::queue
  bool outside_handoff = false;  // ... which still hands it jobs from producers' transactions
};

struct job_row {
  std::int64_t id = 0;
  std::string state;
  std::int64_t run_at_ms = 0;
  int attempts = 0;
  std::optional<std::int64_t> lease_until_ms;
  std::string dead_reason;
};

struct fixture {
  explicit fixture(setup s = {}) {
    char tmpl[] = "/tmp/zapd-worker-XXXXXX";
    dir = mkdtemp(tmpl);
    store::database::options o;
    o.path = dir + "/zapd.db";
    o.synchronous = "normal";
    o.writer.max_pending = s.writer_max_pending;
    auto opened = store::database::open(o);
    REQUIRE(opened.ok());
    db = std::move(opened).value();
    auto b = secrets::box::load_or_create(dir + "/secrets.key");
    REQUIRE(b.ok());
    box.emplace(std::move(b).value());
    queue::sqlite_queue::options qo;
    qo.ready = &jobs_ready;  // as app wires it: the queue rings for a job that waits for a claim
    q = std::make_unique<queue::sqlite_queue>(*db, clk, reg, qo);
    outside = std::make_unique<test::outside_queue>(*q);
    outside->forward_handoff = s.outside_handoff;
    auto a = std::make_unique<test::fake_action>();
    action = a.get();
    executors.add("http", std::move(a));
    outbox::relay::options ro;
    ro.poll = 20ms;
    relay = std::make_unique<outbox::relay>(*db, *q, reg, outbox_ready, jobs_ready, ro);
    queue::queue& seen = s.outside ? static_cast<queue::queue&>(*outside) : *q;
    pool = std::make_unique<worker::pool>(
        worker::pool::services{*db, seen, executors, *box, clk, reg, jobs_ready, outbox_ready}, s.pool);
    relay->start();
    pool->start();
  }
  ~fixture() {
    pool.reset();  // before the action: held callbacks point into it
    relay.reset();
    q.reset();
    db->stop();
    db.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  // A zap of `n` http steps, with `retry` as its own retry policy when given.
  zaps::zap_record make_zap(int n, const json& retry = nullptr) {
    json body = {{"availableTriggerId", "webhook"}, {"triggerMetadata", json::object()}, {"actions", json::array()}};
    for (int i = 1; i <= n; ++i)
      body["actions"].push_back(
          {{"availableActionId", "http"}, {"actionMetadata", {{"url", "https://example.org/step/" + std::to_string(i)}}}});
    if (!retry.is_null()) body["retry"] = retry;
    auto v = zaps::validate(body, actions::catalog::builtin(), {}, {});
    REQUIRE(v.ok());
    auto z = db->writes().execute<zaps::zap_record>([&](store::connection& c) { return zaps::create(c, k_user, *v); });
    REQUIRE(z.ok());
    return std::move(z).value();
  }

  // A run of `z` with its first step in the outbox, as ingestion writes it with outbox.direct
  // off; the relay moves it (the steps after it go straight into the queue: it is direct).
  std::string fire(const zaps::zap_record& z) {
    runs::new_run r;
    r.id = "run-" + std::to_string(++runs_made);
    r.zap_id = z.id;
    r.user_id = k_user;
    r.zap_version = z.version;
    r.lane = queue::lane::free;
    r.actions = z.definition.step_count();
    r.trigger_json = R"({"body":{"n":1}})";
    r.now_ms = clk.now_ms();
    auto st = db->writes().execute<bool>([&](store::connection& c) -> result<bool> {
      if (auto s = runs::insert(c, nullptr, r); !s) return std::move(s).err();
      return true;
    });
    REQUIRE(st.ok());
    outbox_ready.ring();
    return r.id;
  }

  runs::run_record run(const std::string& id) {
    auto r = db->reads().with([&](store::connection& c) { return runs::get(c, k_user, id); });
    REQUIRE(r.ok());
    return std::move(r).value();
  }
  std::string status_of(const std::string& id) { return run(id).status; }

  std::optional<job_row> job(const std::string& run_id, int step) {
    return db->reads().with([&](store::connection& c) -> std::optional<job_row> {
      auto st = c.prepare(
          "SELECT id, state, run_at_ms, attempts, lease_until_ms, dead_reason FROM jobs WHERE run_id = ? AND step_index = ?");
      REQUIRE(st.ok());
      st->bind_all(run_id, step);
      auto row = st->step();
      REQUIRE(row.ok());
      if (!*row) return std::nullopt;
      job_row j;
      j.id = st->int64(0);
      j.state = st->text(1);
      j.run_at_ms = st->int64(2);
      j.attempts = static_cast<int>(st->int64(3));
      if (!st->is_null(4)) j.lease_until_ms = st->int64(4);
      if (!st->is_null(5)) j.dead_reason = st->text(5);
      return j;
    });
  }

  std::int64_t count(const std::string& sql) {
    return db->reads().with([&](store::connection& c) {
      auto st = c.prepare(sql);
      REQUIRE(st.ok());
      auto row = st->step();
      REQUIRE(row.ok());
      REQUIRE(*row);
      return st->int64(0);
    });
  }

  // Counted by the writer's commit callback, a moment after a reader can see the commit: a
  // test waits for the count with the status it expects, not for the status alone.
  std::uint64_t steps_total(const char* outcome) {
    return reg.add_counter("zapd_worker_steps_total", "", {{"outcome", outcome}}).value();
  }
  std::uint64_t counter(const char* name) { return reg.add_counter(name, "").value(); }

  // Moves the fake clock and wakes the claim threads, as a scheduled retry falling due would.
  void advance(std::chrono::milliseconds d) {
    clk.advance(d);
    pool->notify();
  }

  test::fake_clock clk;
  metrics::registry reg;
  std::string dir;
  std::unique_ptr<store::database> db;
  std::optional<secrets::box> box;
  std::unique_ptr<queue::sqlite_queue> q;
  std::unique_ptr<test::outside_queue> outside;
  actions::executors executors;
  test::fake_action* action = nullptr;  // owned by `executors`
  wakeup outbox_ready, jobs_ready;
  std::unique_ptr<outbox::relay> relay;
  std::unique_ptr<worker::pool> pool;
  int runs_made = 0;
};

}  // namespace

TEST_CASE("pool: a retried step waits 5 s with 20 percent jitter by the clock, runs again when due, and gives up after max_attempts") {
  fixture f;
  f.action->answer_with([](const actions::step_request&) { return test::retry_later("HTTP 503"); });
  const auto z = f.make_zap(1);
  const auto id = f.fire(z);
  const std::int64_t t1 = f.clk.now_ms();

  REQUIRE(eventually([&] { return f.steps_total("retry") == 1 && f.run(id).steps.size() == 1; }));
  {
    auto r = f.run(id);
    CHECK(r.status == "running");
    const auto& s = r.steps.at(0);
    CHECK(s.status == "running");
    CHECK(s.attempts == 1);
    CHECK(s.error == "HTTP 503");
    REQUIRE(s.next_attempt_at);
    CHECK(*s.next_attempt_at >= t1 + 4'000);
    CHECK(*s.next_attempt_at <= t1 + 6'000);
    auto j = f.job(id, 1);
    REQUIRE(j);
    CHECK(j->state == "ready");
    CHECK(j->run_at_ms == *s.next_attempt_at);
    CHECK_FALSE(j->lease_until_ms);
  }
  // What the action was given: its attempt, the stable key, and a timeout capped by the
  // lease (10 s lease - 3 s margin, below the 30 s default).
  auto first = f.action->call(0);
  CHECK(first.attempt == 1);
  CHECK(first.idempotency_key == id + ":1");
  CHECK(first.config["url"] == "https://example.org/step/1");
  CHECK(first.config["timeoutMs"] == 7'000);

  // Not due yet by the clock: polling claims nothing.
  std::this_thread::sleep_for(100ms);
  CHECK(f.action->calls() == 1);

  const auto due2 = *f.run(id).steps.at(0).next_attempt_at;
  f.advance(std::chrono::milliseconds(due2 - f.clk.now_ms() + 1));
  REQUIRE(eventually([&] { return f.steps_total("retry") == 2 && f.run(id).steps.at(0).attempts == 2; }));
  CHECK(f.action->call(1).attempt == 2);
  const std::int64_t t2 = f.clk.now_ms();
  {
    // The schedule's second delay: 5 min +-20 %.
    auto s = f.run(id).steps.at(0);
    CHECK(s.status == "running");
    REQUIRE(s.next_attempt_at);
    CHECK(*s.next_attempt_at >= t2 + 240'000);
    CHECK(*s.next_attempt_at <= t2 + 360'000);
    CHECK(f.job(id, 1)->run_at_ms == *s.next_attempt_at);
  }

  const auto due3 = *f.run(id).steps.at(0).next_attempt_at;
  f.advance(std::chrono::milliseconds(due3 - f.clk.now_ms() + 1));
  REQUIRE(eventually([&] { return f.status_of(id) == "failed" && f.steps_total("failed") == 1; }));
  auto r = f.run(id);
  CHECK(r.error == "step 1: HTTP 503 (gave up after 3 attempts)");
  CHECK(r.finished_at == f.clk.now_ms());
  const auto& s = r.steps.at(0);
  CHECK(s.status == "failed");
  CHECK(s.attempts == 3);
  CHECK(s.error == "HTTP 503 (gave up after 3 attempts)");
  CHECK_FALSE(s.next_attempt_at);
  auto j = f.job(id, 1);
  REQUIRE(j);
  CHECK(j->state == "dead");
  CHECK(j->attempts == 3);
  CHECK(j->dead_reason == "HTTP 503 (gave up after 3 attempts)");
  CHECK(f.action->calls() == 3);
  CHECK(f.steps_total("retry") == 2);
  CHECK(f.steps_total("failed") == 1);
  CHECK(f.steps_total("succeeded") == 0);
  CHECK(f.count("SELECT count(*) FROM outbox") == 0);
}

TEST_CASE("pool: a Retry-After longer than the schedule sets the next attempt") {
  fixture f;
  f.action->answer_with([](const actions::step_request& req) -> std::optional<actions::step_result> {
    if (req.attempt == 1) return test::retry_later("HTTP 429", 120s);
    return test::succeeded({{"ok", true}});
  });
  const auto z = f.make_zap(1);
  const auto id = f.fire(z);
  const std::int64_t t1 = f.clk.now_ms();

  REQUIRE(eventually([&] { return f.steps_total("retry") == 1 && f.run(id).steps.size() == 1; }));
  auto s = f.run(id).steps.at(0);
  REQUIRE(s.next_attempt_at);
  CHECK(*s.next_attempt_at == t1 + 120'000);  // not t1 + 5 s +-20 %
  CHECK(f.job(id, 1)->run_at_ms == t1 + 120'000);

  // Past the schedule's 5 s, before the server's 120 s: nothing runs.
  f.advance(10s);
  std::this_thread::sleep_for(100ms);
  CHECK(f.action->calls() == 1);

  f.advance(std::chrono::milliseconds(t1 + 120'000 - f.clk.now_ms()));
  REQUIRE(eventually([&] { return f.status_of(id) == "succeeded"; }));
  auto r = f.run(id);
  CHECK(r.steps.at(0).status == "succeeded");
  CHECK(r.steps.at(0).attempts == 2);
  CHECK(r.steps.at(0).output == json{{"ok", true}});
  CHECK_FALSE(r.steps.at(0).error);
  CHECK_FALSE(f.job(id, 1));
  CHECK(f.action->calls() == 2);
}

TEST_CASE("pool: a zap's own retry policy sets its attempts and delays") {
  setup s;
  s.pool.retry.max_attempts = 8;  // the zap's 2 must win
  fixture f(s);
  f.action->answer_with([](const actions::step_request&) { return test::retry_later("timeout"); });
  const auto z = f.make_zap(1, {{"attempts", 2}, {"baseDelayMs", 1000}});
  REQUIRE(z.definition.retry.attempts == 2);
  const auto id = f.fire(z);
  const std::int64_t t1 = f.clk.now_ms();

  REQUIRE(eventually([&] { return f.steps_total("retry") == 1 && f.run(id).steps.size() == 1; }));
  auto step = f.run(id).steps.at(0);
  REQUIRE(step.next_attempt_at);
  CHECK(*step.next_attempt_at >= t1 + 800);  // 1 s +-20 %, not 5 s
  CHECK(*step.next_attempt_at <= t1 + 1'200);
  CHECK(f.job(id, 1)->run_at_ms == *step.next_attempt_at);

  f.advance(std::chrono::milliseconds(*step.next_attempt_at - f.clk.now_ms() + 1));
  REQUIRE(eventually([&] { return f.status_of(id) == "failed" && f.steps_total("failed") == 1; }));
  auto r = f.run(id);
  CHECK(r.error == "step 1: timeout (gave up after 2 attempts)");
  CHECK(r.steps.at(0).attempts == 2);
  CHECK(r.steps.at(0).status == "failed");
  auto j = f.job(id, 1);
  REQUIRE(j);
  CHECK(j->state == "dead");
  CHECK(f.action->calls() == 2);
  CHECK(f.steps_total("retry") == 1);
  CHECK(f.steps_total("failed") == 1);
}

TEST_CASE("pool: a result that arrives after its lease passed to a newer claim is discarded") {
  fixture f;
  const auto z = f.make_zap(1);
  const auto id = f.fire(z);  // no answer: every call is held
  REQUIRE(eventually([&] { return f.action->held() == 1; }));
  auto first = f.job(id, 1);
  REQUIRE(first);
  CHECK(first->state == "leased");
  CHECK(first->attempts == 1);

  // The lease (10 s by the clock) runs out; the next claim takes the job over.
  f.advance(11s);
  REQUIRE(eventually([&] { return f.action->held() == 2; }));
  auto second = f.job(id, 1);
  REQUIRE(second);
  CHECK(second->id != first->id);  // the row, with the new claim's handle
  CHECK(second->attempts == 2);
  CHECK(f.action->call(1).attempt == 2);

  // The new attempt finishes first and is recorded.
  REQUIRE(f.action->release(1, 2, test::succeeded({{"attempt", 2}})));
  REQUIRE(eventually([&] { return f.status_of(id) == "succeeded" && f.steps_total("succeeded") == 1; }));

  // Then the stale one: its record must not replace the step's.
  REQUIRE(f.action->release(1, 1, test::failed("stale attempt")));
  REQUIRE(eventually([&] { return f.counter("zapd_worker_results_discarded_total") == 1; }));
  auto r = f.run(id);
  CHECK(r.status == "succeeded");
  CHECK_FALSE(r.error);
  const auto& s = r.steps.at(0);
  CHECK(s.status == "succeeded");
  CHECK(s.attempts == 2);
  CHECK(s.output == json{{"attempt", 2}});
  CHECK_FALSE(s.error);
  CHECK_FALSE(f.job(id, 1));
  CHECK(f.steps_total("succeeded") == 1);
  CHECK(f.steps_total("failed") == 0);  // the discarded attempt is no outcome
  CHECK(f.counter("zapd_worker_results_discarded_total") == 1);
}

namespace {

// Holds the writer on a request that waits until open() (or the end of the case, or the
// writer and the fixture's teardown would wait forever): nothing behind it commits meanwhile.
struct writer_gate {
  explicit writer_gate(store::database& db) {
    auto opened = gate_.get_future().share();
    auto running = started_.get_future();
    REQUIRE(db.writes()
                .submit(
                    [this, opened](store::connection&) -> status {
                      started_.set_value();
                      opened.wait();
                      return {};
                    },
                    nullptr)
                .ok());
    running.wait();
  }
  writer_gate(const writer_gate&) = delete;
  writer_gate& operator=(const writer_gate&) = delete;
  ~writer_gate() { open(); }
  void open() {
    if (!open_) gate_.set_value();
    open_ = true;
  }

 private:
  std::promise<void> started_;  // outlives the request's set_value (a member, not a local)
  std::promise<void> gate_;
  bool open_ = false;
};

}  // namespace

TEST_CASE("pool: a result the full writer refuses is deferred and recorded once the writer drains") {
  setup s;
  s.writer_max_pending = 8;
  fixture f(s);
  const auto z = f.make_zap(1);
  const auto id = f.fire(z);
  REQUIRE(eventually([&] { return f.action->held() == 1; }));

  // Keep the writer busy on a request that waits for the test, then fill its queue.
  writer_gate gate_guard(*f.db);
  bool full = false;
  for (int i = 0; i < 64 && !full; ++i) {
    auto st = f.db->writes().submit([](store::connection&) -> status { return {}; }, nullptr);
    full = !st && st.err().code == errc::overloaded;
  }
  REQUIRE(full);

  REQUIRE(f.action->release(1, 1, test::succeeded({{"done", true}})));
  CHECK(f.counter("zapd_worker_results_deferred_total") == 1);
  std::this_thread::sleep_for(50ms);  // the claim threads retry the hand-over meanwhile
  CHECK(f.run(id).steps.empty());
  CHECK(f.status_of(id) == "queued");

  gate_guard.open();
  REQUIRE(eventually([&] { return f.status_of(id) == "succeeded" && f.steps_total("succeeded") == 1; }));
  auto r = f.run(id);
  CHECK(r.steps.at(0).status == "succeeded");
  CHECK(r.steps.at(0).attempts == 1);
  CHECK(r.steps.at(0).output == json{{"done", true}});
  CHECK_FALSE(f.job(id, 1));
  CHECK(f.action->calls() == 1);
  CHECK(f.counter("zapd_worker_results_deferred_total") == 1);
  CHECK(f.counter("zapd_worker_results_discarded_total") == 0);
  CHECK(f.steps_total("succeeded") == 1);
}

namespace {

// One slot per lane and one job per claim: of two runs fired, the second's job is the one
// claimed ahead while the first executes.
setup one_slot() {
  setup s;
  s.pool.free_slots = 1;
  s.pool.paid_slots = 1;
  s.pool.claim_batch = 1;
  return s;
}

// Whether run `id`'s first job is leased (claimed, by the pool) at `attempts`.
bool claimed(fixture& f, const std::string& id, int attempts = 1) {
  auto j = f.job(id, 1);
  return j && j->state == "leased" && j->attempts == attempts;
}

}  // namespace

TEST_CASE("pool: a step whose result waits for its commit gives its slot back, and the job claimed ahead starts without waiting for the writer") {
  setup s = one_slot();
  fixture f(s);
  auto executing = [&] { return f.reg.add_gauge("zapd_worker_in_flight", "").value(); };
  const auto z = f.make_zap(1);
  const auto a = f.fire(z);
  const auto b = f.fire(z);
  const auto c = f.fire(z);
  REQUIRE(eventually([&] { return f.action->held() == 1; }));
  CHECK(executing() == 1);
  // One slot: a executes, b is claimed ahead (leased, not started), c waits in the queue.
  REQUIRE(eventually([&] { return claimed(f, b); }));
  REQUIRE(eventually([&] { return f.job(c, 1).has_value(); }));  // the relay moved it
  std::this_thread::sleep_for(50ms);  // time enough for a wrong third claim
  CHECK(f.job(c, 1)->state == "ready");
  CHECK(f.action->calls() == 1);

  // The writer busy on a request that waits for the test: a's result cannot commit, and no
  // claim can either.
  writer_gate gate_guard(*f.db);

  REQUIRE(f.action->release(1, 1, test::succeeded({{"done", true}})));
  // Answered and handed to the writer: its slot is free (it used to stay taken until the
  // commit, which capped a lane at slots / commit time), and b, claimed ahead, starts in it
  // while the writer is still held (it used to wait for its own claim's commit).
  REQUIRE(eventually([&] { return f.action->calls() == 2 && f.action->held() == 1; }, 2s));
  CHECK(executing() == 1);
  CHECK(f.run(a).steps.empty());
  CHECK(f.job(c, 1)->state == "ready");

  gate_guard.open();
  REQUIRE(eventually([&] { return f.status_of(a) == "succeeded"; }));
  REQUIRE(f.action->release(1, 1, test::succeeded({{"done", true}})));
  REQUIRE(eventually([&] { return f.status_of(b) == "succeeded" && f.action->held() == 1; }));
  REQUIRE(f.action->release(1, 1, test::succeeded({{"done", true}})));
  REQUIRE(eventually([&] { return f.status_of(c) == "succeeded" && f.steps_total("succeeded") == 3; }));
  CHECK(eventually([&] { return executing() == 0; }));
  CHECK(f.action->calls() == 3);
}

TEST_CASE("pool: stop gives back a job claimed ahead at once, its attempt not counted, without waiting the grace") {
  setup s = one_slot();
  s.pool.grace = 5s;
  fixture f(s);
  const auto z = f.make_zap(1);
  const auto a = f.fire(z);
  const auto b = f.fire(z);
  REQUIRE(eventually([&] { return f.action->held() == 1; }));
  REQUIRE(eventually([&] { return claimed(f, b); }));
  // stop() gives b back before it waits for a, which answers once b is back: a stop that
  // waited for a first, or started b, would take the 5 s grace.
  auto answer = std::async(std::launch::async, [&] {
    const bool back = eventually([&] { return f.job(b, 1)->state == "ready"; }, 10s);
    return f.action->release(1, 1, test::succeeded()) && back;
  });
  const auto t0 = std::chrono::steady_clock::now();
  f.pool->stop();
  const auto took = std::chrono::steady_clock::now() - t0;
  REQUIRE(answer.get());
  CHECK(took < 4s);
  CHECK(f.action->calls() == 1);
  REQUIRE(eventually([&] { return f.status_of(a) == "succeeded"; }));
  auto jb = f.job(b, 1);
  REQUIRE(jb);
  CHECK(jb->state == "ready");
  CHECK(jb->attempts == 0);  // never ran: the claim is not counted
  CHECK_FALSE(jb->lease_until_ms);
  CHECK(jb->run_at_ms <= f.clk.now_ms());
  CHECK(f.run(b).steps.empty());
}

TEST_CASE("pool: a job claimed ahead that waits past a quarter of its lease is claimed again with a fresh lease, still its first attempt") {
  fixture f(one_slot());  // lease 10 s (fake clock)
  const auto z = f.make_zap(1);
  const auto a = f.fire(z);
  const auto b = f.fire(z);
  REQUIRE(eventually([&] { return f.action->held() == 1; }));
  REQUIRE(eventually([&] { return claimed(f, b); }));
  const auto first = f.job(b, 1);
  REQUIRE(first->lease_until_ms);
  CHECK(*first->lease_until_ms == f.clk.now_ms() + 10'000);

  f.advance(3s);  // a still executes; b has waited 3 s of its 10 s lease
  REQUIRE(eventually([&] {
    auto jb = f.job(b, 1);
    return jb && jb->state == "leased" && jb->lease_until_ms && *jb->lease_until_ms == f.clk.now_ms() + 10'000;
  }));
  CHECK(f.job(b, 1)->attempts == 1);
  CHECK(f.action->calls() == 1);

  REQUIRE(f.action->release(1, 1, test::succeeded()));
  REQUIRE(eventually([&] { return f.status_of(a) == "succeeded" && f.action->held() == 1; }));
  REQUIRE(f.action->release(1, 1, test::succeeded()));  // b runs as its first attempt
  REQUIRE(eventually([&] { return f.status_of(b) == "succeeded" && f.steps_total("succeeded") == 2; }));
  CHECK(f.run(b).steps.at(0).attempts == 1);
}

namespace {

// A two-step run whose first step is in the action when the run is cancelled (through the
// writer, with the queue settling its jobs in the same transaction, as the API does); then
// the action answers `late`. The cancelled run, for the caller to check.
runs::run_record cancel_mid_step(fixture& f, actions::step_result late) {
  const auto z = f.make_zap(2);
  const auto id = f.fire(z);
  REQUIRE(eventually([&] { return f.action->held() == 1; }));

  auto cancelled = f.db->writes().execute<runs::run_record>(
      [&](store::connection& c) { return runs::cancel(c, f.q.get(), k_user, id, f.clk.now_ms()); });
  REQUIRE(cancelled.ok());
  CHECK(cancelled->status == "cancelled");
  REQUIRE(f.job(id, 1));  // the leased job stays for its worker to settle

  REQUIRE(f.action->release(1, 1, std::move(late)));
  REQUIRE(eventually([&] { return !f.job(id, 1).has_value(); }));
  auto r = f.run(id);
  CHECK(r.status == "cancelled");
  REQUIRE(r.steps.size() == 1);
  CHECK(r.steps.at(0).index == 1);
  CHECK(r.steps.at(0).attempts == 1);
  CHECK_FALSE(r.steps.at(0).next_attempt_at);
  CHECK(f.count("SELECT count(*) FROM outbox") == 0);
  CHECK(f.count("SELECT count(*) FROM jobs") == 0);
  std::this_thread::sleep_for(100ms);  // a step 2 would have reached the action by now
  CHECK_FALSE(f.job(id, 2));
  CHECK(f.action->calls() == 1);
  CHECK(f.counter("zapd_worker_results_discarded_total") == 0);
  return r;
}

}  // namespace

TEST_CASE("pool: a run cancelled while its step runs stays cancelled and nothing after the step runs") {
  fixture f;
  auto r = cancel_mid_step(f, test::succeeded({{"id", 42}}));
  CHECK(r.finished_at);
  CHECK(eventually([&] { return f.steps_total("succeeded") == 1; }));
}

// The action did run and succeed: its step says so (the run stays cancelled and nothing
// after the step runs, as runs/attempt.hpp documents).
TEST_CASE("pool: a step that succeeds after its run was cancelled is recorded succeeded and the run stays cancelled") {
  fixture f;
  auto r = cancel_mid_step(f, test::succeeded({{"id", 42}}));
  CHECK(r.steps.at(0).status == "succeeded");
}

TEST_CASE("pool: a retry answered after its run was cancelled schedules nothing and records the step cancelled") {
  fixture f;
  auto r = cancel_mid_step(f, test::retry_later("HTTP 503"));
  CHECK(r.steps.at(0).status == "cancelled");
  CHECK(r.steps.at(0).finished_at);
  CHECK_FALSE(r.error);
}

TEST_CASE("pool: with a queue outside the store it settles each job through the queue after the commit") {
  setup s;
  s.outside = true;
  fixture f(s);
  f.action->answer_with([](const actions::step_request& req) -> std::optional<actions::step_result> {
    if (req.step_index == 1 && req.attempt == 1) return test::retry_later("HTTP 502");
    return test::succeeded({{"step", req.step_index}});
  });
  const auto z = f.make_zap(2);
  const auto id = f.fire(z);
  const std::int64_t t1 = f.clk.now_ms();

  // The retry is settled through queue::retry: ready again at the step's next attempt.
  REQUIRE(eventually([&] {
    auto j = f.job(id, 1);
    return j && j->state == "ready" && j->attempts == 1;
  }));
  auto step = f.run(id).steps.at(0);
  REQUIRE(step.next_attempt_at);
  CHECK(*step.next_attempt_at >= t1 + 4'000);
  CHECK(*step.next_attempt_at <= t1 + 6'000);
  CHECK(f.job(id, 1)->run_at_ms == *step.next_attempt_at);

  f.advance(6'001ms);
  REQUIRE(eventually([&] { return f.status_of(id) == "succeeded" && f.steps_total("succeeded") == 2; }));
  // The last ack goes through the queue after the commit that ended the run.
  REQUIRE(eventually([&] { return f.count("SELECT count(*) FROM jobs") == 0; }));
  auto r = f.run(id);
  REQUIRE(r.steps.size() == 2);
  CHECK(r.steps.at(0).status == "succeeded");
  CHECK(r.steps.at(0).attempts == 2);
  CHECK(r.steps.at(1).status == "succeeded");
  CHECK(r.steps.at(1).attempts == 1);
  CHECK(r.steps.at(1).output == json{{"step", 2}});
  CHECK(f.count("SELECT count(*) FROM outbox") == 0);
  CHECK(f.action->calls() == 3);
  CHECK(f.steps_total("succeeded") == 2);
  CHECK(f.steps_total("retry") == 1);
  // The queue counts an ack when it commits, after the jobs row is gone: wait for the count.
  CHECK(eventually([&] { return f.reg.add_counter("zapd_queue_acked_total", "", {{"lane", "free"}}).value() == 2; }));
  CHECK(f.reg.add_counter("zapd_queue_retried_total", "", {{"lane", "free"}}).value() == 1);
}

TEST_CASE("pool: stop waits the grace for an action that never answers, then gives the job back") {
  fixture f;
  const auto z = f.make_zap(1);
  const auto id = f.fire(z);
  REQUIRE(eventually([&] { return f.action->held() == 1; }));
  auto before = f.job(id, 1);
  REQUIRE(before);
  CHECK(before->state == "leased");

  const auto t0 = std::chrono::steady_clock::now();
  f.pool->stop();
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(took >= 300ms);
  CHECK(took < 3s);

  auto after = f.job(id, 1);
  REQUIRE(after);
  CHECK(after->state == "ready");
  CHECK_FALSE(after->lease_until_ms);
  CHECK(after->run_at_ms <= f.clk.now_ms());
  // Claimable at once, by the same clock, long before its lease would have ended.
  auto again = f.q->claim(queue::lane::free, 4, 10s);
  REQUIRE(again.ok());
  REQUIRE(again->size() == 1);
  CHECK(again->at(0).run_id == id);
  CHECK(again->at(0).id != before->id);  // a new claim, a new handle
  CHECK(again->at(0).attempts == 2);

  // The late answer finds the lease gone: discarded, nothing recorded.
  REQUIRE(f.action->release(1, 1, test::succeeded()));
  REQUIRE(eventually([&] { return f.counter("zapd_worker_results_discarded_total") == 1; }));
  CHECK(f.run(id).steps.empty());
  CHECK(f.status_of(id) == "queued");
  CHECK(f.job(id, 1)->attempts == 2);
}

TEST_CASE("pool: a filtered step ends the run `filtered` and nothing after it runs (both queue kinds)") {
  for (bool outside : {false, true}) {
    INFO("queue outside the store: " << outside);
    setup s;
    s.outside = outside;
    fixture f(s);
    f.action->answer_with([](const actions::step_request& r) -> std::optional<actions::step_result> {
      auto res = test::succeeded({{"passed", false}});
      if (r.step_index == 1) res.v = actions::verdict::filtered;
      return res;
    });
    const auto z = f.make_zap(2);
    const auto id = f.fire(z);
    REQUIRE(eventually([&] { return f.status_of(id) == "filtered" && f.steps_total("filtered") == 1; }));
    auto r = f.run(id);
    REQUIRE(r.steps.size() == 1);
    CHECK(r.steps[0].status == "filtered");
    CHECK_FALSE(r.error);
    CHECK(r.finished_at);
    REQUIRE(eventually([&] { return !f.job(id, 1); }));  // acked
    std::this_thread::sleep_for(100ms);
    CHECK(f.action->calls() == 1);
    CHECK_FALSE(f.job(id, 2));
    CHECK(f.count("SELECT count(*) FROM outbox") == 0);
    CHECK(f.steps_total("filtered") == 1);
  }
}

TEST_CASE("pool: a step that asks to resume later leaves the run `waiting` and the next job due then, by the clock") {
  for (bool outside : {false, true}) {
    INFO("queue outside the store: " << outside);
    setup s;
    s.outside = outside;
    fixture f(s);
    const std::int64_t resume = f.clk.now_ms() + 60'000;
    f.action->answer_with([&](const actions::step_request& r) -> std::optional<actions::step_result> {
      auto res = test::succeeded({{"step", r.step_index}});
      if (r.step_index == 1) res.resume_at_ms = resume;
      return res;
    });
    const auto z = f.make_zap(2);
    const auto id = f.fire(z);
    REQUIRE(eventually([&] { return f.status_of(id) == "waiting"; }));
    CHECK(f.run(id).resume_at == resume);
    REQUIRE(eventually([&] { return f.job(id, 2).has_value(); }));
    CHECK(f.job(id, 2)->run_at_ms == resume);
    std::this_thread::sleep_for(150ms);  // several polls: not due yet by the fake clock
    CHECK(f.action->calls() == 1);
    CHECK(f.status_of(id) == "waiting");

    f.advance(61s);
    REQUIRE(eventually([&] { return f.status_of(id) == "succeeded"; }));
    CHECK(f.action->calls() == 2);
    CHECK_FALSE(f.run(id).resume_at);
  }
}

TEST_CASE("pool: a step due while a slot is free starts from the transaction that made it due, with no claim") {
  setup s;
  s.outside = true;  // to count the claims; the queue underneath still hands jobs over
  s.outside_handoff = true;
  fixture f(s);
  f.action->answer_with([](const actions::step_request&) { return test::succeeded(); });
  auto z = f.make_zap(3);
  auto id = f.fire(z);
  REQUIRE(eventually([&] { return f.status_of(id) == "succeeded" && f.steps_total("succeeded") == 3; }));
  // Step 1 was handed over by the relay's move, steps 2 and 3 by the commits that recorded
  // the step before: every one leased in the transaction that made it due.
  CHECK(f.outside->claimed.load() == 0);
  CHECK(f.reg.add_counter("zapd_queue_claimed_total", "", {{"lane", "free"}}).value() == 3);
  CHECK(eventually([&] { return f.count("SELECT count(*) FROM jobs") == 0; }));  // acked through the queue after each commit
  CHECK(f.count("SELECT count(*) FROM run_steps WHERE run_id = '" + id + "' AND attempts = 1") == 3);

  // Without the hand-over the same run is claimed step by step.
  setup plain;
  plain.outside = true;
  fixture g(plain);
  g.action->answer_with([](const actions::step_request&) { return test::succeeded(); });
  auto id2 = g.fire(g.make_zap(3));
  REQUIRE(eventually([&] { return g.status_of(id2) == "succeeded" && g.steps_total("succeeded") == 3; }));
  CHECK(g.outside->claimed.load() == 3);
}

TEST_CASE("pool: a step handed to a free slot wakes no claim loop, one that waits for a claim does") {
  setup st;
  st.pool.poll = 10s;  // no claims by the clock: each one below was woken
  fixture f(st);
  auto claims = [&](const char* lane) { return f.reg.add_counter("zapd_queue_claims_total", "", {{"lane", lane}}).value(); };
  auto claimed_not_handed = [&] {
    return f.reg.add_counter("zapd_queue_claimed_total", "", {{"lane", "free"}}).value() -
           f.reg.add_counter("zapd_queue_handed_total", "", {{"lane", "free"}}).value();
  };
  REQUIRE(eventually([&] { return claims("paid") == 1 && claims("free") == 1; }));  // each lane's first claim
  // Which runs to hold: the fixture names them run-1, run-2, ... in the order they are fired.
  std::mutex mu;
  std::set<std::string> held_runs;
  f.action->answer_with([&](const actions::step_request& r) -> std::optional<actions::step_result> {
    std::lock_guard lk(mu);
    if (held_runs.count(r.run_id)) return std::nullopt;
    return test::succeeded();
  });

  // Steps 1 to 3, each handed over by the commit that made it due (the relay's move, then
  // the records of the steps before): no ring, no claim, in either lane.
  auto id = f.fire(f.make_zap(3));
  REQUIRE(eventually([&] { return f.status_of(id) == "succeeded" && f.steps_total("succeeded") == 3; }));
  std::this_thread::sleep_for(50ms);  // a stray claim would have been woken by now
  CHECK(claims("paid") == 1);
  CHECK(claims("free") == 1);

  // Every slot held: the next run's first step cannot be handed over. The relay moves it in
  // ready, and only the queue's ring (the relay rings nothing for a queue that rings for its
  // waiting jobs itself; the poll is 10 s) has it claimed ahead of a free slot.
  {
    std::lock_guard lk(mu);
    for (int i = 2; i <= 5; ++i) held_runs.insert("run-" + std::to_string(i));
  }
  for (int i = 0; i < 4; ++i) f.fire(f.make_zap(1));
  REQUIRE(eventually([&] { return f.action->held() == 4; }));
  const auto before = claimed_not_handed();
  auto waiting = f.fire(f.make_zap(1));
  REQUIRE(waiting == "run-6");
  REQUIRE(eventually([&] { return claimed_not_handed() == before + 1; }));
  CHECK(f.action->held() == 4);
  REQUIRE(f.action->release(1, 1, test::succeeded()));  // a slot frees: the claimed job starts
  REQUIRE(eventually([&] { return f.status_of(waiting) == "succeeded"; }));
  CHECK(claims("paid") == 2);  // one ring: jobs_ready wakes both lanes' claim loops once
}

TEST_CASE("pool: with the queue in the store, a run's steps start from the transactions that made them due, none claimed") {
  fixture f;
  // A claim moves a job from ready to leased; a hand-over writes it leased: count the claims.
  auto logged = f.db->writes().execute<bool>([](store::connection& c) -> result<bool> {
    auto st = c.exec(
        "CREATE TABLE claim_log(job_id INTEGER);"
        "CREATE TRIGGER claim_logged AFTER UPDATE OF state ON jobs WHEN old.state = 'ready' AND new.state = 'leased' "
        "BEGIN INSERT INTO claim_log VALUES (new.id); END;");
    if (!st) return std::move(st).err();
    return true;
  });
  REQUIRE(logged.ok());
  f.action->answer_with([](const actions::step_request&) { return test::succeeded(); });
  auto z = f.make_zap(3);
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(f.fire(z));
  REQUIRE(eventually([&] { return f.steps_total("succeeded") == 9; }));
  for (const auto& id : ids) CHECK(f.status_of(id) == "succeeded");
  CHECK(f.count("SELECT count(*) FROM claim_log") == 0);
  CHECK(f.count("SELECT count(*) FROM jobs") == 0);
  CHECK(f.reg.add_counter("zapd_queue_claimed_total", "", {{"lane", "free"}}).value() == 9);

  // Every slot busy: the next run's first step waits as a ready job and is claimed.
  f.action->answer_with([](const actions::step_request&) { return std::nullopt; });  // hold every call
  for (int i = 0; i < 4; ++i) f.fire(f.make_zap(1));
  REQUIRE(eventually([&] { return f.action->held() == 4; }));
  auto waiting = f.fire(f.make_zap(1));
  // No slot to promise: written ready, then claimed (ahead of a free slot).
  REQUIRE(eventually([&] { return f.count("SELECT count(*) FROM claim_log") == 1; }));
  CHECK(f.job(waiting, 1)->attempts == 1);
  CHECK(f.action->held() == 4);
  REQUIRE(f.action->release(1, 1, test::succeeded()));
  REQUIRE(eventually([&] { return f.action->held() == 4 && f.action->calls() == 14; }));  // it took the freed slot
  CHECK(f.count("SELECT count(*) FROM claim_log") == 1);
}
