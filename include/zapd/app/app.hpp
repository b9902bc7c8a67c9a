#pragma once

#include <chrono>
#include <string>

#include "zapd/config/config.hpp"

namespace zapd::app {

/// Exit codes: 0 clean stop, 1 runtime failure, 2 bad configuration or usage.
constexpr int k_exit_ok = 0;
constexpr int k_exit_failure = 1;
constexpr int k_exit_usage = 2;

/// `zapd serve`: prepares the data dir, migrates, wires every module, serves until SIGINT/
/// SIGTERM, then drains HTTP, flushes the writer and returns an exit code.
int serve(const config::loaded& cfg);

/// `zapd migrate up|status`.
int migrate(const config::loaded& cfg, bool apply);

/// `zapd user create`: validates like sign-up (the first account becomes an admin); works
/// whether sign-up is open or closed. The CLI reads the password (stdin or a prompt).
int user_create(const config::loaded& cfg, const std::string& email, const std::string& name,
                const std::string& password);

/// `zapd user set-password`: replaces the password and ends every session of the user.
int user_set_password(const config::loaded& cfg, const std::string& email, const std::string& password);

/// `zapd user list`: one line per account.
int user_list(const config::loaded& cfg);

/// `zapd backup FILE`: a consistent copy of the database while `serve` runs (SQLite's online
/// backup API from a read snapshot), written to FILE.tmp (0600) and renamed; progress on
/// stderr when it takes more than one step. Refuses an existing FILE unless `force`.
int backup(const config::loaded& cfg, const std::string& file, bool force);

/// `zapd restore FILE`: refuses while a process holds the data dir's lock; checks FILE
/// (integrity, migrations known to this binary), moves the current database aside to
/// zapd.db.before-restore-<UTC time> and installs the copy (0600).
int restore(const config::loaded& cfg, const std::string& file);

/// `zapd healthcheck`: GET http://<server.listen>/readyz (0.0.0.0 / :: asked on loopback);
/// 0 on a 200 within `timeout`, 1 otherwise with a one-line reason on stderr.
int healthcheck(const config::loaded& cfg, std::chrono::milliseconds timeout);

/// `zapd worker`: a worker of the Kafka fleet (queue.backend = kafka), until SIGINT/SIGTERM
/// (0) or a fleet key mismatch (2).
int worker(const config::loaded& cfg);

}  // namespace zapd::app
