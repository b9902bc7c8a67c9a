// Zaps, catalog and secrets through the real binary (issue #4).
#include <fstream>
#include <functional>
#include <iterator>
#include <set>

#include <catch2/catch.hpp>

#include "api_helpers.hpp"
#include "zapd_process.hpp"

using namespace zapd::test;
using json = nlohmann::json;

namespace {

const std::string k_seed_body =
    R"({"availableTriggerId":"webhook","triggerMetadata":{},"actions":[{"availableActionId":"email","actionMetadata":{"email":"{comment.email}","body":"hi"}}]})";

std::string user_token(const zapd_process& z, const std::string& email) { return sign_up(z, email).token; }

const std::vector<std::string>& k_fast = k_fast_hashing;

}  // namespace

TEST_CASE("catalog: no auth needed, icons served by zapd") {
  zapd_process z(k_fast);
  auto t = z.request("GET", "/api/v1/trigger/available");
  REQUIRE(t.status == 200);
  auto triggers = t.json()["availableTriggers"];
  REQUIRE(triggers.size() >= 1);
  CHECK(triggers[0]["id"] == "webhook");
  CHECK(triggers[0]["configSchema"]["fields"].is_array());
  auto a = z.request("GET", "/api/v1/action/available").json()["availableActions"];
  std::set<std::string> ids;
  for (const auto& e : a) ids.insert(e["id"]);
  CHECK(ids == std::set<std::string>{"http", "email", "filter", "delay", "formatter"});
  // Every entry's icon is served (the built-in steps' too).
  for (const auto& e : a) {
    std::string image = e["image"];
    auto icon = z.request("GET", image.substr(image.find("/static/")));
    CHECK(icon.status == 200);
    CHECK(icon.header("content-type") == "image/svg+xml");
  }
  CHECK(z.request("GET", "/static/icons/nope.svg").status == 404);
}

TEST_CASE("zaps: the seeds' body, full CRUD, versions, export/import") {
  zapd_process z(k_fast);
  auto tok = user_token(z, "alice@example.com");
  auto h = bearer(tok);

  auto anonymous = z.request("POST", "/api/v1/zap", k_seed_body);  // no token
  CHECK(anonymous.status == 401);
  CHECK(anonymous.header("www-authenticate") == "Bearer");

  auto created = z.request("POST", "/api/v1/zap", k_seed_body, h);
  REQUIRE(created.status == 200);
  std::string id = created.json()["zapId"];
  std::string url = created.json()["webhookUrl"];
  CHECK(url.find("/hooks/catch/") != std::string::npos);
  CHECK(url.find(id) != std::string::npos);

  // A bare token (as the seeds send it) works too.
  auto one = z.request("GET", "/api/v1/zap/" + id, "", {{"Authorization", tok}});
  REQUIRE(one.status == 200);
  auto zap = one.json()["zap"];
  CHECK(zap["version"] == 1);
  CHECK(zap["enabled"] == true);
  CHECK(zap["trigger"]["type"]["image"].get<std::string>().find("webhook.svg") != std::string::npos);
  CHECK(zap["actions"][0]["type"]["id"] == "email");
  CHECK(zap["actions"][0]["metadata"]["to"] == "{comment.email}");
  CHECK(zap["actions"][0]["sortingOrder"] == 0);

  auto list = z.request("GET", "/api/v1/zap", "", h).json()["zaps"];
  REQUIRE(list.size() == 1);
  CHECK(list[0]["id"] == id);

  auto put = z.request("PUT", "/api/v1/zap/" + id,
                       R"({"name":"Forward","availableTriggerId":"webhook","actions":[
                           {"availableActionId":"http","actionMetadata":{"url":"https://example.org/in","body":"{{comment.text}}"}},
                           {"availableActionId":"send-email","actionMetadata":{"to":"ops@example.org","subject":"hi"}}]})",
                       h);
  REQUIRE(put.status == 200);
  CHECK(put.json()["zap"]["version"] == 2);
  CHECK(put.json()["zap"]["actions"].size() == 2);
  auto patched = z.request("PATCH", "/api/v1/zap/" + id, R"({"enabled":false})", h);
  REQUIRE(patched.status == 200);
  CHECK(patched.json()["zap"]["enabled"] == false);
  CHECK(patched.json()["zap"]["version"] == 3);
  CHECK(z.request("PATCH", "/api/v1/zap/" + id, R"({"colour":"red"})", h).status == 400);

  auto versions = z.request("GET", "/api/v1/zap/" + id + "/versions", "", h).json()["versions"];
  REQUIRE(versions.size() == 3);
  CHECK(versions[0]["version"] == 3);
  CHECK(versions[2]["definition"]["actions"][0]["actionId"] == "email");

  auto exported = z.request("GET", "/api/v1/zap/" + id + "/export", "", h);
  REQUIRE(exported.status == 200);
  auto imported = z.request("POST", "/api/v1/zap/import", exported.body, h);
  REQUIRE(imported.status == 200);
  auto copy = imported.json()["zap"];
  CHECK(copy["id"] != id);
  CHECK(copy["name"] == "Forward");
  CHECK(copy["actions"][0]["metadata"] == put.json()["zap"]["actions"][0]["metadata"]);

  REQUIRE(z.request("DELETE", "/api/v1/zap/" + id, "", h).status == 200);
  CHECK(z.request("GET", "/api/v1/zap/" + id, "", h).status == 404);
  CHECK(z.request("DELETE", "/api/v1/zap/" + id, "", h).status == 404);
}

TEST_CASE("zaps: validation errors are 400 with details naming each field") {
  zapd_process z(k_fast);
  auto h = bearer(user_token(z, "val@example.com"));
  struct scenario {
    const char* name;
    std::string body;
    std::string path;
  };
  std::vector<scenario> table = {
      {"unknown trigger", R"({"availableTriggerId":"cron","actions":[]})", "availableTriggerId"},
      {"unknown action", R"({"availableTriggerId":"webhook","actions":[{"availableActionId":"fax"}]})", "actions[0].availableActionId"},
      {"missing url", R"({"availableTriggerId":"webhook","actions":[{"availableActionId":"http","actionMetadata":{}}]})",
       "actions[0].actionMetadata.url"},
      {"wrong type", R"({"availableTriggerId":"webhook","actions":[{"availableActionId":"http","actionMetadata":{"url":"https://x.org","followRedirects":"yes"}}]})",
       "actions[0].actionMetadata.followRedirects"},
      {"missing secret", R"({"availableTriggerId":"webhook","actions":[{"availableActionId":"http","actionMetadata":{"url":"https://x.org","headers":{"X-Key":"{{secrets.NOPE}}"}}}]})",
       "actions[1].actionMetadata"},
  };
  table.back().path = "actions[0].actionMetadata";
  for (const auto& s : table) {
    INFO(s.name);
    auto r = z.request("POST", "/api/v1/zap", s.body, h);
    REQUIRE(r.status == 400);
    auto details = r.json()["error"]["details"];
    bool found = false;
    for (const auto& d : details) found = found || d["path"] == s.path;
    CHECK(found);
  }
  auto malformed = z.request("POST", "/api/v1/zap", "{not json", h);
  CHECK(malformed.status == 400);
  CHECK(malformed.json()["error"]["code"] == "invalid_argument");
  // Nothing was saved by any of them.
  CHECK(z.request("GET", "/api/v1/zap", "", h).json()["zaps"].empty());
}

TEST_CASE("zaps: a timeoutMs out of range or a bad header is 400 with details, on create, import and replace") {
  zapd_process z(k_fast);
  auto h = bearer(user_token(z, "range@example.com"));
  auto id = z.request("POST", "/api/v1/zap", k_seed_body, h).json()["zapId"].get<std::string>();
  // The numbers are written into the body as text: 2^63 must arrive as JSON writes it.
  auto create_body = [](const std::string& meta) {
    return R"({"availableTriggerId":"webhook","actions":[{"availableActionId":"http","actionMetadata":{"url":"https://example.org/in",)" +
           meta + "}}]}";
  };
  auto import_body = [](const std::string& meta) {
    return R"({"format":"zapd.zap","formatVersion":1,"name":"Imported","availableTriggerId":"webhook","triggerMetadata":{},)"
           R"("actions":[{"availableActionId":"http","actionMetadata":{"url":"https://example.org/in",)" +
           meta + R"(}}],"retry":null})";
  };
  struct scenario {
    std::string meta;
    std::string path;
    std::string message;
  };
  const std::vector<scenario> table = {
      {R"("timeoutMs":-5)", "actions[0].actionMetadata.timeoutMs", "must be between 1 and 300000"},
      {R"("timeoutMs":0)", "actions[0].actionMetadata.timeoutMs", "must be between 1 and 300000"},
      {R"("timeoutMs":9223372036854775808)", "actions[0].actionMetadata.timeoutMs", "must be between 1 and 300000"},
      {R"("timeoutMs":300001)", "actions[0].actionMetadata.timeoutMs", "must be between 1 and 300000"},
      {R"("timeoutMs":1.5)", "actions[0].actionMetadata.timeoutMs", "must be an integer between 1 and 300000"},
      {R"("headers":{"X-Bad\r\nInjected":"v"})", "actions[0].actionMetadata.headers.X-Bad\r\nInjected",
       R"('X-Bad\r\nInjected' is not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only))"},
      {R"("headers":{"X Space":"v"})", "actions[0].actionMetadata.headers.X Space",
       "'X Space' is not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only)"},
      {R"("headers":{"X-Ok":"a\r\nX-Injected: 1"})", "actions[0].actionMetadata.headers.X-Ok",
       "the value of header 'X-Ok' contains a line break or NUL"},
      {R"("headers":{"X-Ok":"a\u0000b"})", "actions[0].actionMetadata.headers.X-Ok",
       "the value of header 'X-Ok' contains a line break or NUL"},
  };
  struct route {
    std::string method, target;
    std::function<std::string(const std::string&)> body;
  };
  const std::vector<route> routes = {{"POST", "/api/v1/zap", create_body},
                                     {"POST", "/api/v1/zap/import", import_body},
                                     {"PUT", "/api/v1/zap/" + id, create_body}};
  for (const auto& rt : routes)
    for (const auto& s : table) {
      INFO(rt.method << " " << rt.target << " " << s.meta);
      auto r = z.request(rt.method, rt.target, rt.body(s.meta), h);
      REQUIRE(r.status == 400);
      auto err = r.json()["error"];
      CHECK(err["code"] == "invalid_argument");
      REQUIRE(err["details"].size() == 1);
      CHECK(err["details"][0]["path"] == s.path);
      CHECK(err["details"][0]["message"] == s.message);
    }
  // Nothing was saved: the one zap is still at version 1, with the seeds' email action.
  auto zaps = z.request("GET", "/api/v1/zap", "", h).json()["zaps"];
  REQUIRE(zaps.size() == 1);
  CHECK(zaps[0]["version"] == 1);
  // The bounds are in the catalog for the UI, and the bounds themselves are accepted.
  bool advertised = false;
  const json catalog = z.request("GET", "/api/v1/action/available").json();
  for (const auto& a : catalog["availableActions"])
    for (const auto& f : a["configSchema"]["fields"])
      if (a["id"] == "http" && f["name"] == "timeoutMs") advertised = f["minimum"] == 1 && f["maximum"] == 300000;
  CHECK(advertised);
  for (const char* ok : {R"("timeoutMs":1)", R"("timeoutMs":300000)"}) {
    INFO(ok);
    CHECK(z.request("POST", "/api/v1/zap", create_body(ok), h).status == 200);
    CHECK(z.request("POST", "/api/v1/zap/import", import_body(ok), h).status == 200);
  }
}

TEST_CASE("zaps: another user's zap is 404 on every route") {
  zapd_process z(k_fast);
  auto alice = bearer(user_token(z, "alice@example.com"));
  auto bob = bearer(user_token(z, "bob@example.com"));
  auto id = z.request("POST", "/api/v1/zap", k_seed_body, alice).json()["zapId"].get<std::string>();
  std::vector<std::pair<std::string, std::string>> routes = {
      {"GET", "/api/v1/zap/" + id},          {"PUT", "/api/v1/zap/" + id},
      {"PATCH", "/api/v1/zap/" + id},        {"DELETE", "/api/v1/zap/" + id},
      {"GET", "/api/v1/zap/" + id + "/versions"}, {"GET", "/api/v1/zap/" + id + "/export"},
  };
  for (const auto& [method, path] : routes) {
    INFO(method << " " << path);
    std::string body = method == "PATCH" ? R"({"name":"mine now"})" : (method == "PUT" ? k_seed_body : "");
    CHECK(z.request(method, path, body, bob).status == 404);
  }
  CHECK(z.request("GET", "/api/v1/zap", "", bob).json()["zaps"].empty());
  auto still = z.request("GET", "/api/v1/zap/" + id, "", alice).json()["zap"];
  CHECK(still["version"] == 1);
  CHECK(still["name"] != "mine now");
}

TEST_CASE("secrets: write-only values, referenced by zaps, never echoed or logged") {
  zapd_process z(k_fast);
  auto h = bearer(user_token(z, "sec@example.com"));
  const std::string value = "sk_live_VERY_SECRET_123";
  REQUIRE(z.request("POST", "/api/v1/secrets", json{{"name", "API_KEY"}, {"value", value}}.dump(), h).status == 200);
  CHECK(z.request("POST", "/api/v1/secrets", R"({"name":"bad name","value":"x"})", h).status == 400);
  CHECK(z.request("POST", "/api/v1/secrets", R"({"name":"EMPTY","value":""})", h).status == 400);
  auto list = z.request("GET", "/api/v1/secrets", "", h);
  REQUIRE(list.status == 200);
  CHECK(list.json()["secrets"][0]["name"] == "API_KEY");
  CHECK(list.body.find(value) == std::string::npos);

  auto body = R"({"availableTriggerId":"webhook","actions":[{"availableActionId":"http","actionMetadata":
      {"url":"https://x.org","headers":{"Authorization":"Bearer {{secrets.API_KEY}}"}}}]})";
  auto created = z.request("POST", "/api/v1/zap", body, h);
  REQUIRE(created.status == 200);
  std::string id = created.json()["zapId"];
  for (const auto& path : {"/api/v1/zap/" + id, "/api/v1/zap/" + id + "/export", std::string("/api/v1/zap")}) {
    auto r = z.request("GET", path, "", h);
    CHECK(r.body.find(value) == std::string::npos);
    CHECK(r.body.find("{{secrets.API_KEY}}") != std::string::npos);
  }
  REQUIRE(z.request("DELETE", "/api/v1/secrets/API_KEY", "", h).status == 200);
  CHECK(z.request("DELETE", "/api/v1/secrets/API_KEY", "", h).status == 404);
  CHECK(z.log().find(value) == std::string::npos);
  // The database holds only the sealed form.
  std::ifstream db(z.data_dir() + "/zapd.db", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(db)), std::istreambuf_iterator<char>());
  std::ifstream wal(z.data_dir() + "/zapd.db-wal", std::ios::binary);
  bytes.append((std::istreambuf_iterator<char>(wal)), std::istreambuf_iterator<char>());
  CHECK(bytes.find(value) == std::string::npos);
}
