#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "zapd/auth/options.hpp"
#include "zapd/core/result.hpp"
#include "zapd/store/connection.hpp"

namespace zapd::auth {

/// Who is making an authenticated API call.
struct principal {
  std::string user_id;
  std::string email;
  std::string plan;  // "free" | "paid"
  bool admin = false;
};

/// What `authenticate` found.
struct authenticated {
  principal who;
  /// An API token last used over a minute ago (or never): the caller records this use with
  /// `touch_api_token` on the writer. Nullopt for sessions and recently used tokens, so
  /// API calls stay reads.
  std::optional<std::string> touch_token_id;
};

/// The credential in an `Authorization` value: "Bearer <t>" (scheme case-insensitive) or a
/// bare token, as the seeds' front ends send; surrounding blanks trimmed. Empty when none.
std::string bearer_credential(std::string_view authorization);

/// Resolves an `Authorization` header value to the user making the call, on a reader
/// connection (`c` is only read). A `zapd_...` credential is an API token: it must be live
/// (not revoked). Anything else is a session token: signature, `alg`, expiry against `now_s`
/// (seconds since the epoch) and the user's current token version are checked.
/// Refusals are `unauthorized` with a message fit for the client (the precise reason a
/// session token failed goes to the debug log, as `auth.token_refused` with `client`);
/// store failures keep their code.
result<authenticated> authenticate(store::connection& c, std::string_view authorization, std::int64_t now_s,
                                   const options& o, std::string_view client = {});

}  // namespace zapd::auth
