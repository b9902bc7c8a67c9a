// The writer's SQLite work per webhook and per step for layouts of the `jobs` table (issue 18,
// schema 0014; docs/BENCHMARKS.md, tenth pass). No zapd code: the statements zapd's writer
// runs, with SQLite alone, at synchronous=OFF so that the figures are CPU, not the disk.
//
//   build/bench/jobs_layout [WEBHOOKS] [ROUNDS]      (defaults 100000 and 5)
//
// Per webhook, in transactions of 28 (ingest's group commit): a run row (~600 bytes of
// trigger) and its job, leased to a free worker slot. Per step: the run's status read, the
// step's run_steps row, the job's delete, the run's update. Layouts, run alternately, ROUNDS
// times each; the minimum and median of each are printed. The jobs table stays nearly empty
// (each batch's jobs are acked before the next): a backlog and the claim path are not measured.
//   0  before 0014: rowid table with AUTOINCREMENT, UNIQUE (run_id, step_index), jobs_claim,
//      and the partial index on leases
//   1  as 0, without the lease index
//   2  0014: WITHOUT ROWID keyed by (run_id, step_index), jobs_claim its one index
//   3  no job row at all (a floor: what the run and its step cost alone)
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

sqlite3* db = nullptr;

void die(const char* what) {
  std::fprintf(stderr, "jobs_layout: %s: %s\n", what, sqlite3_errmsg(db));
  std::exit(1);
}
void exec(const char* sql) {
  if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) die(sql);
}
sqlite3_stmt* prepare(const char* sql) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, nullptr) != SQLITE_OK) die(sql);
  return st;
}
void run(sqlite3_stmt* st) {
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
  }
  if (rc != SQLITE_DONE) die("step");
  sqlite3_reset(st);
}
void text(sqlite3_stmt* st, int i, const std::string& s) { sqlite3_bind_text(st, i, s.data(), static_cast<int>(s.size()), SQLITE_STATIC); }

constexpr const char* k_runs =
    "CREATE TABLE runs (id TEXT NOT NULL UNIQUE, zap_id TEXT NOT NULL, zap_version INTEGER NOT NULL, user_id TEXT NOT NULL,"
    " lane TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'queued', \"trigger\" TEXT NOT NULL, dedup_key TEXT,"
    " created_at INTEGER NOT NULL, started_at INTEGER, finished_at INTEGER, error TEXT, replay_of TEXT, resume_at INTEGER);"
    "CREATE INDEX runs_by_user ON runs(user_id, created_at, id); CREATE INDEX runs_by_zap ON runs(zap_id, created_at, id);"
    "CREATE TABLE run_steps (run_id TEXT NOT NULL, step_index INTEGER NOT NULL, action_id TEXT NOT NULL, status TEXT NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0, input TEXT, output TEXT, error TEXT, warnings TEXT, started_at INTEGER,"
    " finished_at INTEGER, duration_ms INTEGER, next_attempt_at INTEGER, worker TEXT, UNIQUE (run_id, step_index));";
constexpr const char* k_jobs_rowid =
    "CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, step_index INTEGER NOT NULL,"
    " lane TEXT NOT NULL, run_at_ms INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, lease_until_ms INTEGER,"
    " state TEXT NOT NULL DEFAULT 'ready', dead_reason TEXT, created_at INTEGER NOT NULL, UNIQUE (run_id, step_index));"
    "CREATE INDEX jobs_claim ON jobs(lane, state, run_at_ms);";
constexpr const char* k_jobs_0014 =
    "CREATE TABLE jobs (run_id TEXT NOT NULL, step_index INTEGER NOT NULL, id INTEGER NOT NULL DEFAULT 0,"
    " lane TEXT NOT NULL, run_at_ms INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, lease_until_ms INTEGER,"
    " state TEXT NOT NULL DEFAULT 'ready', dead_reason TEXT, created_at INTEGER NOT NULL,"
    " PRIMARY KEY (run_id, step_index)) WITHOUT ROWID;"
    "CREATE INDEX jobs_claim ON jobs(lane, state, run_at_ms);";

struct figures {
  double webhook_us, step_us;
};

figures measure(int layout, long n) {
  const std::string path = "/tmp/zapd-jobs-layout.db";
  std::remove(path.c_str());
  std::remove((path + "-wal").c_str());
  std::remove((path + "-shm").c_str());
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) die("open");
  exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-16384;");
  exec(k_runs);
  if (layout <= 1) exec(k_jobs_rowid);
  if (layout == 0) exec("CREATE INDEX jobs_leases ON jobs(lane, lease_until_ms) WHERE state = 'leased';");
  if (layout == 2) exec(k_jobs_0014);
  const bool jobs = layout <= 2;

  std::string trigger = R"({"method":"POST","body":{"event":")" + std::string(520, 'x') + R"("},"query":{},"headers":{}})";
  const std::string input(260, 'i'), output(400, 'o'), user = "0190a1b2-0000-7000-8000-000000000001",
                    zap = "0190a1b2-0000-7000-8000-000000000002";
  sqlite3_stmt* begin = prepare("BEGIN IMMEDIATE");
  sqlite3_stmt* commit = prepare("COMMIT");
  sqlite3_stmt* savepoint = prepare("SAVEPOINT request");
  sqlite3_stmt* release = prepare("RELEASE request");
  sqlite3_stmt* insert_run = prepare(
      "INSERT INTO runs (id, zap_id, zap_version, user_id, lane, status, \"trigger\", dedup_key, replay_of, created_at) "
      "VALUES (?1, ?2, 1, ?3, 'free', 'queued', ?4, NULL, NULL, ?5)");
  sqlite3_stmt* fifo = jobs ? prepare("SELECT 1 FROM jobs WHERE lane = 'free' AND state = 'ready' AND run_at_ms <= ?1 LIMIT 1") : nullptr;
  sqlite3_stmt* insert_job =
      layout <= 1 ? prepare("INSERT INTO jobs(run_id, step_index, lane, run_at_ms, created_at, state, attempts, lease_until_ms) "
                            "VALUES(?1, 0, 'free', ?2, ?2, 'leased', 1, ?2 + 30000) ON CONFLICT(run_id, step_index) DO NOTHING")
      : layout == 2 ? prepare("INSERT INTO jobs(run_id, step_index, id, lane, run_at_ms, created_at, state, attempts, lease_until_ms) "
                              "VALUES(?1, 0, ?3, 'free', ?2 + 30000, ?2, 'leased', 1, ?2 + 30000) ON CONFLICT(run_id, step_index) DO NOTHING")
                    : nullptr;
  sqlite3_stmt* status = prepare("SELECT status FROM runs WHERE id = ?1");
  sqlite3_stmt* upsert_step = prepare(
      "INSERT INTO run_steps (run_id, step_index, action_id, status, attempts, input, output, started_at, finished_at, duration_ms) "
      "VALUES (?1, 0, 'http', 'succeeded', 1, ?2, ?3, ?4, ?4, 3) "
      "ON CONFLICT (run_id, step_index) DO UPDATE SET status = excluded.status, output = excluded.output");
  sqlite3_stmt* ack =
      jobs ? prepare("DELETE FROM jobs WHERE id = ?1 AND attempts = 1 AND run_id = ?2 AND step_index = 0 AND state = 'leased'") : nullptr;
  sqlite3_stmt* finish = prepare(
      "UPDATE runs SET status = 'succeeded', resume_at = NULL, started_at = COALESCE(started_at, ?1), finished_at = ?1 WHERE id = ?2");

  constexpr int k_batch = 28;
  std::vector<std::string> ids(k_batch);
  std::vector<sqlite3_int64> job_ids(k_batch);
  sqlite3_int64 handle = 1;
  using clock = std::chrono::steady_clock;
  clock::duration ingest{}, steps{};
  const sqlite3_int64 t0 = 1'700'000'000'000;
  for (long done = 0; done < n; done += k_batch) {
    const auto a = clock::now();
    run(begin);
    for (int i = 0; i < k_batch; ++i) {
      char id[40];  // in creation order, like zapd's UUIDv7s: the sequence, then random bits
      const long seq = done + i;
      std::snprintf(id, sizeof id, "0190a1b2-%04lx-7%03lx-8%03x-%012lx", seq >> 12 & 0xffff, seq & 0xfff,
                    static_cast<unsigned>(std::rand() & 0xfff), static_cast<long>(std::rand()));
      ids[i] = id;
      const sqlite3_int64 now = t0 + done + i;
      run(savepoint);
      text(insert_run, 1, ids[i]);
      text(insert_run, 2, zap);
      text(insert_run, 3, user);
      text(insert_run, 4, trigger);
      sqlite3_bind_int64(insert_run, 5, now);
      run(insert_run);
      if (jobs) {
        sqlite3_bind_int64(fifo, 1, now);
        run(fifo);
        text(insert_job, 1, ids[i]);
        sqlite3_bind_int64(insert_job, 2, now);
        if (layout == 2) sqlite3_bind_int64(insert_job, 3, handle);
        run(insert_job);
        job_ids[i] = layout == 2 ? handle++ : sqlite3_last_insert_rowid(db);
      }
      run(release);
    }
    run(commit);
    const auto b = clock::now();
    run(begin);
    for (int i = 0; i < k_batch; ++i) {
      const sqlite3_int64 now = t0 + done + i + 5;
      run(savepoint);
      text(status, 1, ids[i]);
      run(status);
      text(upsert_step, 1, ids[i]);
      text(upsert_step, 2, input);
      text(upsert_step, 3, output);
      sqlite3_bind_int64(upsert_step, 4, now);
      run(upsert_step);
      if (jobs) {
        sqlite3_bind_int64(ack, 1, job_ids[i]);
        text(ack, 2, ids[i]);
        run(ack);
        if (sqlite3_changes(db) != 1) die("the ack matched no job");
      }
      sqlite3_bind_int64(finish, 1, now);
      text(finish, 2, ids[i]);
      run(finish);
      run(release);
    }
    run(commit);
    ingest += b - a;
    steps += clock::now() - b;
  }
  for (auto* st : {begin, commit, savepoint, release, insert_run, fifo, insert_job, status, upsert_step, ack, finish})
    if (st) sqlite3_finalize(st);
  sqlite3_close(db);
  const long made = (n + k_batch - 1) / k_batch * k_batch;  // whole transactions
  const auto us = [made](clock::duration d) {
    return std::chrono::duration<double, std::micro>(d).count() / static_cast<double>(made);
  };
  return {us(ingest), us(steps)};
}

}  // namespace

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::atol(argv[1]) : 100'000;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
  if (n < 28 || rounds < 1) {
    std::fprintf(stderr, "usage: jobs_layout [WEBHOOKS >= 28] [ROUNDS >= 1]\n");
    return 2;
  }
  constexpr int k_layouts = 4;
  std::vector<figures> all[k_layouts];
  for (int r = 0; r < rounds; ++r)
    for (int l = 0; l < k_layouts; ++l) all[l].push_back(measure(l, n));
  std::printf("layout  us per webhook (min / median)  us per step (min / median)   %ld webhooks, %d rounds\n", n, rounds);
  const char* names[k_layouts] = {"0 before 0014", "1 no lease index", "2 0014", "3 no job row"};
  for (int l = 0; l < k_layouts; ++l) {
    auto pick = [&](double figures::*f) {
      std::vector<double> v;
      for (const auto& x : all[l]) v.push_back(x.*f);
      std::sort(v.begin(), v.end());
      return std::make_pair(v.front(), v[v.size() / 2]);
    };
    const auto [wmin, wmed] = pick(&figures::webhook_us);
    const auto [smin, smed] = pick(&figures::step_us);
    std::printf("%-17s %6.2f / %6.2f                 %6.2f / %6.2f\n", names[l], wmin, wmed, smin, smed);
  }
}
