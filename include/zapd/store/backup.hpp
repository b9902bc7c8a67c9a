#pragma once

// Backup and restore of the SQLite file: the SQLite side of `zapd backup` / `zapd restore`
// (app runs the commands, takes the data-dir lock and prints).

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "zapd/core/result.hpp"
#include "zapd/store/migrations.hpp"

namespace zapd::store {

/// Called after each step of a backup with the pages copied so far and the total.
using backup_progress = std::function<void(std::int64_t done, std::int64_t total)>;

struct backup_options {
  int pages_per_step = 256;  // 1 MiB at SQLite's default 4 KiB page
  bool overwrite = false;    // replace an existing `target`
};

struct backup_summary {
  std::int64_t pages = 0;
  std::int64_t bytes = 0;
};

/// A consistent copy of the database at `db_path` into `target`, safe while `serve` writes
/// to it: SQLite's online backup API from a read-only connection that holds ONE read
/// transaction for the whole copy (a WAL snapshot: every commit before the call is in the
/// copy, none after it, and the writer is never blocked or the copy restarted). Written to
/// `target`.tmp (mode 0600), fsynced, converted to a single self-contained file (rollback
/// journal, no -wal/-shm needed), then renamed over `target`. `already_exists` when `target`
/// exists and `overwrite` is off; `not_found` when there is no database at `db_path`.
result<backup_summary> backup(const std::string& db_path, const std::string& target, const backup_options& opts,
                              const backup_progress& progress);

/// What `check_backup` found in a file.
struct backup_info {
  std::vector<int> versions;  // migrations recorded in the file, ascending
  std::int64_t pages = 0;
};

/// Checks that `path` is a zapd database this binary can run: opens it read-only,
/// `PRAGMA integrity_check` must answer `ok`, `schema_migrations` must exist and name only
/// versions among `known`. `invalid_argument` for a damaged or foreign file,
/// `schema_mismatch` (naming the version) for one written by a newer zapd.
result<backup_info> check_backup(const std::string& path, const std::vector<migration>& known);

struct restore_summary {
  std::string aside;  // where the previous database went ("" when there was none)
  backup_info info;   // what the check found in the installed copy
};

/// Replaces the database at `db_path` with the backup `source` (the caller holds the
/// data-dir lock, so no connection is open on it): copies `source` to `db_path`.restoring
/// (0600, fsynced), checks that copy with `check_backup`, then moves the current database
/// and its -wal/-shm aside to `db_path` + `aside_suffix` (+ -wal/-shm, so the set still
/// opens as one database; a numbered suffix is added when that name is taken) and renames
/// the copy into place. Nothing is moved when a check fails; the errors are check_backup's.
result<restore_summary> install_backup(const std::string& source, const std::string& db_path,
                                       const std::string& aside_suffix, const std::vector<migration>& known);

}  // namespace zapd::store
