// The auth module on its own: session tokens, password hashing, API token secrets, the
// throttle, the hash pool, and the account rows in a real SQLite file.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <set>
#include <thread>

#include <catch2/catch.hpp>
#include <sodium.h>
#include <nlohmann/json.hpp>

#include "zapd/auth/accounts.hpp"
#include "zapd/auth/hash_pool.hpp"
#include "zapd/auth/jwt.hpp"
#include "zapd/auth/password.hpp"
#include "zapd/auth/throttle.hpp"
#include "zapd/core/clock.hpp"
#include "zapd/store/database.hpp"

using namespace zapd;
using namespace zapd::auth;

namespace {

// Time only moves when the test says so.
class fake_clock final : public zapd::clock {
 public:
  explicit fake_clock(std::int64_t epoch_s) : now_(std::chrono::system_clock::time_point(std::chrono::seconds(epoch_s))) {}
  std::chrono::system_clock::time_point now() const override { return now_; }
  void advance(std::chrono::seconds d) { now_ += d; }
  std::int64_t seconds() const { return now_ms() / 1000; }

 private:
  std::chrono::system_clock::time_point now_;
};

// Cheap hashing for tests: 1 pass over 64 KiB (production default: 3 passes over 32 MiB).
const password_params k_fast{1, 64 * 1024};

const std::string k_key = derive_session_key("the test secret, at least 32 chars long");

std::string forge(const nlohmann::json& header, const nlohmann::json& claims, std::string_view sig_bytes) {
  return base64url_encode(header.dump()) + "." + base64url_encode(claims.dump()) + "." + base64url_encode(sig_bytes);
}

std::unique_ptr<store::database> fresh_db() {
  char tmpl[] = "/tmp/zapd-auth-XXXXXX";
  store::database::options o;
  o.path = std::string(mkdtemp(tmpl)) + "/zapd.db";
  auto db = store::database::open(o);
  REQUIRE(db.ok());
  return std::move(*db);
}

}  // namespace

TEST_CASE("session tokens: a signed token verifies until it expires (fake clock)") {
  fake_clock clk(1'800'000'000);
  session_claims c{"user-1", clk.seconds(), clk.seconds() + 3600, 4};
  std::string token = sign_session(c, k_key);

  auto ok = verify_session(token, k_key, clk.seconds());
  REQUIRE(ok.ok());
  CHECK(ok->sub == "user-1");
  CHECK(ok->ver == 4);
  CHECK(ok->exp == c.exp);

  clk.advance(std::chrono::seconds(3599));
  CHECK(verify_session(token, k_key, clk.seconds()).ok());
  clk.advance(std::chrono::seconds(1));
  auto expired = verify_session(token, k_key, clk.seconds());
  REQUIRE_FALSE(expired.ok());
  CHECK(expired.err().code == errc::unauthorized);
  CHECK(expired.err().message.find("expired") != std::string::npos);
}

TEST_CASE("session tokens: forged and damaged tokens are refused") {
  const std::int64_t now = 1'800'000'000;
  session_claims c{"user-1", now, now + 3600, 0};
  std::string good = sign_session(c, k_key);
  auto dot1 = good.find('.');
  auto dot2 = good.rfind('.');
  std::string header = good.substr(0, dot1);
  std::string sig = good.substr(dot2 + 1);
  nlohmann::json claims = {{"sub", "user-1"}, {"iat", now}, {"exp", now + 3600}, {"ver", 0}};
  nlohmann::json admin_claims = claims;
  admin_claims["sub"] = "someone-else";

  struct scenario {
    const char* name;
    std::string token;
    const char* reason;  // part of the refusal message
  };
  std::vector<scenario> table = {
      {"claims swapped under the original signature", header + "." + base64url_encode(admin_claims.dump()) + "." + sig,
       "signature"},
      {"signature bit flipped", good.substr(0, good.size() - 2) + (good[good.size() - 2] == 'A' ? "B" : "A") + good.back(),
       "signature"},
      {"signed with another secret", sign_session(c, derive_session_key("another secret, also 32 characters")), "signature"},
      {"alg none, empty signature", forge({{"alg", "none"}, {"typ", "JWT"}}, claims, ""), "alg"},
      {"alg None, real signature", forge({{"alg", "None"}}, claims, "") + sig, "alg"},
      {"alg HS512", forge({{"alg", "HS512"}, {"typ", "JWT"}}, claims, std::string(64, 'x')), "alg"},
      {"alg RS256", forge({{"alg", "RS256"}}, claims, std::string(256, 'x')), "alg"},
      {"no alg", forge({{"typ", "JWT"}}, claims, std::string(32, 'x')), "alg"},
      {"two parts", header + "." + base64url_encode(claims.dump()), "three"},
      {"four parts", good + ".x", "three"},
      {"padding in base64", good + "=", "signature"},
      {"header not JSON", base64url_encode("nope") + good.substr(dot1), "header"},
      {"empty", "", "three"},
  };
  for (const auto& s : table) {
    INFO(s.name << ": " << s.token);
    auto r = verify_session(s.token, k_key, now);
    REQUIRE_FALSE(r.ok());
    CHECK(r.err().code == errc::unauthorized);
    CHECK(r.err().message.find(s.reason) != std::string::npos);
  }
}

TEST_CASE("session tokens: claims must be present, typed, and not issued in the future") {
  const std::int64_t now = 1'800'000'000;
  // A token issued two minutes ahead of our clock (beyond the one-minute skew) is refused.
  auto future = verify_session(sign_session({"u", now + 120, now + 3600, 0}, k_key), k_key, now);
  REQUIRE_FALSE(future.ok());
  CHECK(future.err().message.find("future") != std::string::npos);
  // Thirty seconds of skew is tolerated.
  CHECK(verify_session(sign_session({"u", now + 30, now + 3600, 0}, k_key), k_key, now).ok());
  // An empty subject is refused.
  CHECK_FALSE(verify_session(sign_session({"", now, now + 3600, 0}, k_key), k_key, now).ok());
}

TEST_CASE("passwords: argon2id hash verifies the password and nothing else") {
  auto h = hash_password("correct horse battery", k_fast);
  REQUIRE(h.ok());
  CHECK(h->starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
  CHECK(verify_password(*h, "correct horse battery"));
  CHECK_FALSE(verify_password(*h, "correct horse batterY"));
  CHECK_FALSE(verify_password(*h, ""));
  // A fresh salt each time: the same password never hashes to the same string.
  auto again = hash_password("correct horse battery", k_fast);
  REQUIRE(again.ok());
  CHECK(*again != *h);
  // Malformed stored hashes verify false rather than crash.
  CHECK_FALSE(verify_password("", "x"));
  CHECK_FALSE(verify_password("$argon2id$garbage", "x"));
  CHECK_FALSE(verify_password(std::string(500, 'a'), "x"));
  // The dummy hash (for unknown accounts) has the same parameters and matches no password.
  auto dummy = make_dummy_hash(k_fast);
  CHECK(dummy.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
  CHECK_FALSE(verify_password(dummy, "correct horse battery"));
  // It is assembled rather than computed: libsodium must read it as a well-formed hash with
  // exactly these parameters (so verifying it costs what a real one costs), same length.
  CHECK(crypto_pwhash_str_needs_rehash(dummy.c_str(), k_fast.opslimit, k_fast.memlimit_bytes) == 0);
  CHECK(dummy.size() == h->size());
  CHECK(make_dummy_hash(k_fast) != dummy);
}

TEST_CASE("API tokens: zapd_ prefix, 192 random bits, stored as SHA-256") {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    auto t = new_api_token();
    CHECK(t.starts_with("zapd_"));
    CHECK(t.size() == 5 + 48);
    CHECK(looks_like_api_token(t));
    seen.insert(t);
  }
  CHECK(seen.size() == 100);
  auto t = *seen.begin();
  CHECK(hash_api_token(t) == hash_api_token(t));
  CHECK(hash_api_token(t).size() == 64);
  CHECK(hash_api_token(t) != hash_api_token(*seen.rbegin()));
  CHECK(hash_api_token("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK_FALSE(looks_like_api_token("eyJhbGciOi..."));
}

TEST_CASE("input rules: email, password and name") {
  CHECK(normalize_email("  Ada@Example.COM \t") == "ada@example.com");
  for (const char* good : {"a@b", "ada@example.com", "first.last+tag@sub.example.org"}) {
    INFO(good);
    CHECK(validate_email(good).ok());
  }
  for (const char* bad : {"", "ada", "@example.com", "ada@", "a@@b", "a@b@c", "ada @example.com", "ada@.com",
                          "ada@example.", "ada@exa..mple"}) {
    INFO(bad);
    auto st = validate_email(bad, "username");
    REQUIRE_FALSE(st.ok());
    CHECK(st.err().code == errc::invalid_argument);
    CHECK(st.err().message.starts_with("username:"));
  }
  CHECK_FALSE(validate_email(std::string(250, 'a') + "@b.co").ok());
  CHECK_FALSE(validate_password("1234567").ok());
  CHECK(validate_password("12345678").ok());
  CHECK(validate_password(std::string(1024, 'x')).ok());
  CHECK_FALSE(validate_password(std::string(1025, 'x')).ok());
  CHECK_FALSE(validate_name("").ok());
  CHECK_FALSE(validate_name("   ").ok());
  CHECK(validate_name("Ada Lovelace").ok());
  CHECK(validate_name(std::string(200, 'x')).ok());
  CHECK_FALSE(validate_name(std::string(201, 'x')).ok());
  // Characters, not bytes: 200 two-byte characters are fine.
  std::string accents;
  for (int i = 0; i < 200; ++i) accents += "\xC3\xA9";
  CHECK(validate_name(accents).ok());
  CHECK_FALSE(validate_name("tab\there").ok());
}

TEST_CASE("throttle: attempts run out, come back over the window, and memory is bounded") {
  using namespace std::chrono_literals;
  throttle t(3, 300s, 4);
  auto t0 = std::chrono::steady_clock::time_point{} + 1000s;
  CHECK(t.acquire("a", t0) == 0);
  CHECK(t.acquire("a", t0) == 0);
  CHECK(t.acquire("a", t0) == 0);
  auto wait = t.acquire("a", t0);
  CHECK(wait == 100);  // 3 attempts per 300 s: one comes back every 100 s
  CHECK(t.acquire("b", t0) == 0);  // other keys are unaffected
  CHECK(t.acquire("a", t0 + 99s) > 0);
  CHECK(t.acquire("a", t0 + 101s) == 0);

  SECTION("a success gives its attempt back; reset forgets the key") {
    t.release("a", t0 + 101s);
    CHECK(t.acquire("a", t0 + 101s) == 0);
    CHECK(t.acquire("a", t0 + 101s) > 0);
    t.reset("a");
    CHECK(t.acquire("a", t0 + 101s) == 0);
  }
  SECTION("never more than max_keys buckets; refilled ones are dropped first") {
    CHECK(t.acquire("c", t0) == 0);
    CHECK(t.acquire("d", t0) == 0);
    CHECK(t.size() == 4);
    CHECK(t.acquire("e", t0) == 0);  // full and none refilled: let through, untracked
    CHECK(t.saturated());
    CHECK(t.size() == 4);
    // Much later every bucket has refilled, so new keys are tracked again.
    CHECK(t.acquire("e", t0 + 10'000s) == 0);
    CHECK_FALSE(t.saturated());
    CHECK(t.size() == 1);
  }
}

TEST_CASE("hash pool: bounded queue refuses with too_many_requests, stop runs what is queued") {
  hash_pool pool(1, 2);
  std::promise<void> release;
  auto gate = release.get_future().share();
  std::atomic<int> ran{0};
  std::promise<void> started;
  REQUIRE(pool.submit([&] {
    started.set_value();
    gate.wait();
    ++ran;
  }).ok());
  started.get_future().wait();  // the one thread is busy now
  REQUIRE(pool.submit([&] { ++ran; }).ok());
  REQUIRE(pool.submit([&] { ++ran; }).ok());
  auto full = pool.submit([&] { ++ran; });
  REQUIRE_FALSE(full.ok());
  CHECK(full.err().code == errc::too_many_requests);
  CHECK(pool.queued() == 2);
  release.set_value();
  pool.stop();
  CHECK(ran == 3);
  auto after = pool.submit([] {});
  REQUIRE_FALSE(after.ok());
  CHECK(after.err().code == errc::unavailable);
}

TEST_CASE("accounts: the first user is admin, emails are unique, versions and tokens") {
  auto db = fresh_db();
  auto hash = hash_password("password1", k_fast);
  REQUIRE(hash.ok());
  auto create = [&](const std::string& email) {
    return db->writes().execute<user>([&](store::connection& c) { return insert_user(c, {email, "N", *hash, "free"}); });
  };
  auto first = create("a@example.com");
  REQUIRE(first.ok());
  CHECK(first->admin);
  CHECK(first->token_version == 0);
  CHECK(first->plan == "free");
  CHECK(first->id.size() == 36);
  auto second = create("b@example.com");
  REQUIRE(second.ok());
  CHECK_FALSE(second->admin);
  auto dup = create("a@example.com");
  REQUIRE_FALSE(dup.ok());
  CHECK(dup.err().code == errc::already_exists);

  auto v = db->writes().execute<std::int64_t>([&](store::connection& c) { return bump_token_version(c, first->id); });
  REQUIRE(v.ok());
  CHECK(*v == 1);
  auto found = db->reads().with([&](store::connection& c) { return find_user_by_email(c, "a@example.com"); });
  REQUIRE(found.ok());
  REQUIRE(*found);
  CHECK((*found)->token_version == 1);
  auto nobody = db->writes().execute<std::int64_t>([&](store::connection& c) { return bump_token_version(c, "nope"); });
  REQUIRE_FALSE(nobody.ok());
  CHECK(nobody.err().code == errc::not_found);

  std::string secret = new_api_token();
  auto tok = db->writes().execute<api_token_info>(
      [&](store::connection& c) { return insert_api_token(c, first->id, "ci", hash_api_token(secret)); });
  REQUIRE(tok.ok());
  auto owner = db->reads().with([&](store::connection& c) { return find_token_owner(c, hash_api_token(secret)); });
  REQUIRE(owner.ok());
  REQUIRE(*owner);
  CHECK((*owner)->owner.id == first->id);
  // Another user cannot revoke it; its owner can, once.
  auto revoke = [&](const std::string& uid) {
    return db->writes().execute<bool>([&](store::connection& c) -> result<bool> {
      auto st = revoke_api_token(c, uid, tok->id);
      if (!st) return std::move(st).err();
      return true;
    });
  };
  auto by_other = revoke(second->id);
  REQUIRE_FALSE(by_other.ok());
  CHECK(by_other.err().code == errc::not_found);
  CHECK(revoke(first->id).ok());
  CHECK_FALSE(revoke(first->id).ok());
  auto gone = db->reads().with([&](store::connection& c) { return find_token_owner(c, hash_api_token(secret)); });
  REQUIRE(gone.ok());
  CHECK_FALSE(*gone);
  db->stop();
}
