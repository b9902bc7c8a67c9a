#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "column_lines.hpp"
#include "fake_clock.hpp"
#include "zapd/metrics/registry.hpp"
#include "zapd/queue/sqlite_queue.hpp"
#include "zapd/store/database.hpp"
#include "zapd/store/migrations.hpp"

using namespace zapd;
using namespace std::chrono_literals;
using queue::lane;

namespace {

std::string fresh_db() {
  char tmpl[] = "/tmp/zapd-queue-XXXXXX";
  return std::string(mkdtemp(tmpl)) + "/zapd.db";
}

// A real SQLite file with every migration, a real writer, the queue over a fake clock.
struct fixture {
  explicit fixture(queue::sqlite_queue::options o = {}, std::string path = fresh_db()) {
    store::database::options dbo;
    dbo.path = std::move(path);
    auto opened = store::database::open(dbo);
    REQUIRE(opened.ok());
    db = std::move(opened).value();
    q = std::make_unique<queue::sqlite_queue>(*db, clk, reg, o);
  }
  ~fixture() {
    q.reset();
    db->stop();
  }

  void publish(std::vector<queue::job_spec> batch) {
    std::promise<status> p;
    auto f = p.get_future();
    REQUIRE(q->publish(std::move(batch), [&p](status s) { p.set_value(std::move(s)); }).ok());
    REQUIRE(f.get().ok());
  }

  std::vector<queue::job> claim(lane l, std::size_t max = 100, std::chrono::milliseconds lease = 30s) {
    auto r = q->claim(l, max, lease);
    REQUIRE(r.ok());
    return std::move(r).value();
  }

  std::int64_t scalar(const std::string& sql) {
    return db->reads().with([&](store::connection& c) {
      auto s = c.prepare(sql);
      REQUIRE(s.ok());
      auto row = s->step();
      REQUIRE(row.ok());
      REQUIRE(*row);
      return s->int64(0);
    });
  }

  test::fake_clock clk;
  metrics::registry reg;
  std::unique_ptr<store::database> db;
  std::unique_ptr<queue::sqlite_queue> q;
};

queue::job_spec spec(std::string run, int step, lane l = lane::free) {
  queue::job_spec s;
  s.run_id = std::move(run);
  s.step_index = step;
  s.lane = l;
  return s;
}

}  // namespace

TEST_CASE("sqlite_queue: publish, claim with a lease, ack removes the job") {
  fixture f;
  f.publish({spec("run-1", 0), spec("run-2", 0)});
  CHECK(f.scalar("SELECT count(*) FROM jobs") == 2);

  auto got = f.claim(lane::free, 10, 5s);
  REQUIRE(got.size() == 2);
  CHECK(got[0].run_id == "run-1");  // oldest first
  CHECK(got[0].attempts == 1);
  CHECK(got[0].lease_until_ms == f.clk.now_ms() + 5000);
  CHECK(f.claim(lane::free).empty());  // leased: not claimable again while the lease lives
  CHECK(f.claim(lane::paid).empty());  // other lane

  REQUIRE(f.q->ack(got[0]).ok());
  CHECK(f.scalar("SELECT count(*) FROM jobs") == 1);
  auto again = f.q->ack(got[0]);
  REQUIRE_FALSE(again.ok());
  CHECK(again.err().code == errc::lease_lost);
}

TEST_CASE("sqlite_queue: publishing a (run, step) it already holds changes nothing") {
  fixture f;
  f.publish({spec("run-1", 0), spec("run-1", 1)});
  auto got = f.claim(lane::free);
  REQUIRE(got.size() == 2);
  f.publish({spec("run-1", 0)});  // a relay repeat after a crash
  CHECK(f.scalar("SELECT count(*) FROM jobs") == 2);
  CHECK(f.scalar("SELECT attempts FROM jobs WHERE run_id='run-1' AND step_index=0") == 1);
  CHECK(f.claim(lane::free).empty());
}

TEST_CASE("sqlite_queue: a retry is not claimable before its time, and is after") {
  fixture f;
  f.publish({spec("run-1", 0)});
  auto first = f.claim(lane::free);
  REQUIRE(first.size() == 1);
  REQUIRE(f.q->retry(first[0], f.clk.now() + 10s).ok());

  f.clk.advance(9'999ms);
  CHECK(f.claim(lane::free).empty());
  f.clk.advance(1ms);
  auto second = f.claim(lane::free);
  REQUIRE(second.size() == 1);
  CHECK(second[0].run_id == first[0].run_id);
  CHECK(second[0].id != first[0].id);  // every claim has a handle of its own
  CHECK(second[0].attempts == 2);      // attempts increment with each delivery

  SECTION("a job published with a future run_at waits the same way") {
    auto later = spec("run-2", 0);
    later.run_at_ms = f.clk.now_ms() + 1000;
    f.publish({later});
    CHECK(f.claim(lane::free).empty());
    f.clk.advance(1s);
    CHECK(f.claim(lane::free).size() == 1);
  }
}

TEST_CASE("sqlite_queue: an expired lease is delivered again and the old claim has lost it") {
  fixture f;
  f.publish({spec("run-1", 0)});
  auto first = f.claim(lane::free, 1, 30s);
  REQUIRE(first.size() == 1);

  f.clk.advance(30s);  // lease_until == now: still live
  CHECK(f.claim(lane::free).empty());
  f.clk.advance(1ms);
  auto second = f.claim(lane::free, 1, 30s);
  REQUIRE(second.size() == 1);
  CHECK(second[0].run_id == first[0].run_id);
  CHECK(second[0].id != first[0].id);
  CHECK(second[0].attempts == 2);

  // The first worker woke up late: its ack, retry and dead must not touch the new claim.
  CHECK(f.q->ack(first[0]).err().code == errc::lease_lost);
  CHECK(f.q->retry(first[0], f.clk.now()).err().code == errc::lease_lost);
  CHECK(f.q->dead(first[0], "late").err().code == errc::lease_lost);
  CHECK(f.scalar("SELECT count(*) FROM jobs WHERE state='leased'") == 1);
  REQUIRE(f.q->ack(second[0]).ok());
  CHECK(f.scalar("SELECT count(*) FROM jobs") == 0);
}

TEST_CASE("sqlite_queue: attempts count every delivery") {
  fixture f;
  f.publish({spec("run-1", 0)});
  for (int i = 1; i <= 5; ++i) {
    auto got = f.claim(lane::free);
    REQUIRE(got.size() == 1);
    CHECK(got[0].attempts == i);
    REQUIRE(f.q->retry(got[0], f.clk.now()).ok());
  }
  CHECK(f.scalar("SELECT attempts FROM jobs") == 5);
}

TEST_CASE("sqlite_queue: release gives an unstarted claim back without counting it, and is fenced like ack") {
  fixture f;
  f.publish({spec("run-1", 0)});
  auto first = f.claim(lane::free, 1, 30s);
  REQUIRE(first.size() == 1);
  CHECK(first[0].attempts == 1);

  // Claimed ahead and never run: ready at once, the attempt given back.
  REQUIRE(f.q->release(first[0]).ok());
  CHECK(f.scalar("SELECT attempts FROM jobs") == 0);
  CHECK(f.scalar("SELECT count(*) FROM jobs WHERE state = 'ready' AND lease_until_ms IS NULL") == 1);
  CHECK(f.q->release(first[0]).err().code == errc::lease_lost);  // not leased any more

  auto second = f.claim(lane::free, 1, 30s);
  REQUIRE(second.size() == 1);
  CHECK(second[0].run_id == first[0].run_id);
  CHECK(second[0].id != first[0].id);  // the same attempt count, told apart by the handle
  CHECK(second[0].attempts == 1);      // its first attempt still

  // A release after the lease passed to a newer claim must not touch that claim.
  f.clk.advance(31s);
  auto third = f.claim(lane::free, 1, 30s);
  REQUIRE(third.size() == 1);
  CHECK(third[0].attempts == 2);
  CHECK(f.q->release(second[0]).err().code == errc::lease_lost);
  CHECK(f.scalar("SELECT attempts FROM jobs") == 2);
  CHECK(f.scalar("SELECT count(*) FROM jobs WHERE state = 'leased'") == 1);
  REQUIRE(f.q->ack(third[0]).ok());
  CHECK(f.scalar("SELECT count(*) FROM jobs") == 0);
}

// While leased, a job's run_at_ms holds its lease's end (schema 0014); given back, it must not
// queue behind the work that became due while it was out.
TEST_CASE("sqlite_queue: a job released, or left leased by a previous process, keeps its place ahead of work due since") {
  fixture f;
  f.publish({spec("run-z", 0)});  // its id sorts last: only its time can put it first
  auto out = f.claim(lane::free, 1, 30s);
  REQUIRE(out.size() == 1);
  f.clk.advance(10s);
  f.publish({spec("run-b", 0)});  // due at +10 s
  f.clk.advance(1ms);

  SECTION("released") { REQUIRE(f.q->release(out[0]).ok()); }
  SECTION("left leased, ended at the next start") {
    auto n = f.q->release_all_leases();
    REQUIRE(n.ok());
    CHECK(*n == 1);
  }
  auto next = f.claim(lane::free, 1, 30s);
  REQUIRE(next.size() == 1);
  CHECK(next[0].run_id == "run-z");
  CHECK(f.scalar("SELECT run_at_ms FROM jobs WHERE run_id = 'run-b'") == f.clk.now_ms() - 1);
}

TEST_CASE("sqlite_queue: a dead job is never claimed again, even after its lease would have ended") {
  fixture f;
  f.publish({spec("run-1", 0), spec("run-2", 0)});
  auto got = f.claim(lane::free, 1);
  REQUIRE(got.size() == 1);
  REQUIRE(f.q->dead(got[0], "HTTP 404 after 5 attempts").ok());
  CHECK(f.scalar("SELECT count(*) FROM jobs WHERE state='dead' AND dead_reason='HTTP 404 after 5 attempts'") == 1);

  f.clk.advance(24h);
  auto rest = f.claim(lane::free);
  REQUIRE(rest.size() == 1);
  CHECK(rest[0].run_id == "run-2");
  REQUIRE(f.q->ack(rest[0]).ok());
  f.clk.advance(24h);
  CHECK(f.claim(lane::free).empty());
  auto d = f.q->depth_of(lane::free);
  REQUIRE(d.ok());
  CHECK(d->dead == 1);
  CHECK(d->ready == 0);
  CHECK(d->leased == 0);
}

TEST_CASE("sqlite_queue: lane isolation under a flood of 10k free jobs, concurrency limits hold") {
  queue::sqlite_queue::options o;
  o.paid_concurrency = 4;
  o.free_concurrency = 8;
  fixture f(o);
  std::vector<queue::job_spec> flood;
  for (int i = 0; i < 10'000; ++i) flood.push_back(spec("free-" + std::to_string(i), 0, lane::free));
  f.publish(std::move(flood));
  f.publish({spec("paid-1", 0, lane::paid), spec("paid-2", 0, lane::paid), spec("paid-3", 0, lane::paid)});

  // Free workers hammer their lane from several threads; the lane never exceeds its limit.
  std::atomic<int> free_leased{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < 4; ++t)
    workers.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        auto r = f.q->claim(lane::free, 100, 30s);
        if (r) free_leased += static_cast<int>(r->size());
      }
    });

  auto t0 = std::chrono::steady_clock::now();
  auto paid = f.claim(lane::paid, 100);
  auto waited = std::chrono::steady_clock::now() - t0;
  for (auto& w : workers) w.join();

  REQUIRE(paid.size() == 3);
  for (const auto& j : paid) CHECK(j.lane == lane::paid);
  // Promptly: one indexed claim, not a scan behind 10k free rows (generous bound for a shared CI box).
  CHECK(waited < 500ms);
  CHECK(free_leased == 8);
  CHECK(f.scalar("SELECT count(*) FROM jobs WHERE lane='free' AND state='leased'") == 8);

  // Acking one free job frees exactly one slot.
  auto more = f.claim(lane::free);
  CHECK(more.empty());
  auto one = f.db->reads().with([](store::connection& c) {
    auto s = c.prepare("SELECT id, attempts, run_id, step_index FROM jobs WHERE lane='free' AND state='leased' LIMIT 1");
    REQUIRE(s.ok());
    REQUIRE(*s->step());
    queue::job j;
    j.id = s->int64(0);
    j.attempts = static_cast<int>(s->int64(1));
    j.run_id = s->text(2);
    j.step_index = static_cast<int>(s->int64(3));
    j.lane = lane::free;
    return j;
  });
  REQUIRE(f.q->ack(one).ok());
  CHECK(f.claim(lane::free).size() == 1);

  // The paid limit holds too: 5 more paid jobs, 3 leased already, limit 4.
  f.publish({spec("paid-4", 0, lane::paid), spec("paid-5", 0, lane::paid), spec("paid-6", 0, lane::paid),
             spec("paid-7", 0, lane::paid), spec("paid-8", 0, lane::paid)});
  CHECK(f.claim(lane::paid).size() == 1);
  CHECK(f.claim(lane::paid).empty());

  SECTION("expired leases free their slots") {
    f.clk.advance(31s);
    auto redelivered = f.claim(lane::free, 100, 30s);
    CHECK(redelivered.size() == 8);
    for (const auto& j : redelivered) CHECK(j.attempts == 2);  // the expired ones first
  }
}

TEST_CASE("sqlite_queue: metrics count claims, acks, retries, dead letters and depth") {
  fixture f;
  f.publish({spec("a", 0, lane::paid), spec("b", 0, lane::paid), spec("c", 0, lane::paid), spec("d", 0)});
  auto got = f.claim(lane::paid);
  REQUIRE(got.size() == 3);
  REQUIRE(f.q->ack(got[0]).ok());
  REQUIRE(f.q->retry(got[1], f.clk.now() + 1h).ok());
  REQUIRE(f.q->dead(got[2], "bad").ok());

  CHECK(f.reg.add_counter("zapd_queue_claimed_total", "", {{"lane", "paid"}}).value() == 3);
  CHECK(f.reg.add_counter("zapd_queue_acked_total", "", {{"lane", "paid"}}).value() == 1);
  CHECK(f.reg.add_counter("zapd_queue_retried_total", "", {{"lane", "paid"}}).value() == 1);
  CHECK(f.reg.add_counter("zapd_queue_dead_total", "", {{"lane", "paid"}}).value() == 1);
  CHECK(f.reg.add_counter("zapd_queue_claimed_total", "", {{"lane", "free"}}).value() == 0);
  auto text = f.reg.render_prometheus();
  CHECK(text.find("zapd_queue_jobs{lane=\"paid\",state=\"ready\"} 1\n") != std::string::npos);
  CHECK(text.find("zapd_queue_jobs{lane=\"paid\",state=\"dead\"} 1\n") != std::string::npos);
  CHECK(text.find("zapd_queue_jobs{lane=\"free\",state=\"ready\"} 1\n") != std::string::npos);
  CHECK(text.find("zapd_queue_acked_total{lane=\"paid\"} 1\n") != std::string::npos);

  // The depth is read at most once a second: a scrape within it shows the last reading.
  f.publish({spec("e", 0), spec("f", 0)});
  f.clk.advance(999ms);
  CHECK(f.reg.render_prometheus().find("zapd_queue_jobs{lane=\"free\",state=\"ready\"} 1\n") != std::string::npos);
  f.clk.advance(1ms);
  CHECK(f.reg.render_prometheus().find("zapd_queue_jobs{lane=\"free\",state=\"ready\"} 3\n") != std::string::npos);
}

TEST_CASE("sqlite_queue: settling inside a write transaction, fenced like the blocking calls") {
  fixture f;
  f.publish({spec("run-in", 0), spec("run-in", 1), spec("run-in", 2)});
  auto jobs = f.claim(lane::free, 3, 30s);
  REQUIRE(jobs.size() == 3);
  auto in_tx = [&](auto fn) {
    return f.db->writes().execute<bool>([&](store::connection& c) -> result<bool> {
      auto st = fn(c);
      if (!st) return std::move(st).err();
      return true;
    });
  };
  REQUIRE(in_tx([&](store::connection& c) { return f.q->ack_in(c, jobs[0]); }).ok());
  REQUIRE(in_tx([&](store::connection& c) { return f.q->retry_in(c, jobs[1], f.clk.now() + 5s); }).ok());
  REQUIRE(in_tx([&](store::connection& c) { return f.q->dead_in(c, jobs[2], "gave up"); }).ok());
  CHECK(f.scalar("SELECT count(*) FROM jobs") == 2);
  CHECK(f.scalar("SELECT count(*) FROM jobs WHERE state = 'ready'") == 1);
  CHECK(f.scalar("SELECT count(*) FROM jobs WHERE state = 'dead'") == 1);
  // A claim that no longer holds the lease: lease_lost, and the request's other writes undone.
  auto late = in_tx([&](store::connection& c) -> status {
    auto ins = c.exec("INSERT INTO kv(key, value) VALUES ('marker', 'x')");
    if (!ins) return ins;
    return f.q->ack_in(c, jobs[1]);  // jobs[1] was given back by retry_in: its lease is gone
  });
  REQUIRE_FALSE(late.ok());
  CHECK(late.err().code == errc::lease_lost);
  CHECK(f.scalar("SELECT count(*) FROM kv WHERE key = 'marker'") == 0);
  // Counters move only when the caller reports a committed settlement.
  auto counter = [&](const char* name) { return f.reg.add_counter(name, "", {{"lane", "free"}}).value(); };
  CHECK(counter("zapd_queue_acked_total") == 0);
  CHECK(counter("zapd_queue_dead_total") == 0);
  f.q->settled(jobs[0], queue::store_publisher::settlement::acked);
  f.q->settled(jobs[2], queue::store_publisher::settlement::dead);
  CHECK(counter("zapd_queue_acked_total") == 1);
  CHECK(counter("zapd_queue_dead_total") == 1);
  CHECK(counter("zapd_queue_retried_total") == 0);
  f.clk.advance(5s);
  CHECK(f.claim(lane::free).size() == 1);  // the retried job is due
}

TEST_CASE("sqlite_queue: a job id is never reused, so a stale claim cannot settle a newer job") {
  fixture f;
  f.publish({spec("run-a", 1)});
  auto a = f.claim(lane::free, 1, 30s);
  REQUIRE(a.size() == 1);
  REQUIRE(f.q->ack(a[0]).ok());  // the table is empty again
  f.publish({spec("run-b", 1)});
  auto b = f.claim(lane::free, 1, 30s);
  REQUIRE(b.size() == 1);
  CHECK(b[0].id != a[0].id);
  CHECK(b[0].attempts == a[0].attempts);  // the same attempts count: only the id tells them apart
  // Run a's late duplicate result must not touch run b's job.
  CHECK(f.q->ack(a[0]).err().code == errc::lease_lost);
  queue::job forged = b[0];
  forged.run_id = "run-a";
  CHECK(f.q->ack(forged).err().code == errc::lease_lost);
  CHECK(f.scalar("SELECT count(*) FROM jobs WHERE state = 'leased'") == 1);

  SECTION("the same (run, step) published again after its ack: the same row key, a new handle") {
    f.publish({spec("run-a", 1)});
    auto again = f.claim(lane::free, 1, 30s);
    REQUIRE(again.size() == 1);
    CHECK(again[0].run_id == "run-a");
    CHECK(again[0].attempts == a[0].attempts);
    CHECK(again[0].id != a[0].id);
    CHECK(f.q->ack(a[0]).err().code == errc::lease_lost);
    CHECK(f.q->retry(a[0], f.clk.now()).err().code == errc::lease_lost);
    CHECK(f.scalar("SELECT count(*) FROM jobs WHERE run_id = 'run-a' AND state = 'leased'") == 1);
    CHECK(f.q->ack(again[0]).ok());
  }
}

namespace {

// A worker taking jobs from producers' transactions: `room` places per lane, what it took.
struct fake_handoff final : queue::handoff {
  std::optional<std::chrono::milliseconds> reserve(lane) override {
    std::lock_guard lk(mu);
    if (room == 0) return std::nullopt;
    --room;
    ++reserved;
    return 20s;
  }
  void take(queue::job j) override {
    std::lock_guard lk(mu);
    --reserved;
    taken.push_back(std::move(j));
  }
  void unreserve(lane) override {
    std::lock_guard lk(mu);
    --reserved;
    ++room;
    ++given_back;
  }
  std::mutex mu;
  int room = 0;
  int reserved = 0;
  int given_back = 0;
  std::vector<queue::job> taken;
};

}  // namespace

TEST_CASE("sqlite_queue: a job due now goes leased to a registered worker with room, after the commit, with no claim") {
  fixture f;
  fake_handoff h;
  h.room = 2;
  f.q->hand_to(&h);
  f.publish({spec("run-h", 0), spec("run-h", 1), spec("run-h", 2)});  // room for two of three
  {
    std::lock_guard lk(h.mu);
    REQUIRE(h.taken.size() == 2);
    CHECK(h.reserved == 0);
    for (const auto& j : h.taken) {
      CHECK(j.attempts == 1);
      CHECK(j.lane == lane::free);
      CHECK(j.lease_until_ms == f.clk.now_ms() + 20'000);
      CHECK(f.scalar(fmt::format("SELECT count(*) FROM jobs WHERE id = {} AND state = 'leased' AND attempts = 1 AND "
                                 "lease_until_ms = {}", j.id, j.lease_until_ms)) == 1);
    }
    CHECK(h.taken[0].run_id == "run-h");
    CHECK(h.taken[0].step_index == 0);
    CHECK(h.taken[1].step_index == 1);
  }
  CHECK(f.scalar("SELECT count(*) FROM jobs WHERE state = 'ready'") == 1);
  CHECK(f.reg.add_counter("zapd_queue_claimed_total", "", {{"lane", "free"}}).value() == 2);
  CHECK(f.reg.add_counter("zapd_queue_handed_total", "", {{"lane", "free"}}).value() == 2);
  // The handed jobs settle like claimed ones (fenced by id and attempts).
  queue::job first;
  {
    std::lock_guard lk(h.mu);
    first = h.taken[0];
  }
  REQUIRE(f.q->ack(first).ok());
  CHECK(f.scalar("SELECT count(*) FROM jobs") == 2);

  // A ready job waits in the lane: new ones queue behind it, even with room.
  {
    std::lock_guard lk(h.mu);
    h.room = 5;
  }
  f.clk.advance(1ms);  // due later than run-h's step (within a millisecond, run ids decide: UUIDv7s sort by creation)
  f.publish({spec("run-behind", 0)});
  CHECK(f.scalar("SELECT count(*) FROM jobs WHERE state = 'ready'") == 2);
  auto claimed = f.claim(lane::free);
  REQUIRE(claimed.size() == 2);
  CHECK(claimed[0].run_id == "run-h");  // first in, first out

  // An undone transaction gives its place back and leaves no job.
  auto undone = f.db->writes().execute<bool>([&](store::connection& c) -> result<bool> {
    if (auto st = f.q->publish_in(c, {spec("run-undone", 0)}); !st) return std::move(st).err();
    return make_error(errc::invalid_argument, "the producer's request failed after publishing");
  });
  REQUIRE_FALSE(undone.ok());
  CHECK(f.scalar("SELECT count(*) FROM jobs WHERE run_id = 'run-undone'") == 0);
  {
    std::lock_guard lk(h.mu);
    CHECK(h.given_back == 1);
    CHECK(h.reserved == 0);
    CHECK(h.taken.size() == 2);
  }
  // A job due later, a repeated publish, no worker registered: inserted ready, nothing handed.
  f.publish({spec("run-h", 1)});  // held already
  queue::job_spec later = spec("run-later", 0);
  later.run_at_ms = f.clk.now_ms() + 60'000;
  f.publish({later});
  f.q->hand_to(nullptr);
  f.publish({spec("run-unregistered", 0)});
  std::lock_guard lk(h.mu);
  CHECK(h.taken.size() == 2);
  CHECK(h.reserved == 0);
  CHECK(h.given_back == 2);  // the repeated publish's place
  CHECK(f.scalar("SELECT count(*) FROM jobs WHERE run_id IN ('run-later', 'run-unregistered') AND state = 'ready'") == 2);
}

TEST_CASE("sqlite_queue: the ready bell rings after a commit that left a job due now waiting for a claim, and only then") {
  wakeup bell;
  std::atomic<int> rung{0};
  std::atomic<std::int64_t> jobs_when_rung{-1};
  queue::sqlite_queue::options o;
  o.ready = &bell;
  fixture f(o);
  bell.listen([&] {
    ++rung;
    // Rung after the COMMIT: a reader sees the job.
    jobs_when_rung = f.db->reads().with([](store::connection& c) {
      auto s = c.prepare("SELECT count(*) FROM jobs WHERE state = 'ready'");
      auto row = s->step();
      return row.ok() && *row ? s->int64(0) : std::int64_t{-1};
    });
  });
  f.publish({spec("run-1", 0), spec("run-2", 0)});
  CHECK(rung == 1);  // once for the transaction
  CHECK(jobs_when_rung == 2);

  // Nothing new for a claim: a repeated publish, a job due later, an undone transaction.
  f.publish({spec("run-1", 0)});
  queue::job_spec later = spec("run-later", 0);
  later.run_at_ms = f.clk.now_ms() + 60'000;
  f.publish({later});
  auto undone = f.db->writes().execute<bool>([&](store::connection& c) -> result<bool> {
    if (auto st = f.q->publish_in(c, {spec("run-undone", 0)}); !st) return std::move(st).err();
    return make_error(errc::invalid_argument, "the producer's request failed after publishing");
  });
  REQUIRE_FALSE(undone.ok());
  CHECK(rung == 1);

  // A job handed to a free slot needs no claim: no ring. Without room it waits: a ring.
  fake_handoff h;
  h.room = 1;
  f.q->hand_to(&h);
  f.claim(lane::free);  // the lane's ready jobs gone, so the next one may be handed over
  f.publish({spec("run-handed", 0)});
  {
    std::lock_guard lk(h.mu);
    CHECK(h.taken.size() == 1);
  }
  CHECK(rung == 1);
  f.publish({spec("run-no-room", 0)});
  CHECK(rung == 2);
  f.q->hand_to(nullptr);
  CHECK(f.reg.add_counter("zapd_queue_claims_total", "", {{"lane", "free"}}).value() == 1);
}

// 0014 rebuilt jobs WITHOUT ROWID keyed by (run_id, step_index), with jobs_claim its one index:
// a leased job's run_at_ms is now its lease's end, so the claim finds expired leases and counts
// live ones through jobs_claim.
TEST_CASE("sqlite_queue: a database made before 0014 keeps its jobs, and its leases end when they did") {
  const std::string path = fresh_db();
  const auto& all = store::embedded_migrations();
  REQUIRE(all.size() >= 14);
  REQUIRE(all[13].version == 14);
  const std::int64_t t = test::fake_clock().now_ms();  // the fixture's clock starts there too
  {
    auto c = store::connection::open(path, store::open_mode::read_write_create);
    REQUIRE(c.ok());
    REQUIRE(c->exec("PRAGMA journal_mode=WAL").ok());
    const std::vector<store::migration> before(all.begin(), all.begin() + 13);
    REQUIRE(store::migrate_up(*c, before).ok());
    REQUIRE(c->exec(fmt::format(
                        "INSERT INTO jobs(run_id, step_index, lane, run_at_ms, created_at) VALUES('run-ready', 0, 'free', {0} - 5, 1);"
                        "INSERT INTO jobs(run_id, step_index, lane, run_at_ms, created_at, state, attempts, lease_until_ms) "
                        "  VALUES('run-live', 0, 'free', {0} - 100, 1, 'leased', 1, {0} + 60000);"
                        "INSERT INTO jobs(run_id, step_index, lane, run_at_ms, created_at, state, attempts, lease_until_ms) "
                        "  VALUES('run-expired', 0, 'free', {0} - 200, 1, 'leased', 2, {0} - 1);"
                        "INSERT INTO jobs(run_id, step_index, lane, run_at_ms, created_at, state, attempts, dead_reason) "
                        "  VALUES('run-dead', 0, 'free', {0} - 300, 1, 'dead', 5, 'HTTP 404');",
                        t))
                .ok());
  }
  fixture f({}, path);  // applies 0014
  CHECK(f.scalar("SELECT count(*) FROM jobs") == 4);
  CHECK(f.scalar("SELECT count(*) FROM jobs WHERE run_id = 'run-live' AND id > 0 AND attempts = 1 AND state = 'leased' "
                 "AND run_at_ms = lease_until_ms") == 1);
  CHECK(f.scalar(fmt::format("SELECT count(*) FROM jobs WHERE run_id = 'run-ready' AND run_at_ms = {} - 5", t)) == 1);
  CHECK(f.scalar("SELECT count(*) FROM jobs WHERE run_id = 'run-dead' AND dead_reason = 'HTTP 404'") == 1);
  CHECK(f.scalar("SELECT count(*) FROM sqlite_master WHERE name = 'jobs_leases'") == 0);
  CHECK(f.scalar("SELECT group_concat(name) = 'jobs_claim' FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobs'") == 1);
  CHECK(f.scalar("SELECT count(*) FROM sqlite_sequence WHERE name = 'jobs'") == 0);
  CHECK(f.db->reads().with([](store::connection& c) {
    auto st = c.prepare("PRAGMA integrity_check");
    REQUIRE(st.ok());
    REQUIRE(*st->step());
    return st->text(0);
  }) == "ok");

  // The expired lease first, then the ready job; the live lease is not due, the dead never.
  auto got = f.claim(lane::free, 10, 120s);
  REQUIRE(got.size() == 2);
  CHECK(got[0].run_id == "run-expired");
  CHECK(got[0].attempts == 3);
  CHECK(got[1].run_id == "run-ready");
  f.clk.advance(60s);
  CHECK(f.claim(lane::free, 10, 30s).empty());  // its lease ends at t + 60 s: live until then
  f.clk.advance(1ms);
  auto late = f.claim(lane::free, 10, 30s);
  REQUIRE(late.size() == 1);
  CHECK(late[0].run_id == "run-live");

  // The queue's statements on jobs go by its key or jobs_claim: no scan, no sort.
  for (const char* sql :
       {"SELECT 1 FROM jobs WHERE lane = ? AND state = 'ready' AND run_at_ms <= ? LIMIT 1",
        "SELECT count(*) FROM jobs WHERE lane = ? AND state = 'leased' AND run_at_ms >= ?",
        "SELECT id, run_id, step_index, attempts FROM jobs WHERE lane = ? AND state = 'leased' AND run_at_ms < ? "
        "ORDER BY run_at_ms LIMIT ?",
        "SELECT id, run_id, step_index, attempts FROM jobs WHERE lane = ? AND state = 'ready' AND run_at_ms <= ? "
        "ORDER BY run_at_ms, run_id, step_index LIMIT ?",
        "UPDATE jobs SET state = 'ready', lease_until_ms = NULL, run_at_ms = min(created_at, ?) "
        "WHERE lane IN ('paid', 'free') AND state = 'leased'",
        "UPDATE jobs SET state = 'leased', id = ?1, attempts = attempts + 1, lease_until_ms = ?2, run_at_ms = ?2 "
        "WHERE run_id = ?3 AND step_index = ?4",
        "DELETE FROM jobs WHERE id = ?1 AND attempts = ?2 AND run_id = ?3 AND step_index = ?4 AND state = 'leased'"}) {
    INFO(sql);
    const std::string plan = test::column_lines(*f.db, std::string("EXPLAIN QUERY PLAN ") + sql, 3);
    INFO(plan);
    CHECK(plan.find("USING") != std::string::npos);
    CHECK(plan.find("SCAN") == std::string::npos);
    CHECK(plan.find("TEMP B-TREE") == std::string::npos);
  }
}
