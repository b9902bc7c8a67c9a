// hooks module: signature schemes, body parsing, dedup paths, rate limits (issue #5).
#include <map>
#include <string>

#include <catch2/catch.hpp>

#include "fake_clock.hpp"
#include "zapd/core/crypto.hpp"
#include "zapd/core/json.hpp"
#include "zapd/hooks/payload.hpp"
#include "zapd/hooks/rate_limit.hpp"
#include "zapd/hooks/signature.hpp"

using namespace zapd;
using namespace zapd::hooks;
using json = nlohmann::json;

namespace {

header_fn headers(std::map<std::string, std::string> h) {
  return [h = std::move(h)](std::string_view name) -> std::string {
    for (const auto& [k, v] : h)
      if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
          }))
        return v;
    return {};
  };
}

// The body as a document (what dedupPath and the trigger payload see).
result<json> parse_body(std::string_view content_type, std::string_view body, std::size_t max_depth) {
  auto b = check_body(content_type, body, max_depth, true);
  if (!b) return std::move(b).err();
  return std::move(b->value);
}

}  // namespace

TEST_CASE("signature: Standard Webhooks matches the specification's example") {
  // From the Standard Webhooks specification / Svix documentation.
  const std::string secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  const std::string id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
  const std::int64_t ts = 1614265330;
  const std::string body = R"({"test": 2432232314})";
  CHECK(sign_standard(secret, id, ts, body) == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");

  auto h = headers({{"webhook-id", id}, {"webhook-timestamp", std::to_string(ts)},
                    {"webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}});
  CHECK(verify(scheme::standard, secret, h, body, ts + 10).ok());
  // Tampered body, other secret, other id.
  CHECK_FALSE(verify(scheme::standard, secret, h, body + " ", ts).ok());
  CHECK_FALSE(verify(scheme::standard, "whsec_" + std::string("AAAA"), h, body, ts).ok());
  auto other_id = headers({{"webhook-id", "msg_other"}, {"webhook-timestamp", std::to_string(ts)},
                           {"webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}});
  CHECK_FALSE(verify(scheme::standard, secret, other_id, body, ts).ok());
}

TEST_CASE("signature: Standard Webhooks tolerance, rotation and malformed headers") {
  const std::string secret = "whsec_" + std::string("c2VjcmV0LWtleS1ieXRlcy0xMjM0NTY3ODkw");
  const std::string body = R"({"a":1})";
  const std::int64_t now = 1'800'000'000;
  auto at = [&](std::int64_t ts, std::string sig) {
    return headers({{"webhook-id", "msg_1"}, {"webhook-timestamp", std::to_string(ts)}, {"webhook-signature", sig}});
  };
  SECTION("5 minutes either way passes, beyond fails with a clear message") {
    CHECK(verify(scheme::standard, secret, at(now - 300, sign_standard(secret, "msg_1", now - 300, body)), body, now).ok());
    CHECK(verify(scheme::standard, secret, at(now + 300, sign_standard(secret, "msg_1", now + 300, body)), body, now).ok());
    auto old = verify(scheme::standard, secret, at(now - 301, sign_standard(secret, "msg_1", now - 301, body)), body, now);
    REQUIRE_FALSE(old.ok());
    CHECK(old.err().code == errc::unauthorized);
    CHECK_THAT(old.err().message, Catch::Contains("webhook-timestamp"));
  }
  SECTION("several signatures: any valid v1 passes (key rotation)") {
    std::string both = "v1,bm90LWEtc2lnbmF0dXJl " + sign_standard(secret, "msg_1", now, body) + " v2,ignored";
    CHECK(verify(scheme::standard, secret, at(now, both), body, now).ok());
    CHECK_FALSE(verify(scheme::standard, secret, at(now, "v1,bm90LWEtc2lnbmF0dXJl v1,AAAA"), body, now).ok());
  }
  SECTION("missing or malformed parts") {
    CHECK_FALSE(verify(scheme::standard, secret, headers({}), body, now).ok());
    CHECK_FALSE(verify(scheme::standard, secret, at(now, "v1,not base64!!"), body, now).ok());
    CHECK_FALSE(verify(scheme::standard, secret, at(now, "v2," + sign_standard(secret, "msg_1", now, body).substr(3)), body, now).ok());
    auto bad_ts = headers({{"webhook-id", "msg_1"}, {"webhook-timestamp", "yesterday"},
                           {"webhook-signature", sign_standard(secret, "msg_1", now, body)}});
    CHECK_FALSE(verify(scheme::standard, secret, bad_ts, body, now).ok());
  }
  SECTION("an unset secret refuses everything") {
    auto st = verify(scheme::standard, "", at(now, sign_standard("", "msg_1", now, body)), body, now);
    REQUIRE_FALSE(st.ok());
    CHECK_THAT(st.err().message, Catch::Contains("secret"));
  }
}

TEST_CASE("signature: GitHub matches GitHub's documented example") {
  // https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
  const std::string secret = "It's a Secret to Everybody";
  const std::string body = "Hello, World!";
  const std::string expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
  CHECK(sign_github(secret, body) == expected);
  CHECK(verify(scheme::github, secret, headers({{"X-Hub-Signature-256", expected}}), body, 0).ok());
  CHECK_FALSE(verify(scheme::github, secret, headers({{"X-Hub-Signature-256", expected}}), body + "!", 0).ok());
  CHECK_FALSE(verify(scheme::github, "other", headers({{"X-Hub-Signature-256", expected}}), body, 0).ok());
  CHECK_FALSE(verify(scheme::github, secret, headers({{"X-Hub-Signature-256", expected.substr(7)}}), body, 0).ok());
  CHECK_FALSE(verify(scheme::github, secret, headers({}), body, 0).ok());
}

TEST_CASE("signature: Stripe with tolerance and several v1 values") {
  const std::string secret = "whsec_stripe_test_secret";
  const std::string body = R"({"id":"evt_1","type":"charge.succeeded"})";
  const std::int64_t now = 1'800'000'000;
  std::string good = sign_stripe(secret, now, body);
  CHECK(good.starts_with("t=1800000000,v1="));
  CHECK(verify(scheme::stripe, secret, headers({{"Stripe-Signature", good}}), body, now + 299).ok());
  // Another v1 first (rotation) and a v0 the scheme ignores.
  std::string rotated = "t=" + std::to_string(now) + ",v1=" + std::string(64, 'a') + "," + good.substr(good.find("v1=")) + ",v0=abc";
  CHECK(verify(scheme::stripe, secret, headers({{"Stripe-Signature", rotated}}), body, now).ok());
  auto old = verify(scheme::stripe, secret, headers({{"Stripe-Signature", sign_stripe(secret, now - 400, body)}}), body, now);
  REQUIRE_FALSE(old.ok());
  CHECK_THAT(old.err().message, Catch::Contains("timestamp"));
  CHECK_FALSE(verify(scheme::stripe, secret, headers({{"Stripe-Signature", good}}), body + " ", now).ok());
  CHECK_FALSE(verify(scheme::stripe, secret, headers({{"Stripe-Signature", "v1=" + std::string(64, 'a')}}), body, now).ok());
}

TEST_CASE("signature: generic HMAC header in hex, sha256= hex or base64") {
  const std::string secret = "s3cr3t";
  const std::string body = "payload";
  verify_options o;
  o.hmac_header = "X-My-Signature";
  std::string hex = sign_hmac(secret, body);
  CHECK(hex.size() == 64);
  CHECK(verify(scheme::hmac, secret, headers({{"X-My-Signature", hex}}), body, 0, o).ok());
  CHECK(verify(scheme::hmac, secret, headers({{"x-my-signature", "sha256=" + hex}}), body, 0, o).ok());
  // The same MAC in base64.
  std::string b64 = base64_encode(*hex_decode(hex));
  CHECK(verify(scheme::hmac, secret, headers({{"X-My-Signature", b64}}), body, 0, o).ok());
  CHECK_FALSE(verify(scheme::hmac, secret, headers({{"X-My-Signature", "sha256=" + std::string(64, '0')}}), body, 0, o).ok());
  CHECK_FALSE(verify(scheme::hmac, secret, headers({{"X-Signature", hex}}), body, 0, o).ok());  // wrong header
  CHECK_FALSE(verify(scheme::hmac, secret, headers({{"X-My-Signature", sign_hmac("other", body)}}), body, 0, o).ok());
  CHECK(verify(scheme::none, "", headers({}), body, 0).ok());
}

TEST_CASE("payload: JSON, form and text bodies by content type") {
  auto j = parse_body("application/json; charset=utf-8", R"({"comment":{"email":"a@b.c"}})", 64);
  REQUIRE(j.ok());
  CHECK((*j)["comment"]["email"] == "a@b.c");
  CHECK(parse_body("application/vnd.api+json", "[1,2]", 64)->size() == 2);
  CHECK(parse_body("application/json", "  ", 64)->is_null());

  auto bad = parse_body("application/json", R"({"comment":)", 64);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.err().code == errc::invalid_argument);
  CHECK_THAT(bad.err().message, Catch::Contains("JSON"));

  std::string deep = std::string(65, '[') + std::string(65, ']');
  auto too_deep = parse_body("application/json", deep, 64);
  REQUIRE_FALSE(too_deep.ok());
  CHECK_THAT(too_deep.err().message, Catch::Contains("64"));
  CHECK(parse_body("application/json", std::string(64, '[') + std::string(64, ']'), 64).ok());
  // Brackets inside strings do not count.
  CHECK(parse_body("application/json", R"({"s":")" + std::string(200, '[') + R"("})", 64).ok());

  auto form = parse_body("application/x-www-form-urlencoded", "name=Ada+Lovelace&email=ada%40example.com&flag&x=%zz", 64);
  REQUIRE(form.ok());
  CHECK((*form)["name"] == "Ada Lovelace");
  CHECK((*form)["email"] == "ada@example.com");
  CHECK((*form)["flag"] == "");
  CHECK((*form)["x"] == "%zz");

  auto text = parse_body("text/plain", "just words", 64);
  CHECK(*text == "just words");
  // Invalid UTF-8 in text is replaced, never a later exception.
  auto bin = parse_body("application/octet-stream", std::string("\xff\xfe ok", 5), 64);
  REQUIRE(bin.ok());
  CHECK_NOTHROW(bin->dump());
  CHECK_FALSE(parse_body("application/json", "\"\xff\"", 64).ok());
}

TEST_CASE("payload: trigger payload drops credentials, dedup paths, times") {
  auto p = trigger_payload("POST", json{{"a", 1}}, "application/json", {{"page", "2"}},
                           {{"Authorization", "Bearer x"}, {"Cookie", "s=1"}, {"X-Api-Key", "k"}, {"X-GitHub-Event", "push"}},
                           1'795'435'200'123);
  CHECK(p["method"] == "POST");
  CHECK(p["body"]["a"] == 1);
  CHECK(p["query"]["page"] == "2");
  CHECK(p["headers"] == json{{"x-github-event", "push"}});
  CHECK(p["receivedAt"] == "2026-11-23T12:00:00.123Z");

  json body = {{"event", {{"id", "evt_9"}, {"n", 3}}}, {"items", json::array({json{{"id", "i0"}}})}};
  CHECK(value_at(body, "event.id") == "evt_9");
  CHECK(value_at(body, "event.n") == "3");
  CHECK(value_at(body, "items.0.id") == "i0");
  CHECK_FALSE(value_at(body, "items.1.id"));
  CHECK_FALSE(value_at(body, "event.missing"));
  CHECK(nesting_depth(R"({"a":[{"b":"]]]"}]})", 100) == 3);
}

TEST_CASE("rate limiter: token buckets refill with the clock, both or neither") {
  test::fake_clock clk;
  rate_limiter rl(clk);
  rate_limiter::rule zap{2, 4};    // 2/s, burst 4
  rate_limiter::rule user{10, 5};  // 10/s, burst 5
  for (int i = 0; i < 4; ++i) CHECK(rl.take("zap:a", zap, "user:u", user) == 0);
  CHECK(rl.take("zap:a", zap, "user:u", user) == 1);  // zap bucket empty: retry in 1 s
  // Another zap of the same user still has its own bucket; the user bucket has 1 left.
  CHECK(rl.take("zap:b", zap, "user:u", user) == 0);
  CHECK(rl.take("zap:b", zap, "user:u", user) >= 1);  // user bucket empty now
  clk.advance(std::chrono::milliseconds(500));         // +1 zap token, +5 user tokens
  CHECK(rl.take("zap:a", zap, "user:u", user) == 0);
  CHECK(rl.take("zap:a", zap, "user:u", user) == 1);
  // The refusal by zap a's bucket did not spend a user token: exactly 4 are left.
  for (int i = 0; i < 4; ++i) CHECK(rl.take("zap:c", zap, "user:u", user) == 0);
  CHECK(rl.take("zap:d", zap, "user:u", user) >= 1);
  // Unlimited rules never refuse.
  for (int i = 0; i < 1000; ++i) REQUIRE(rl.take("zap:x", {}, "user:x", {}) == 0);
}

TEST_CASE("payload: the hot path keeps a JSON body as its text and yields the same trigger document") {
  const std::string raw = "  {\"comment\": {\"email\": \"a@b.c\", \"n\": [1, 2.5, null]}, \"s\": \"\\u00e9\\n\"}\n";
  auto fast = check_body("application/json", raw, 64, false);
  REQUIRE(fast.ok());
  REQUIRE(fast->json_text);
  CHECK(fast->value.is_null());  // no document built
  const std::map<std::string, std::string> query = {{"q", "1"}};
  const std::vector<std::pair<std::string, std::string>> hdrs = {{"X-A", "b"}, {"Cookie", "c"}};
  auto text = trigger_payload_text("POST", *fast, "application/json", query, hdrs, 1'795'435'200'000);
  auto slow = trigger_payload("POST", json::parse(raw), "application/json", query, hdrs, 1'795'435'200'000);
  CHECK(json::parse(text) == slow);
  // Form and text bodies go through the document path and match too.
  auto form = check_body("application/x-www-form-urlencoded", "a=1&b=%C3%A9", 64, false);
  REQUIRE(form.ok());
  CHECK_FALSE(form->json_text);
  CHECK(json::parse(trigger_payload_text("PUT", *form, "application/x-www-form-urlencoded", {}, {}, 0))["body"] ==
        json{{"a", "1"}, {"b", "é"}});
  // Asking for the document (dedupPath) gives it alongside the text.
  auto both = check_body("application/json", R"({"event":{"id":"e1"}})", 64, true);
  REQUIRE(both.ok());
  CHECK(value_at(both->value, "event.id") == "e1");
  // What the hot path refuses: bad JSON, invalid UTF-8, trailing garbage, too deep.
  CHECK_FALSE(check_body("application/json", "{\"a\":1} x", 64, false).ok());
  CHECK_FALSE(check_body("application/json", "\"\xff\"", 64, false).ok());
  CHECK_FALSE(check_body("application/json", std::string(70, '[') + std::string(70, ']'), 64, false).ok());
}

// check_body validates with simdjson first and asks nlohmann again when simdjson says no: the
// bodies it takes are exactly those nlohmann::json::accept takes (payload_fuzz compares them on
// any input). These are the texts where the two could differ, and the path for large bodies.
TEST_CASE("payload: a JSON body is accepted exactly when nlohmann accepts it, on the fast path and off it") {
  const std::vector<std::string> texts = {
      R"({"a":1})", " [ ] ", "true", "-0", "1E+2", "[1e-400]", R"("\u0000")", R"("\ud83d\ude00")",
      "123456789012345678901234567890",  // beyond 64 bits: simdjson refuses it, nlohmann takes it
      "18446744073709551616", "-9223372036854775809",
      "1e400", "01", "1.", "[1,]", R"({"a":1,})", "{} {}", "nul", R"("\x")", R"("\u12")",
      R"("\ud800")", R"("\udc00")", R"("\ud800\u0041")", "\"\x01\"", "\"\xed\xa0\x80\"", "\"\xc0\xaf\"",
      "\"\xf4\x90\x80\x80\"",
      // Over 64 KiB: checked by nlohmann alone.
      "[" + std::string(70'000, ' ') + "1]", "[" + std::string(70'000, ' ') + "1,]"};
  for (const auto& t : texts) {
    INFO(t.substr(0, 60));
    CHECK(check_body("application/json", t, 64, false).ok() == json::accept(t));
  }
  // A typical body, many times over on one thread (the parser and its buffer are reused).
  const std::string body = R"({"event":"comment.created","comment":{"id":12345,"email":"ada@example.com"}})";
  for (int i = 0; i < 1000; ++i) REQUIRE(check_body("application/json", body, 64, false).ok());
  CHECK_FALSE(check_body("application/json", body.substr(0, body.size() - 1), 64, false).ok());
  // One byte order mark is dropped; a second is refused (nlohmann alone would skip it, and the
  // stored body would start with it).
  const std::string bom = "\xEF\xBB\xBF";
  const std::string with_one = bom + body, with_two = bom + bom + body;  // json_text views the input
  auto one = check_body("application/json", with_one, 64, false);
  REQUIRE(one.ok());
  CHECK(one->json_text == body);
  auto two = check_body("application/json", with_two, 64, false);
  REQUIRE_FALSE(two.ok());
  CHECK_THAT(two.err().message, Catch::Contains("two byte order marks"));
}

TEST_CASE("payload: the trigger text written without a document is byte for byte the document's dump") {
  const std::string raw = R"({"a":[1,{"b":"c"}]})";
  auto b = check_body("application/json; charset=utf-8", raw, 64, false);
  REQUIRE(b.ok());
  const std::map<std::string, std::string> query = {{"page", "2"}, {"q", "say \"hi\" \\ bye"}, {"z", ""}};
  // Repeated names (any case: the last wins), credentials dropped, quotes and backslashes.
  const std::vector<std::pair<std::string, std::string>> ascii = {
      {"X-Tag", "one"},  {"Content-Type", "application/json; charset=utf-8"}, {"x-tag", "two"},
      {"Authorization", "Bearer s3cret"}, {"If-None-Match", "\"etag\\1\""}, {"Accept", "*/*"}, {"X-TAG", "three"}};
  const auto expected = [&](const std::vector<std::pair<std::string, std::string>>& hdrs) {
    return dump_safe(trigger_payload("PATCH", json::parse(raw), "application/json; charset=utf-8", query, hdrs, 1'795'435'200'123));
  };
  CHECK(trigger_payload_text("PATCH", *b, "application/json; charset=utf-8", query, ascii, 1'795'435'200'123) == expected(ascii));
  CHECK(json::parse(expected(ascii))["headers"]["x-tag"] == "three");
  // No headers, no query.
  CHECK(trigger_payload_text("POST", *b, "application/json", {}, {}, 0) ==
        dump_safe(trigger_payload("POST", json::parse(raw), "application/json", {}, {}, 0)));
  // Beyond printable ASCII (UTF-8, control bytes, invalid bytes): the document path, same bytes.
  for (const std::string& odd : std::vector<std::string>{"caf\xc3\xa9", "tab\there", "bad\xff", std::string("nul\0x", 5)}) {
    auto hdrs = ascii;
    hdrs.emplace_back("X-Odd", odd);
    CHECK(trigger_payload_text("PATCH", *b, "application/json; charset=utf-8", query, hdrs, 1'795'435'200'123) == expected(hdrs));
  }
}

TEST_CASE("check_body: a UTF-8 byte order mark before a JSON body is dropped, so the stored text is JSON (payload_fuzz)") {
  const std::string raw = "\xEF\xBB\xBF{\"a\":1}";
  auto b = check_body("application/json", raw, 64, false);
  REQUIRE(b.ok());
  REQUIRE(b->json_text);
  CHECK(*b->json_text == "{\"a\":1}");
  auto text = trigger_payload_text("POST", *b, "application/json", {}, {}, 0);
  CHECK(zapd::parse_json(text, zapd::json_depth::stored).ok());
}
