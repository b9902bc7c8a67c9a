// runs module against a real SQLite file: retention pruning and history pages (issue #6).
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "zapd/core/clock.hpp"
#include "zapd/metrics/registry.hpp"
#include "zapd/queue/sqlite_queue.hpp"
#include "zapd/runs/attempt.hpp"
#include "zapd/runs/runs.hpp"
#include "zapd/store/database.hpp"
#include "zapd/store/migrations.hpp"

#include "column_lines.hpp"

using namespace zapd;

namespace {

std::string fresh_path() {
  char tmpl[] = "/tmp/zapd-runs-XXXXXX";
  return std::string(mkdtemp(tmpl)) + "/zapd.db";
}

std::unique_ptr<store::database> fresh_db() {
  store::database::options o;
  o.path = fresh_path();
  auto db = store::database::open(o);
  REQUIRE(db.ok());
  return std::move(db).value();
}

template <class T, class Fn>
T write(store::database& db, Fn fn) {
  auto r = db.writes().execute<T>(fn);
  REQUIRE(r.ok());
  return std::move(r).value();
}

std::int64_t count(store::database& db, const std::string& sql) {
  return db.reads().with([&](store::connection& c) {
    auto st = c.prepare(sql);
    REQUIRE(st.ok());
    REQUIRE(*st->step());
    return st->int64(0);
  });
}

using test::column_lines;

runs::new_run run_at(const std::string& id, std::int64_t ms) {
  runs::new_run n;
  n.id = id;
  n.zap_id = "zap-1";
  n.user_id = "user-1";
  n.zap_version = 1;
  n.actions = 2;
  n.trigger_json = R"({"body":{}})";
  n.now_ms = ms;
  return n;
}

}  // namespace

TEST_CASE("runs: prune deletes old final runs with their steps, outbox rows and jobs, in batches, and keeps live ones") {
  auto db = fresh_db();
  write<bool>(*db, [](store::connection& c) -> result<bool> {
    // Live old runs first: accepted and not finished (a delay may wait as long as the retention).
    for (const char* live : {"live-queued", "live-waiting"})
      if (auto s = runs::insert(c, nullptr, run_at(live, 500)); !s) return std::move(s).err();
    if (auto s = c.run("UPDATE runs SET status = 'waiting', resume_at = 99999 WHERE id = 'live-waiting'"); !s)
      return std::move(s).err();
    for (int i = 0; i < 5; ++i)
      if (auto s = runs::insert(c, nullptr, run_at("old-" + std::to_string(i), 1'000 + i)); !s) return std::move(s).err();
    if (auto s = c.run("UPDATE runs SET status = CASE WHEN rowid % 2 = 0 THEN 'succeeded' ELSE 'filtered' END "
                       "WHERE id LIKE 'old-%'");
        !s)
      return std::move(s).err();
    if (auto s = runs::insert(c, nullptr, run_at("new-0", 90'000)); !s) return std::move(s).err();
    auto st = c.exec(
        "INSERT INTO run_steps (run_id, step_index, action_id, status) VALUES ('old-0', 1, 'http', 'succeeded'), "
        "('new-0', 1, 'http', 'succeeded'); "
        "INSERT INTO jobs (run_id, step_index, lane, run_at_ms, created_at) VALUES ('old-1', 2, 'free', 0, 0)");
    if (!st) return std::move(st).err();
    return true;
  });
  CHECK(count(*db, "SELECT count(*) FROM outbox") == 8);
  metrics::registry m;
  queue::sqlite_queue jobs(*db, real_clock(), m, {});
  auto prune = [&jobs](store::connection& c) { return runs::prune(c, &jobs, 50'000, 3); };
  CHECK(write<std::int64_t>(*db, prune) == 3);
  CHECK(write<std::int64_t>(*db, prune) == 2);
  CHECK(write<std::int64_t>(*db, prune) == 0);
  CHECK(count(*db, "SELECT count(*) FROM runs") == 3);
  CHECK(count(*db, "SELECT count(*) FROM runs WHERE id IN ('new-0', 'live-queued', 'live-waiting')") == 3);
  CHECK(count(*db, "SELECT count(*) FROM run_steps") == 1);
  CHECK(count(*db, "SELECT count(*) FROM outbox") == 3);
  CHECK(count(*db, "SELECT count(*) FROM jobs") == 0);
  db->stop();
}

TEST_CASE("runs: a zap version without actions makes an already succeeded run") {
  auto db = fresh_db();
  auto n = run_at("empty", 5'000);
  n.actions = 0;
  write<bool>(*db, [&](store::connection& c) -> result<bool> {
    if (auto s = runs::insert(c, nullptr, n); !s) return std::move(s).err();
    return true;
  });
  auto r = db->reads().with([](store::connection& c) { return runs::get(c, "user-1", "empty"); });
  REQUIRE(r.ok());
  CHECK(r->status == "succeeded");
  CHECK(count(*db, "SELECT count(*) FROM outbox") == 0);
  // Another user sees nothing.
  auto other = db->reads().with([](store::connection& c) { return runs::get(c, "user-2", "empty"); });
  REQUIRE_FALSE(other.ok());
  CHECK(other.err().code == errc::not_found);
  db->stop();
}

// 0012 rebuilt runs_by_user and runs_by_zap ascending: new runs append at the end of their
// user's range, and the history reads the index backwards. With (created_at DESC, id) the
// history's ORDER BY created_at DESC, id DESC sorted every page in a temporary B-tree.
TEST_CASE("runs: a database made before 0012 keeps its history in order, read from the index with no sort") {
  const std::string path = fresh_path();
  const auto& all = store::embedded_migrations();
  REQUIRE(all.size() >= 12);
  REQUIRE(all[11].version == 12);
  {
    auto c = store::connection::open(path, store::open_mode::read_write_create);
    REQUIRE(c.ok());
    REQUIRE(c->exec("PRAGMA journal_mode=WAL").ok());
    const std::vector<store::migration> before(all.begin(), all.begin() + 11);
    REQUIRE(store::migrate_up(*c, before).ok());
    // Two runs share a millisecond (ordered by id), one is another zap's.
    for (auto [id, ms] : {std::pair{"r1", 1'000}, {"r2", 2'000}, {"r3", 2'000}, {"r4", 3'000}, {"r5", 4'000}}) {
      auto n = run_at(id, ms);
      if (std::string(id) == "r4") n.zap_id = "zap-2";
      REQUIRE(runs::insert(*c, nullptr, n).ok());
    }
  }
  store::database::options o;
  o.path = path;
  auto db = store::database::open(o);  // applies 0012
  REQUIRE(db.ok());

  auto pages = [&](std::optional<std::string> zap) {
    std::vector<std::string> ids;
    runs::filter f;
    f.zap_id = zap;
    f.limit = 2;
    for (int guard = 0; guard < 10; ++guard) {
      auto p = (*db)->reads().with([&](store::connection& c) { return runs::list(c, "user-1", f); });
      REQUIRE(p.ok());
      for (const auto& r : p->runs) ids.push_back(r.id);
      if (!p->next_cursor) break;
      f.cursor = p->next_cursor;
    }
    return ids;
  };
  CHECK(pages(std::nullopt) == std::vector<std::string>{"r5", "r4", "r3", "r2", "r1"});
  CHECK(pages(std::string("zap-1")) == std::vector<std::string>{"r5", "r3", "r2", "r1"});
  auto latest = (*db)->reads().with([](store::connection& c) { return runs::latest(c, "user-1", "zap-1"); });
  REQUIRE(latest.ok());
  REQUIRE(latest->has_value());
  CHECK((*latest)->id == "r5");

  // The history's queries (the shapes runs.cpp's list and latest build; list reads whole rows,
  // so no index covers it) walk an index in order: no sort.
  for (const char* sql :
       {"SELECT * FROM runs WHERE user_id = ?1 ORDER BY created_at DESC, id DESC LIMIT ?6",
        "SELECT * FROM runs WHERE user_id = ?1 AND (created_at, id) < (?4, ?5) ORDER BY created_at DESC, id DESC LIMIT ?6",
        "SELECT * FROM runs WHERE user_id = ?1 AND status = ?3 AND (created_at, id) < (?4, ?5) "
        "ORDER BY created_at DESC, id DESC LIMIT ?6",
        "SELECT * FROM runs WHERE zap_id = ?1 AND user_id = ?2 ORDER BY created_at DESC, id DESC LIMIT ?6",
        "SELECT * FROM runs WHERE zap_id = ?1 AND user_id = ?2 AND status = ?3 AND (created_at, id) < (?4, ?5) "
        "ORDER BY created_at DESC, id DESC LIMIT ?6",
        "SELECT id, status, created_at FROM runs WHERE zap_id = ? AND user_id = ? ORDER BY created_at DESC, id DESC LIMIT 1"}) {
    INFO(sql);
    const std::string plan = column_lines(**db, std::string("EXPLAIN QUERY PLAN ") + sql, 3);
    INFO(plan);
    CHECK(plan.find("USING") != std::string::npos);
    CHECK(plan.find("TEMP B-TREE") == std::string::npos);
  }
  (*db)->stop();
}

// 0013 rewrote the CHECKs of runs.status, run_steps.status and jobs.state from IN lists, which
// SQLite codes as a temporary B-tree built for every row written, to chains of `=`.
TEST_CASE("runs: a database made before 0013 keeps its rows, and its status checks refuse the same values with no temporary B-tree") {
  const std::string path = fresh_path();
  const auto& all = store::embedded_migrations();
  REQUIRE(all.size() >= 13);
  REQUIRE(all[12].version == 13);
  std::int64_t cookie_before = 0;
  {
    auto c = store::connection::open(path, store::open_mode::read_write_create);
    REQUIRE(c.ok());
    REQUIRE(c->exec("PRAGMA journal_mode=WAL").ok());
    const std::vector<store::migration> before(all.begin(), all.begin() + 12);
    REQUIRE(store::migrate_up(*c, before).ok());
    REQUIRE(runs::insert(*c, nullptr, run_at("r1", 1'000)).ok());
    REQUIRE(c->exec("INSERT INTO jobs(run_id, step_index, lane, run_at_ms, created_at) VALUES('r1', 1, 'free', 1, 1);"
                    "INSERT INTO run_steps(run_id, step_index, action_id, status) VALUES('r1', 1, 'http', 'queued')")
                .ok());
    auto q = c->prepare("PRAGMA schema_version");
    REQUIRE(q.ok());
    REQUIRE(*q->step());
    cookie_before = q->int64(0);
  }
  store::database::options o;
  o.path = path;
  auto db = store::database::open(o);  // applies 0013
  REQUIRE(db.ok());
  auto& d = **db;
  CHECK(count(d, "PRAGMA schema_version") > cookie_before);  // other connections reload the schema
  CHECK(count(d, "SELECT count(*) FROM runs WHERE id = 'r1' AND status = 'queued'") == 1);
  CHECK(count(d, "SELECT count(*) FROM jobs WHERE run_id = 'r1' AND state = 'ready'") == 1);
  CHECK(count(d, "SELECT count(*) FROM run_steps WHERE run_id = 'r1' AND status = 'queued'") == 1);
  CHECK(d.reads().with([](store::connection& c) {
    auto st = c.prepare("PRAGMA integrity_check");
    REQUIRE(st.ok());
    REQUIRE(*st->step());
    return st->text(0);
  }) == "ok");
  CHECK(count(d, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('runs', 'run_steps', 'jobs') "
                 "AND sql LIKE '%IN (''queued''%' OR sql LIKE '%IN (''ready''%'") == 0);

  // The statements that write these columns: none opens a temporary B-tree.
  for (const char* sql :
       {"INSERT INTO runs (id, zap_id, zap_version, user_id, lane, status, \"trigger\", created_at) "
        "VALUES ('x', 'z', 1, 'u', 'free', 'queued', '{}', 1)",
        "UPDATE runs SET status = ? WHERE id = ?",
        "INSERT INTO jobs(run_id, step_index, lane, run_at_ms, created_at) VALUES(?, ?, 'free', 1, 1)",
        "INSERT INTO jobs(run_id, step_index, id, lane, run_at_ms, created_at, state, attempts, lease_until_ms) "
        "VALUES(?, ?, ?, 'free', ?, ?, 'leased', 1, ?) ON CONFLICT(run_id, step_index) DO NOTHING",
        "UPDATE jobs SET state = 'leased', id = ?1, attempts = attempts + 1, lease_until_ms = ?2, run_at_ms = ?2 "
        "WHERE run_id = ?3 AND step_index = ?4",
        "INSERT INTO run_steps(run_id, step_index, action_id, status) VALUES(?, ?, 'http', 'running')",
        "UPDATE run_steps SET status = ? WHERE run_id = ? AND step_index = ?"}) {
    INFO(sql);
    const std::string program = column_lines(d, std::string("EXPLAIN ") + sql, 1);  // the opcodes
    CHECK(program.find("Insert") != std::string::npos);  // it is the program that writes the row
    CHECK(program.find("OpenEphemeral") == std::string::npos);
  }

  // Every value of each set is still accepted, and a value outside it refused.
  auto writes = [&](const std::string& sql) {
    return d.writes().execute<bool>([&](store::connection& c) -> result<bool> {
      auto st = c.exec(sql);
      if (!st) return std::move(st).err();
      return true;
    });
  };
  for (const char* s : {"running", "waiting", "succeeded", "failed", "filtered", "cancelled", "queued"})
    CHECK(writes(fmt::format("UPDATE runs SET status = '{}' WHERE id = 'r1'", s)).ok());
  for (const char* s : {"running", "succeeded", "failed", "filtered", "cancelled", "queued"})
    CHECK(writes(fmt::format("UPDATE run_steps SET status = '{}' WHERE run_id = 'r1'", s)).ok());
  for (const char* s : {"leased", "dead", "ready"})
    CHECK(writes(fmt::format("UPDATE jobs SET state = '{}' WHERE run_id = 'r1'", s)).ok());
  for (const char* sql : {"UPDATE runs SET status = 'done' WHERE id = 'r1'",
                          "UPDATE run_steps SET status = 'waiting' WHERE run_id = 'r1'",
                          "UPDATE jobs SET state = 'queued' WHERE run_id = 'r1'"}) {
    INFO(sql);
    auto r = writes(sql);
    REQUIRE_FALSE(r.ok());
    CHECK(r.err().message.find("CHECK constraint failed") != std::string::npos);
  }
  d.stop();
}

// If a table's schema text is not what the earlier migrations wrote, 0013's replace() finds
// nothing to rewrite: the migration fails (and is tried again at the next start) rather than
// being recorded as applied with the list still in place.
TEST_CASE("runs: 0013 fails, and changes nothing, when a status CHECK is not in the text it rewrites") {
  const std::string path = fresh_path();
  const auto& all = store::embedded_migrations();
  REQUIRE(all.size() >= 13);
  {
    auto c = store::connection::open(path, store::open_mode::read_write_create);
    REQUIRE(c.ok());
    const std::vector<store::migration> before(all.begin(), all.begin() + 12);
    REQUIRE(store::migrate_up(*c, before).ok());
    REQUIRE(c->exec("PRAGMA writable_schema = ON; "
                    "UPDATE sqlite_master SET sql = replace(sql, '''queued'', ''running''', '''queued'',''running''') "
                    "WHERE name = 'runs'; PRAGMA writable_schema = RESET")
                .ok());
    auto r = store::migrate_up(*c, all);
    REQUIRE_FALSE(r.ok());
    CHECK(r.err().message.find("0013_checks_without_lists") != std::string::npos);
    CHECK(r.err().message.find("CHECK constraint failed: a status CHECK of runs, run_steps or jobs") != std::string::npos);
    auto q = c->prepare("SELECT max(version) FROM schema_migrations");
    REQUIRE(q.ok());
    REQUIRE(*q->step());
    CHECK(q->int64(0) == 12);
    auto jobs = c->prepare("SELECT sql FROM sqlite_master WHERE name = 'jobs'");
    REQUIRE(jobs.ok());
    REQUIRE(*jobs->step());
    CHECK(jobs->text(0).find("state IN (") != std::string::npos);  // rolled back with the rest
  }
}

// The worker renders step N against the outputs of steps 1..N-1 only: the first step reads
// no outputs at all (one statement, not two), and a duplicate delivery of a step that has
// succeeded since renders as the first delivery did.
TEST_CASE("runs: a step's context holds the earlier steps' succeeded outputs, and nothing for the first step") {
  auto db = fresh_db();
  auto n = run_at("ctx", 5'000);
  n.actions = 4;
  n.trigger_json = R"({"body":{"comment":{"email":"a@b.c"}}})";
  write<bool>(*db, [&](store::connection& c) -> result<bool> {
    if (auto s = runs::insert(c, nullptr, n); !s) return std::move(s).err();
    for (auto [step, status] : {std::pair{1, "succeeded"}, {2, "succeeded"}, {3, "failed"}, {4, "succeeded"}})
      if (auto s = c.run("INSERT INTO run_steps (run_id, step_index, action_id, status, attempts, output) VALUES (?, ?, 'http', ?, 1, ?)",
                         std::string("ctx"), step, std::string(status), fmt::format(R"({{"n":{}}})", step));
          !s)
        return std::move(s).err();
    return true;
  });
  auto at = [&](int step) {
    auto r = db->reads().with([&](store::connection& c) { return runs::load_for_step(c, "ctx", step); });
    REQUIRE(r.ok());
    REQUIRE(r->has_value());
    return std::move(**r);
  };
  auto first = at(1);
  CHECK(first.trigger["body"]["comment"]["email"] == "a@b.c");
  CHECK(first.user_id == "user-1");
  CHECK(first.zap_id == "zap-1");
  CHECK(first.zap_version == 1);
  CHECK(first.outputs == nlohmann::json::object());  // step 1 succeeded, but it is not before step 1
  CHECK(at(2).outputs == nlohmann::json::parse(R"({"1":{"n":1}})"));
  // The failed step 3 is not an output; the succeeded step 4 is not before step 4.
  auto fourth = at(4);
  CHECK(fourth.outputs == nlohmann::json::parse(R"({"1":{"n":1},"2":{"n":2}})"));
  CHECK(fourth.trigger["body"]["comment"]["email"] == "a@b.c");
  auto gone = db->reads().with([](store::connection& c) { return runs::load_for_step(c, "no-such-run", 1); });
  REQUIRE(gone.ok());
  CHECK_FALSE(gone->has_value());
  db->stop();
}

// record_attempt moves the run first and reads its status only when the run did not move:
// the four states a run can be in when its step's result arrives.
TEST_CASE("runs: a step's result on a live, cancelled, ended or pruned run") {
  auto db = fresh_db();
  auto attempt = [](const std::string& run, runs::attempt_verdict v) {
    runs::attempt_record a;
    a.job.run_id = run;
    a.job.step_index = 1;
    a.job.attempts = 1;
    a.action_id = "http";
    a.steps = 2;
    a.verdict = v;
    a.output = R"({"status":200})";
    a.error = v == runs::attempt_verdict::succeeded ? "" : "boom";
    a.retry_at_ms = 9'000;
    a.started_ms = 6'000;
    a.now_ms = 6'100;
    return a;
  };
  for (const char* id : {"live", "cancelled", "ended", "pruned"})
    write<bool>(*db, [&](store::connection& c) -> result<bool> {
      if (auto s = runs::insert(c, nullptr, run_at(id, 5'000)); !s) return std::move(s).err();
      return true;
    });
  write<bool>(*db, [](store::connection& c) -> result<bool> {
    if (auto s = c.run("UPDATE runs SET status = 'cancelled' WHERE id = 'cancelled'"); !s) return std::move(s).err();
    if (auto s = c.run("UPDATE runs SET status = 'failed' WHERE id = 'ended'"); !s) return std::move(s).err();
    if (auto s = c.run("DELETE FROM runs WHERE id = 'pruned'"); !s) return std::move(s).err();
    return true;
  });
  auto record = [&](const runs::attempt_record& a) {
    return write<runs::attempt_outcome>(*db, [&](store::connection& c) { return runs::record_attempt(c, a, nullptr); });
  };
  auto text = [&](const std::string& sql) {
    return db->reads().with([&](store::connection& c) {
      auto st = c.prepare(sql);
      REQUIRE(st.ok());
      auto row = st->step();
      REQUIRE(row.ok());
      return *row ? st->text(0) : std::string("(none)");
    });
  };
  using settlement = queue::store_publisher::settlement;

  auto live = record(attempt("live", runs::attempt_verdict::succeeded));
  CHECK(live.settlement == settlement::acked);
  CHECK(live.next_step_enqueued);
  CHECK(text("SELECT status FROM runs WHERE id = 'live'") == "running");
  CHECK(text("SELECT status FROM run_steps WHERE run_id = 'live' AND step_index = 1") == "succeeded");
  CHECK(count(*db, "SELECT count(*) FROM outbox WHERE run_id = 'live' AND step_index = 2") == 1);

  // A retry answered after the cancel: the step is cancelled, nothing is retried or enqueued.
  auto cancelled = record(attempt("cancelled", runs::attempt_verdict::retry));
  CHECK(cancelled.settlement == settlement::acked);
  CHECK_FALSE(cancelled.next_step_enqueued);
  CHECK(text("SELECT status FROM runs WHERE id = 'cancelled'") == "cancelled");
  CHECK(text("SELECT status FROM run_steps WHERE run_id = 'cancelled'") == "cancelled");
  CHECK(count(*db, "SELECT count(*) FROM outbox WHERE run_id = 'cancelled' AND step_index = 2") == 0);

  // An ended run keeps its status; the step is recorded as it went (as before the change).
  auto ended = record(attempt("ended", runs::attempt_verdict::failed));
  CHECK(ended.settlement == settlement::dead);
  CHECK(text("SELECT status FROM runs WHERE id = 'ended'") == "failed");
  CHECK(count(*db, "SELECT count(*) FROM runs WHERE id = 'ended' AND error IS NULL") == 1);
  CHECK(text("SELECT status FROM run_steps WHERE run_id = 'ended'") == "failed");

  // A pruned run: its job is acked, and no step row is left without a run.
  auto pruned = record(attempt("pruned", runs::attempt_verdict::succeeded));
  CHECK(pruned.settlement == settlement::acked);
  CHECK_FALSE(pruned.next_step_enqueued);
  CHECK(count(*db, "SELECT count(*) FROM run_steps WHERE run_id = 'pruned'") == 0);
  CHECK(count(*db, "SELECT count(*) FROM outbox WHERE run_id = 'pruned' AND step_index = 2") == 0);
  db->stop();
}
