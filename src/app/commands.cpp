// The CLI commands other than `serve` and `healthcheck`: each does one thing and returns an
// exit code. `user` and `migrate` open the store (migrating first); `backup` and `restore`
// work on the database file through store/backup.hpp.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

#include <optional>

#include <fmt/format.h>

#include "options.hpp"
#include "zapd/app/app.hpp"
#include "zapd/auth/accounts.hpp"
#include "zapd/core/files.hpp"
#include "zapd/core/log.hpp"
#include "zapd/store/backup.hpp"
#include "zapd/store/database.hpp"
#include "zapd/store/migrations.hpp"

namespace zapd::app {
namespace {

// Opens the store for a CLI command (migrating first); logs and returns null on failure.
std::unique_ptr<store::database> open_for_cli(const config::settings& s) {
  auto dir = ensure_writable_dir(s.data_dir);
  if (!dir) {
    log::error("zapd.config_error", {{"error", dir.err().message}});
    return nullptr;
  }
  auto db = store::database::open(db_options(s, true));
  if (!db) {
    log::error("zapd.store_error", {{"error", db.err().message}, {"path", db_path(s)}});
    return nullptr;
  }
  return std::move(*db);
}

// "20250131T235959Z": the suffix of a database moved aside by `restore`.
std::string utc_stamp() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

// The password's argon2id hash with the configured cost; prints why not and returns nothing.
std::optional<std::string> hash_for_cli(const std::string& password, const config::settings& s) {
  auto hash = auth::hash_password(password, hash_params(s));
  if (!hash) {
    fmt::print(stderr, "zapd: {}\n", hash.err().message);
    return std::nullopt;
  }
  return std::move(*hash);
}

}  // namespace

int user_create(const config::loaded& cfg, const std::string& raw_email, const std::string& name,
                const std::string& password) {
  const auto& s = cfg.values;
  std::string email = auth::normalize_email(raw_email);
  for (auto st : {auth::validate_email(email, "--email"), auth::validate_name(name, "--name"), auth::validate_password(password)}) {
    if (!st) {
      fmt::print(stderr, "zapd: {}\n", st.err().message);
      return k_exit_usage;
    }
  }
  auto db = open_for_cli(s);
  if (!db) return k_exit_failure;
  auto hash = hash_for_cli(password, s);
  if (!hash) return k_exit_failure;
  auth::new_user nu{email, name, *hash, s.auth_default_plan};
  auto u = db->writes().execute<auth::user>([&](store::connection& c) { return auth::insert_user(c, nu); });
  db->stop();
  if (!u) {
    fmt::print(stderr, "zapd: {}: {}\n", email, u.err().message);
    return (u.err().code == errc::already_exists || u.err().code == errc::constraint) ? k_exit_usage : k_exit_failure;
  }
  fmt::print("created user {} <{}> id {} plan {}{}\n", u->name, u->email, u->id, u->plan, u->admin ? " (admin)" : "");
  return k_exit_ok;
}

int user_set_password(const config::loaded& cfg, const std::string& raw_email, const std::string& password) {
  const auto& s = cfg.values;
  std::string email = auth::normalize_email(raw_email);
  if (auto st = auth::validate_password(password); !st) {
    fmt::print(stderr, "zapd: {}\n", st.err().message);
    return k_exit_usage;
  }
  auto db = open_for_cli(s);
  if (!db) return k_exit_failure;
  auto hash = hash_for_cli(password, s);
  if (!hash) return k_exit_failure;
  auto v = db->writes().execute<std::int64_t>([&](store::connection& c) -> result<std::int64_t> {
    auto u = auth::find_user_by_email(c, email);
    if (!u) return std::move(u).err();
    if (!*u) return make_error(errc::not_found, "no account with this email");
    return auth::set_password_hash(c, (*u)->id, *hash);
  });
  db->stop();
  if (!v) {
    fmt::print(stderr, "zapd: {}: {}\n", email, v.err().message);
    return v.err().code == errc::not_found ? k_exit_usage : k_exit_failure;
  }
  fmt::print("password changed for {}; every session of this user has ended\n", email);
  return k_exit_ok;
}

int user_list(const config::loaded& cfg) {
  auto db = open_for_cli(cfg.values);
  if (!db) return k_exit_failure;
  auto users = db->reads().with([](store::connection& c) { return auth::list_users(c); });
  db->stop();
  if (!users) {
    fmt::print(stderr, "zapd: {}\n", users.err().message);
    return k_exit_failure;
  }
  fmt::print("{:<36}  {:<32}  {:<5}  {:<5}  {:<24}  {}\n", "ID", "EMAIL", "PLAN", "ADMIN", "CREATED", "NAME");
  for (const auto& u : *users)
    fmt::print("{:<36}  {:<32}  {:<5}  {:<5}  {:<24}  {}\n", u.id, u.email, u.plan, u.admin ? "yes" : "no", u.created_at, u.name);
  return k_exit_ok;
}

int migrate(const config::loaded& cfg, bool apply) {
  const auto& s = cfg.values;
  auto dir = ensure_writable_dir(s.data_dir);
  if (!dir) {
    log::error("zapd.config_error", {{"error", dir.err().message}});
    return k_exit_usage;
  }
  auto conn = store::open_write_connection(db_path(s), s.store_synchronous);
  if (!conn) {
    log::error("zapd.store_error", {{"error", conn.err().message}});
    return k_exit_failure;
  }
  const auto& all = store::embedded_migrations();
  if (apply) {
    auto n = store::migrate_up(*conn, all);
    if (!n) {
      log::error("zapd.migrate_failed", {{"error", n.err().message}});
      return k_exit_failure;
    }
    fmt::print("applied {} migration(s); schema version {}\n", *n, all.empty() ? 0 : all.back().version);
    return k_exit_ok;
  }
  auto st = store::migration_status(*conn, all);
  if (!st) {
    log::error("zapd.migrate_failed", {{"error", st.err().message}});
    return k_exit_failure;
  }
  int pending = 0;
  for (const auto& m : *st) {
    fmt::print("{:04}_{:<24} {}\n", m.version, m.name, m.applied ? "applied " + m.applied_at : std::string("pending"));
    pending += m.applied ? 0 : 1;
  }
  fmt::print("{} pending\n", pending);
  return k_exit_ok;
}

int backup(const config::loaded& cfg, const std::string& file, bool force) {
  const auto& s = cfg.values;
  store::backup_options opts;
  opts.overwrite = force;
  int shown = -1;
  // Progress only when the copy takes more than one step (a database over ~1 MiB).
  auto progress = [&](std::int64_t done, std::int64_t total) {
    if (total <= opts.pages_per_step) return;
    const int pct = static_cast<int>(done * 100 / total);
    if (pct == shown) return;
    shown = pct;
    fmt::print(stderr, "backup: {}% ({}/{} pages)\n", pct, done, total);
  };
  auto r = store::backup(db_path(s), file, opts, progress);
  if (!r) {
    fmt::print(stderr, "zapd: backup: {}\n", r.err().message);
    const bool refused = r.err().code == errc::already_exists || r.err().code == errc::not_found;
    return refused ? k_exit_usage : k_exit_failure;
  }
  fmt::print("backed up {} to {} ({} pages, {} bytes)\n", db_path(s), file, r->pages, r->bytes);
  fmt::print("note: the keys in {} (secrets.key, secret.key) are not in the backup: keep a copy of them "
             "with it (they do not change); stored secrets cannot be read without secrets.key\n",
             s.data_dir);
  return k_exit_ok;
}

int restore(const config::loaded& cfg, const std::string& file) {
  namespace fs = std::filesystem;
  const auto& s = cfg.values;
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) {
    fmt::print(stderr, "zapd: restore: refusing: {}: no such file\n", file);
    return k_exit_usage;
  }
  if (auto dir = ensure_writable_dir(s.data_dir); !dir) {
    fmt::print(stderr, "zapd: restore: {}\n", dir.err().message);
    return k_exit_usage;
  }
  // Held until the restore is done: no `serve` can start on a half-restored data dir.
  auto lock = lock_file((fs::path(s.data_dir) / "zapd.lock").string());
  if (!lock) {
    fmt::print(stderr, "zapd: restore: refusing: a zapd process is using {} ({}); stop it first (e.g. systemctl stop zapd)\n",
               s.data_dir, lock.err().message);
    return k_exit_usage;
  }
  auto r = store::install_backup(file, db_path(s), ".before-restore-" + utc_stamp(), store::embedded_migrations());
  if (!r) {
    const auto code = r.err().code;
    if (code == errc::invalid_argument || code == errc::schema_mismatch || code == errc::not_found) {
      fmt::print(stderr, "zapd: restore: refusing: {}\n", r.err().message);
      return k_exit_usage;
    }
    fmt::print(stderr, "zapd: restore failed: {}\n", r.err().message);
    return k_exit_failure;
  }
  // Run as root on a data dir that belongs to the service's user (the package's zapd): the
  // restored file and the lock go to that user, or the service could not open them.
  struct stat dir_st{};
  if (::geteuid() == 0 && ::stat(s.data_dir.c_str(), &dir_st) == 0 && dir_st.st_uid != 0)
    for (const auto& f : {db_path(s), (fs::path(s.data_dir) / "zapd.lock").string()})
      if (::chown(f.c_str(), dir_st.st_uid, dir_st.st_gid) != 0)
        fmt::print(stderr, "zapd: restore: warning: cannot give {} to the data dir's owner (uid {}): {}\n", f,
                   dir_st.st_uid, std::strerror(errno));
  fmt::print("restored {} into {} (schema version {})\n", file, db_path(s), r->info.versions.back());
  if (!r->aside.empty()) fmt::print("the previous database is kept as {}\n", r->aside);
  if (!fs::exists(fs::path(s.data_dir) / "secrets.key", ec))
    fmt::print("note: {} has no secrets.key: copy the one of the data dir this backup came from here before starting "
               "zapd, or its stored secrets cannot be read\n",
               s.data_dir);
  return k_exit_ok;
}

}  // namespace zapd::app

#if !ZAPD_WITH_KAFKA
namespace zapd::app {
int worker(const config::loaded&) {
  log::error("worker.config_error", {{"error", "this zapd was built without Kafka (ZAPD_WITH_KAFKA=OFF): no `zapd worker`"}});
  return k_exit_usage;
}
}  // namespace zapd::app
#endif
