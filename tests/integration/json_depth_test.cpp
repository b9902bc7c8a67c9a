// Hostile JSON nesting against the real binary (issue 13): 100,000 levels of `[` in a 200 KB
// body (under the body limit) once killed the process with SIGSEGV. Every route that takes a
// body gets one; each must answer a 4xx (a 400 naming the limit where the route reads JSON),
// and the process must stay alive and ready. Stored documents at the deepest nesting a
// webhook may have must still be read back and executed by the worker.
#include <signal.h>
#include <sys/wait.h>

#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "api_helpers.hpp"
#include "http_sink.hpp"
#include "zapd_process.hpp"

using namespace zapd::test;
using json = nlohmann::json;

namespace {

std::string nested(std::size_t levels, const std::string& inner = "") {
  return std::string(levels, '[') + inner + std::string(levels, ']');
}

// `{"name": [[[...]]]}`: the shape from the issue.
std::string hostile_body(std::size_t levels = 100'000) { return "{\"name\":" + nested(levels) + "}"; }

bool alive(const zapd_process& z) {
  if (::kill(z.pid(), 0) != 0) return false;
  int st = 0;
  return ::waitpid(z.pid(), &st, WNOHANG) == 0;
}

void check_alive_and_ready(const zapd_process& z) {
  REQUIRE(alive(z));
  auto ready = z.request("GET", "/readyz");
  CHECK(ready.status == 200);
}

struct route {
  const char* method;
  std::string path;
  bool reads_json;  // a 400 naming the depth limit is the answer, not just any 4xx
};

}  // namespace

TEST_CASE("json depth: 100,000 nested arrays to every route that takes a body get a 4xx, zapd stays up") {
  zapd_process z(serve_args({"hooks.free_zap_rate=0", "hooks.free_user_rate=0"}));
  auto a = sign_up(z, "deep@example.com");
  auto zap = make_zap(z, a, json::array());
  auto run = fire(z, a, zap);
  auto tok = z.request("POST", "/api/v1/tokens", R"({"name":"t"})", bearer(a.token));
  REQUIRE(tok.status == 200);

  const std::vector<route> routes = {
      {"POST", "/api/v1/user/signup", true},
      {"POST", "/api/v1/user/signin", true},
      {"PATCH", "/api/v1/user", true},
      {"POST", "/api/v1/user/password", true},
      {"POST", "/api/v1/tokens", true},
      {"POST", "/api/v1/zap", true},
      {"POST", "/api/v1/zap/import", true},
      {"PUT", "/api/v1/zap/" + zap, true},
      {"PATCH", "/api/v1/zap/" + zap, true},
      {"POST", "/api/v1/secrets", true},
      {"POST", "/hooks/catch/" + a.user_id + "/" + zap, true},
      {"PUT", "/hooks/catch/" + a.user_id + "/" + zap, true},
      {"PATCH", "/hooks/catch/" + a.user_id + "/" + zap, true},
      {"POST", "/api/v1/runs/" + run + "/cancel", false},
      {"POST", "/api/v1/runs/" + run + "/retry", false},
      {"POST", "/api/v1/runs/" + run + "/replay", false},
  };
  const std::string body = hostile_body();
  REQUIRE(body.size() > 200'000);
  for (const auto& r : routes) {
    INFO(r.method << " " << r.path);
    auto res = z.request(r.method, r.path, body, {{"Authorization", "Bearer " + a.token}, {"Content-Type", "application/json"}});
    if (r.reads_json) {
      CHECK(res.status == 400);
      INFO(res.body);
      CHECK(res.body.find("nests deeper than") != std::string::npos);
      CHECK(res.body.find("64") != std::string::npos);
    } else {
      CHECK(res.status >= 200);
      CHECK(res.status < 500);
    }
    check_alive_and_ready(z);
  }
  // The same nesting one level down, inside a step's config (the issue's second crash).
  json zap_doc = {{"name", "deep"}, {"availableTriggerId", "webhook"}, {"triggerMetadata", json::object()}};
  std::string inner = zap_doc.dump();
  inner.pop_back();
  inner += R"(,"actions":[{"availableActionId":"http","actionMetadata":{"url":"https://example.org/","body":)" +
           nested(100'000) + "}}]}";
  auto deep_step = z.request("POST", "/api/v1/zap", inner, bearer(a.token));
  CHECK(deep_step.status == 400);
  CHECK(deep_step.body.find("nests deeper than 64 levels") != std::string::npos);
  check_alive_and_ready(z);

  // At the limit it still works: 64 levels in all (the object counts as one).
  auto at_limit = z.request("POST", "/api/v1/zap",
                            R"({"name":"ok","availableTriggerId":"webhook","triggerMetadata":{"x":)" + nested(62) + "}}",
                            bearer(a.token));
  INFO(at_limit.body);
  CHECK(at_limit.status != 500);
  CHECK(at_limit.body.find("nests deeper") == std::string::npos);
}

TEST_CASE("json depth: a webhook body at hooks.max_depth=1000 is stored, read back and executed") {
  http_sink sink;
  sink.on("/deep", sink_reply::json(R"({"ok":true})"));
  zapd_process z(serve_args({"hooks.max_depth=1000", "actions.http.allow=127.0.0.1", "hooks.free_zap_rate=0",
                             "hooks.free_user_rate=0"}));
  auto a = sign_up(z, "deeper@example.com");
  json step = {{"availableActionId", "http"},
               {"actionMetadata", {{"url", sink.url("/deep")}, {"method", "POST"}, {"body", "{\"got\":\"{{b}}\"}"}}}};
  auto zap = make_zap(z, a, json::array({step}));
  // {"a": [[...999 levels...]]}: 1,000 levels in all, the configured limit.
  auto run_id = fire(z, a, zap, "{\"b\":\"read back\",\"a\":" + nested(999, "1") + "}");
  auto run = wait_final(z, a, run_id);
  INFO(run.dump().substr(0, 2000));
  CHECK(run["status"] == "succeeded");
  auto got = sink.requests();
  REQUIRE(got.size() == 1);
  CHECK(got[0].body == R"({"got":"read back"})");
  // The run's trigger as the API returns it (read back from SQLite) keeps every level.
  CHECK(run["trigger"]["body"].dump().find(nested(999, "1")) != std::string::npos);
  // One level more is refused at the door.
  auto over = z.request("POST", "/hooks/catch/" + a.user_id + "/" + zap, "{\"a\":" + nested(1000) + "}",
                        {{"Content-Type", "application/json"}});
  CHECK(over.status == 400);
  CHECK(over.body.find("1000") != std::string::npos);
  check_alive_and_ready(z);
}

TEST_CASE("json: a NUL byte ends no JSON text early, found by json_fuzz") {
  zapd_process z(serve_args({"hooks.free_zap_rate=0", "hooks.free_user_rate=0"}));
  auto a = sign_up(z, "nul@example.com");
  auto zap = make_zap(z, a, json::array());
  const std::string tail("\0{\"x\":", 6);
  auto api = z.request("POST", "/api/v1/zap", R"({"name":"n","availableTriggerId":"webhook","actions":[]})" + tail, bearer(a.token));
  CHECK(api.status == 400);
  CHECK(api.body.find("not valid JSON") != std::string::npos);
  auto hook = z.request("POST", "/hooks/catch/" + a.user_id + "/" + zap, R"({"a":1})" + tail, {{"Content-Type", "application/json"}});
  CHECK(hook.status == 400);
  CHECK(hook.body.find("not valid JSON") != std::string::npos);
  check_alive_and_ready(z);
}
