#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "zapd/core/result.hpp"

namespace zapd::auth {

/// The claims of a zapd session token.
struct session_claims {
  std::string sub;        // user id
  std::int64_t iat = 0;   // issued at, seconds since the epoch
  std::int64_t exp = 0;   // expires at (exclusive), seconds since the epoch
  std::int64_t ver = 0;   // the user's token_version when issued; a bump ends the session
};

/// The key sessions are signed with: HMAC-SHA256(secret, "zapd.auth.session.v1"), so the data
/// dir's secret can also key other things without one use weakening another. 32 bytes.
std::string derive_session_key(std::string_view secret);

/// A compact JWS: base64url(header).base64url(claims).base64url(HMAC-SHA256), header
/// {"alg":"HS256","typ":"JWT"}.
std::string sign_session(const session_claims& c, std::string_view key);

/// Checks a token and returns its claims. Refuses (errc::unauthorized, with a reason fit for a
/// log, not for the client): malformed structure or base64, a header whose alg is not exactly
/// HS256 (so "none", HS384, RS256... all fail), a bad signature (constant-time compare), a
/// missing or mistyped claim, `now >= exp`, and an `iat` more than a minute in the future.
result<session_claims> verify_session(std::string_view token, std::string_view key, std::int64_t now);

/// base64url without padding, exposed for tests that forge tokens.
std::string base64url_encode(std::string_view bytes);

}  // namespace zapd::auth
