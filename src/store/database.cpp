#include "zapd/store/database.hpp"

#include <fmt/format.h>

#include "zapd/store/migrations.hpp"
#include "zapd/store/wal_buffer.hpp"

namespace zapd::store {

result<connection> open_write_connection(const std::string& path, const std::string& synchronous) {
  const bool full = synchronous != "normal";
  // At FULL every commit syncs the WAL: its frames are written in one call before the sync
  // (wal_buffer.hpp). At NORMAL commits do not sync, and SQLite's default VFS is used as is.
  auto c = connection::open(path, open_mode::read_write_create, full ? detail::buffered_wal_vfs() : nullptr);
  if (!c) return c;
  {
    auto mode = c->prepare("PRAGMA journal_mode=WAL");
    if (!mode) return std::move(mode).err();
    auto row = mode->step();
    if (!row) return std::move(row).err();
    if (!*row || mode->text(0) != "wal")
      return make_error(errc::unavailable, fmt::format("{}: could not switch to WAL mode", path));
  }
  const char* sync = full ? "FULL" : "NORMAL";
  // temp_store=MEMORY: the writer wraps each request in a SAVEPOINT, whose statement journal
  // would otherwise be a temp file written page by page on every commit.
  // cache_size: 16 MiB of page cache for the writer (SQLite's default is 2 MB), so the
  // B-tree pages of the hot tables stay in memory between group commits.
  auto st = c->exec(fmt::format("PRAGMA synchronous={}; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY; "
                                "PRAGMA cache_size=-16384;",
                                sync));
  if (!st) return std::move(st).err();
  return c;
}

result<std::unique_ptr<database>> database::open(const options& opts) {
  auto conn = open_write_connection(opts.path, opts.synchronous);
  if (!conn) return std::move(conn).err();
  if (opts.migrate) {
    auto applied = migrate_up(*conn, embedded_migrations());
    if (!applied) return std::move(applied).err();
  }
  std::unique_ptr<database> db(new database());
  db->path_ = opts.path;
  auto readers = reader_pool::open(opts.path, opts.readers);
  if (!readers) return std::move(readers).err();
  db->readers_ = std::move(readers).value();
  db->writer_ = std::make_unique<writer>(std::move(conn).value(), opts.writer);
  return db;
}

status readiness_probe(connection& c) {
  return c.run("INSERT INTO kv(key, value) VALUES('readyz', 'ok') "
               "ON CONFLICT(key) DO UPDATE SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ','now')");
}

}  // namespace zapd::store
