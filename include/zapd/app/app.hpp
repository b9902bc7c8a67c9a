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

}  // namespace zapd::app
