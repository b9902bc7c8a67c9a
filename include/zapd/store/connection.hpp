#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "zapd/core/result.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace zapd::store {

namespace detail {
/// SQLite's process-wide settings, once, before it initializes: every open calls it, and so
/// must anything else that can initialize SQLite first (registering a VFS does).
void configure_sqlite();
}  // namespace detail

class connection;

/// A prepared statement borrowed from its connection's cache. Bind, step, read columns; on
/// destruction it is reset and returned to the cache. Not thread-safe (like its connection).
class statement {
 public:
  statement(statement&& o) noexcept;
  statement& operator=(statement&&) = delete;
  statement(const statement&) = delete;
  ~statement();

  statement& bind(int idx, std::int64_t v);
  statement& bind(int idx, int v) { return bind(idx, static_cast<std::int64_t>(v)); }
  statement& bind(int idx, double v);
  statement& bind(int idx, std::string_view v);
  statement& bind(int idx, const std::string& v) { return bind(idx, std::string_view(v)); }
  statement& bind(int idx, const char* v) { return bind(idx, std::string_view(v)); }
  statement& bind(int idx, std::nullptr_t);
  statement& bind(int idx, const std::optional<std::string>& v);

  /// Binds each argument to parameters 1..N.
  template <class... A>
  statement& bind_all(const A&... a) {
    int i = 0;
    (bind(++i, a), ...);
    return *this;
  }

  /// Advances: true when a row is ready, false when done.
  result<bool> step();
  /// Steps to completion (for INSERT/UPDATE/DELETE).
  status run();

  /// Steps through every row, turning each into a T with `read(*this)`.
  template <class T, class Read>
  result<std::vector<T>> collect(Read&& read) {
    std::vector<T> out;
    for (;;) {
      auto row = step();
      if (!row) return std::move(row).err();
      if (!*row) return out;
      out.push_back(read(*this));
    }
  }

  /// The first row as a T (`read(*this)`), or nullopt when there is none.
  template <class T, class Read>
  result<std::optional<T>> first(Read&& read) {
    auto row = step();
    if (!row) return std::move(row).err();
    if (!*row) return std::optional<T>{};
    return std::optional<T>(read(*this));
  }

  std::int64_t int64(int col) const;
  double real(int col) const;
  std::string text(int col) const;
  bool is_null(int col) const;

 private:
  friend class connection;
  // `in_use` points at the cache slot's flag; null for an uncached (nested-use) statement.
  statement(connection* c, sqlite3_stmt* s, bool* in_use) : conn_(c), stmt_(s), in_use_(in_use) {}
  connection* conn_;
  sqlite3_stmt* stmt_;
  bool* in_use_;
};

enum class open_mode { read_only, read_write_create };

/// One SQLite connection with a prepared-statement cache. Owned and used by one thread at a
/// time (the writer thread, or a reader borrowed from the pool); opened NOMUTEX.
class connection {
 public:
  /// `vfs`: a registered SQLite VFS by name; nullptr for the default.
  static result<connection> open(const std::string& path, open_mode mode, const char* vfs = nullptr);
  connection(connection&& o) noexcept;
  connection& operator=(connection&& o) noexcept;
  connection(const connection&) = delete;
  ~connection();

  /// Runs one or more statements that return no rows.
  status exec(std::string_view sql);
  /// Prepares (or reuses) a statement.
  result<statement> prepare(std::string_view sql);
  /// Prepares (or reuses) `sql`, binds `args` to ?1..?N and steps it to completion
  /// (INSERT/UPDATE/DELETE in one call).
  template <class... A>
  status run(std::string_view sql, const A&... args) {
    auto st = prepare(sql);
    if (!st) return std::move(st).err();
    return st->bind_all(args...).run();
  }

  std::int64_t changes() const;
  std::int64_t last_insert_rowid() const;
  std::string last_error() const;
  sqlite3* raw() const { return db_; }

  /// What a write request does once its transaction ended: `fn(true)` after the COMMIT,
  /// `fn(false)` when the request was undone (its own error, a rolled-back or failed batch).
  /// Called on the writer thread, before the requests' `done`; must not call the writer.
  using commit_hook = std::function<void(bool committed)>;
  /// Whether `after_commit` is available: on the writer's connection inside a request only.
  bool takes_commit_hooks() const { return hooks_open_; }
  /// Requires takes_commit_hooks().
  void after_commit(commit_hook fn) { hooks_.push_back(std::move(fn)); }

 private:
  friend class writer;  // opens and collects the hooks of each request
  explicit connection(sqlite3* db) : db_(db) {}
  void close() noexcept;
  sqlite3* db_ = nullptr;
  bool hooks_open_ = false;
  std::vector<commit_hook> hooks_;
  struct cache_entry {
    sqlite3_stmt* stmt = nullptr;
    bool in_use = false;
  };
  std::unordered_map<std::string, cache_entry> cache_;
};

/// Wraps a SQLite failure as an `error` (busy/locked/full become `unavailable`, the rest `internal`).
error sqlite_error(sqlite3* db, int rc, std::string_view what);

}  // namespace zapd::store
