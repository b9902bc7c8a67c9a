#include <atomic>
#include <cstdlib>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "zapd/store/database.hpp"
#include "zapd/store/migrations.hpp"
#include "zapd/store/wal_buffer.hpp"

using namespace zapd;
using namespace zapd::store;

namespace {

std::string fresh_db() {
  char tmpl[] = "/tmp/zapd-store-XXXXXX";
  return std::string(mkdtemp(tmpl)) + "/zapd.db";
}

// A fresh database with one table `t(id INTEGER PRIMARY KEY)`, for the writer's cases.
std::unique_ptr<database> db_with_table_t() {
  database::options o;
  o.path = fresh_db();
  auto db = database::open(o);
  REQUIRE(db.ok());
  REQUIRE((*db)->writes().execute<bool>([](connection& c) -> result<bool> {
    if (auto st = c.exec("CREATE TABLE t(id INTEGER PRIMARY KEY)"); !st) return std::move(st).err();
    return true;
  }).ok());
  return std::move(db).value();
}

std::int64_t count_rows(connection& c, const std::string& sql) {
  auto q = c.prepare(sql);
  REQUIRE(q.ok());
  auto row = q->step();
  REQUIRE(row.ok());
  REQUIRE(*row);
  return q->int64(0);
}

const std::vector<migration> k_test_migrations = {
    {1, "one", "CREATE TABLE a(x INTEGER)"},
    {2, "two", "CREATE TABLE b(y INTEGER); INSERT INTO b VALUES (1)"},
};

}  // namespace

TEST_CASE("migrations: fresh database, then a re-run applies nothing") {
  auto path = fresh_db();
  auto c = open_write_connection(path, "full");
  REQUIRE(c.ok());

  auto first = migrate_up(*c, embedded_migrations());
  REQUIRE(first.ok());
  CHECK(*first == static_cast<int>(embedded_migrations().size()));
  auto second = migrate_up(*c, embedded_migrations());
  REQUIRE(second.ok());
  CHECK(*second == 0);

  auto st = migration_status(*c, embedded_migrations());
  REQUIRE(st.ok());
  for (const auto& m : *st) CHECK(m.applied);
  CHECK(count_rows(*c, "SELECT count(*) FROM kv") == 0);  // 0001 created it
}

// An index a migration builds is sorted in temporary files, not in the write connection's
// in-memory temporary store (a large database's runs would all be held in RAM); the
// connection's setting is back once the migrations are done, failed or not.
TEST_CASE("migrations: run with temporary data in files, and leave the write connection's temp_store in memory") {
  auto path = fresh_db();
  auto c = open_write_connection(path, "full");
  REQUIRE(c.ok());
  REQUIRE(count_rows(*c, "PRAGMA temp_store") == 2);  // MEMORY
  const std::vector<migration> probe = {
      {1, "probe", "CREATE TABLE seen(v INTEGER); INSERT INTO seen SELECT temp_store FROM pragma_temp_store"}};
  REQUIRE(migrate_up(*c, probe).ok());
  CHECK(count_rows(*c, "SELECT v FROM seen") == 1);  // FILE while migrating
  CHECK(count_rows(*c, "PRAGMA temp_store") == 2);
  const std::vector<migration> failing = {probe[0], {2, "bad", "CREATE TABLE nope(x); SELECT * FROM missing_table"}};
  REQUIRE_FALSE(migrate_up(*c, failing).ok());
  CHECK(count_rows(*c, "PRAGMA temp_store") == 2);
}

TEST_CASE("migrations: a new migration is applied on top, a failing one changes nothing") {
  auto path = fresh_db();
  auto c = open_write_connection(path, "full");
  REQUIRE(c.ok());
  std::vector<migration> only_first(k_test_migrations.begin(), k_test_migrations.begin() + 1);
  REQUIRE(*migrate_up(*c, only_first) == 1);

  auto st = migration_status(*c, k_test_migrations);
  REQUIRE(st.ok());
  CHECK((*st)[0].applied);
  CHECK_FALSE((*st)[1].applied);

  REQUIRE(*migrate_up(*c, k_test_migrations) == 1);
  CHECK(count_rows(*c, "SELECT count(*) FROM b") == 1);

  SECTION("a broken migration rolls back with the others of its run") {
    auto broken = k_test_migrations;
    broken.push_back({3, "three", "CREATE TABLE c(z INTEGER)"});
    broken.push_back({4, "four", "THIS IS NOT SQL"});
    auto r = migrate_up(*c, broken);
    REQUIRE_FALSE(r.ok());
    CHECK(r.err().message.find("0004_four") != std::string::npos);
    CHECK(count_rows(*c, "SELECT count(*) FROM sqlite_master WHERE name='c'") == 0);
    CHECK(count_rows(*c, "SELECT max(version) FROM schema_migrations") == 2);
  }
  SECTION("a database from a newer zapd is refused") {
    auto r = migrate_up(*c, only_first);
    REQUIRE_FALSE(r.ok());
    CHECK(r.err().message.find("newer") != std::string::npos);
  }
}

TEST_CASE("writer: many concurrent writers, each callback after its commit") {
  auto path = fresh_db();
  database::options o;
  o.path = path;
  o.writer.batch_max = 64;
  auto db = database::open(o);
  REQUIRE(db.ok());
  REQUIRE((*db)->writes().execute<bool>([](connection& c) -> result<bool> {
    auto st = c.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, who INTEGER)");
    if (!st) return std::move(st).err();
    return true;
  }).ok());

  // An independent read connection: a row it can see is committed, not merely written.
  auto probe = connection::open(path, open_mode::read_only);
  REQUIRE(probe.ok());
  std::mutex probe_mu;

  constexpr int k_threads = 8;
  constexpr int k_per_thread = 400;
  std::atomic<int> done{0};
  std::atomic<int> not_visible{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < k_threads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < k_per_thread; ++i) {
        std::int64_t id = t * 100000 + i;
        auto st = (*db)->writes().submit_for<std::int64_t>(
            [id, t](connection& c) -> result<std::int64_t> {
              auto q = c.prepare("INSERT INTO t(id, who) VALUES(?, ?)");
              if (!q) return std::move(q).err();
              auto r = q->bind_all(id, t).run();
              if (!r) return std::move(r).err();
              return id;
            },
            [&, id](result<std::int64_t> r) {
              if (!r.ok()) {
                ++failed;
              } else {
                std::lock_guard lk(probe_mu);
                auto q = probe->prepare("SELECT count(*) FROM t WHERE id = ?");
                q->bind(1, *r);
                (void)q->step();
                if (q->int64(0) != 1 || *r != id) ++not_visible;
              }
              ++done;
            });
        if (!st.ok()) ++failed;  // the queue bound is far above this load
      }
    });
  }
  for (auto& th : threads) th.join();
  (*db)->stop();  // flushes what is queued
  CHECK(done == k_threads * k_per_thread);
  CHECK(failed == 0);
  CHECK(not_visible == 0);
  auto rows = (*db)->reads().with([](connection& c) { return count_rows(c, "SELECT count(*) FROM t"); });
  CHECK(rows == k_threads * k_per_thread);
  // Group commit: far fewer transactions than requests.
  CHECK((*db)->writes().commits() < static_cast<std::uint64_t>(k_threads * k_per_thread));
}

TEST_CASE("writer: a failing request is rolled back alone, the others in its batch commit") {
  auto db = db_with_table_t();
  auto& w = db->writes();

  // Hold the writer busy so the next requests land in one batch.
  std::promise<void> release;
  auto gate = release.get_future().share();
  REQUIRE(w.submit([gate](connection&) -> status { gate.wait(); return {}; }, nullptr).ok());

  std::vector<std::future<status>> outcomes;
  std::vector<std::shared_ptr<std::promise<status>>> promises;
  for (int i = 0; i < 10; ++i) {
    auto p = std::make_shared<std::promise<status>>();
    outcomes.push_back(p->get_future());
    promises.push_back(p);
    bool fail = (i % 3 == 1);
    REQUIRE(w.submit(
                 [i, fail](connection& c) -> status {
                   auto q = c.prepare("INSERT INTO t(id) VALUES(?)");
                   if (!q) return std::move(q).err();
                   auto st = q->bind(1, i).run();
                   if (!st) return st;
                   // The row is written, then the request fails: it must be undone.
                   if (fail) return make_error(errc::invalid_argument, "request " + std::to_string(i) + " refused");
                   return {};
                 },
                 [p](status st) { p->set_value(std::move(st)); })
                .ok());
  }
  SECTION("an exception in a request is contained the same way") {
    auto p = std::make_shared<std::promise<status>>();
    auto f = p->get_future();
    REQUIRE(w.submit([](connection&) -> status { throw std::runtime_error("boom"); }, [p](status st) { p->set_value(st); }).ok());
    release.set_value();
    auto st = f.get();
    REQUIRE_FALSE(st.ok());
    CHECK(st.err().message.find("boom") != std::string::npos);
  }
  SECTION("plain failures") { release.set_value(); }

  std::set<int> committed;
  for (int i = 0; i < 10; ++i) {
    auto st = outcomes[i].get();
    bool fail = (i % 3 == 1);
    CHECK(st.ok() == !fail);
    if (!fail) committed.insert(i);
  }
  auto ids = db->reads().with([](connection& c) {
    std::set<int> out;
    auto q = c.prepare("SELECT id FROM t ORDER BY id");
    while (*q->step()) out.insert(static_cast<int>(q->int64(0)));
    return out;
  });
  CHECK(ids == committed);
}

TEST_CASE("writer: a request's commit hooks run after its commit, or with false when it is undone") {
  auto db = db_with_table_t();
  auto& w = db->writes();
  // Outside a write request there are none: a reader's connection.
  db->reads().with([](connection& c) { CHECK_FALSE(c.takes_commit_hooks()); });

  // The writer holds the gate's batch until the three requests below are queued: one batch.
  std::promise<void> release, started;
  auto gate = release.get_future().share();
  REQUIRE(w.submit(
               [gate, &started](connection&) -> status {
                 started.set_value();
                 gate.wait();
                 return {};
               },
               nullptr)
              .ok());
  started.get_future().wait();
  std::mutex mu;
  std::vector<std::string> events;  // in order: "hook <i> <committed>", "done <i>"
  auto note = [&](std::string e) {
    std::lock_guard lk(mu);
    events.push_back(std::move(e));
  };
  std::vector<std::future<void>> done;
  for (int i = 0; i < 3; ++i) {
    auto p = std::make_shared<std::promise<void>>();
    done.push_back(p->get_future());
    REQUIRE(w.submit(
                 [i, &note](connection& c) -> status {
                   if (!c.takes_commit_hooks()) return make_error(errc::internal, "no commit hooks in a request");
                   if (auto st = c.run("INSERT INTO t(id) VALUES(?)", i); !st) return st;
                   c.after_commit([i, &note](bool committed) { note(fmt::format("hook {} {}", i, committed)); });
                   if (i == 1) return make_error(errc::invalid_argument, "refused");  // undone, hook false
                   return {};
                 },
                 [i, p, &note](status st) {
                   note(fmt::format("done {} {}", i, st.ok()));
                   p->set_value();
                 })
                .ok());
  }
  release.set_value();
  for (auto& f : done) f.get();
  std::lock_guard lk(mu);
  // The undone request's hook runs at once; the kept ones after the COMMIT; all before any done.
  CHECK(events == std::vector<std::string>{"hook 1 false", "hook 0 true", "hook 2 true", "done 0 true", "done 1 false",
                                           "done 2 true"});
}

// At synchronous=full the write connection gathers a transaction's WAL frames (two writes
// each: header, page) and writes them in one call before the commit's sync (wal_buffer.hpp).
TEST_CASE("writer: at synchronous=full a commit's WAL frames reach the file in one write, and readers and a reopen see every commit") {
  const bool full = GENERATE(true, false);
  INFO("synchronous=" << (full ? "full" : "normal"));
  database::options o;
  o.path = fresh_db();
  o.synchronous = full ? "full" : "normal";
  auto opened = database::open(o);
  REQUIRE(opened.ok());
  auto& db = **opened;
  auto write = [&](const std::string& sql) {
    REQUIRE(db.writes().execute<bool>([&](connection& c) -> result<bool> {
      if (auto st = c.exec(sql); !st) return std::move(st).err();
      return true;
    }).ok());
  };
  auto read_count = [&] {
    return db.reads().with([](connection& c) { return count_rows(c, "SELECT count(*) FROM blobs"); });
  };
  write("CREATE TABLE blobs(id INTEGER PRIMARY KEY, v BLOB NOT NULL)");
  const auto before = detail::buffered_wal_counts();
  for (int i = 1; i <= 50; ++i) {
    // Ten rows of 1 KB: a few pages, each a WAL frame.
    write("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10) INSERT INTO blobs(v) SELECT randomblob(1000) FROM n");
    CHECK(read_count() == i * 10);  // a reader sees the commit as soon as it returned
  }
  const auto mid = detail::buffered_wal_counts();
  if (full) {
    CHECK(mid.writes - before.writes >= 50 * 6);    // at least 3 frames per commit
    CHECK(mid.flushes - before.flushes <= 50 + 2);  // one pwrite per commit
  } else {
    CHECK(mid.writes == before.writes);  // NORMAL: SQLite's own VFS, nothing gathered
  }
  // A transaction larger than what one write takes: it goes out as the buffer fills.
  write("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400) INSERT INTO blobs(v) SELECT randomblob(5000) FROM n");
  CHECK(read_count() == 900);
  if (full) CHECK(detail::buffered_wal_counts().flushes - mid.flushes >= 10);
  db.stop();
  opened->reset();

  auto c = connection::open(o.path, open_mode::read_only);
  REQUIRE(c.ok());
  CHECK(count_rows(*c, "SELECT count(*) FROM blobs") == 900);
  CHECK(count_rows(*c, "SELECT count(*) FROM blobs WHERE length(v) NOT IN (1000, 5000)") == 0);
  auto q = c->prepare("PRAGMA integrity_check");
  REQUIRE(q.ok());
  REQUIRE(*q->step());
  CHECK(q->text(0) == "ok");
}

// A transaction that spilled frames into the WAL and was then undone never syncs them: they
// must reach the file while the write connection still holds the WAL write lock, as SQLite's
// own writes do, or a later flush could overwrite frames another connection (another
// process: a CLI command) committed in between.
TEST_CASE("writer: frames of an undone transaction never overwrite what another connection committed after it") {
  database::options o;
  o.path = fresh_db();
  auto opened = database::open(o);
  REQUIRE(opened.ok());
  auto& db = **opened;
  const std::string rows = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {}) "
                           "INSERT INTO blobs(v, who) SELECT randomblob(2000), '{}' FROM n";
  REQUIRE(db.writes().execute<bool>([](connection& c) -> result<bool> {
    if (auto st = c.exec("CREATE TABLE blobs(id INTEGER PRIMARY KEY, v BLOB NOT NULL, who TEXT NOT NULL)"); !st)
      return std::move(st).err();
    return true;
  }).ok());
  // An empty WAL: undoing the request below then reads no page back from the WAL (which
  // would write out what is gathered while the lock is still held).
  {
    auto other = connection::open(o.path, open_mode::read_write_create);
    REQUIRE(other.ok());
    REQUIRE(count_rows(*other, "PRAGMA wal_checkpoint(TRUNCATE)") == 0);  // not busy
  }
  // 1. A request whose pages do not fit the cache (they spill into the WAL), then the whole
  // transaction is rolled back, as SQLite does itself on some errors (disk full, I/O): no
  // commit, so no sync writes out what is gathered.
  auto undone = db.writes().execute<bool>([&](connection& c) -> result<bool> {
    (void)c.exec("PRAGMA cache_size=4");
    auto st = c.exec(fmt::format(fmt::runtime(rows), 300, "undone"));
    (void)c.exec("PRAGMA cache_size=-16384");
    if (!st) return std::move(st).err();
    (void)c.exec("ROLLBACK");
    return make_error(errc::unavailable, "the transaction was rolled back");
  });
  REQUIRE_FALSE(undone.ok());
  // 2. Another connection, with SQLite's own VFS and file handles, commits its rows.
  {
    auto other = connection::open(o.path, open_mode::read_write_create);
    REQUIRE(other.ok());
    REQUIRE(other->exec(fmt::format(fmt::runtime(rows), 300, "other")).ok());
  }
  // 3. The write connection writes again.
  REQUIRE(db.writes().execute<bool>([&](connection& c) -> result<bool> {
    if (auto st = c.exec(fmt::format(fmt::runtime(rows), 10, "writer")); !st) return std::move(st).err();
    return true;
  }).ok());
  db.stop();
  opened->reset();
  // 4. Every committed row, none of the undone ones, and a sound file.
  auto c = connection::open(o.path, open_mode::read_only);
  REQUIRE(c.ok());
  CHECK(count_rows(*c, "SELECT count(*) FROM blobs WHERE who = 'other' AND length(v) = 2000") == 300);
  CHECK(count_rows(*c, "SELECT count(*) FROM blobs WHERE who = 'writer' AND length(v) = 2000") == 10);
  CHECK(count_rows(*c, "SELECT count(*) FROM blobs WHERE who NOT IN ('other', 'writer')") == 0);
  auto q = c->prepare("PRAGMA integrity_check");
  REQUIRE(q.ok());
  REQUIRE(*q->step());
  CHECK(q->text(0) == "ok");
}

TEST_CASE("writer: a full queue answers overloaded without queuing, stop flushes the rest") {
  auto path = fresh_db();
  database::options o;
  o.path = path;
  o.writer.max_pending = 3;
  auto db = database::open(o);
  REQUIRE(db.ok());
  auto& w = (*db)->writes();

  std::promise<void> release;
  auto gate = release.get_future().share();
  std::promise<void> started;
  REQUIRE(w.submit([gate, &started](connection&) -> status { started.set_value(); gate.wait(); return {}; }, nullptr).ok());
  started.get_future().wait();  // the blocker left the queue and runs

  std::atomic<int> completed{0};
  for (int i = 0; i < 3; ++i) REQUIRE(w.submit([](connection&) -> status { return {}; }, [&](status) { ++completed; }).ok());
  bool called = false;
  auto over = w.submit([](connection&) -> status { return {}; }, [&](status) { called = true; });
  REQUIRE_FALSE(over.ok());
  CHECK(over.err().code == errc::overloaded);

  release.set_value();
  w.stop();
  CHECK(completed == 3);
  CHECK_FALSE(called);
  auto after = w.submit([](connection&) -> status { return {}; }, nullptr);
  REQUIRE_FALSE(after.ok());
  CHECK(after.err().code == errc::unavailable);
}
