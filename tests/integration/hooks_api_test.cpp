// Webhook ingestion through the real binary (issue #5): every answer, and a 2xx always has
// its run and its first step (job or outbox row) on disk.
#include <atomic>
#include <ctime>
#include <thread>

#include <catch2/catch.hpp>

#include "api_helpers.hpp"
#include "zapd/hooks/signature.hpp"
#include "db_view.hpp"
#include "zapd_process.hpp"

using namespace zapd::test;
using json = nlohmann::json;

namespace {

std::vector<std::string> args(std::vector<std::string> extra = {}) {
  std::vector<std::string> a = k_fast_hashing;
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

// Creates a zap with one http action (or none) and the given trigger config; returns its id.
std::string make_hook_zap(const zapd_process& z, const account& who, json trigger = json::object(), int actions = 1) {
  json acts = json::array();
  for (int i = 0; i < actions; ++i)
    acts.push_back({{"availableActionId", "http"}, {"actionMetadata", {{"url", "https://example.com/" + std::to_string(i)}}}});
  auto r = z.request("POST", "/api/v1/zap",
                     json{{"availableTriggerId", "webhook"}, {"triggerMetadata", trigger}, {"actions", acts}}.dump(),
                     bearer(who.token));
  REQUIRE(r.status == 200);
  std::string url = r.json()["webhookUrl"];
  CHECK(url.ends_with("/hooks/catch/" + who.user_id + "/" + r.json()["zapId"].get<std::string>()));
  return r.json()["zapId"];
}

std::string hook(const account& who, const std::string& zap_id) { return "/hooks/catch/" + who.user_id + "/" + zap_id; }

void put_secret(const zapd_process& z, const account& who, const std::string& name, const std::string& value) {
  REQUIRE(z.request("POST", "/api/v1/secrets", json{{"name", name}, {"value", value}}.dump(), bearer(who.token)).status == 200);
}

// The server's database, with the two questions these tests keep asking.
struct hooks_db : db_view {
  explicit hooks_db(const zapd_process& z) : db_view(z.data_dir() + "/zapd.db") {}
  std::int64_t runs() { return count("SELECT count(*) FROM runs"); }
  // A run's first step is in the queue or still in the outbox.
  bool has_first_step(const std::string& run_id) {
    return count("SELECT (SELECT count(*) FROM jobs WHERE run_id = ?1 AND step_index = 1) + "
                 "(SELECT count(*) FROM outbox WHERE run_id = ?1 AND step_index = 1)",
                 run_id) == 1;
  }
};

const std::map<std::string, std::string> k_json = {{"Content-Type", "application/json"}};

std::int64_t now_s() { return static_cast<std::int64_t>(std::time(nullptr)); }

}  // namespace

TEST_CASE("hooks: a 200 means the run, its zap version and its first step are on disk") {
  // A one-minute safety poll: the job can only appear quickly if the commit woke the relay.
  zapd_process z(args({"--set", "outbox.poll_ms=60000"}));
  auto a = sign_up(z, "ada@example.com");
  auto zap = make_hook_zap(z, a);

  auto headers = k_json;
  headers["Authorization"] = "Bearer not-for-the-run";
  headers["Cookie"] = "session=secret";
  headers["X-Event-Type"] = "comment.created";
  auto r = z.request("POST", hook(a, zap) + "?source=test", R"({"comment":{"email":"ada@example.com"}})", headers);
  REQUIRE(r.status == 200);
  CHECK(r.json()["message"] == "webhook received");
  std::string run_id = r.json()["runId"];
  CHECK(run_id.size() == 36);
  CHECK(run_id[14] == '7');  // UUIDv7: time-ordered
  CHECK(r.json() == json{{"message", "webhook received"}, {"runId", run_id}});  // nothing else
  CHECK(r.header("content-type") == "application/json");

  hooks_db db(z);
  CHECK(db.text("SELECT status FROM runs WHERE id = ?", run_id) == "queued");
  CHECK(db.text("SELECT zap_id FROM runs WHERE id = ?", run_id) == zap);
  CHECK(db.text("SELECT zap_version FROM runs WHERE id = ?", run_id) == "1");
  CHECK(db.text("SELECT lane FROM runs WHERE id = ?", run_id) == "free");
  auto trigger = json::parse(db.text("SELECT \"trigger\" FROM runs WHERE id = ?", run_id));
  CHECK(trigger["body"]["comment"]["email"] == "ada@example.com");
  CHECK(trigger["method"] == "POST");
  CHECK(trigger["query"]["source"] == "test");
  CHECK(trigger["contentType"] == "application/json");
  CHECK(trigger["headers"]["x-event-type"] == "comment.created");
  CHECK_FALSE(trigger["headers"].contains("authorization"));
  CHECK_FALSE(trigger["headers"].contains("cookie"));
  CHECK(trigger["receivedAt"].get<std::string>().ends_with("Z"));
  CHECK(db.has_first_step(run_id));

  // The relay was woken by the commit: the job is in the queue well before the 60 s poll.
  bool moved = false;
  for (int i = 0; i < 100 && !moved; ++i) {
    moved = db.count("SELECT count(*) FROM jobs WHERE run_id = ?", run_id) == 1;
    if (!moved) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(moved);
  CHECK(db.count("SELECT count(*) FROM outbox") == 0);

  // A zap without actions: the run is recorded as already succeeded, nothing queued.
  auto empty = make_hook_zap(z, a, json::object(), 0);
  auto e = z.request("POST", hook(a, empty), "{}", k_json);
  REQUIRE(e.status == 200);
  std::string empty_run = e.json()["runId"];
  CHECK(db.text("SELECT status FROM runs WHERE id = ?", empty_run) == "succeeded");
  CHECK(db.count("SELECT count(*) FROM jobs WHERE run_id = ?", empty_run) == 0);
}

TEST_CASE("hooks: PUT, PATCH and GET with query parameters, trailing slash, form and text bodies") {
  zapd_process z(args());
  auto a = sign_up(z, "bob@example.com");
  auto zap = make_hook_zap(z, a);
  hooks_db db(z);

  auto put = z.request("PUT", hook(a, zap) + "/", R"({"k":1})", k_json);
  REQUIRE(put.status == 200);
  auto patch = z.request("PATCH", hook(a, zap), "name=Ada+L&tag=a%26b", {{"Content-Type", "application/x-www-form-urlencoded"}});
  REQUIRE(patch.status == 200);
  auto get = z.request("GET", hook(a, zap) + "/?email=ada%40example.com&n=2");
  REQUIRE(get.status == 200);
  auto text = z.request("POST", hook(a, zap), "plain words", {{"Content-Type", "text/plain"}});
  REQUIRE(text.status == 200);

  auto trig = [&](const http_reply& r) {
    return json::parse(db.text("SELECT \"trigger\" FROM runs WHERE id = ?", r.json()["runId"]));
  };
  CHECK(trig(put)["method"] == "PUT");
  CHECK(trig(put)["body"]["k"] == 1);
  CHECK(trig(patch)["body"] == json{{"name", "Ada L"}, {"tag", "a&b"}});
  CHECK(trig(get)["method"] == "GET");
  CHECK(trig(get)["query"] == json{{"email", "ada@example.com"}, {"n", "2"}});
  CHECK(trig(get)["body"].is_null());
  CHECK(trig(text)["body"] == "plain words");
  CHECK(trig(text)["contentType"] == "text/plain");
  CHECK(db.runs() == 4);
  CHECK(z.request("DELETE", hook(a, zap)).status == 405);
}

TEST_CASE("hooks: unknown, foreign and disabled zaps and bad bodies are refused and record nothing") {
  zapd_process z(args({"--set", "server.body_limit=2048", "--set", "hooks.max_depth=5"}));
  auto a = sign_up(z, "carol@example.com");
  auto b = sign_up(z, "dave@example.com");
  auto zap = make_hook_zap(z, a);
  hooks_db db(z);

  auto unknown = z.request("POST", hook(a, "00000000-0000-4000-8000-000000000000"), "{}", k_json);
  CHECK(unknown.status == 404);
  CHECK(unknown.json()["error"]["code"] == "not_found");
  CHECK(z.request("POST", hook(b, zap), "{}", k_json).status == 404);  // a's zap under b's id
  CHECK(z.request("POST", "/hooks/catch/" + a.user_id, "{}", k_json).status == 404);

  auto invalid = z.request("POST", hook(a, zap), R"({"comment":)", k_json);
  CHECK(invalid.status == 400);
  CHECK_THAT(invalid.json()["error"]["message"].get<std::string>(), Catch::Contains("JSON"));
  auto deep = z.request("POST", hook(a, zap), R"({"a":{"b":{"c":{"d":{"e":{"f":1}}}}}})", k_json);
  CHECK(deep.status == 400);
  CHECK_THAT(deep.json()["error"]["message"].get<std::string>(), Catch::Contains("deeper"));
  auto big = z.request("POST", hook(a, zap), json{{"pad", std::string(4096, 'x')}}.dump(), k_json);
  CHECK(big.status == 413);

  REQUIRE(z.request("PATCH", "/api/v1/zap/" + zap, R"({"enabled":false})", bearer(a.token)).status == 200);
  auto off = z.request("POST", hook(a, zap), "{}", k_json);
  CHECK(off.status == 409);
  CHECK_THAT(off.json()["error"]["message"].get<std::string>(), Catch::Contains("disabled"));
  CHECK(db.runs() == 0);

  // Enabled again: accepted at once (the API write dropped ingestion's cached copy).
  REQUIRE(z.request("PATCH", "/api/v1/zap/" + zap, R"({"enabled":true})", bearer(a.token)).status == 200);
  CHECK(z.request("POST", hook(a, zap), "{}", k_json).status == 200);
  CHECK(db.runs() == 1);
}

TEST_CASE("hooks: a run records the zap version current when it arrived") {
  zapd_process z(args());
  auto a = sign_up(z, "erin@example.com");
  auto zap = make_hook_zap(z, a);
  hooks_db db(z);
  auto first = z.request("POST", hook(a, zap), "{}", k_json);
  REQUIRE(first.status == 200);
  auto edit = json{{"availableTriggerId", "webhook"},
                   {"triggerMetadata", json::object()},
                   {"actions", json::array({json{{"availableActionId", "http"}, {"actionMetadata", {{"url", "https://example.com/v2"}}}}})}};
  REQUIRE(z.request("PUT", "/api/v1/zap/" + zap, edit.dump(), bearer(a.token)).status == 200);
  auto second = z.request("POST", hook(a, zap), "{}", k_json);
  REQUIRE(second.status == 200);
  CHECK(db.text("SELECT zap_version FROM runs WHERE id = ?", first.json()["runId"]) == "1");
  CHECK(db.text("SELECT zap_version FROM runs WHERE id = ?", second.json()["runId"]) == "2");
}

TEST_CASE("hooks: every signature scheme accepts valid signatures and refuses bad or old ones") {
  zapd_process z(args());
  auto a = sign_up(z, "frank@example.com");
  put_secret(z, a, "HOOK_SECRET", "first-secret");
  hooks_db db(z);
  const std::string body = R"({"event":"ping"})";
  std::int64_t recorded = 0;

  auto post = [&](const std::string& zap, std::map<std::string, std::string> h) {
    h["Content-Type"] = "application/json";
    auto r = z.request("POST", hook(a, zap), body, h);
    if (r.status == 200) ++recorded;
    if (r.status == 401) CHECK(r.json()["error"]["code"] == "unauthorized");
    return r.status;
  };
  auto zap_with = [&](const std::string& scheme, json extra = json::object()) {
    json t = {{"signature", scheme}, {"secret", "{{secrets.HOOK_SECRET}}"}};
    t.update(extra);
    return make_hook_zap(z, a, t);
  };

  SECTION("standard") {
    auto zap = zap_with("standard");
    auto sig = [&](const std::string& secret, std::int64_t ts, const std::string& id) {
      return std::map<std::string, std::string>{{"webhook-id", id},
                                                {"webhook-timestamp", std::to_string(ts)},
                                                {"webhook-signature", zapd::hooks::sign_standard(secret, id, ts, body)}};
    };
    CHECK(post(zap, sig("first-secret", now_s(), "msg_1")) == 200);
    CHECK(post(zap, sig("wrong-secret", now_s(), "msg_2")) == 401);
    CHECK(post(zap, sig("first-secret", now_s() - 600, "msg_3")) == 401);
    CHECK(post(zap, {}) == 401);
    // Rotating the secret applies at once.
    put_secret(z, a, "HOOK_SECRET", "second-secret");
    CHECK(post(zap, sig("first-secret", now_s(), "msg_4")) == 401);
    CHECK(post(zap, sig("second-secret", now_s(), "msg_5")) == 200);
  }
  SECTION("github") {
    auto zap = zap_with("github");
    CHECK(post(zap, {{"X-Hub-Signature-256", zapd::hooks::sign_github("first-secret", body)}}) == 200);
    CHECK(post(zap, {{"X-Hub-Signature-256", zapd::hooks::sign_github("first-secret", body + " ")}}) == 401);
    CHECK(post(zap, {}) == 401);
  }
  SECTION("stripe") {
    auto zap = zap_with("stripe");
    CHECK(post(zap, {{"Stripe-Signature", zapd::hooks::sign_stripe("first-secret", now_s(), body)}}) == 200);
    CHECK(post(zap, {{"Stripe-Signature", zapd::hooks::sign_stripe("first-secret", now_s() - 400, body)}}) == 401);
    CHECK(post(zap, {{"Stripe-Signature", zapd::hooks::sign_stripe("nope", now_s(), body)}}) == 401);
  }
  SECTION("hmac with a custom header") {
    auto zap = zap_with("hmac", {{"signatureHeader", "X-Shop-Hmac"}});
    CHECK(post(zap, {{"X-Shop-Hmac", zapd::hooks::sign_hmac("first-secret", body)}}) == 200);
    CHECK(post(zap, {{"X-Signature", zapd::hooks::sign_hmac("first-secret", body)}}) == 401);
    CHECK(post(zap, {{"X-Shop-Hmac", zapd::hooks::sign_hmac("other", body)}}) == 401);
  }
  SECTION("a referenced secret that was deleted refuses everything") {
    auto zap = zap_with("github");
    REQUIRE(z.request("DELETE", "/api/v1/secrets/HOOK_SECRET", "", bearer(a.token)).status == 200);
    CHECK(post(zap, {{"X-Hub-Signature-256", zapd::hooks::sign_github("first-secret", body)}}) == 401);
  }
  CHECK(db.runs() == recorded);
}

TEST_CASE("hooks: dedup by webhook-id, Idempotency-Key or dedupPath answers the first run") {
  zapd_process z(args());
  auto a = sign_up(z, "grace@example.com");
  auto plain = make_hook_zap(z, a);
  auto by_path = make_hook_zap(z, a, {{"dedupPath", "event.id"}});
  hooks_db db(z);

  auto send = [&](const std::string& zap, const std::string& body, std::map<std::string, std::string> h = {}) {
    h["Content-Type"] = "application/json";
    auto r = z.request("POST", hook(a, zap), body, h);
    REQUIRE(r.status == 200);
    return r.json();
  };
  auto first = send(plain, "{}", {{"webhook-id", "msg_A"}});
  auto again = send(plain, R"({"different":"body"})", {{"webhook-id", "msg_A"}});
  CHECK(again["runId"] == first["runId"]);
  CHECK(again["duplicate"] == true);
  CHECK(again.size() == 3);  // message, runId, duplicate
  CHECK_FALSE(first.contains("duplicate"));
  CHECK(send(plain, "{}", {{"webhook-id", "msg_B"}})["runId"] != first["runId"]);

  auto k1 = send(plain, "{}", {{"Idempotency-Key", "order-17"}});
  CHECK(send(plain, "{}", {{"Idempotency-Key", "order-17"}})["runId"] == k1["runId"]);

  auto e1 = send(by_path, R"({"event":{"id":"evt_1"}})");
  CHECK(send(by_path, R"({"event":{"id":"evt_1"},"retry":2})")["runId"] == e1["runId"]);
  CHECK(send(by_path, R"({"event":{"id":"evt_2"}})")["runId"] != e1["runId"]);
  CHECK(send(by_path, R"({"no":"id"})")["runId"] != e1["runId"]);  // no value: no dedup
  // The same key on another zap is another event.
  CHECK(send(by_path, "{}", {{"webhook-id", "msg_A"}})["runId"] != first["runId"]);

  CHECK(db.runs() == 7);
  CHECK(db.count("SELECT count(*) FROM dedup_keys") == 6);
}

TEST_CASE("hooks: plan rate limits answer 429 with Retry-After and record nothing") {
  zapd_process z(args({"--set", "hooks.free_zap_rate=1", "--set", "hooks.free_user_rate=100", "--set",
                       "hooks.burst_seconds=2", "--set", "hooks.paid_zap_rate=0", "--set", "hooks.paid_user_rate=0"}));
  auto a = sign_up(z, "heidi@example.com");
  auto zap = make_hook_zap(z, a);
  auto other = make_hook_zap(z, a);
  hooks_db db(z);
  int ok = 0;
  int limited = 0;
  for (int i = 0; i < 6; ++i) {
    auto r = z.request("POST", hook(a, zap), "{}", k_json);
    if (r.status == 200) ++ok;
    if (r.status == 429) {
      ++limited;
      CHECK(std::stoi(r.header("retry-after")) >= 1);
      CHECK(r.json()["error"]["code"] == "too_many_requests");
    }
  }
  CHECK(ok >= 2);
  CHECK(ok <= 3);  // burst 2, plus at most one refill if the loop took over a second
  CHECK(limited == 6 - ok);
  CHECK(z.request("POST", hook(a, other), "{}", k_json).status == 200);  // per-zap bucket
  CHECK(db.runs() == ok + 1);
}

TEST_CASE("hooks: paid accounts use the paid lane and their own limits") {
  zapd_process z(args({"--set", "auth.default_plan=paid", "--set", "hooks.free_zap_rate=1", "--set", "hooks.paid_zap_rate=0",
                       "--set", "hooks.paid_user_rate=0"}));
  auto a = sign_up(z, "ivan@example.com");
  auto zap = make_hook_zap(z, a);
  hooks_db db(z);
  std::string last;
  for (int i = 0; i < 10; ++i) {
    auto r = z.request("POST", hook(a, zap), "{}", k_json);
    REQUIRE(r.status == 200);
    last = r.json()["runId"];
  }
  CHECK(db.text("SELECT lane FROM runs WHERE id = ?", last) == "paid");
  CHECK(db.count("SELECT count(*) FROM runs WHERE lane = 'paid'") == 10);
  for (int i = 0; i < 100 && db.count("SELECT count(*) FROM outbox") > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(db.count("SELECT count(*) FROM jobs WHERE lane = 'paid'") == 10);
}

TEST_CASE("hooks: an overloaded writer answers 503 with Retry-After and every 200 has its run") {
  // One pending write and one per commit: a burst of concurrent webhooks must overflow.
  zapd_process z(args({"--set", "store.max_pending=1", "--set", "store.batch_max=1", "--set", "hooks.free_zap_rate=0",
                       "--set", "hooks.free_user_rate=0"}));
  auto a = sign_up(z, "judy@example.com");
  auto zap = make_hook_zap(z, a);
  std::atomic<int> ok{0}, busy{0}, other{0}, missing_retry_after{0};
  std::mutex mu;
  std::vector<std::string> run_ids;
  std::vector<std::thread> clients;
  for (int t = 0; t < 48; ++t)
    clients.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        auto r = z.request("POST", hook(a, zap), R"({"n":1})", k_json);
        if (r.status == 200) {
          ++ok;
          std::lock_guard lk(mu);
          run_ids.push_back(r.json()["runId"]);
        } else if (r.status == 503) {
          ++busy;
          if (r.header("retry-after").empty()) ++missing_retry_after;
        } else {
          ++other;
        }
      }
    });
  for (auto& c : clients) c.join();
  INFO("200: " << ok << ", 503: " << busy << ", other: " << other);
  CHECK(other == 0);
  CHECK(busy > 0);
  CHECK(missing_retry_after == 0);
  hooks_db db(z);
  CHECK(db.runs() == ok);
  for (const auto& id : run_ids) REQUIRE(db.has_first_step(id));
}

TEST_CASE("metrics: /metrics counts ingested, duplicate and rejected webhooks") {
  zapd_process z(args());
  auto a = sign_up(z, "ken@example.com");
  auto zap = make_hook_zap(z, a);
  REQUIRE(z.request("POST", hook(a, zap), "{}", {{"Content-Type", "application/json"}, {"Idempotency-Key", "x"}}).status == 200);
  REQUIRE(z.request("POST", hook(a, zap), "{}", {{"Content-Type", "application/json"}, {"Idempotency-Key", "x"}}).status == 200);
  REQUIRE(z.request("POST", hook(a, zap), "{", k_json).status == 400);
  REQUIRE(z.request("POST", hook(a, "nope"), "{}", k_json).status == 404);
  auto m = z.request("GET", "/metrics");
  REQUIRE(m.status == 200);
  CHECK_THAT(m.header("content-type"), Catch::StartsWith("text/plain"));
  CHECK_THAT(m.body, Catch::Contains("zapd_hooks_ingested_total 1\n"));
  CHECK_THAT(m.body, Catch::Contains("zapd_hooks_duplicates_total 1\n"));
  CHECK_THAT(m.body, Catch::Contains("zapd_hooks_rejected_total{reason=\"bad_body\"} 1\n"));
  CHECK_THAT(m.body, Catch::Contains("zapd_hooks_rejected_total{reason=\"not_found\"} 1\n"));
  CHECK_THAT(m.body, Catch::Contains("zapd_store_writer_backlog"));
  CHECK_THAT(m.body, Catch::Contains("zapd_queue_jobs{lane=\"free\",state=\"ready\"}"));
  CHECK_THAT(m.body, Catch::Contains("zapd_outbox_depth"));
}
