#include "zapd/store/connection.hpp"

#include <mutex>
#include <utility>

#include <sqlite3.h>

#include <fmt/format.h>

#include "zapd/core/files.hpp"

namespace zapd::store {

error sqlite_error(sqlite3* db, int rc, std::string_view what) {
  int primary = rc & 0xff;
  errc code = errc::internal;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED || primary == SQLITE_FULL || primary == SQLITE_IOERR ||
      primary == SQLITE_READONLY || primary == SQLITE_CANTOPEN)
    code = errc::unavailable;
  if (primary == SQLITE_CONSTRAINT) code = errc::constraint;
  const char* msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return make_error(code, fmt::format("{}: {}", what, msg));
}

statement::statement(statement&& o) noexcept : conn_(o.conn_), stmt_(o.stmt_), in_use_(o.in_use_) {
  o.stmt_ = nullptr;
}

statement::~statement() {
  if (!stmt_) return;
  if (in_use_) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    *in_use_ = false;
  } else {
    sqlite3_finalize(stmt_);
  }
}

statement& statement::bind(int idx, std::int64_t v) {
  sqlite3_bind_int64(stmt_, idx, v);
  return *this;
}
statement& statement::bind(int idx, double v) {
  sqlite3_bind_double(stmt_, idx, v);
  return *this;
}
statement& statement::bind(int idx, std::string_view v) {
  sqlite3_bind_text64(stmt_, idx, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  return *this;
}
statement& statement::bind(int idx, std::nullptr_t) {
  sqlite3_bind_null(stmt_, idx);
  return *this;
}
statement& statement::bind(int idx, const std::optional<std::string>& v) {
  return v ? bind(idx, std::string_view(*v)) : bind(idx, nullptr);
}

result<bool> statement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return sqlite_error(conn_->raw(), rc, "step");
}

status statement::run() {
  for (;;) {
    auto r = step();
    if (!r) return std::move(r).err();
    if (!*r) return {};
  }
}

std::int64_t statement::int64(int col) const { return sqlite3_column_int64(stmt_, col); }
double statement::real(int col) const { return sqlite3_column_double(stmt_, col); }
bool statement::is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
std::string statement::text(int col) const {
  const auto* p = sqlite3_column_text(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n)) : std::string();
}

namespace detail {

void configure_sqlite() {
  // Before SQLite initializes (the first open, or registering a VFS): no memory statistics.
  // Kept on, every SQLite malloc and free takes a process-wide mutex, and zapd reads none of
  // them. A no-op if something initialized SQLite earlier.
  static std::once_flag configured;
  std::call_once(configured, [] { (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
}

}  // namespace detail

result<connection> connection::open(const std::string& path, open_mode mode, const char* vfs) {
  detail::configure_sqlite();
  if (mode == open_mode::read_write_create && path != ":memory:" && !path.empty() && !path.starts_with("file:")) {
    // The database holds password hashes, sealed secrets and webhook payloads: owner-only,
    // whatever the directory's mode and the umask. SQLite creates the -wal and -shm files
    // with the database file's mode; ones left by an older zapd or a crash are fixed here.
    const std::pair<std::string, bool> files[] = {{path, true}, {path + "-wal", false}, {path + "-shm", false}};
    for (const auto& [file, create] : files)
      if (auto st = make_owner_only(file, create); !st) return std::move(st).err();
  }
  int flags = SQLITE_OPEN_NOMUTEX;
  flags |= mode == open_mode::read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, vfs);
  if (rc != SQLITE_OK) {
    auto e = sqlite_error(db, rc, fmt::format("open {}", path));
    sqlite3_close_v2(db);
    return e;
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, 5000);
  return connection(db);
}

connection::connection(connection&& o) noexcept : db_(o.db_), cache_(std::move(o.cache_)) { o.db_ = nullptr; }

connection& connection::operator=(connection&& o) noexcept {
  if (this != &o) {
    close();
    db_ = o.db_;
    cache_ = std::move(o.cache_);
    o.db_ = nullptr;
  }
  return *this;
}

connection::~connection() { close(); }

void connection::close() noexcept {
  for (auto& [sql, e] : cache_) sqlite3_finalize(e.stmt);
  cache_.clear();
  if (db_) sqlite3_close_v2(db_);
  db_ = nullptr;
}

status connection::exec(std::string_view sql) {
  std::string s(sql);
  char* msg = nullptr;
  int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &msg);
  if (rc != SQLITE_OK) {
    std::string m = msg ? msg : sqlite3_errstr(rc);
    sqlite3_free(msg);
    auto e = sqlite_error(db_, rc, "exec");
    e.message = fmt::format("exec: {}", m);
    return e;
  }
  return {};
}

result<statement> connection::prepare(std::string_view sql) {
  auto it = cache_.find(std::string(sql));
  if (it != cache_.end() && !it->second.in_use) {
    it->second.in_use = true;
    return statement(this, it->second.stmt, &it->second.in_use);
  }
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &s, nullptr);
  if (rc != SQLITE_OK) return sqlite_error(db_, rc, fmt::format("prepare '{}'", sql.substr(0, 80)));
  if (it != cache_.end()) return statement(this, s, nullptr);  // the cached one is busy (nested use)
  auto [pos, _] = cache_.emplace(std::string(sql), cache_entry{s, true});
  return statement(this, s, &pos->second.in_use);
}

std::int64_t connection::changes() const { return sqlite3_changes64(db_); }
std::int64_t connection::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }
std::string connection::last_error() const { return sqlite3_errmsg(db_); }

}  // namespace zapd::store
