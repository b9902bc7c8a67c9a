// auth::authenticate: an Authorization value -> the user making the call, against the
// account rows in a real SQLite file (what every API route's 401 comes from).
#include <ctime>
#include <memory>
#include <string>

#include <catch2/catch.hpp>

#include "zapd/auth/accounts.hpp"
#include "zapd/auth/authenticate.hpp"
#include "zapd/auth/jwt.hpp"
#include "zapd/store/database.hpp"

using namespace zapd;
using namespace zapd::auth;

namespace {

// Holds a fresh database with one user, and authenticates against it.
struct accounts_fixture {
  std::unique_ptr<store::database> db;
  options opts;
  user alice;

  accounts_fixture() {
    char tmpl[] = "/tmp/zapd-authn-XXXXXX";
    store::database::options o;
    o.path = std::string(mkdtemp(tmpl)) + "/zapd.db";
    auto opened = store::database::open(o);
    REQUIRE(opened.ok());
    db = std::move(*opened);
    opts.session_key = derive_session_key("the test secret, at least 32 chars long");
    auto u = db->writes().execute<user>(
        [](store::connection& c) { return insert_user(c, {"alice@example.com", "Alice", "not-a-real-hash", "paid"}); });
    REQUIRE(u.ok());
    alice = *u;
  }
  ~accounts_fixture() { db->stop(); }

  result<authenticated> check(std::string_view authorization, std::int64_t now_s) {
    return db->reads().with([&](store::connection& c) { return authenticate(c, authorization, now_s, opts); });
  }
  std::string session(std::int64_t iat, std::int64_t exp, std::string_view key) const {
    return sign_session({alice.id, iat, exp, alice.token_version}, key);
  }
  // A new API token of alice's: {id, secret}.
  std::pair<std::string, std::string> api_token() {
    std::string secret = new_api_token();
    auto t = db->writes().execute<api_token_info>(
        [&](store::connection& c) { return insert_api_token(c, alice.id, "ci", hash_api_token(secret)); });
    REQUIRE(t.ok());
    return {t->id, secret};
  }
};

constexpr std::int64_t k_now = 1'800'000'000;

void check_refused(const result<authenticated>& r, std::string_view message) {
  REQUIRE_FALSE(r.ok());
  CHECK(r.err().code == errc::unauthorized);
  CHECK(r.err().message == message);
}

}  // namespace

TEST_CASE("authenticate: a valid session token, as Bearer or bare, is its user") {
  accounts_fixture f;
  const std::string token = f.session(k_now - 10, k_now + 3600, f.opts.session_key);
  for (const std::string& header : {"Bearer " + token, "bearer   " + token + " ", token}) {
    auto who = f.check(header, k_now);
    REQUIRE(who.ok());
    CHECK(who->who.user_id == f.alice.id);
    CHECK(who->who.email == "alice@example.com");
    CHECK(who->who.plan == "paid");
    CHECK(who->who.admin);  // the first user of an installation
    CHECK_FALSE(who->touch_token_id);
  }
}

TEST_CASE("authenticate: an expired session token is refused") {
  accounts_fixture f;
  const std::string token = f.session(k_now - 3600, k_now, f.opts.session_key);
  CHECK(f.check("Bearer " + token, k_now - 1).ok());
  check_refused(f.check("Bearer " + token, k_now), "session token is invalid or expired; sign in again");
}

TEST_CASE("authenticate: a session token signed with another key is refused") {
  accounts_fixture f;
  const std::string forged = f.session(k_now, k_now + 3600, derive_session_key("another secret, also 32 characters or more"));
  check_refused(f.check("Bearer " + forged, k_now), "session token is invalid or expired; sign in again");
  // A damaged signature of a genuine token too.
  std::string damaged = f.session(k_now, k_now + 3600, f.opts.session_key);
  damaged.back() = damaged.back() == 'A' ? 'B' : 'A';
  check_refused(f.check("Bearer " + damaged, k_now), "session token is invalid or expired; sign in again");
}

TEST_CASE("authenticate: a session from before sign-out (token version bumped) has ended") {
  accounts_fixture f;
  const std::string token = f.session(k_now, k_now + 3600, f.opts.session_key);
  REQUIRE(f.check("Bearer " + token, k_now).ok());
  auto v = f.db->writes().execute<std::int64_t>([&](store::connection& c) { return bump_token_version(c, f.alice.id); });
  REQUIRE(v.ok());
  check_refused(f.check("Bearer " + token, k_now), "session has ended; sign in again");
}

TEST_CASE("authenticate: a live API token is its owner, and asks for a touch at most once a minute") {
  accounts_fixture f;
  auto [id, secret] = f.api_token();
  const std::int64_t now = std::time(nullptr);  // touch_api_token stamps SQLite's 'now'

  auto first = f.check("Bearer " + secret, now);
  REQUIRE(first.ok());
  CHECK(first->who.user_id == f.alice.id);
  CHECK(first->who.plan == "paid");
  CHECK(first->touch_token_id == id);  // never used

  auto touched = f.db->writes().execute<bool>([&, id = id](store::connection& c) -> result<bool> {
    auto st = touch_api_token(c, id);
    if (!st) return std::move(st).err();
    return true;
  });
  REQUIRE(touched.ok());
  auto again = f.check(secret, now);
  REQUIRE(again.ok());
  CHECK_FALSE(again->touch_token_id);  // used just now
  auto later = f.check(secret, now + 120);
  REQUIRE(later.ok());
  CHECK(later->touch_token_id == id);  // last use over a minute ago
}

TEST_CASE("authenticate: revoked and unknown API tokens are refused") {
  accounts_fixture f;
  auto [id, secret] = f.api_token();
  REQUIRE(f.check("Bearer " + secret, k_now).ok());
  auto revoked = f.db->writes().execute<bool>([&, id = id](store::connection& c) -> result<bool> {
    auto st = revoke_api_token(c, f.alice.id, id);
    if (!st) return std::move(st).err();
    return true;
  });
  REQUIRE(revoked.ok());
  check_refused(f.check("Bearer " + secret, k_now), "API token is invalid or revoked");
  check_refused(f.check("Bearer " + new_api_token(), k_now), "API token is invalid or revoked");
}

TEST_CASE("authenticate: a missing or empty Authorization header is refused") {
  accounts_fixture f;
  check_refused(f.check("", k_now), "missing Authorization header (Bearer token)");
  // "Bearer" alone is read as a bare token, which is not a session.
  check_refused(f.check("Bearer   ", k_now), "session token is invalid or expired; sign in again");
  check_refused(f.check(" \t", k_now), "missing Authorization header (Bearer token)");
}

TEST_CASE("bearer_credential: the Bearer scheme is optional and case-insensitive, blanks trimmed") {
  CHECK(bearer_credential("Bearer abc") == "abc");
  CHECK(bearer_credential("BEARER\tabc") == "BEARER\tabc");  // the scheme ends with a space
  CHECK(bearer_credential("bearer  abc  ") == "abc");
  CHECK(bearer_credential(" abc ") == "abc");
  CHECK(bearer_credential("Bearer") == "Bearer");  // a bare token that happens to read "Bearer"
  CHECK(bearer_credential("") == "");
}
