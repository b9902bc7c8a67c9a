#include "zapd/http/auth_routes.hpp"

#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "zapd/auth/accounts.hpp"
#include "zapd/auth/authenticate.hpp"
#include "zapd/auth/jwt.hpp"
#include "zapd/core/crypto.hpp"
#include "zapd/core/log.hpp"
#include "zapd/http/hash_await.hpp"
#include "zapd/http/store_await.hpp"

namespace zapd::http {
namespace {

namespace asio = boost::asio;
using json = nlohmann::json;

response too_many(std::int64_t retry_after_s, std::string message) {
  auto r = error_response(errc::too_many_requests, std::move(message));
  r.with_header("Retry-After", fmt::to_string(retry_after_s));
  return r;
}

response fail(const error& e) {
  if (e.code == errc::too_many_requests) return too_many(1, e.message);
  auto r = error_response(e);
  if (e.code == errc::unauthorized) r.with_header("WWW-Authenticate", "Bearer");
  return r;
}

json user_json(const auth::user& u) {
  return {{"id", u.id}, {"name", u.name}, {"email", u.email}, {"plan", u.plan}, {"createdAt", u.created_at}};
}

json token_json(const auth::api_token_info& t) {
  return {{"id", t.id},
          {"name", t.name},
          {"createdAt", t.created_at},
          {"lastUsedAt", t.last_used_at ? json(*t.last_used_at) : json(nullptr)}};
}

// The JSON object body of a request, or a 400.
result<json> object_body(const request& req) {
  auto body = parse_json_body(req);
  if (!body) return body;
  if (!body->is_object()) return make_error(errc::invalid_argument, "request body must be a JSON object");
  return body;
}

result<std::string> string_field(const json& body, const char* field) {
  auto it = body.find(field);
  if (it == body.end() || it->is_null()) return make_error(errc::invalid_argument, fmt::format("{}: is required", field));
  if (!it->is_string()) return make_error(errc::invalid_argument, fmt::format("{}: must be a string", field));
  return it->get<std::string>();
}

// Account attempts are counted per (client, account): a flood of wrong passwords from one
// address must not lock the owner out from another. The email is hashed so a key's size
// (and the throttle's memory) does not depend on what the client sent.
std::string account_key(const std::string& remote, std::string_view email) {
  return remote + ' ' + sha256(email);
}

template <class Fn>
auto read(store::database& db, Fn&& fn) {
  return db.reads().with(std::forward<Fn>(fn));
}

}  // namespace

auth_api::auth_api(store::database& db, auth::hash_pool& hashes, const auth::options& opts, const clock& clk)
    : db_(db),
      hashes_(hashes),
      opts_(opts),
      clk_(clk),
      dummy_hash_(auth::make_dummy_hash(opts.hashing)),
      by_account_(opts.signin_account_attempts, opts.signin_window, opts.throttle_max_keys),
      by_ip_(opts.signin_ip_attempts, opts.signin_window, opts.throttle_max_keys) {}

authenticator auth_api::authenticate() const {
  return [this](const request& req) -> asio::awaitable<result<principal>> {
    const std::string authorization = req.header("Authorization");
    const std::int64_t now = clk_.now_ms() / 1000;
    auto found = read(db_, [&](store::connection& c) { return auth::authenticate(c, authorization, now, opts_, req.remote); });
    if (!found) co_return std::move(found).err();
    if (found->touch_token_id) {
      // Awaited (so a listing right after shows it) but its outcome ignored: failing to
      // record a use must not fail the call. At most one write per token per minute.
      auto touch = [id = std::move(*found->touch_token_id)](store::connection& c) -> result<bool> {
        auto st = auth::touch_api_token(c, id);
        if (!st) return std::move(st).err();
        return true;
      };
      auto touched = co_await write<bool>(db_.writes(), std::move(touch));
      if (!touched) log::warn("auth.token_touch_failed", {{"error", touched.err().message}});
    }
    co_return std::move(found->who);
  };
}

void auth_api::add_routes(router& r) const {
  using bhttp::verb;
  const authenticator auth = authenticate();

  r.add(verb::post, "/api/v1/user/signup", [this](request& req) -> asio::awaitable<response> {
    if (!opts_.signup_open)
      co_return error_response(errc::forbidden, "sign-up is closed on this server; ask its administrator for an account");
    auto body = object_body(req);
    if (!body) co_return fail(body.err());
    auto raw_email = string_field(*body, "username");
    if (!raw_email) co_return fail(raw_email.err());
    std::string email = auth::normalize_email(*raw_email);
    if (auto st = auth::validate_email(email, "username"); !st) co_return fail(st.err());
    auto password = string_field(*body, "password");
    if (!password) co_return fail(password.err());
    if (auto st = auth::validate_password(*password); !st) co_return fail(st.err());
    auto name = string_field(*body, "name");
    if (!name) co_return fail(name.err());
    if (auto st = auth::validate_name(*name); !st) co_return fail(st.err());

    // Answer a taken email before paying for a hash; insert_user checks again in the writer.
    auto taken = read(db_, [&](store::connection& c) { return auth::find_user_by_email(c, email); });
    if (!taken) co_return fail(taken.err());
    if (*taken) co_return error_response(errc::already_exists, "an account with this email already exists");

    // Every job below is a named local, never a temporary inside the co_await expression:
    // GCC 12 destroys a capturing lambda temporary there twice (double free).
    auto hash_job = [pw = std::move(*password), params = opts_.hashing] { return auth::hash_password(pw, params); };
    auto hash = co_await on_hash_pool<std::string>(hashes_, std::move(hash_job));
    if (!hash) co_return fail(hash.err());
    auth::new_user nu{email, *name, std::move(*hash), opts_.default_plan};
    auto insert = [nu = std::move(nu)](store::connection& c) { return auth::insert_user(c, nu); };
    auto u = co_await write<auth::user>(db_.writes(), std::move(insert));
    if (!u) co_return fail(u.err());
    log::info("auth.signup", {{"user_id", u->id}, {"admin", u->admin ? "true" : "false"}, {"remote", req.remote}});
    co_return response::json(200, {{"message", "signed up"}, {"user", user_json(*u)}});
  });

  r.add(verb::post, "/api/v1/user/signin", [this](request& req) -> asio::awaitable<response> {
    auto body = object_body(req);
    if (!body) co_return fail(body.err());
    auto raw_email = string_field(*body, "username");
    if (!raw_email) co_return fail(raw_email.err());
    auto password = string_field(*body, "password");
    if (!password) co_return fail(password.err());
    std::string email = auth::normalize_email(*raw_email);

    // Throttle before hashing: a guess costs the server a hash, so it must cost the client too.
    const auto mono = std::chrono::steady_clock::now();
    if (auto wait = by_ip_.acquire(req.remote, mono)) {
      log::warn("auth.signin_throttled", {{"by", "ip"}, {"remote", req.remote}});
      co_return too_many(wait, "too many sign-in attempts from this address; try again later");
    }
    const std::string account = account_key(req.remote, email);
    if (auto wait = by_account_.acquire(account, mono)) {
      log::warn("auth.signin_throttled", {{"by", "account"}, {"email", email}, {"remote", req.remote}});
      co_return too_many(wait, "too many sign-in attempts for this account from this address; try again later");
    }

    auto found = read(db_, [&](store::connection& c) { return auth::find_user_by_email(c, email); });
    if (!found) co_return fail(found.err());
    // An unknown email is checked against a dummy hash of the same cost: same time, same answer.
    std::string hash = *found ? (*found)->password_hash : dummy_hash_;
    auto verify_job = [hash = std::move(hash), pw = std::move(*password)] {
      return result<bool>(auth::verify_password(hash, pw));
    };
    auto match = co_await on_hash_pool<bool>(hashes_, std::move(verify_job));
    if (!match) co_return fail(match.err());
    if (!*match || !*found) {
      log::info("auth.signin_failed", {{"email", email}, {"remote", req.remote}});
      co_return fail(make_error(errc::unauthorized, "invalid email or password"));
    }
    by_account_.reset(account);
    by_ip_.release(req.remote, mono);
    const auth::user& u = **found;
    const std::int64_t now = clk_.now_ms() / 1000;
    auto token = auth::sign_session({u.id, now, now + opts_.session_ttl_seconds, u.token_version}, opts_.session_key);
    log::info("auth.signin", {{"user_id", u.id}, {"remote", req.remote}});
    co_return response::json(200, {{"token", token}});
  });

  r.add(verb::get, "/api/v1/user", authed(auth, [this](request&, const principal& p) -> asio::awaitable<response> {
          auto found = read(db_, [&](store::connection& c) { return auth::find_user_by_id(c, p.user_id); });
          if (!found) co_return fail(found.err());
          if (!*found) co_return fail(make_error(errc::unauthorized, "account no longer exists"));
          co_return response::json(200, {{"user", user_json(**found)}});
        }));

  r.add(verb::patch, "/api/v1/user", authed(auth, [this](request& req, const principal& p) -> asio::awaitable<response> {
          auto body = object_body(req);
          if (!body) co_return fail(body.err());
          for (const auto& [k, v] : body->items())
            if (k != "name") co_return fail(make_error(errc::invalid_argument, k + ": unknown field; PATCH /api/v1/user changes name"));
          auto name = string_field(*body, "name");
          if (!name) co_return fail(name.err());
          if (auto st = auth::validate_name(*name); !st) co_return fail(st.err());
          auto rename = [id = p.user_id, n = std::move(*name)](store::connection& c) { return auth::set_name(c, id, n); };
          auto u = co_await write<auth::user>(db_.writes(), std::move(rename));
          if (!u) co_return fail(u.err());
          co_return response::json(200, {{"user", user_json(*u)}});
        }));

  r.add(verb::post, "/api/v1/user/signout", authed(auth, [this](request&, const principal& p) -> asio::awaitable<response> {
          auto bump = [id = p.user_id](store::connection& c) { return auth::bump_token_version(c, id); };
          auto v = co_await write<std::int64_t>(db_.writes(), std::move(bump));
          if (!v) co_return fail(v.err());
          log::info("auth.signout", {{"user_id", p.user_id}});
          co_return response::json(200, {{"message", "signed out"}});
        }));

  r.add(verb::post, "/api/v1/user/password", authed(auth, [this](request& req, const principal& p) -> asio::awaitable<response> {
          auto body = object_body(req);
          if (!body) co_return fail(body.err());
          auto current = string_field(*body, "currentPassword");
          if (!current) co_return fail(current.err());
          auto next = string_field(*body, "newPassword");
          if (!next) co_return fail(next.err());
          if (auto st = auth::validate_password(*next, "newPassword"); !st) co_return fail(st.err());
          // A stolen session must not become an oracle for the current password.
          const std::string account = account_key(req.remote, p.email);
          if (auto wait = by_account_.acquire(account, std::chrono::steady_clock::now()))
            co_return too_many(wait, "too many password attempts for this account from this address; try again later");

          auto found = read(db_, [&](store::connection& c) { return auth::find_user_by_id(c, p.user_id); });
          if (!found) co_return fail(found.err());
          if (!*found) co_return fail(make_error(errc::unauthorized, "account no longer exists"));
          // Verify and re-hash in one trip to the pool.
          auto rehash = [old = (*found)->password_hash, cur = std::move(*current), pw = std::move(*next),
                         params = opts_.hashing]() -> result<std::string> {
            if (!auth::verify_password(old, cur)) return make_error(errc::forbidden, "currentPassword: is wrong");
            return auth::hash_password(pw, params);
          };
          auto hash = co_await on_hash_pool<std::string>(hashes_, std::move(rehash));
          if (!hash) co_return fail(hash.err());
          auto store_hash = [id = p.user_id, h = std::move(*hash)](store::connection& c) {
            return auth::set_password_hash(c, id, h);
          };
          auto v = co_await write<std::int64_t>(db_.writes(), std::move(store_hash));
          if (!v) co_return fail(v.err());
          by_account_.reset(account);
          const std::int64_t now = clk_.now_ms() / 1000;
          auto token = auth::sign_session({p.user_id, now, now + opts_.session_ttl_seconds, *v}, opts_.session_key);
          log::info("auth.password_changed", {{"user_id", p.user_id}});
          co_return response::json(200, {{"message", "password changed; other sessions ended"}, {"token", token}});
        }));

  r.add(verb::post, "/api/v1/tokens", authed(auth, [this](request& req, const principal& p) -> asio::awaitable<response> {
          auto body = object_body(req);
          if (!body) co_return fail(body.err());
          auto name = string_field(*body, "name");
          if (!name) co_return fail(name.err());
          if (auto st = auth::validate_token_name(*name); !st) co_return fail(st.err());
          std::string token = auth::new_api_token();
          auto insert = [id = p.user_id, n = *name, h = auth::hash_api_token(token)](store::connection& c) {
            return auth::insert_api_token(c, id, n, h);
          };
          auto t = co_await write<auth::api_token_info>(db_.writes(), std::move(insert));
          if (!t) co_return fail(t.err());
          log::info("auth.api_token_created", {{"user_id", p.user_id}, {"token_id", t->id}});
          json j = token_json(*t);
          j["token"] = token;
          co_return response::json(200, j);
        }));

  r.add(verb::get, "/api/v1/tokens", authed(auth, [this](request&, const principal& p) -> asio::awaitable<response> {
          auto list = read(db_, [&](store::connection& c) { return auth::list_api_tokens(c, p.user_id); });
          if (!list) co_return fail(list.err());
          json arr = json::array();
          for (const auto& t : *list) arr.push_back(token_json(t));
          co_return response::json(200, {{"tokens", arr}});
        }));

  r.add(verb::delete_, "/api/v1/tokens/{id}", authed(auth, [this](request& req, const principal& p) -> asio::awaitable<response> {
          auto revoke = [uid = p.user_id, tid = req.params["id"]](store::connection& c) -> result<bool> {
            auto s = auth::revoke_api_token(c, uid, tid);
            if (!s) return std::move(s).err();
            return true;
          };
          auto st = co_await write<bool>(db_.writes(), std::move(revoke));
          if (!st) co_return fail(st.err());
          log::info("auth.api_token_revoked", {{"user_id", p.user_id}, {"token_id", req.params["id"]}});
          co_return response::json(200, {{"message", "API token revoked"}});
        }));
}

}  // namespace zapd::http
