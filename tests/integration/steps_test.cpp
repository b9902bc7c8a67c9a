// The built-in steps through the real binary (issue 17): filter (every operator, `all`/`any`,
// the `filtered` final status), formatter (output types, later steps reading it), delay
// (durable across SIGKILL, cancel while waiting, replay waits again), and their save-time
// validation.
#include <signal.h>

#include <thread>

#include <catch2/catch.hpp>

#include "api_helpers.hpp"
#include "db_view.hpp"
#include "http_sink.hpp"
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

json step(const std::string& kind, json meta) { return {{"availableActionId", kind}, {"actionMetadata", std::move(meta)}}; }

json cond(const std::string& left, const std::string& op, std::optional<std::string> right = std::nullopt) {
  json c = {{"left", left}, {"op", op}};
  if (right) c["right"] = *right;
  return c;
}

// A zap: filter(conditions, match) -> http to the sink.
std::string filter_zap(const zapd_process& z, const account& a, const http_sink& sink, json conditions,
                       const std::string& match = "all") {
  return make_zap(z, a,
                  json::array({step("filter", {{"match", match}, {"conditions", std::move(conditions)}}),
                               http_step(sink.url("/passed"))}));
}

std::string status_after(const zapd_process& z, const account& a, const std::string& zap, const std::string& body) {
  auto run = wait_final(z, a, fire(z, a, zap, body));
  return run["status"];
}

}  // namespace

TEST_CASE("filter: every operator, on a passing and a failing payload") {
  http_sink sink;
  sink.on("/", sink_reply::json(R"({"ok":true})"));
  zapd_process z(args());
  auto a = sign_up(z, "filter@example.com");

  struct row {
    json condition;
    const char* pass;  // a body for which it holds
    const char* fail;  // a body for which it does not
  };
  const std::vector<row> rows = {
      {cond("{{x}}", "exists"), R"({"x":0})", R"({"y":1})"},
      {cond("{{x}}", "notExists"), R"({"y":1})", R"({"x":""})"},
      {cond("{{x}}", "equals", "42"), R"({"x":42})", R"({"x":43})"},
      {cond("{{x}}", "equals", "paid"), R"({"x":"paid"})", R"({"x":"Paid"})"},
      {cond("{{x}}", "notEquals", "paid"), R"({"x":"free"})", R"({"x":"paid"})"},
      {cond("{{x}}", "contains", "@example.com"), R"({"x":"ada@example.com"})", R"({"x":"ada@example.org"})"},
      {cond("{{tags}}", "contains", "vip"), R"({"tags":["new","vip"]})", R"({"tags":["new"]})"},
      {cond("{{x}}", "notContains", "spam"), R"({"x":"hello"})", R"({"x":"spam offer"})"},
      {cond("{{x}}", "startsWith", "INV-"), R"({"x":"INV-7"})", R"({"x":"PO-7"})"},
      {cond("{{x}}", "endsWith", ".pdf"), R"({"x":"a.pdf"})", R"({"x":"a.png"})"},
      {cond("{{amount}}", "gt", "100"), R"({"amount":100.5})", R"({"amount":100})"},
      {cond("{{amount}}", "gte", "100"), R"({"amount":100})", R"({"amount":99.9})"},
      {cond("{{amount}}", "lt", "10"), R"({"amount":"9"})", R"({"amount":"10"})"},
      {cond("{{amount}}", "lte", "10"), R"({"amount":10})", R"({"amount":11})"},
      {cond("{{at}}", "gt", "2026-01-01T00:00:00Z"), R"({"at":"2026-01-01T01:00:00+00:30"})",
       R"({"at":"2026-01-01T00:30:00+01:00"})"},
      {cond("{{x}}", "matches", "^[A-Z]{3}-\\d+$"), R"({"x":"ABC-12"})", R"({"x":"ab-12"})"},
      {cond("{{x}}", "isTrue"), R"({"x":true})", R"({"x":false})"},
      {cond("{{x}}", "isTrue"), R"({"x":"TRUE"})", R"({"x":"yes"})"},
      {cond("{{x}}", "isFalse"), R"({"x":false})", R"({"x":true})"},
      {cond("{{x}}", "isEmpty"), R"({"x":[]})", R"({"x":[1]})"},
      {cond("{{x}}", "isEmpty"), R"({"y":1})", R"({"x":"a"})"},
  };
  for (const auto& r : rows) {
    INFO(r.condition.dump());
    auto zap = filter_zap(z, a, sink, json::array({r.condition}));
    CHECK(status_after(z, a, zap, r.pass) == "succeeded");
    CHECK(status_after(z, a, zap, r.fail) == "filtered");
  }
}

TEST_CASE("filter: a filtered run says which condition failed with the values compared, and stops there") {
  http_sink sink;
  sink.on("/", sink_reply::json(R"({"ok":true})"));
  zapd_process z(args());
  auto a = sign_up(z, "filtered@example.com");
  auto zap = filter_zap(z, a, sink, json::array({cond("{{plan}}", "equals", "paid"), cond("{{amount}}", "gte", "50")}));

  auto run = wait_final(z, a, fire(z, a, zap, R"({"plan":"paid","amount":20})"));
  INFO(run.dump(2));
  CHECK(run["status"] == "filtered");
  CHECK(run["error"].is_null());
  REQUIRE(run["steps"].size() == 1);  // step 2 never ran
  const auto& s = run["steps"][0];
  CHECK(s["status"] == "filtered");
  CHECK(s["output"]["passed"] == false);
  CHECK(s["output"]["stoppedBy"] == "condition 2 did not hold");
  CHECK(s["output"]["conditions"][0]["result"] == true);
  CHECK(s["output"]["conditions"][1]["left"] == 20);
  CHECK(s["output"]["conditions"][1]["right"] == "50");
  CHECK(s["output"]["conditions"][1]["result"] == false);
  CHECK(sink.requests().empty());

  // `any`: one holding condition is enough; the run goes on to the HTTP step.
  auto any = filter_zap(z, a, sink, json::array({cond("{{plan}}", "equals", "paid"), cond("{{amount}}", "gte", "50")}), "any");
  CHECK(status_after(z, a, any, R"({"plan":"paid","amount":20})") == "succeeded");
  REQUIRE(sink.wait_for(1));

  // The runs list filters by the new status.
  auto list = z.request("GET", "/api/v1/runs?status=filtered", "", bearer(a.token));
  REQUIRE(list.status == 200);
  REQUIRE(list.json()["runs"].size() == 1);
  CHECK(list.json()["runs"][0]["id"] == run["id"]);
}

TEST_CASE("filter and delay: save-time validation names the field") {
  zapd_process z(args());
  auto a = sign_up(z, "validate@example.com");
  auto save = [&](json actions) {
    json body = {{"availableTriggerId", "webhook"}, {"triggerMetadata", json::object()}, {"actions", std::move(actions)}};
    return z.request("POST", "/api/v1/zap", body.dump(), bearer(a.token));
  };
  auto has_path = [](const http_reply& r, const std::string& path) {
    const auto body = r.json();  // kept: a range-for over a temporary's member would dangle
    for (const auto& d : body["error"]["details"])
      if (d["path"] == path) return true;
    return false;
  };
  auto r = save(json::array({step("filter", {{"conditions", json::array({cond("{{x}}", "bigger", "1")})}})}));
  CHECK(r.status == 400);
  CHECK(has_path(r, "actions[0].actionMetadata.conditions[0].op"));
  r = save(json::array({step("filter", {{"conditions", json::array({cond("{{x}}", "equals")})}})}));
  CHECK(r.status == 400);
  CHECK(has_path(r, "actions[0].actionMetadata.conditions[0].right"));
  r = save(json::array({step("filter", {{"conditions", json::array({cond("{{x}}", "matches", "(unclosed")})}})}));
  CHECK(r.status == 400);
  CHECK(has_path(r, "actions[0].actionMetadata.conditions[0].right"));
  r = save(json::array({step("filter", {{"conditions", json::array()}})}));
  CHECK(r.status == 400);
  r = save(json::array({step("delay", {{"for", "5 fortnights"}})}));
  CHECK(r.status == 400);
  CHECK(has_path(r, "actions[0].actionMetadata.for"));
  r = save(json::array({step("delay", json::object())}));
  CHECK(r.status == 400);
  r = save(json::array({step("delay", {{"for", "5m"}, {"until", "2027-01-01T00:00:00Z"}})}));
  CHECK(r.status == 400);
  r = save(json::array({step("delay", {{"until", "tomorrow"}})}));
  CHECK(r.status == 400);
  CHECK(has_path(r, "actions[0].actionMetadata.until"));
  CHECK(save(json::array({step("delay", {{"for", "PT1H30M"}})})).status == 200);
  CHECK(save(json::array({step("delay", {{"until", "{{body.at}}"}})})).status == 200);
  // Template filters are checked at save: an unknown one names its field.
  r = save(json::array({http_step("https://example.org/x", {{"body", "{{name | shout}}"}})}));
  CHECK(r.status == 400);
  CHECK(has_path(r, "actions[0].actionMetadata.body"));
  CHECK_THAT(r.body, Catch::Contains("shout"));
  r = save(json::array({step("formatter", {{"fields", {{"n", "{{x | truncate:\"a\"}}"}}}})}));
  CHECK(r.status == 400);
  CHECK(has_path(r, "actions[0].actionMetadata.fields.n"));
  CHECK(save(json::array({step("formatter", {{"fields", {{"n", "{{x | trim | upper | default:\"none\"}}"}}}})})).status == 200);
  r = save(json::array({step("formatter", {{"fields", {{"a.b", "{{x}}"}}}})}));
  CHECK(r.status == 400);
  CHECK(has_path(r, "actions[0].actionMetadata.fields.a.b"));
}

TEST_CASE("formatter: typed fields, read by a later step") {
  http_sink sink;
  sink.on("/", sink_reply::json(R"({"ok":true})"));
  zapd_process z(args());
  auto a = sign_up(z, "formatter@example.com");
  auto zap = make_zap(z, a,
                      json::array({step("formatter", {{"fields",
                                                       {{"count", "{{n}}"},
                                                        {"order", "{{order}}"},
                                                        {"flag", "{{ok}}"},
                                                        {"label", "Order {{order.id}} for {{name}}"},
                                                        {"missing", "{{nope}}"},
                                                        {"shout", "{{name | upper}}"},
                                                        {"items", "{{order.items | length}}"}}}}),
                                   http_step(sink.url("/out"), {{"body", R"({"c":{{steps.1.count}},"l":"{{steps.1.label}}"})"}})}));
  auto run = wait_final(z, a, fire(z, a, zap, R"({"n":3,"order":{"id":"o-1","items":[1,2]},"ok":true,"name":"Ada"})"));
  INFO(run.dump(2));
  REQUIRE(run["status"] == "succeeded");
  const auto& out = run["steps"][0]["output"];
  CHECK(out["count"] == 3);
  CHECK(out["order"] == json{{"id", "o-1"}, {"items", {1, 2}}});
  CHECK(out["flag"] == true);
  CHECK(out["label"] == "Order o-1 for Ada");
  CHECK(out["missing"].is_null());
  CHECK(out["shout"] == "ADA");
  CHECK(out["items"] == 2);  // a filter's number keeps its type too
  REQUIRE(sink.wait_for(1));
  CHECK(json::parse(sink.requests()[0].body) == json{{"c", 3}, {"l", "Order o-1 for Ada"}});
}

TEST_CASE("delay: the run waits durably across a SIGKILL, then the next step runs") {
  http_sink sink;
  sink.on("/", sink_reply::json(R"({"ok":true})"));
  const std::string data = temp_dir("zapd-delay") + "/data";
  account a;
  std::string run_id;
  std::chrono::steady_clock::time_point fired;
  {
    zapd_process z(args(), {}, data);
    a = sign_up(z, "delay@example.com");
    auto zap = make_zap(z, a, json::array({step("delay", {{"for", "2s"}}), http_step(sink.url("/after"))}));
    fired = std::chrono::steady_clock::now();
    run_id = fire(z, a, zap);
    // Waiting, with when it resumes.
    json run;
    for (int i = 0; i < 100; ++i) {
      run = get_run(z, a, run_id);
      if (run["status"] == "waiting") break;
      std::this_thread::sleep_for(20ms);
    }
    INFO(run.dump(2));
    REQUIRE(run["status"] == "waiting");
    REQUIRE(run["resumeAt"].is_string());
    CHECK(run["steps"][0]["output"]["delayMs"] == 2000);
    std::this_thread::sleep_for(500ms);
    REQUIRE(z.terminate(SIGKILL) == 128 + SIGKILL);
  }
  CHECK(sink.requests().empty());
  zapd_process z(args(), {}, data);
  auto run = wait_final(z, a, run_id);
  INFO(run.dump(2));
  CHECK(run["status"] == "succeeded");
  CHECK(std::chrono::steady_clock::now() - fired >= 2s);
  CHECK(run["resumeAt"].is_null());
  REQUIRE(sink.wait_for(1));
  CHECK(sink.requests().size() == 1);
}

TEST_CASE("delay: cancel while waiting, replay waits again, until in the past continues at once") {
  http_sink sink;
  sink.on("/", sink_reply::json(R"({"ok":true})"));
  zapd_process z(args());
  auto a = sign_up(z, "cancel@example.com");
  auto zap = make_zap(z, a, json::array({step("delay", {{"for", "1h"}}), http_step(sink.url("/never"))}));
  auto run_id = fire(z, a, zap);
  for (int i = 0; i < 100 && get_run(z, a, run_id)["status"] != "waiting"; ++i) std::this_thread::sleep_for(20ms);
  REQUIRE(get_run(z, a, run_id)["status"] == "waiting");
  auto c = z.request("POST", "/api/v1/runs/" + run_id + "/cancel", "", bearer(a.token));
  INFO(c.body);
  REQUIRE(c.status == 200);
  CHECK(c.json()["run"]["status"] == "cancelled");
  {
    db_view db(z.data_dir() + "/zapd.db");
    CHECK(db.count("SELECT count(*) FROM jobs WHERE run_id = ?1", run_id) == 0);
    CHECK(db.count("SELECT count(*) FROM outbox WHERE run_id = ?1", run_id) == 0);
  }

  auto short_zap = make_zap(z, a, json::array({step("delay", {{"for", "1s"}}), http_step(sink.url("/replayed"))}));
  auto first = wait_final(z, a, fire(z, a, short_zap));
  REQUIRE(first["status"] == "succeeded");
  auto rp = z.request("POST", "/api/v1/runs/" + first["id"].get<std::string>() + "/replay", "", bearer(a.token));
  INFO(rp.body);
  REQUIRE(rp.status == 200);
  const std::string replay_id = rp.json()["runId"];
  for (int i = 0; i < 100 && get_run(z, a, replay_id)["status"] != "waiting"; ++i) std::this_thread::sleep_for(10ms);
  CHECK(get_run(z, a, replay_id)["status"] == "waiting");
  CHECK(wait_final(z, a, replay_id)["status"] == "succeeded");

  auto past = make_zap(z, a, json::array({step("delay", {{"until", "{{at}}"}}), http_step(sink.url("/past"))}));
  auto p = wait_final(z, a, fire(z, a, past, R"({"at":"2001-01-01T00:00:00Z"})"), 5s);
  CHECK(p["status"] == "succeeded");
  CHECK(p["steps"][0]["output"]["delayMs"] == 0);
  auto bad = wait_final(z, a, fire(z, a, past, R"({"at":"not a time"})"), 5s);
  CHECK(bad["status"] == "failed");
  CHECK_THAT(bad["error"].get<std::string>(), Catch::Contains("RFC 3339"));
  auto far = wait_final(z, a, fire(z, a, past, R"({"at":"2099-01-01T00:00:00Z"})"), 5s);
  CHECK(far["status"] == "failed");
  CHECK_THAT(far["error"].get<std::string>(), Catch::Contains("max_delay_days"));
}
