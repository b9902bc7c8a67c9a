// Executing runs through the real binary (issue #6): the worker, the HTTP action against a
// real sink on 127.0.0.1, templates across steps, every retry rule, dead letters, the SSRF
// guard, and the run history API (list, get, replay, retry, cancel).
#include <signal.h>

#include <atomic>
#include <cctype>
#include <fstream>
#include <iterator>
#include <map>
#include <thread>

#include <catch2/catch.hpp>

#include "api_helpers.hpp"
#include "http_sink.hpp"
#include "db_view.hpp"
#include "zapd/hooks/signature.hpp"
#include "zapd_process.hpp"

using namespace zapd::test;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> args(std::vector<std::string> extra = {}) {
  auto a = serve_args({"actions.http.allow=127.0.0.1", "worker.retry_base_ms=50", "worker.max_attempts=3",
                       "hooks.free_zap_rate=0", "hooks.free_user_rate=0"});
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

std::string job_state(const zapd_process& z, const std::string& run_id) {
  db_view db(z.data_dir() + "/zapd.db");
  if (db.count("SELECT count(*) FROM jobs WHERE run_id = ?1", run_id) == 0) return "none";
  return db.text("SELECT state FROM jobs WHERE run_id = ?1", run_id);
}

}  // namespace

TEST_CASE("worker: a two-step zap where step 2 reads step 1's output and a secret") {
  http_sink sink;
  sink.on("/create", sink_reply::json(R"({"id":42,"name":"ticket"})", 201));
  sink.on("/notify", sink_reply::json(R"({"ok":true})"));
  zapd_process z(args());
  auto a = sign_up(z, "ada@example.com");
  REQUIRE(z.request("POST", "/api/v1/secrets", R"({"name":"API_KEY","value":"s3cret-value"})", bearer(a.token)).status == 200);
  auto zap = make_zap(z, a,
                      json::array({http_step(sink.url("/create"), {{"body", R"({"email":"{{comment.email}}","n":{{n}}})"}}),
                                   http_step(sink.url("/notify/{{steps.1.body.id}}?who={{comment.email}}"),
                                             {{"headers", {{"X-Key", "{{secrets.API_KEY}}"}}},
                                              {"body", R"({"ticket":{{steps.1.body.id}},"name":"{{steps.1.body.name}}"})"}})}));
  auto run_id = fire(z, a, zap, R"({"comment":{"email":"ada@example.com"},"n":7})");
  auto run = wait_final(z, a, run_id);
  INFO(run.dump(2));
  REQUIRE(run["status"] == "succeeded");

  REQUIRE(sink.wait_for(2));
  auto reqs = sink.requests();
  REQUIRE(reqs.size() == 2);
  CHECK(reqs[0].path() == "/create");
  CHECK(json::parse(reqs[0].body) == json{{"email", "ada@example.com"}, {"n", 7}});
  CHECK(reqs[0].header("Content-Type") == "application/json");
  CHECK(reqs[0].header("Idempotency-Key") == run_id + ":1");
  CHECK_THAT(reqs[0].header("User-Agent"), Catch::StartsWith("zapd/"));
  CHECK(reqs[1].target == "/notify/42?who=ada%40example.com");
  CHECK(json::parse(reqs[1].body) == json{{"ticket", 42}, {"name", "ticket"}});
  CHECK(reqs[1].header("X-Key") == "s3cret-value");
  CHECK(reqs[1].header("Idempotency-Key") == run_id + ":2");

  const auto& steps = run["steps"];
  REQUIRE(steps.size() == 2);
  CHECK(steps[0]["status"] == "succeeded");
  CHECK(steps[0]["attempts"] == 1);
  // Which worker ran it: the serving process itself, host:pid.
  CHECK_THAT(steps[0]["worker"].get<std::string>(), Catch::EndsWith(":" + std::to_string(z.pid())));
  CHECK(steps[0]["output"]["status"] == 201);
  CHECK(steps[0]["output"]["body"]["id"] == 42);
  CHECK(steps[0]["input"]["url"] == sink.url("/create"));
  CHECK(steps[1]["input"]["headers"]["X-Key"] == "********");  // secrets never recorded
  CHECK(run.dump().find("s3cret-value") == std::string::npos);
  CHECK(steps[1]["output"]["body"]["ok"] == true);
  CHECK(steps[1]["durationMs"].is_number());
  CHECK(run["startedAt"].is_string());
  CHECK(run["finishedAt"].is_string());
  CHECK(job_state(z, run_id) == "none");  // acked jobs leave the queue
  // The queue counts the two settlements once their transactions committed (the commit
  // callback runs a moment after the run reads as final).
  std::string metrics;
  for (int i = 0; i < 200; ++i) {
    metrics = z.request("GET", "/metrics").body;
    if (metrics.find("zapd_queue_acked_total{lane=\"free\"} 2\n") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(metrics.find("zapd_queue_acked_total{lane=\"free\"} 2\n") != std::string::npos);
  CHECK(metrics.find("zapd_queue_dead_total{lane=\"free\"} 0\n") != std::string::npos);
}

TEST_CASE("worker: a missing template path renders empty and warns on the step") {
  http_sink sink;
  zapd_process z(args());
  auto a = sign_up(z, "warn@example.com");
  auto zap = make_zap(z, a, json::array({http_step(sink.url("/x"), {{"body", R"({"v":"{{comment.missing}}"})"}})}));
  auto run = wait_final(z, a, fire(z, a, zap));
  REQUIRE(run["status"] == "succeeded");
  REQUIRE(sink.wait_for(1));
  CHECK(json::parse(sink.requests()[0].body) == json{{"v", ""}});
  REQUIRE(run["steps"][0]["warnings"].size() == 1);
  CHECK_THAT(run["steps"][0]["warnings"][0].get<std::string>(), Catch::Contains("comment.missing"));
}

TEST_CASE("worker: retry rules, Retry-After and dead letters") {
  http_sink sink;
  std::atomic<int> flaky{0};
  sink.on("/flaky", [&flaky](const sink_request&) { return ++flaky == 1 ? sink_reply::status(503) : sink_reply::json("{}"); });
  std::atomic<int> limited{0};
  sink.on("/limited", [&limited](const sink_request&) {
    return ++limited == 1 ? sink_reply::too_many(std::chrono::seconds(1)) : sink_reply::json("{}");
  });
  sink.on("/gone", sink_reply::status(410));
  sink.on("/missing", sink_reply::status(404));
  sink.on("/broken", sink_reply::status(500));
  sink.on("/slow", sink_reply::hang());
  sink.on("/timeout-then-ok", sink_reply::json("{}"));
  zapd_process z(args());
  auto a = sign_up(z, "retry@example.com");
  auto attempts_at = [&](const std::string& path) {
    std::vector<std::chrono::steady_clock::time_point> at;
    for (const auto& r : sink.requests())
      if (r.path() == path) at.push_back(r.at);
    return at;
  };

  SECTION("a 5xx is retried and then succeeds") {
    auto run = wait_final(z, a, fire(z, a, make_zap(z, a, json::array({http_step(sink.url("/flaky"))}))));
    CHECK(run["status"] == "succeeded");
    CHECK(run["steps"][0]["attempts"] == 2);
  }
  SECTION("429 with Retry-After waits at least that long") {
    auto run = wait_final(z, a, fire(z, a, make_zap(z, a, json::array({http_step(sink.url("/limited"))}))));
    CHECK(run["status"] == "succeeded");
    auto at = attempts_at("/limited");
    REQUIRE(at.size() == 2);
    CHECK(at[1] - at[0] >= 950ms);
  }
  SECTION("410 and 404 fail at once, without retry, and dead-letter the job") {
    for (std::string path : {"/gone", "/missing"}) {
      auto id = fire(z, a, make_zap(z, a, json::array({http_step(sink.url(path))})));
      auto run = wait_final(z, a, id);
      CHECK(run["status"] == "failed");
      CHECK(run["steps"][0]["status"] == "failed");
      CHECK(run["steps"][0]["attempts"] == 1);
      CHECK_THAT(run["error"].get<std::string>(), Catch::Contains(path == "/gone" ? "410" : "404"));
      CHECK(job_state(z, id) == "dead");
      CHECK(attempts_at(path).size() == 1);
    }
  }
  SECTION("a server that keeps failing: every attempt, then failed and dead") {
    auto id = fire(z, a, make_zap(z, a, json::array({http_step(sink.url("/broken"))})));
    auto run = wait_final(z, a, id);
    CHECK(run["status"] == "failed");
    CHECK(run["steps"][0]["attempts"] == 3);
    CHECK_THAT(run["steps"][0]["error"].get<std::string>(), Catch::Contains("gave up after 3 attempts"));
    CHECK(attempts_at("/broken").size() == 3);
    CHECK(job_state(z, id) == "dead");
  }
  SECTION("timeouts are retried") {
    auto id = fire(z, a, make_zap(z, a, json::array({http_step(sink.url("/slow"), {{"timeoutMs", 200}})})));
    auto run = wait_final(z, a, id);
    CHECK(run["status"] == "failed");
    CHECK(run["steps"][0]["attempts"] == 3);
    CHECK_THAT(run["steps"][0]["error"].get<std::string>(), Catch::Contains("timeout"));
  }
  SECTION("a server that is down is a network error, retried") {
    http_sink gone;
    std::string url = gone.url("/x");
    gone.stop();
    auto run = wait_final(z, a, fire(z, a, make_zap(z, a, json::array({http_step(url)}))));
    CHECK(run["status"] == "failed");
    CHECK(run["steps"][0]["attempts"] == 3);
  }
}

TEST_CASE("worker: the SSRF guard refuses loopback unless allowed, and private redirects") {
  http_sink sink;
  sink.on("/to-private", sink_reply::redirect("http://127.0.0.2:1/secret"));
  // No actions.http.allow here.
  auto a_args = serve_args({"worker.retry_base_ms=50", "worker.max_attempts=3"});
  zapd_process z(a_args);
  auto a = sign_up(z, "ssrf@example.com");
  for (std::string url : {sink.url("/x"), "http://localhost:" + std::to_string(sink.port()) + "/x"}) {
    auto run = wait_final(z, a, fire(z, a, make_zap(z, a, json::array({http_step(url)}))));
    CHECK(run["status"] == "failed");
    CHECK(run["steps"][0]["attempts"] == 1);  // refused: no retry
    CHECK_THAT(run["steps"][0]["error"].get<std::string>(), Catch::Contains("refused"));
  }
  CHECK(sink.connections() == 0);

  zapd_process allowed(args());  // allows 127.0.0.1 only
  auto b = sign_up(allowed, "ssrf2@example.com");
  auto run = wait_final(allowed, b,
                        fire(allowed, b, make_zap(allowed, b, json::array({http_step(sink.url("/to-private"), {{"followRedirects", true}})}))));
  CHECK(run["status"] == "failed");
  CHECK_THAT(run["steps"][0]["error"].get<std::string>(), Catch::Contains("refused"));
}

TEST_CASE("runs API: list newest first, filter, paginate, another user's run is 404") {
  http_sink sink;
  sink.on("/bad", sink_reply::status(400));
  zapd_process z(args());
  auto a = sign_up(z, "list@example.com");
  auto b = sign_up(z, "other@example.com");
  auto ok_zap = make_zap(z, a, json::array({http_step(sink.url("/ok"))}));
  auto bad_zap = make_zap(z, a, json::array({http_step(sink.url("/bad"))}));
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(fire(z, a, ok_zap));
  auto failed = fire(z, a, bad_zap);
  for (const auto& id : ids) wait_final(z, a, id);
  wait_final(z, a, failed);

  auto all = z.request("GET", "/api/v1/runs", "", bearer(a.token)).json();
  REQUIRE(all["runs"].size() == 6);
  CHECK(all["runs"][0]["id"] == failed);  // newest first
  CHECK(all["runs"][5]["id"] == ids[0]);
  CHECK(all["nextCursor"].is_null());

  auto only_failed = z.request("GET", "/api/v1/runs?status=failed", "", bearer(a.token)).json();
  REQUIRE(only_failed["runs"].size() == 1);
  CHECK(only_failed["runs"][0]["id"] == failed);
  CHECK(z.request("GET", "/api/v1/runs?zapId=" + ok_zap, "", bearer(a.token)).json()["runs"].size() == 5);

  std::vector<std::string> paged;
  std::string cursor;
  for (int page = 0; page < 10; ++page) {
    auto r = z.request("GET", "/api/v1/runs?limit=2" + (cursor.empty() ? "" : "&cursor=" + cursor), "", bearer(a.token)).json();
    for (const auto& run : r["runs"]) paged.push_back(run["id"]);
    if (r["nextCursor"].is_null()) break;
    cursor = r["nextCursor"];
  }
  CHECK(paged.size() == 6);
  CHECK(paged[0] == failed);

  CHECK(z.request("GET", "/api/v1/runs?limit=0", "", bearer(a.token)).status == 400);
  auto not_number = z.request("GET", "/api/v1/runs?limit=abc", "", bearer(a.token));
  CHECK(not_number.status == 400);
  CHECK(not_number.json()["error"]["message"] == "limit 'abc' is not a number");
  CHECK(z.request("GET", "/api/v1/runs?status=weird", "", bearer(a.token)).status == 400);
  CHECK(z.request("GET", "/api/v1/runs?cursor=junk", "", bearer(a.token)).status == 400);
  CHECK(z.request("GET", "/api/v1/runs/" + failed, "", bearer(b.token)).status == 404);
  CHECK(z.request("POST", "/api/v1/runs/" + failed + "/retry", "", bearer(b.token)).status == 404);
  CHECK(z.request("GET", "/api/v1/runs", "", bearer(b.token)).json()["runs"].empty());
  CHECK(z.request("GET", "/api/v1/runs").status == 401);

  // The zaps list and a zap show their newest run (the UI's "last run" column).
  auto zaps = z.request("GET", "/api/v1/zap", "", bearer(a.token)).json()["zaps"];
  REQUIRE(zaps.size() == 2);
  for (const auto& zap : zaps) {
    INFO(zap.dump());
    const bool is_ok = zap["id"] == ok_zap;
    CHECK(zap["lastRun"]["id"] == (is_ok ? ids.back() : failed));
    CHECK(zap["lastRun"]["status"] == (is_ok ? "succeeded" : "failed"));
    CHECK(zap["lastRun"]["createdAt"].is_string());
  }
  auto one = z.request("GET", "/api/v1/zap/" + bad_zap, "", bearer(a.token)).json()["zap"];
  CHECK(one["lastRun"]["id"] == failed);
  auto fresh = make_zap(z, a, json::array({http_step(sink.url("/ok"))}));
  CHECK(z.request("GET", "/api/v1/zap/" + fresh, "", bearer(a.token)).json()["zap"]["lastRun"].is_null());
}

TEST_CASE("runs API: retry a failed run, replay a run, cancel a run in flight") {
  http_sink sink;
  std::atomic<bool> healthy{false};
  sink.on("/svc", [&healthy](const sink_request&) { return healthy ? sink_reply::json(R"({"v":1})") : sink_reply::status(422); });
  sink.on("/slow", sink_reply::json("{}").after(800ms));
  zapd_process z(args());
  auto a = sign_up(z, "ops@example.com");

  auto zap = make_zap(z, a, json::array({http_step(sink.url("/svc"))}));
  auto id = fire(z, a, zap);
  auto run = wait_final(z, a, id);
  REQUIRE(run["status"] == "failed");
  CHECK(z.request("POST", "/api/v1/runs/" + id + "/cancel", "", bearer(a.token)).status == 409);

  healthy = true;
  auto retried = z.request("POST", "/api/v1/runs/" + id + "/retry", "", bearer(a.token));
  REQUIRE(retried.status == 200);
  run = wait_final(z, a, id);
  CHECK(run["status"] == "succeeded");
  CHECK(run["steps"][0]["attempts"] == 1);
  CHECK(z.request("POST", "/api/v1/runs/" + id + "/retry", "", bearer(a.token)).status == 409);

  auto replay = z.request("POST", "/api/v1/runs/" + id + "/replay", "", bearer(a.token));
  REQUIRE(replay.status == 200);
  std::string new_id = replay.json()["runId"];
  CHECK(new_id != id);
  auto replayed = wait_final(z, a, new_id);
  CHECK(replayed["status"] == "succeeded");
  CHECK(replayed["replayOf"] == id);
  CHECK(replayed["trigger"] == run["trigger"]);
  CHECK(z.request("POST", "/api/v1/runs/" + id + "/replay?version=original", "", bearer(a.token)).status == 200);
  CHECK(z.request("POST", "/api/v1/runs/" + id + "/replay?version=9", "", bearer(a.token)).status == 400);

  // Two steps; cancel while the first is in flight: the second never runs.
  auto two = make_zap(z, a, json::array({http_step(sink.url("/slow")), http_step(sink.url("/after-cancel"))}));
  auto cid = fire(z, a, two);
  std::this_thread::sleep_for(300ms);
  auto cancelled = z.request("POST", "/api/v1/runs/" + cid + "/cancel", "", bearer(a.token));
  REQUIRE(cancelled.status == 200);
  CHECK(cancelled.json()["run"]["status"] == "cancelled");
  std::this_thread::sleep_for(1200ms);
  auto after = get_run(z, a, cid);
  CHECK(after["status"] == "cancelled");
  for (const auto& r : sink.requests()) CHECK(r.path() != "/after-cancel");
}

TEST_CASE("worker: SIGTERM lets attempts finish within the grace period, then gives back the rest") {
  http_sink sink;
  sink.on("/quick", sink_reply::json("{}").after(300ms));
  sink.on("/stuck", sink_reply::hang());
  const std::string data = temp_dir("zapd-worker-stop") + "/data";
  account a;
  std::string quick_run, stuck_run;
  {
    zapd_process z(args({"--set", "server.shutdown_grace_ms=1500"}), {}, data);
    a = sign_up(z, "stop@example.com");
    quick_run = fire(z, a, make_zap(z, a, json::array({http_step(sink.url("/quick"))})));
    stuck_run = fire(z, a, make_zap(z, a, json::array({http_step(sink.url("/stuck"), {{"timeoutMs", 60000}})})));
    REQUIRE(sink.wait_for(2));
    auto t0 = std::chrono::steady_clock::now();
    CHECK(z.terminate(SIGTERM) == 0);
    CHECK(std::chrono::steady_clock::now() - t0 < 10s);
    CHECK_THAT(z.log(), Catch::Contains("worker.released"));
  }
  {
    db_view db(data + "/zapd.db");
    const char* status = "SELECT status FROM runs WHERE id = ?1";
    CHECK(db.text(status, quick_run) == "succeeded");  // finished inside the grace period
    CHECK(db.text(status, stuck_run) == "queued");     // given back, not lost
    CHECK(db.text("SELECT state FROM jobs WHERE run_id = ?1", stuck_run) == "ready");
  }
  // The next start picks the stuck step up again.
  sink.on("/stuck", sink_reply::json("{}"));
  zapd_process z(args(), {}, data);
  auto run = wait_final(z, a, stuck_run);
  CHECK(run["status"] == "succeeded");
}

TEST_CASE("worker: a zap's own retry policy overrides the server's") {
  http_sink sink;
  sink.on("/broken", sink_reply::status(503));
  zapd_process z(args());  // server: 3 attempts
  auto a = sign_up(z, "policy@example.com");
  auto body = json{{"availableTriggerId", "webhook"},
                   {"actions", json::array({http_step(sink.url("/broken"))})},
                   {"retry", {{"attempts", 2}, {"baseDelayMs", 100}}}};
  auto r = z.request("POST", "/api/v1/zap", body.dump(), bearer(a.token));
  REQUIRE(r.status == 200);
  CHECK(r.json()["zap"]["retry"] == json{{"attempts", 2}, {"baseDelayMs", 100}});
  std::string zap = r.json()["zapId"];
  auto run = wait_final(z, a, fire(z, a, zap), 30s);
  CHECK(run["status"] == "failed");
  CHECK(run["steps"][0]["attempts"] == 2);  // the server alone would make 3
  auto bad = json{{"availableTriggerId", "webhook"}, {"actions", json::array({http_step(sink.url("/x"))})},
                  {"retry", {{"attempts", 0}, {"speed", 1}}}};
  auto refused = z.request("POST", "/api/v1/zap", bad.dump(), bearer(a.token));
  CHECK(refused.status == 400);
  CHECK(refused.body.find("retry.attempts") != std::string::npos);
  CHECK(refused.body.find("retry.speed") != std::string::npos);
}

TEST_CASE("worker: signingSecret signs each request the Standard Webhooks way") {
  http_sink sink;
  zapd_process z(args());
  auto a = sign_up(z, "signer@example.com");
  REQUIRE(z.request("POST", "/api/v1/secrets", R"({"name":"SIGN","value":"whsec_c2lnbmluZy1rZXktZm9yLXRlc3Rz"})", bearer(a.token))
              .status == 200);
  auto zap = make_zap(z, a, json::array({http_step(sink.url("/signed"), {{"signingSecret", "{{secrets.SIGN}}"},
                                                                          {"body", R"({"e":"{{comment.email}}"})"}})}));
  auto run_id = fire(z, a, zap);
  REQUIRE(wait_final(z, a, run_id)["status"] == "succeeded");
  REQUIRE(sink.wait_for(1));
  const auto r = sink.requests()[0];
  CHECK(r.header("webhook-id") == run_id + ":1");
  const std::int64_t ts = std::stoll(r.header("webhook-timestamp"));
  // What a receiver does: verify with the same secret (zapd's own verifier, tested against the spec's vector).
  auto lookup = [&r](std::string_view n) { return r.header(n); };
  CHECK(zapd::hooks::verify(zapd::hooks::scheme::standard, "whsec_c2lnbmluZy1rZXktZm9yLXRlc3Rz", lookup, r.body, ts).ok());
  CHECK_FALSE(zapd::hooks::verify(zapd::hooks::scheme::standard, "whsec_b3RoZXI=", lookup, r.body, ts).ok());
}

TEST_CASE("worker: results the writer refuses while full are handed over again, not dropped") {
  http_sink sink;
  // Two pending writes, one per commit: results of 24 concurrent steps must queue up behind
  // each other. Dropped results would only come back after the 60 s lease.
  const std::vector<std::string> full = {"--set", "store.max_pending=2", "--set", "store.batch_max=1",
                                         "--set", "queue.free_concurrency=24"};
  const std::string data = temp_dir("zapd-writer-full") + "/data";
  account a;
  std::vector<std::string> ids;
  {
    // The runs queue up first (worker off), so that the worker starts 24 steps at once and
    // their results arrive together, not one per webhook commit.
    auto off = full;
    off.insert(off.end(), {"--set", "worker.enabled=off"});
    zapd_process z(args(off), {}, data);
    a = sign_up(z, "full@example.com");
    auto zap = make_zap(z, a, json::array({http_step(sink.url("/ok"))}));
    while (ids.size() < 60) {
      auto r = z.request("POST", "/hooks/catch/" + a.user_id + "/" + zap, "{}", {{"Content-Type", "application/json"}});
      if (r.status == 200) ids.push_back(r.json()["runId"]);
      else REQUIRE(r.status == 503);  // the webhook side of the same full writer
    }
    REQUIRE(z.terminate(SIGTERM) == 0);
  }
  zapd_process z(args(full), {}, data);
  for (const auto& id : ids) CHECK(wait_final(z, a, id, 30s)["status"] == "succeeded");
  std::map<std::string, int> seen;
  for (const auto& r : sink.requests()) ++seen[r.header("Idempotency-Key")];
  CHECK(seen.size() == ids.size());
  for (const auto& [key, n] : seen) CHECK(n == 1);  // no step ran twice
  // The path under test was taken: some results met a full writer and were handed over again.
  auto m = z.request("GET", "/metrics").body;
  const std::string series = "\nzapd_worker_results_deferred_total ";
  auto at = m.find(series);
  REQUIRE(at != std::string::npos);
  CHECK(std::stol(m.substr(at + series.size())) > 0);
}

TEST_CASE("runs: a deleted zap's queued run fails at once and cannot be replayed") {
  http_sink sink;
  const std::string data = temp_dir("zapd-deleted-zap") + "/data";
  account a;
  std::string run_id;
  {
    zapd_process z(args({"--set", "worker.enabled=off"}), {}, data);
    a = sign_up(z, "gone@example.com");
    auto zap = make_zap(z, a, json::array({http_step(sink.url("/never"))}));
    run_id = fire(z, a, zap);
    REQUIRE(z.request("DELETE", "/api/v1/zap/" + zap, "", bearer(a.token)).status == 200);
    REQUIRE(z.terminate(SIGTERM) == 0);
  }
  zapd_process z(args(), {}, data);
  auto run = wait_final(z, a, run_id, 10s);
  CHECK(run["status"] == "failed");
  CHECK(run["steps"][0]["attempts"] == 1);  // no retries for a zap that is gone
  CHECK_THAT(run["error"].get<std::string>(), Catch::Contains("no version"));
  CHECK(sink.count() == 0);
  auto replay = z.request("POST", "/api/v1/runs/" + run_id + "/replay", "", bearer(a.token));
  CHECK(replay.status == 404);
  CHECK_THAT(replay.json()["error"]["message"].get<std::string>(), Catch::Contains("no longer exists"));
}

namespace {

// `s` percent-encoded as zapd puts a value into a URL after other text (RFC 3986 unreserved kept).
std::string percent_encoded(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 0xF];
    }
  }
  return out;
}

// The bytes of a file ("" when it does not exist).
std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_CASE("worker: secret values never reach run history, the database or the log") {
  // Values with bytes that JSON escapes and URLs encode, so the encoded forms are checked too.
  const std::string path_secret = "p@th s3cret/Zq7";
  const std::string host_secret = "topsecrethost-9zk.invalid";
  const std::string echo_secret = "ech\"o-s3cret\\Wv4";
  http_sink sink;
  sink.on("/s404", sink_reply::status(404));
  sink.on("/echo-json", [](const sink_request& r) { return sink_reply::json(r.body); });
  sink.on("/echo-text", [](const sink_request& r) { return sink_reply::text("you sent " + r.body); });
  zapd_process z(args());
  auto a = sign_up(z, "masked@example.com");
  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"PATHSEC", path_secret}, {"HOSTSEC", host_secret}, {"ECHOSEC", echo_secret}})
    REQUIRE(z.request("POST", "/api/v1/secrets", json{{"name", name}, {"value", value}}.dump(), bearer(a.token)).status == 200);

  // A 404 from a URL whose path holds a secret: the error names the URL.
  auto r404 = fire(z, a, make_zap(z, a, json::array({http_step(sink.url("/s404/{{secrets.PATHSEC}}"))})));
  // A host name from a secret that does not resolve: the error names the host.
  auto rhost = fire(z, a, make_zap(z, a, json::array({http_step("http://{{secrets.HOSTSEC}}/x")})));
  // A server that echoes the secret (as JSON, then as text with the JSON escaping), and a next
  // step that reads what it echoed.
  auto recho = fire(z, a, make_zap(z, a, json::array({
      http_step(sink.url("/echo-json"), {{"body", R"({"token":"{{secrets.ECHOSEC}}"})"}}),
      http_step(sink.url("/echo-text"), {{"body", R"({"got":"{{steps.1.body.token}}","all":{{steps.1.body}},"k":"{{secrets.ECHOSEC}}"})"}}),
      http_step(sink.url("/echo-json/last"), {{"body", R"({"prev":{{steps.2.body}}})"}})})));

  auto run404 = wait_final(z, a, r404);
  auto runhost = wait_final(z, a, rhost);
  auto runecho = wait_final(z, a, recho);
  INFO(run404.dump(2) << "\n" << runhost.dump(2) << "\n" << runecho.dump(2));
  REQUIRE(run404["status"] == "failed");
  CHECK_THAT(run404["steps"][0]["error"].get<std::string>(), Catch::Contains("HTTP 404 from") && Catch::Contains("/s404/********"));
  REQUIRE(runhost["status"] == "failed");
  CHECK_THAT(runhost["steps"][0]["error"].get<std::string>(), Catch::Contains("resolve host: ********"));
  REQUIRE(runecho["status"] == "succeeded");
  CHECK(runecho["steps"][0]["output"]["body"]["token"] == "********");
  // The secrets really went out (the masking is of what is recorded, not of what is sent).
  REQUIRE(sink.wait_for(4));
  bool sent = false;
  for (const auto& r : sink.requests()) sent = sent || r.body.find(R"(ech\"o-s3cret\\Wv4)") != std::string::npos;
  CHECK(sent);

  const std::vector<std::string> forms = {
      path_secret, percent_encoded(path_secret), host_secret, echo_secret, json(echo_secret).dump().substr(1, echo_secret.size() + 2),
      percent_encoded(echo_secret), "s3cret", "topsecrethost"};
  auto runs_list = z.request("GET", "/api/v1/runs", "", bearer(a.token)).body;
  REQUIRE(z.terminate(SIGTERM) == 0);  // the log and the database are complete
  const auto log = z.log();
  CHECK_THAT(log, Catch::Contains("worker.step_failed"));  // the failures are logged (masked)
  const auto db_bytes = file_bytes(z.data_dir() + "/zapd.db") + file_bytes(z.data_dir() + "/zapd.db-wal");
  for (const auto& f : forms) {
    INFO("form: " << f);
    for (const auto& run : {run404, runhost, runecho}) CHECK(run.dump().find(f) == std::string::npos);
    CHECK(runs_list.find(f) == std::string::npos);
    CHECK(log.find(f) == std::string::npos);
    CHECK(db_bytes.find(f) == std::string::npos);
  }
}

TEST_CASE("worker: a reference to a secret that no longer exists fails the step at once, naming it") {
  http_sink sink;
  zapd_process z(args());
  auto a = sign_up(z, "gone-secret@example.com");
  for (const char* name : {"SIGN", "TOKEN", "KEEP"})
    REQUIRE(z.request("POST", "/api/v1/secrets", json{{"name", name}, {"value", std::string("v-") + name}}.dump(), bearer(a.token))
                .status == 200);
  // The signing secret (deleted: the request would go out unsigned) and a body field.
  auto signed_zap = make_zap(z, a, json::array({http_step(sink.url("/signed"), {{"signingSecret", "{{secrets.SIGN}}"}})}));
  auto body_zap = make_zap(z, a, json::array({http_step(sink.url("/ok"), {{"headers", {{"X-Keep", "{{secrets.KEEP}}"}}}}),
                                              http_step(sink.url("/body"), {{"body", R"({"t":"{{ secrets.TOKEN }}"})"}})}));
  REQUIRE(z.request("DELETE", "/api/v1/secrets/SIGN", "", bearer(a.token)).status == 200);
  REQUIRE(z.request("DELETE", "/api/v1/secrets/TOKEN", "", bearer(a.token)).status == 200);

  auto id = fire(z, a, signed_zap);
  auto run = wait_final(z, a, id);
  INFO(run.dump(2));
  CHECK(run["status"] == "failed");
  CHECK(run["steps"][0]["status"] == "failed");
  CHECK(run["steps"][0]["attempts"] == 1);  // permanent: no retry
  CHECK(run["steps"][0]["error"] == R"(secret "SIGN" does not exist)");
  CHECK(run["error"] == R"(step 1: secret "SIGN" does not exist)");
  CHECK(job_state(z, id) == "dead");

  auto id2 = fire(z, a, body_zap);
  auto run2 = wait_final(z, a, id2);
  INFO(run2.dump(2));
  CHECK(run2["status"] == "failed");
  CHECK(run2["steps"][0]["status"] == "succeeded");  // its secret still exists
  CHECK(run2["steps"][1]["attempts"] == 1);
  CHECK(run2["steps"][1]["error"] == R"(secret "TOKEN" does not exist)");

  std::this_thread::sleep_for(300ms);  // a retry (50 ms base) would have come by now
  REQUIRE(sink.requests().size() == 1);  // only the step whose secret exists went out
  CHECK(sink.requests()[0].path() == "/ok");
  CHECK(get_run(z, a, id)["steps"][0]["attempts"] == 1);
}

TEST_CASE("worker: a timeoutMs stored before range checks existed (2^63) runs with the default, not 1 ms") {
  http_sink sink;
  sink.on("/slow", sink_reply::text("ok").after(std::chrono::milliseconds(150)));
  zapd_process z(args());
  auto a = sign_up(z, "legacy@example.com");
  auto zap = make_zap(z, a, json::array({http_step(sink.url("/slow"), {{"timeoutMs", 5000}})}));
  {
    // What an older zapd saved without complaint; the API refuses it now.
    auto c = zapd::store::connection::open(z.data_dir() + "/zapd.db", zapd::store::open_mode::read_write_create);
    REQUIRE(c.ok());
    REQUIRE(c->run("UPDATE zap_versions SET definition = replace(definition, '\"timeoutMs\":5000', "
                   "'\"timeoutMs\":9223372036854775808') WHERE zap_id = ?1",
                   zap)
                .ok());
    db_view db(z.data_dir() + "/zapd.db");
    REQUIRE(db.count("SELECT count(*) FROM zap_versions WHERE definition LIKE '%9223372036854775808%'") == 1);
  }
  auto run = wait_final(z, a, fire(z, a, zap));
  INFO(run.dump());
  CHECK(run["status"] == "succeeded");
  CHECK(run["steps"][0]["attempts"] == 1);
}

TEST_CASE("worker: with outbox.direct a run's steps go straight into the queue, without it through the relay, and both complete") {
  for (const std::string direct : {"on", "off"}) {
    DYNAMIC_SECTION("outbox.direct=" << direct) {
      http_sink sink;
      sink.on("/one", sink_reply::json(R"({"n":1})"));
      sink.on("/two", sink_reply::json(R"({"ok":true})"));
      zapd_process z(args({"--set", "outbox.direct=" + direct}));
      auto a = sign_up(z, "ada@example.com");
      auto zap = make_zap(z, a, json::array({http_step(sink.url("/one")), http_step(sink.url("/two?n={{steps.1.body.n}}"))}));
      std::vector<std::string> ids;
      for (int i = 0; i < 5; ++i) ids.push_back(fire(z, a, zap));
      for (const auto& id : ids) {
        auto run = wait_final(z, a, id);
        INFO(run.dump(2));
        CHECK(run["status"] == "succeeded");
      }
      CHECK(sink.requests().size() == 10);
      // Ten steps were due: the relay moved none of them, or every one.
      auto metrics = z.request("GET", "/metrics").body;
      INFO(metrics);
      CHECK(metrics.find(std::string("zapd_outbox_rows_published_total ") + (direct == "on" ? "0" : "10") + "\n") != std::string::npos);
      db_view db(z.data_dir() + "/zapd.db");
      CHECK(db.count("SELECT count(*) FROM outbox") == 0);
      CHECK(db.count("SELECT count(*) FROM jobs") == 0);
    }
  }
}
