#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "zapd/auth/password.hpp"

namespace zapd::auth {

/// The auth module's settings, built by `app` from the `auth.*` config keys
/// (config/zapd.toml documents each). Plain data, read-only once built.
struct options {
  std::string session_key;                   // derive_session_key(auth.secret or data_dir/secret.key)
  std::int64_t session_ttl_seconds = 604800;  // 7 days
  std::string default_plan = "free";         // "free" | "paid"
  bool signup_open = true;
  password_params hashing;
  std::size_t hash_threads = 2;
  std::size_t hash_queue = 64;
  std::int64_t signin_account_attempts = 10;  // per (account, client IP), refilled over signin_window
  std::int64_t signin_ip_attempts = 100;      // per client IP, refilled over signin_window
  std::chrono::seconds signin_window{300};
  std::size_t throttle_max_keys = 100'000;
};

}  // namespace zapd::auth
