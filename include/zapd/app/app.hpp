#pragma once

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

}  // namespace zapd::app
