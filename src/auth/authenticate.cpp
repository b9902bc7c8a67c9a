#include "zapd/auth/authenticate.hpp"

#include <strings.h>

#include <ctime>

#include "zapd/auth/accounts.hpp"
#include "zapd/auth/jwt.hpp"
#include "zapd/core/log.hpp"

namespace zapd::auth {
namespace {

// An API token's last_used_at is written at most this often, so API calls stay reads.
constexpr std::int64_t k_touch_interval_s = 60;

std::string iso_utc(std::int64_t epoch_s) {
  std::time_t t = static_cast<std::time_t>(epoch_s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return buf;
}

std::string_view trim_blanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

principal principal_of(const user& u) { return principal{u.id, u.email, u.plan, u.admin}; }

}  // namespace

std::string bearer_credential(std::string_view authorization) {
  std::string_view v = trim_blanks(authorization);
  if (v.size() > 7 && strncasecmp(v.data(), "bearer ", 7) == 0) v = trim_blanks(v.substr(7));
  return std::string(v);
}

result<authenticated> authenticate(store::connection& c, std::string_view authorization, std::int64_t now_s,
                                   const options& o, std::string_view client) {
  const std::string token = bearer_credential(authorization);
  if (token.empty()) return make_error(errc::unauthorized, "missing Authorization header (Bearer token)");

  if (looks_like_api_token(token)) {
    auto found = find_token_owner(c, hash_api_token(token));
    if (!found) return std::move(found).err();
    if (!*found) return make_error(errc::unauthorized, "API token is invalid or revoked");
    const token_owner& t = **found;
    authenticated out{principal_of(t.owner), std::nullopt};
    // last_used_at is ISO 8601 with milliseconds; the cut-off's seconds compare as text.
    if (!t.last_used_at || *t.last_used_at < iso_utc(now_s - k_touch_interval_s)) out.touch_token_id = t.token_id;
    return out;
  }

  auto claims = verify_session(token, o.session_key, now_s);
  if (!claims) {
    log::debug("auth.token_refused", {{"reason", claims.err().message}, {"remote", std::string(client)}});
    return make_error(errc::unauthorized, "session token is invalid or expired; sign in again");
  }
  auto found = find_user_by_id(c, claims->sub);
  if (!found) return std::move(found).err();
  if (!*found || (*found)->token_version != claims->ver) return make_error(errc::unauthorized, "session has ended; sign in again");
  return authenticated{principal_of(**found), std::nullopt};
}

}  // namespace zapd::auth
