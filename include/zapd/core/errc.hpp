#pragma once

#include <string>
#include <string_view>

namespace zapd {

/// Expected failures, carried as values (see result.hpp). The mapping to HTTP statuses
/// lives in exactly one place: src/http/errors.cpp.
enum class errc {
  ok = 0,
  invalid_argument,   // bad input from a user: 400
  unauthorized,       // missing or bad credentials: 401
  forbidden,          // authenticated but not allowed: 403
  not_found,          // 404
  method_not_allowed, // 405
  conflict,           // already exists: 409
  gone,               // 410
  payload_too_large,  // 413
  too_many_requests,  // 429
  overloaded,         // backlog full, try later: 503
  unavailable,        // dependency down: 503
  internal,           // a bug or an unexpected downstream failure: 500
};

/// Stable snake_case name used as `error.code` in JSON answers and in logs.
std::string_view errc_name(errc e) noexcept;

}  // namespace zapd
