#include "zapd/store/migrations.hpp"

#include <chrono>

#include <fmt/format.h>

#include "zapd/core/log.hpp"

namespace zapd::store {
namespace {

constexpr std::string_view k_bootstrap =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))";

struct applied_row {
  int version;
  std::string applied_at;
};

result<std::vector<applied_row>> applied(connection& c) {
  auto st = c.exec(k_bootstrap);
  if (!st) return std::move(st).err();
  auto q = c.prepare("SELECT version, applied_at FROM schema_migrations ORDER BY version");
  if (!q) return std::move(q).err();
  std::vector<applied_row> rows;
  for (;;) {
    auto r = q->step();
    if (!r) return std::move(r).err();
    if (!*r) break;
    rows.push_back({static_cast<int>(q->int64(0)), q->text(1)});
  }
  return rows;
}

status check_not_newer(const std::vector<applied_row>& rows, const std::vector<migration>& all) {
  int known = all.empty() ? 0 : all.back().version;
  for (const auto& r : rows) {
    if (r.version > known)
      return make_error(errc::schema_mismatch,
                        fmt::format("the database is at schema version {}, newer than this zapd knows ({}); "
                                    "run a newer zapd or restore a backup",
                                    r.version, known));
  }
  return {};
}

}  // namespace

result<std::vector<migration_state>> migration_status(connection& c, const std::vector<migration>& all) {
  auto rows = applied(c);
  if (!rows) return std::move(rows).err();
  auto st = check_not_newer(*rows, all);
  if (!st) return std::move(st).err();
  std::vector<migration_state> out;
  for (const auto& m : all) {
    migration_state s{m.version, m.name, false, {}};
    for (const auto& r : *rows)
      if (r.version == m.version) {
        s.applied = true;
        s.applied_at = r.applied_at;
      }
    out.push_back(std::move(s));
  }
  return out;
}

result<int> migrate_up(connection& c, const std::vector<migration>& all) {
  // A migration that builds an index sorts every row of its table. The write connection keeps
  // temporary data in memory (temp_store=MEMORY, for its per-request savepoints), which would
  // hold that whole sort in RAM: the migrations spill it to temporary files instead, as
  // SQLite's default does, and the connection's setting is put back afterwards.
  bool in_memory = false;  // PRAGMA temp_store: 0 default, 1 FILE, 2 MEMORY
  if (auto q = c.prepare("PRAGMA temp_store"); q) {
    auto row = q->step();
    in_memory = row && *row && q->int64(0) == 2;
  }
  if (in_memory) (void)c.exec("PRAGMA temp_store=FILE");
  struct restore_temp_store {
    connection& c;
    bool memory;
    ~restore_temp_store() {
      if (memory) (void)c.exec("PRAGMA temp_store=MEMORY");
    }
  } restore{c, in_memory};

  auto begin = c.exec("BEGIN IMMEDIATE");
  if (!begin) return std::move(begin).err();
  auto fail = [&c](error e) -> result<int> {
    (void)c.exec("ROLLBACK");
    return e;
  };
  auto rows = applied(c);
  if (!rows) return fail(std::move(rows).err());
  auto st = check_not_newer(*rows, all);
  if (!st) return fail(std::move(st).err());
  int count = 0;
  // Some migrations rebuild a table or an index over every row: on a database at an earlier
  // version, say what is being done, and once committed how long it took, so that a start
  // that takes a while on a large database is explained. A new database says nothing.
  const bool upgrading = !rows->empty();
  const auto started = std::chrono::steady_clock::now();
  for (const auto& m : all) {
    bool done = false;
    for (const auto& r : *rows) done = done || r.version == m.version;
    if (done) continue;
    if (upgrading) log::info("store.migration_started", {{"version", m.version}, {"name", m.name}});
    auto ex = c.exec(m.sql);
    if (!ex) return fail(make_error(ex.err().code, fmt::format("migration {:04}_{}: {}", m.version, m.name, ex.err().message)));
    auto ins = c.prepare("INSERT INTO schema_migrations(version, name) VALUES(?, ?)");
    if (!ins) return fail(std::move(ins).err());
    auto r = ins->bind_all(m.version, m.name).run();
    if (!r) return fail(std::move(r).err());
    ++count;
  }
  auto commit = c.exec("COMMIT");
  if (!commit) return fail(std::move(commit).err());
  if (upgrading && count > 0)
    log::info("store.migrations_applied",
              {{"count", count},
               {"version", all.back().version},
               {"ms", std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count()}});
  return count;
}

}  // namespace zapd::store
