#pragma once

#include <string>

#include "zapd/auth/hash_pool.hpp"
#include "zapd/auth/options.hpp"
#include "zapd/auth/throttle.hpp"
#include "zapd/core/clock.hpp"
#include "zapd/http/principal.hpp"
#include "zapd/http/router.hpp"
#include "zapd/store/database.hpp"

namespace zapd::http {

/// The accounts API (issue 3) and the authenticator every other API route uses.
///
///   POST   /api/v1/user/signup     {username, password, name} -> {message, user}
///   POST   /api/v1/user/signin     {username, password}       -> {token}
///   GET    /api/v1/user                                       -> {user}
///   POST   /api/v1/user/signout    ends every session of the user
///   POST   /api/v1/user/password   {currentPassword, newPassword} -> {message, token}
///   POST   /api/v1/tokens          {name} -> {id, name, token}   (token shown once)
///   GET    /api/v1/tokens          -> {tokens:[{id, name, createdAt, lastUsedAt}]}
///   DELETE /api/v1/tokens/{id}     revokes
///
/// Password hashes run on `hashes` (never on an HTTP thread); sign-in attempts are throttled
/// per (account, client IP) and per client IP. Lifecycle: built by `app` before the server
/// starts, must outlive it (routes and the authenticator hold references). Thread-safe.
class auth_api {
 public:
  auth_api(store::database& db, auth::hash_pool& hashes, const auth::options& opts, const clock& clk);

  /// The `authenticator` for every other API route: `auth::authenticate` on a reader (a
  /// session JWT or a live `zapd_` API token), then the token's `last_used_at` on the writer
  /// when it is over a minute old.
  authenticator authenticate() const;
  void add_routes(router& r) const;

 private:
  store::database& db_;
  auth::hash_pool& hashes_;
  const auth::options& opts_;
  const clock& clk_;
  std::string dummy_hash_;
  mutable auth::throttle by_account_;  // keyed by (client IP, account)
  mutable auth::throttle by_ip_;
};

}  // namespace zapd::http
