#pragma once

#include <string>
#include <string_view>

namespace zapd {

/// Expected failures, carried as values (see result.hpp). The mapping to HTTP statuses
/// lives in exactly one place: `http::status_for` (src/http/message.cpp).
/// Each code means one thing, so code may branch on it (the worker discards a result on
/// `lease_lost` only; ingestion counts `disabled` as rejected{reason="disabled"} only).
enum class errc {
  ok = 0,
  invalid_argument,   // bad input from a user: 400
  unauthorized,       // missing or bad credentials: 401
  forbidden,          // authenticated but not allowed: 403
  not_found,          // 404
  method_not_allowed, // 405
  already_exists,     // a unique thing is taken (an account's email): 409
  disabled,           // the target is switched off (a disabled zap's webhook): 409
  invalid_state,      // the resource's state does not allow it (cancel a finished run): 409
  lease_lost,         // a queue claim passed to another worker; its result must not be recorded: 409
  constraint,         // a database constraint refused a write (SQLITE_CONSTRAINT): 409
  schema_mismatch,    // the database's schema is not the one this binary knows: 500
  timeout,            // the client was too slow sending its request: 408
  headers_too_large,  // request header block over the limit: 431
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
