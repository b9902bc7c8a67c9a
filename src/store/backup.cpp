#include "zapd/store/backup.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include <sqlite3.h>

#include <fmt/format.h>

#include "zapd/core/files.hpp"
#include "zapd/store/connection.hpp"

namespace zapd::store {
namespace {

namespace fs = std::filesystem;

// A page the writer holds for a moment (a checkpoint) is retried this many times, 50 ms apart.
constexpr int k_busy_retries = 200;
constexpr auto k_busy_pause = std::chrono::milliseconds(50);
constexpr std::size_t k_copy_chunk = 1 << 16;

error errno_error(const std::string& what) { return make_error(errc::unavailable, fmt::format("{}: {}", what, std::strerror(errno))); }

// fsync of a file or directory by path: a rename is durable only once its directory is synced.
status sync_path(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return errno_error(path);
  int rc = ::fsync(fd);
  int e = errno;
  ::close(fd);
  if (rc != 0) return make_error(errc::unavailable, fmt::format("fsync {}: {}", path, std::strerror(e)));
  return {};
}

std::string dir_of(const std::string& path) {
  auto parent = fs::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

void remove_quietly(const std::string& path) {
  std::error_code ec;
  fs::remove(path, ec);
}

void remove_with_sidecars(const std::string& path) {
  for (const char* suffix : {"", "-journal", "-wal", "-shm"}) remove_quietly(path + suffix);
}

// Copies `from` to a new file `to` created 0600 (never readable by others, even for a moment).
status copy_owner_only(const std::string& from, const std::string& to) {
  int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return errno_error(from);
  int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out < 0) {
    auto e = errno_error(to);
    ::close(in);
    return e;
  }
  std::vector<char> buf(k_copy_chunk);
  status st;
  for (;;) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      st = errno_error(from);
      break;
    }
    if (n == 0) break;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = ::write(out, buf.data() + off, static_cast<std::size_t>(n - off));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        st = errno_error(to);
        break;
      }
      off += w;
    }
    if (!st) break;
  }
  if (st && ::fsync(out) != 0) st = errno_error(to);
  ::close(in);
  ::close(out);
  return st;
}

// The checks of `check_backup` on an open connection.
result<backup_info> check_open(connection& c, const std::string& path, const std::vector<migration>& known) {
  auto damaged = [&path](const std::string& why) {
    return make_error(errc::invalid_argument, fmt::format("{}: {}", path, why));
  };
  auto ic = c.prepare("PRAGMA integrity_check");
  if (!ic) return damaged("not a readable SQLite database (" + ic.err().message + ")");
  auto first = ic->first<std::string>([](statement& s) { return s.text(0); });
  if (!first) return damaged("not a readable SQLite database (" + first.err().message + ")");
  if (!*first || **first != "ok") {
    // SQLite's report spans lines ("*** in database main ***\nOn tree page 2 ..."): one line here.
    std::string report = *first ? **first : std::string("no answer");
    std::string line;
    for (auto ch : report) line += ch == '\n' ? std::string("; ") : std::string(1, ch);
    if (line.size() > 300) line = line.substr(0, 300) + "...";
    return damaged(fmt::format("fails SQLite's integrity check ({})", line));
  }

  backup_info info;
  auto pages = c.prepare("PRAGMA page_count");
  if (!pages) return std::move(pages).err();
  auto n = pages->first<std::int64_t>([](statement& s) { return s.int64(0); });
  if (!n) return std::move(n).err();
  info.pages = n->value_or(0);

  auto has = c.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'");
  if (!has) return std::move(has).err();
  auto found = has->first<std::int64_t>([](statement& s) { return s.int64(0); });
  if (!found) return std::move(found).err();
  if (found->value_or(0) == 0) return damaged("not a zapd database (it has no schema_migrations table)");
  auto q = c.prepare("SELECT version FROM schema_migrations ORDER BY version");
  if (!q) return std::move(q).err();
  auto versions = q->collect<int>([](statement& s) { return static_cast<int>(s.int64(0)); });
  if (!versions) return std::move(versions).err();
  if (versions->empty()) return damaged("not a zapd database (it records no migrations)");
  const int newest_known = known.empty() ? 0 : known.back().version;
  for (int v : *versions) {
    bool is_known = std::any_of(known.begin(), known.end(), [v](const migration& m) { return m.version == v; });
    if (is_known) continue;
    if (v > newest_known)
      return make_error(errc::schema_mismatch,
                        fmt::format("{}: written by a newer zapd: it records schema version {}, this zapd knows up to {}; "
                                    "restore it with that zapd or a newer one",
                                    path, v, newest_known));
    return make_error(errc::schema_mismatch, fmt::format("{}: records schema version {}, which this zapd does not know", path, v));
  }
  info.versions = std::move(*versions);
  return info;
}

}  // namespace

result<backup_summary> backup(const std::string& db_path, const std::string& target, const backup_options& opts,
                              const backup_progress& progress) {
  std::error_code ec;
  if (!fs::is_regular_file(db_path, ec))
    return make_error(errc::not_found, fmt::format("no database at {} (check data_dir)", db_path));
  if (!opts.overwrite && fs::exists(target, ec))
    return make_error(errc::already_exists, fmt::format("{} exists (use --force to replace it)", target));
  const std::string tmp = target + ".tmp";
  remove_with_sidecars(tmp);  // left by a backup that died

  auto src = connection::open(db_path, open_mode::read_only);
  if (!src) return std::move(src).err();
  // ONE read transaction for the whole copy: a WAL snapshot, so the writer's commits during
  // the copy neither restart it nor end up half in it.
  if (auto st = src->exec("BEGIN"); !st) return std::move(st).err();
  {
    auto snap = src->prepare("SELECT count(*) FROM sqlite_master");
    if (!snap) return std::move(snap).err();
    if (auto r = snap->step(); !r) return std::move(r).err();
  }

  auto fail = [&tmp](error e) -> result<backup_summary> {
    remove_with_sidecars(tmp);
    return e;
  };
  if (auto st = make_owner_only(tmp, true); !st) return fail(std::move(st).err());
  backup_summary sum;
  {
    auto dst = connection::open(tmp, open_mode::read_write_create);
    if (!dst) return fail(std::move(dst).err());
    sqlite3_backup* b = sqlite3_backup_init(dst->raw(), "main", src->raw(), "main");
    if (!b) return fail(make_error(errc::internal, fmt::format("backup of {}: {}", db_path, sqlite3_errmsg(dst->raw()))));
    int rc = SQLITE_OK;
    int busy = 0;
    for (;;) {
      rc = sqlite3_backup_step(b, std::max(1, opts.pages_per_step));
      const std::int64_t total = sqlite3_backup_pagecount(b);
      if (rc == SQLITE_OK || rc == SQLITE_DONE) {
        busy = 0;
        if (progress) progress(total - sqlite3_backup_remaining(b), total);
        if (rc == SQLITE_DONE) break;
        continue;
      }
      const int primary = rc & 0xff;
      if ((primary == SQLITE_BUSY || primary == SQLITE_LOCKED) && ++busy < k_busy_retries) {
        std::this_thread::sleep_for(k_busy_pause);
        continue;
      }
      break;
    }
    sum.pages = sqlite3_backup_pagecount(b);
    // finish reports the step's error too; it also releases the destination.
    int frc = sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE || frc != SQLITE_OK)
      return fail(sqlite_error(dst->raw(), rc != SQLITE_DONE ? rc : frc, fmt::format("backup of {}", db_path)));
    // A single self-contained file: the copy carries the source's WAL flag; a rollback
    // journal mode needs no -wal/-shm beside it. `serve` switches it back to WAL on open.
    auto mode = dst->prepare("PRAGMA journal_mode=DELETE");
    if (!mode) return fail(std::move(mode).err());
    auto m = mode->first<std::string>([](statement& s) { return s.text(0); });
    if (!m) return fail(std::move(m).err());
  }
  (void)src->exec("COMMIT");
  if (auto st = sync_path(tmp, false); !st) return fail(std::move(st).err());
  if (!opts.overwrite && fs::exists(target, ec))
    return fail(make_error(errc::already_exists, fmt::format("{} appeared during the backup (use --force to replace it)", target)));
  if (::rename(tmp.c_str(), target.c_str()) != 0) return fail(errno_error(fmt::format("rename {} -> {}", tmp, target)));
  if (auto st = sync_path(dir_of(target), true); !st) return std::move(st).err();
  sum.bytes = static_cast<std::int64_t>(fs::file_size(target, ec));
  return sum;
}

result<backup_info> check_backup(const std::string& path, const std::vector<migration>& known) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return make_error(errc::not_found, fmt::format("{}: no such file", path));
  auto c = connection::open(path, open_mode::read_only);
  if (!c) return make_error(errc::invalid_argument, fmt::format("{}: cannot open it: {}", path, c.err().message));
  return check_open(*c, path, known);
}

result<restore_summary> install_backup(const std::string& source, const std::string& db_path,
                                       const std::string& aside_suffix, const std::vector<migration>& known) {
  std::error_code ec;
  if (!fs::is_regular_file(source, ec)) return make_error(errc::not_found, fmt::format("{}: no such file", source));
  const std::string tmp = db_path + ".restoring";
  remove_with_sidecars(tmp);  // left by a restore that died
  if (auto st = copy_owner_only(source, tmp); !st) {
    remove_with_sidecars(tmp);
    return std::move(st).err();
  }
  // Check the copy, not the source: what is installed is exactly what was checked.
  auto checked = [&]() -> result<backup_info> {
    auto c = connection::open(tmp, open_mode::read_write_create);
    if (!c) return make_error(errc::invalid_argument, fmt::format("{}: cannot open it: {}", source, c.err().message));
    return check_open(*c, source, known);
  }();
  // Closing the last connection checkpointed and removed any -wal/-shm the check created.
  remove_quietly(tmp + "-wal");
  remove_quietly(tmp + "-shm");
  if (!checked) {
    remove_with_sidecars(tmp);
    return std::move(checked).err();
  }

  std::string aside;
  if (fs::exists(db_path, ec)) {
    aside = db_path + aside_suffix;
    for (int n = 2; fs::exists(aside, ec) || fs::exists(aside + "-wal", ec); ++n) aside = fmt::format("{}{}-{}", db_path, aside_suffix, n);
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::string from = db_path + suffix;
      if (!fs::exists(from, ec)) continue;
      std::string to = aside + suffix;
      if (::rename(from.c_str(), to.c_str()) != 0) {
        auto e = errno_error(fmt::format("rename {} -> {}", from, to));
        remove_with_sidecars(tmp);
        return e;
      }
    }
  }
  if (::rename(tmp.c_str(), db_path.c_str()) != 0) {
    auto e = errno_error(fmt::format("rename {} -> {}", tmp, db_path));
    remove_with_sidecars(tmp);
    // Put the old database back where it was.
    if (!aside.empty())
      for (const char* suffix : {"", "-wal", "-shm"}) (void)::rename((aside + suffix).c_str(), (db_path + suffix).c_str());
    return e;
  }
  if (auto st = sync_path(dir_of(db_path), true); !st) return std::move(st).err();
  return restore_summary{aside, std::move(*checked)};
}

}  // namespace zapd::store
