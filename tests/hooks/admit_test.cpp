// hooks::admit: whether a webhook becomes a run, and the run it becomes (no HTTP, no
// database, no clock: the time is a parameter).
#include <cstdint>
#include <string>

#include <catch2/catch.hpp>

#include "zapd/core/crypto.hpp"
#include "zapd/core/json.hpp"
#include "zapd/hooks/admit.hpp"
#include "zapd/hooks/signature.hpp"

using namespace zapd;
using namespace zapd::hooks;
using json = nlohmann::json;

namespace {

constexpr std::int64_t k_now_ms = 1'795'435'200'123;  // 2026-11-23T12:00:00.123Z
constexpr std::int64_t k_now_s = k_now_ms / 1000;

zap_info a_zap() {
  zap_info z;
  z.id = "zap-1";
  z.user_id = "user-1";
  z.enabled = true;
  z.version = 7;
  z.actions = 2;
  z.lane = queue::lane::paid;
  return z;
}

// `body` is viewed, not copied: string literals, or strings that outlive the request.
inbound a_request(std::string_view body = R"({"event":{"id":"evt_1"}})") {
  inbound in;
  in.user_id = "user-1";
  in.zap_id = "zap-1";
  in.method = "POST";
  in.content_type = "application/json";
  in.body = body;
  in.headers = {{"Content-Type", "application/json"}, {"X-Event", "push"}};
  return in;
}

errc code_of(const result<runs::new_run>& r) { return r.ok() ? errc::ok : r.err().code; }

// The 48-bit Unix-millisecond prefix of a UUIDv7 ("0190a1b2-c3d4-7...").
std::int64_t uuid_v7_ms(const std::string& id) {
  std::string hex = id.substr(0, 8) + id.substr(9, 4);
  return std::stoll(hex, nullptr, 16);
}

}  // namespace

TEST_CASE("admit: no zap and another user's zap are not_found, a disabled zap is disabled") {
  const zap_info z = a_zap();
  CHECK(admit(&z, a_request(), k_now_ms).ok());

  auto missing = admit(nullptr, a_request(), k_now_ms);
  REQUIRE(code_of(missing) == errc::not_found);
  CHECK(missing.err().message == "no zap zap-1 for user user-1");

  inbound other = a_request();
  other.user_id = "user-2";
  auto foreign = admit(&z, other, k_now_ms);
  REQUIRE(code_of(foreign) == errc::not_found);
  CHECK(foreign.err().message == "no zap zap-1 for user user-2");

  zap_info off = a_zap();
  off.enabled = false;
  auto disabled = admit(&off, a_request(), k_now_ms);
  REQUIRE(code_of(disabled) == errc::disabled);
  CHECK_THAT(disabled.err().message, Catch::Contains("zap-1") && Catch::Contains("disabled"));

  // Disabled is answered before the signature is looked at.
  off.sig = scheme::github;
  off.secret = "s";
  CHECK(code_of(admit(&off, a_request(), k_now_ms)) == errc::disabled);
}

TEST_CASE("admit: each signature scheme accepts its sender's signature and refuses another") {
  const std::string secret = "the-signing-secret";
  const std::string body = R"({"a":1})";
  zap_info z = a_zap();
  z.secret = secret;
  auto signed_with = [&](std::vector<std::pair<std::string, std::string>> h) {
    inbound in = a_request(body);
    for (auto& kv : h) in.headers.push_back(std::move(kv));
    return admit(&z, in, k_now_ms);
  };

  SECTION("standard") {
    z.sig = scheme::standard;
    CHECK(signed_with({{"webhook-id", "msg_1"},
                       {"webhook-timestamp", std::to_string(k_now_s)},
                       {"webhook-signature", sign_standard(secret, "msg_1", k_now_s, body)}})
              .ok());
    auto wrong = signed_with({{"webhook-id", "msg_1"},
                              {"webhook-timestamp", std::to_string(k_now_s)},
                              {"webhook-signature", sign_standard("other", "msg_1", k_now_s, body)}});
    CHECK(code_of(wrong) == errc::unauthorized);
    // Signed correctly, but long ago: the time given to admit is the one checked.
    auto old = signed_with({{"webhook-id", "msg_1"},
                            {"webhook-timestamp", std::to_string(k_now_s - 3600)},
                            {"webhook-signature", sign_standard(secret, "msg_1", k_now_s - 3600, body)}});
    CHECK(code_of(old) == errc::unauthorized);
  }
  SECTION("github") {
    z.sig = scheme::github;
    CHECK(signed_with({{"X-Hub-Signature-256", sign_github(secret, body)}}).ok());
    CHECK(code_of(signed_with({{"X-Hub-Signature-256", sign_github(secret, body + " ")}})) == errc::unauthorized);
    CHECK(code_of(signed_with({})) == errc::unauthorized);
  }
  SECTION("stripe") {
    z.sig = scheme::stripe;
    CHECK(signed_with({{"Stripe-Signature", sign_stripe(secret, k_now_s, body)}}).ok());
    CHECK(code_of(signed_with({{"Stripe-Signature", sign_stripe("other", k_now_s, body)}})) == errc::unauthorized);
  }
  SECTION("hmac in the zap's own header, looked up case-insensitively") {
    z.sig = scheme::hmac;
    z.signature_header = "X-My-Signature";
    CHECK(signed_with({{"x-my-signature", sign_hmac(secret, body)}}).ok());
    // The right signature in the default header is not the zap's header.
    CHECK(code_of(signed_with({{"X-Signature", sign_hmac(secret, body)}})) == errc::unauthorized);
    CHECK(code_of(signed_with({{"X-My-Signature", sign_hmac("other", body)}})) == errc::unauthorized);
  }
  SECTION("none: anything goes") {
    z.sig = scheme::none;
    CHECK(signed_with({}).ok());
  }
}

TEST_CASE("admit: the signature is checked before the body") {
  zap_info z = a_zap();
  z.sig = scheme::github;
  z.secret = "s";
  // An unsigned request with a bad body learns only that it is unsigned.
  CHECK(code_of(admit(&z, a_request("{"), k_now_ms)) == errc::unauthorized);
  inbound in = a_request("{");
  in.headers.emplace_back("X-Hub-Signature-256", sign_github("s", "{"));
  CHECK(code_of(admit(&z, in, k_now_ms)) == errc::invalid_argument);
}

TEST_CASE("admit: dedup key is webhook-id, else Idempotency-Key, else the dedupPath value") {
  zap_info z = a_zap();
  z.dedup_path = "event.id";
  auto key = [&](std::vector<std::pair<std::string, std::string>> h) {
    inbound in = a_request();
    for (auto& kv : h) in.headers.push_back(std::move(kv));
    auto run = admit(&z, in, k_now_ms);
    REQUIRE(run.ok());
    return run->dedup_key;
  };
  CHECK(key({{"webhook-id", "msg_1"}, {"Idempotency-Key", "idem-1"}}) == "webhook-id:msg_1");
  CHECK(key({{"idempotency-key", "idem-1"}}) == "idempotency-key:idem-1");
  CHECK(key({}) == "path:evt_1");
  // An empty header counts as absent.
  CHECK(key({{"webhook-id", ""}, {"Idempotency-Key", "idem-2"}}) == "idempotency-key:idem-2");

  z.dedup_path.clear();
  CHECK(key({}) == std::nullopt);
}

TEST_CASE("admit: a dedupPath absent from the body, or null in it, gives no key") {
  zap_info z = a_zap();
  z.dedup_path = "event.missing";
  auto run = admit(&z, a_request(), k_now_ms);
  REQUIRE(run.ok());
  CHECK(run->dedup_key == std::nullopt);

  z.dedup_path = "event.id";
  auto null_id = admit(&z, a_request(R"({"event":{"id":null}})"), k_now_ms);
  REQUIRE(null_id.ok());
  CHECK(null_id->dedup_key == std::nullopt);
  // A number is keyed by its JSON text.
  auto number = admit(&z, a_request(R"({"event":{"id":42}})"), k_now_ms);
  REQUIRE(number.ok());
  CHECK(number->dedup_key == "path:42");
}

TEST_CASE("admit: a dedup key over 200 bytes is stored as sha256 of the key") {
  const zap_info z = a_zap();
  auto with_key = [&](const std::string& v) {
    inbound in = a_request();
    in.headers.emplace_back("Idempotency-Key", v);
    auto run = admit(&z, in, k_now_ms);
    REQUIRE(run.ok());
    return run->dedup_key;
  };
  const std::string prefix = "idempotency-key:";
  const std::string fits(k_max_dedup_key - prefix.size(), 'a');
  CHECK(with_key(fits) == prefix + fits);
  const std::string too_long = fits + "a";
  CHECK(with_key(too_long) == "sha256:" + hex_encode(sha256(prefix + too_long)));
  CHECK(with_key(too_long)->size() == 7 + 64);
}

TEST_CASE("admit: a body that does not fit its content type is invalid_argument naming the problem") {
  const zap_info z = a_zap();
  auto bad = admit(&z, a_request(R"({"a":)"), k_now_ms);
  REQUIRE(code_of(bad) == errc::invalid_argument);
  CHECK_THAT(bad.err().message, Catch::Contains("not valid JSON"));

  admit_options shallow;
  shallow.max_depth = 2;
  auto deep = admit(&z, a_request(R"({"a":{"b":{"c":1}}})"), k_now_ms, shallow);
  REQUIRE(code_of(deep) == errc::invalid_argument);
  CHECK_THAT(deep.err().message, Catch::Contains("deeper than 2 levels"));
  CHECK(admit(&z, a_request(R"({"a":{"b":1}})"), k_now_ms, shallow).ok());

  // Not JSON by its content type: kept as text.
  inbound text = a_request("{ not json");
  text.content_type = "text/plain";
  CHECK(admit(&z, text, k_now_ms).ok());
}

TEST_CASE("admit: the run carries the zap's version, lane, actions, the user, the trigger payload and a UUIDv7 of now") {
  const zap_info z = a_zap();
  inbound in = a_request(R"({"event":{"id":"evt_1"},"n":[1,2]})");
  in.method = "PUT";
  in.content_type = "application/json; charset=utf-8";
  in.headers.emplace_back("Authorization", "Bearer secret-token");
  in.query = {{"page", "2"}};
  auto run = admit(&z, in, k_now_ms);
  REQUIRE(run.ok());
  CHECK(run->zap_id == "zap-1");
  CHECK(run->user_id == "user-1");
  CHECK(run->zap_version == 7);
  CHECK(run->lane == queue::lane::paid);
  CHECK(run->actions == 2);
  CHECK(run->now_ms == k_now_ms);
  CHECK_FALSE(run->replay_of);

  REQUIRE(run->id.size() == 36);
  CHECK(run->id[14] == '7');  // version nibble
  CHECK(uuid_v7_ms(run->id) == k_now_ms);

  auto trigger = parse_json(run->trigger_json, json_depth::stored);
  REQUIRE(trigger.ok());
  CHECK((*trigger)["method"] == "PUT");
  CHECK((*trigger)["body"] == json{{"event", {{"id", "evt_1"}}}, {"n", {1, 2}}});
  CHECK((*trigger)["query"] == json{{"page", "2"}});
  CHECK((*trigger)["contentType"] == "application/json");
  CHECK((*trigger)["receivedAt"] == "2026-11-23T12:00:00.123Z");
  // Header names lower-cased, credentials dropped.
  CHECK((*trigger)["headers"]["x-event"] == "push");
  CHECK_FALSE((*trigger)["headers"].contains("authorization"));

  // A zap of the free plan runs on the free lane; another time gives another id.
  zap_info free = a_zap();
  free.lane = queue::lane::free;
  auto later = admit(&free, a_request(), k_now_ms + 1000);
  REQUIRE(later.ok());
  CHECK(later->lane == queue::lane::free);
  CHECK(uuid_v7_ms(later->id) == k_now_ms + 1000);
  CHECK(later->id != run->id);
}
