#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "fake_clock.hpp"
#include "outside_queue.hpp"
#include "zapd/metrics/registry.hpp"
#include "zapd/outbox/outbox.hpp"
#include "zapd/outbox/relay.hpp"
#include "zapd/queue/sqlite_queue.hpp"
#include "zapd/store/database.hpp"

extern char** environ;

using namespace zapd;
using namespace std::chrono_literals;

namespace {

std::string fresh_db() {
  char tmpl[] = "/tmp/zapd-outbox-XXXXXX";
  return std::string(mkdtemp(tmpl)) + "/zapd.db";
}

std::unique_ptr<store::database> open_db(const std::string& path) {
  store::database::options o;
  o.path = path;
  auto db = store::database::open(o);
  REQUIRE(db.ok());
  return std::move(db).value();
}

std::int64_t scalar(store::database& db, const std::string& sql) {
  return db.reads().with([&](store::connection& c) {
    auto s = c.prepare(sql);
    REQUIRE(s.ok());
    auto row = s->step();
    REQUIRE(row.ok());
    REQUIRE(*row);
    return s->int64(0);
  });
}

// Commits `n` outbox rows (runs "<prefix>-<i>", step 0), as hooks would with each run.
void add_outbox_rows(store::database& db, int n, const std::string& prefix = "run", const char* lane = "free") {
  auto r = db.writes().execute<bool>([&](store::connection& c) -> result<bool> {
    for (int i = 0; i < n; ++i) {
      auto s = c.prepare("INSERT INTO outbox(run_id, step_index, lane, created_at) VALUES(?, 0, ?, 0)");
      if (!s) return std::move(s).err();
      auto st = s->bind_all(prefix + "-" + std::to_string(i), lane).run();
      if (!st) return std::move(st).err();
    }
    return true;
  });
  REQUIRE(r.ok());
}

// Polls `pred` every millisecond for up to `limit`; the time it took, or `limit` if never.
std::chrono::milliseconds wait_for(const std::function<bool()>& pred, std::chrono::milliseconds limit) {
  auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    if (pred()) return spent;
    if (spent >= limit) return limit;
    std::this_thread::sleep_for(1ms);
  }
}

struct fixture {
  explicit fixture(outbox::relay::options ro, bool in_store = true) : db(open_db(fresh_db())) {
    q = std::make_unique<queue::sqlite_queue>(*db, clk, reg, queue::sqlite_queue::options{});
    outside = std::make_unique<test::outside_queue>(*q);
    jobs_heard = jobs_ready.listen([this] { ++rings; });
    r = std::make_unique<outbox::relay>(*db, in_store ? static_cast<queue::queue&>(*q) : *outside, reg, outbox_ready, jobs_ready, ro);
  }
  ~fixture() {
    r.reset();
    jobs_ready.forget(jobs_heard);
    q.reset();
    db->stop();
  }
  std::int64_t jobs() { return scalar(*db, "SELECT count(*) FROM jobs"); }
  std::int64_t outbox_rows() { return scalar(*db, "SELECT count(*) FROM outbox"); }

  test::fake_clock clk;
  metrics::registry reg;
  std::unique_ptr<store::database> db;
  std::unique_ptr<queue::sqlite_queue> q;
  std::unique_ptr<test::outside_queue> outside;
  wakeup outbox_ready, jobs_ready;
  wakeup::listener_id jobs_heard = 0;
  std::atomic<int> rings{0};  // jobs_ready rings heard
  std::unique_ptr<outbox::relay> r;
};

}  // namespace

TEST_CASE("relay: the start-up pass moves every outbox row to a job, in batches, and deletes it") {
  outbox::relay::options o;
  o.batch = 7;
  o.poll = 10s;
  fixture f(o);
  add_outbox_rows(*f.db, 50, "run", "paid");
  f.r->start();
  wait_for([&] { return f.outbox_rows() == 0; }, 5s);
  // The counters move after each batch's commit, so the last batch's may lag the rows.
  wait_for([&] { return f.reg.add_counter("zapd_outbox_rows_published_total", "").value() == 50; }, 5s);
  CHECK(f.outbox_rows() == 0);
  CHECK(f.jobs() == 50);
  CHECK(scalar(*f.db, "SELECT count(*) FROM jobs WHERE lane='paid' AND state='ready' AND step_index=0") == 50);
  CHECK(f.reg.add_counter("zapd_outbox_rows_published_total", "").value() == 50);
  CHECK(f.reg.add_counter("zapd_outbox_batches_total", "").value() == 8);  // ceil(50 / 7)
  CHECK(f.reg.render_prometheus().find("zapd_outbox_depth 0\n") != std::string::npos);
}

TEST_CASE("relay: notify wakes it well before the poll interval") {
  outbox::relay::options o;
  o.poll = 10s;
  fixture f(o);
  f.r->start();
  // Let the start-up pass find the outbox empty and go to sleep for the 10 s poll.
  REQUIRE(wait_for([&] { return f.reg.add_counter("zapd_outbox_wakeups_total", "").value() >= 1; }, 5s) < 5s);
  std::this_thread::sleep_for(50ms);

  add_outbox_rows(*f.db, 1);
  auto t0 = std::chrono::steady_clock::now();
  f.r->notify();
  auto took = wait_for([&] { return f.jobs() == 1; }, 5s);
  auto total = std::chrono::steady_clock::now() - t0;
  CHECK(f.jobs() == 1);
  CHECK(f.outbox_rows() == 0);
  CHECK(took < 1s);  // measured ~1-5 ms here; the poll would have taken 10 s
  CHECK(total < 1s);
  CHECK(wait_for([&] { return f.rings.load() >= 1; }, 5s) < 5s);  // the workers' bell rang after the move

  // The outbox bell (what hooks, run operations and the worker ring) wakes it the same way.
  const int before = f.rings.load();
  add_outbox_rows(*f.db, 1, "rung");
  f.outbox_ready.ring();
  CHECK(wait_for([&] { return f.jobs() == 2; }, 5s) < 1s);
  CHECK(wait_for([&] { return f.rings.load() > before; }, 5s) < 1s);
}

TEST_CASE("relay: the poll alone picks up rows committed without notify") {
  outbox::relay::options o;
  o.poll = 100ms;
  fixture f(o);
  f.r->start();
  REQUIRE(wait_for([&] { return f.reg.add_counter("zapd_outbox_wakeups_total", "").value() >= 1; }, 5s) < 5s);
  std::this_thread::sleep_for(20ms);
  add_outbox_rows(*f.db, 3);
  CHECK(wait_for([&] { return f.jobs() == 3; }, 5s) < 5s);
  CHECK(f.outbox_rows() == 0);
  CHECK(f.reg.add_counter("zapd_outbox_wakeups_total", "").value() >= 2);
}

TEST_CASE("relay: a queue outside the store gets publish, and rows go once it acknowledged") {
  outbox::relay::options o;
  o.batch = 10;
  o.poll = 10s;
  fixture f(o, /*in_store=*/false);
  add_outbox_rows(*f.db, 25);
  f.r->start();
  CHECK(wait_for([&] { return f.outbox_rows() == 0; }, 5s) < 5s);
  CHECK(f.jobs() == 25);
  // The relay counts a batch after its delete commits, so the count may trail the table a moment.
  auto& published = f.reg.add_counter("zapd_outbox_rows_published_total", "");
  CHECK(wait_for([&] { return published.value() == 25; }, 5s) < 5s);
}

namespace {

// A queue outside the store that reports each step's outcome later (the Kafka fleet's shape):
// it records what it was given and acknowledges at once, or holds the acknowledgement until
// release() when `hold` is set.
struct later_queue final : zapd::queue::queue {
  status publish(std::vector<zapd::queue::job_spec> b, done_fn d) override {
    std::unique_lock lk(mu);
    for (auto& s : b) seen.push_back(s);
    if (hold) {
      held = std::move(d);
      return {};
    }
    lk.unlock();
    d({});
    return {};
  }
  void release() {
    done_fn d;
    {
      std::lock_guard lk(mu);
      d = std::move(held);
    }
    if (d) d({});
  }
  std::vector<zapd::queue::job_spec> specs() {
    std::lock_guard lk(mu);
    return seen;
  }
  bool holding() {
    std::lock_guard lk(mu);
    return static_cast<bool>(held);
  }
  bool holds_delayed() const override { return false; }
  bool handled_past(zapd::queue::lane, std::int64_t) const override { return past.load(); }
  result<std::vector<zapd::queue::job>> claim(zapd::queue::lane, std::size_t, std::chrono::milliseconds) override { return std::vector<zapd::queue::job>{}; }
  status ack(const zapd::queue::job&) override { return {}; }
  status retry(const zapd::queue::job&, std::chrono::system_clock::time_point) override { return {}; }
  status dead(const zapd::queue::job&, std::string_view) override { return {}; }

  std::mutex mu;
  std::vector<zapd::queue::job_spec> seen;
  bool hold = false;
  done_fn held;
  std::atomic<bool> past{true};  // handled_past's answer
};

void settle(store::database& db, std::int64_t id) {
  auto r = db.writes().execute<bool>([&](store::connection& c) -> result<bool> {
    if (auto st = outbox::settle(c, id); !st) return std::move(st).err();
    return true;
  });
  REQUIRE(r.ok());
}

// A relay with republish_after over a later_queue, `rows` outbox rows (runs "run-<i>", step 0)
// committed; set the queue up, then start `r`.
struct leased {
  leased(int rows, std::chrono::milliseconds lease) : db(open_db(fresh_db())) {
    outbox::relay::options o;
    o.batch = 10;
    o.poll = 20ms;
    o.republish_after = lease;
    add_outbox_rows(*db, rows);
    r = std::make_unique<outbox::relay>(*db, q, reg, outbox_ready, jobs_ready, o);
  }
  ~leased() {
    r.reset();
    db->stop();
  }
  std::int64_t published() { return scalar(*db, "SELECT count(*) FROM outbox_published"); }

  std::unique_ptr<store::database> db;
  metrics::registry reg;
  wakeup outbox_ready, jobs_ready;
  later_queue q;
  std::unique_ptr<outbox::relay> r;
};

}  // namespace

TEST_CASE("relay: with republish_after, an acknowledged row waits until settled and is published again after its lease") {
  leased f(4, 1500ms);
  f.r->start();
  REQUIRE(wait_for([&] { return f.published() == 4; }, 5s) < 5s);
  CHECK(scalar(*f.db, "SELECT count(*) FROM outbox") == 0);
  auto first = f.q.specs();
  REQUIRE(first.size() == 4);
  std::set<std::int64_t> ids;
  for (const auto& s : first) ids.insert(s.outbox_id);
  CHECK(ids.size() == 4);
  CHECK(*ids.begin() > 0);

  // The recorder settles two steps; the other two get no result: published again, same rows.
  settle(*f.db, first[0].outbox_id);
  settle(*f.db, first[1].outbox_id);
  CHECK(f.published() == 2);
  CHECK(wait_for([&] { return f.q.specs().size() >= 6; }, 10s) < 10s);
  auto all = f.q.specs();
  REQUIRE(all.size() == 6);
  CHECK(std::set<std::int64_t>{all[4].outbox_id, all[5].outbox_id} ==
        std::set<std::int64_t>{first[2].outbox_id, first[3].outbox_id});
  CHECK(all[4].run_id != first[0].run_id);
  CHECK(f.reg.add_counter("zapd_outbox_rows_republished_total", "").value() == 2);
  // Published again means a new lease, not a republish on every pass.
  std::this_thread::sleep_for(300ms);
  CHECK(f.q.specs().size() == 6);
  CHECK(f.published() == 2);
  settle(*f.db, first[2].outbox_id);
  settle(*f.db, first[3].outbox_id);
  CHECK(f.published() == 0);
  std::this_thread::sleep_for(2000ms);
  CHECK(f.q.specs().size() == 6);
}

TEST_CASE("relay: while the consumers handled nothing newer, expired rows wait, one per lease goes as a probe") {
  leased f(4, 1000ms);
  f.q.past = false;  // every worker down: nothing newer handled
  f.r->start();
  REQUIRE(wait_for([&] { return f.published() == 4; }, 5s) < 5s);
  const auto first_lease = scalar(*f.db, "SELECT min(republish_at) FROM outbox_published");
  std::this_thread::sleep_for(2600ms);  // two leases passed: without the guard, 8 rows again
  auto& again = f.reg.add_counter("zapd_outbox_rows_republished_total", "");
  INFO("published again: " << again.value());
  CHECK(again.value() >= 1);  // the probes
  CHECK(again.value() <= 3);  // one per lease
  CHECK(scalar(*f.db, "SELECT min(republish_at) FROM outbox_published") > first_lease);  // new leases
  CHECK(f.published() == 4);
  // A probe's result shows the workers past the others: they all go at their next expiry.
  f.q.past = true;
  const auto before = f.q.specs().size();
  CHECK(wait_for([&] { return f.q.specs().size() >= before + 3; }, 5s) < 5s);
}

TEST_CASE("outbox: settle_step drops only that step's published rows (a result without its row id)") {
  leased f(3, 60s);  // runs run-0, run-1, run-2, step 0
  f.r->start();
  REQUIRE(wait_for([&] { return f.published() == 3; }, 5s) < 5s);
  auto w = f.db->writes().execute<bool>([&](store::connection& c) -> result<bool> {
    if (auto st = outbox::settle_step(c, "run-1", 0); !st) return std::move(st).err();
    if (auto st = outbox::settle_step(c, "run-2", 1); !st) return std::move(st).err();  // another step: kept
    return true;
  });
  REQUIRE(w.ok());
  CHECK(f.published() == 2);
  CHECK(scalar(*f.db, "SELECT count(*) FROM outbox_published WHERE run_id = 'run-1'") == 0);
}

TEST_CASE("relay: a row settled before its acknowledgement came is not kept for republishing") {
  leased f(3, 1000ms);
  f.q.hold = true;
  f.r->start();
  REQUIRE(wait_for([&] { return f.q.holding(); }, 5s) < 5s);
  auto specs = f.q.specs();
  REQUIRE(specs.size() == 3);
  // A fast worker: the result of the first step is recorded before the delivery report.
  settle(*f.db, specs[0].outbox_id);
  {
    std::lock_guard lk(f.q.mu);
    f.q.hold = false;
  }
  f.q.release();
  CHECK(wait_for([&] { return scalar(*f.db, "SELECT count(*) FROM outbox") == 0; }, 5s) < 5s);
  CHECK(f.published() == 2);
  CHECK(scalar(*f.db, fmt::format("SELECT count(*) FROM outbox_published WHERE id = {}", specs[0].outbox_id)) == 0);
}

TEST_CASE("relay: stop is clean, rows it did not reach wait for the next start") {
  outbox::relay::options o;
  o.batch = 1;
  o.poll = 10s;
  auto path = fresh_db();
  {
    auto db = open_db(path);
    add_outbox_rows(*db, 2000);
    metrics::registry reg;
    queue::sqlite_queue q(*db, real_clock(), reg, {});
    wakeup outbox_ready, jobs_ready;
    outbox::relay r(*db, q, reg, outbox_ready, jobs_ready, o);
    r.start();
    r.notify();
    std::this_thread::sleep_for(20ms);
    r.stop();
    r.stop();  // idempotent
    r.notify();  // harmless after stop
    CHECK(scalar(*db, "SELECT count(*) FROM outbox") + scalar(*db, "SELECT count(*) FROM jobs") == 2000);
    db->stop();
  }
  auto db = open_db(path);
  metrics::registry reg;
  queue::sqlite_queue q(*db, real_clock(), reg, {});
  o.batch = 500;
  wakeup outbox_ready, jobs_ready;
  outbox::relay r(*db, q, reg, outbox_ready, jobs_ready, o);
  r.start();
  CHECK(wait_for([&] { return scalar(*db, "SELECT count(*) FROM outbox") == 0; }, 10s) < 10s);
  CHECK(scalar(*db, "SELECT count(*) FROM jobs") == 2000);
  r.stop();
  db->stop();
}

TEST_CASE("relay: SIGKILL mid-drain leaves every step in exactly one of outbox and jobs") {
  constexpr int k_rows = 30'000;
  constexpr int k_rounds = 6;
  auto path = fresh_db();
  {
    auto db = open_db(path);
    add_outbox_rows(*db, k_rows);
    db->stop();
  }
  auto spawn_child = [&] {
    std::string bin = ZAPD_RELAY_CHILD;
    std::string batch = "20";
    char* argv[] = {bin.data(), path.data(), batch.data(), nullptr};
    pid_t pid = 0;
    REQUIRE(posix_spawn(&pid, bin.c_str(), nullptr, nullptr, argv, environ) == 0);
    return pid;
  };
  // An independent read-only connection watches the child's commits.
  auto jobs_now = [&] {
    auto c = store::connection::open(path, store::open_mode::read_only);
    REQUIRE(c.ok());
    auto s = c->prepare("SELECT count(*) FROM jobs");
    REQUIRE(s.ok());
    REQUIRE(s->step().ok());
    return s->int64(0);
  };
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> delay_ms(0, 30);
  int cut_mid_drain = 0;
  std::int64_t jobs_before = 0;
  for (int round = 0; round < k_rounds; ++round) {
    pid_t pid = spawn_child();
    // Kill at a random moment once the child is visibly draining (commits land every ~0.1 ms-1 ms).
    wait_for([&] { return jobs_now() > jobs_before; }, 5s);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    kill(pid, SIGKILL);
    int ws = 0;
    waitpid(pid, &ws, 0);

    auto db = open_db(path);  // recovers the WAL the killed process left
    auto in_outbox = scalar(*db, "SELECT count(*) FROM outbox");
    auto in_jobs = scalar(*db, "SELECT count(*) FROM jobs");
    INFO("round " << round << ": outbox " << in_outbox << ", jobs " << in_jobs);
    CHECK(in_outbox + in_jobs == k_rows);
    CHECK(scalar(*db, "SELECT count(*) FROM outbox o JOIN jobs j USING (run_id, step_index)") == 0);
    CHECK(scalar(*db, "SELECT count(*) FROM (SELECT run_id FROM outbox UNION SELECT run_id FROM jobs)") == k_rows);
    if (in_jobs > 0 && in_outbox > 0) ++cut_mid_drain;
    jobs_before = in_jobs;
    db->stop();
  }
  WARN("rounds killed mid-drain: " << cut_mid_drain << " of " << k_rounds);
  CHECK(cut_mid_drain >= 1);  // otherwise the kill timing tested nothing

  // A last, uninterrupted run finishes the job.
  pid_t pid = spawn_child();
  int ws = 0;
  waitpid(pid, &ws, 0);
  REQUIRE(WIFEXITED(ws));
  CHECK(WEXITSTATUS(ws) == 0);
  auto db = open_db(path);
  CHECK(scalar(*db, "SELECT count(*) FROM outbox") == 0);
  CHECK(scalar(*db, "SELECT count(DISTINCT run_id) FROM jobs") == k_rows);
  db->stop();
}
