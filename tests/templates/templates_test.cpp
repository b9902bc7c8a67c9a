#include <chrono>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "zapd/templates/mask.hpp"
#include "zapd/templates/template.hpp"

namespace t = zapd::templates;
using nlohmann::json;

namespace {

// A run context shaped like the worker builds it.
json context() {
  return json::parse(R"({
    "trigger": {
      "body": {
        "comment": {"email": "ann@example.com", "text": "say \"hi\"\\now\nX-Evil: 1"},
        "items": [{"id": 7, "name": "first"}, {"id": 8, "name": "second"}],
        "count": 3, "price": 9.5, "paid": true, "none": null,
        "path": "a b/c?d=e&f",
        "run": "the body's own run field"
      },
      "query": {"page": "2"},
      "headers": {"x-request-id": "req-1"},
      "method": "POST",
      "receivedAt": "2024-05-01T10:00:00Z"
    },
    "steps": {
      "1": {"status": 201, "body": {"id": "c-42", "next": "https://api.example.com/v1/items?cursor=abc",
                                    "echo": "token was s3cr3t-t0ken"}},
      "2": {"rows": [[1, 2], [3, 4]]}
    },
    "run": {"id": "run-9", "zapId": "zap-3"},
    "secrets": {"API_KEY": "s3cr3t-t0ken", "EMPTY": ""}
  })");
}

t::rendered render(std::string_view tmpl, t::mode m = t::mode::text) {
  t::options o;
  o.m = m;
  return t::render(tmpl, context(), o);
}

bool has_warning_with(const t::rendered& r, std::string_view part) {
  for (const auto& w : r.warnings)
    if (w.find(part) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("a bare path reads the trigger body") {
  auto r = render("To: {{comment.email}}");
  CHECK(r.text == "To: ann@example.com");
  CHECK(r.warnings.empty());
  CHECK(render("{{trigger.body.comment.email}}").text == "ann@example.com");
}

TEST_CASE("each root reads its part of the context") {
  CHECK(render("{{trigger.method}} {{trigger.query.page}} {{trigger.headers.x-request-id}}").text == "POST 2 req-1");
  CHECK(render("{{trigger.receivedAt}}").text == "2024-05-01T10:00:00Z");
  CHECK(render("{{steps.1.body.id}} {{steps.1.status}}").text == "c-42 201");
  CHECK(render("{{run.id}}/{{run.zapId}}").text == "run-9/zap-3");
  CHECK(render("{{secrets.API_KEY}}").text == "s3cr3t-t0ken");
  // A root name wins over a body field of the same name; the body is still reachable.
  CHECK(render("{{run}}").text == R"({"id":"run-9","zapId":"zap-3"})");
  CHECK(render("{{trigger.body.run}}").text == "the body's own run field");
}

TEST_CASE("array indexes as numeric segments and as brackets") {
  CHECK(render("{{items.0.id}}-{{items.1.name}}").text == "7-second");
  CHECK(render("{{items[0].id}}-{{items[1].name}}").text == "7-second");
  CHECK(render("{{steps.2.rows[1][0]}}{{steps.2.rows.0.1}}").text == "32");
  auto out_of_range = render("[{{items[2].id}}]");
  CHECK(out_of_range.text == "[]");
  CHECK(has_warning_with(out_of_range, "{{items[2].id}}"));
  // "01" is not an index: no silent aliasing of item 1.
  CHECK(render("{{items.01.id}}").text.empty());
}

TEST_CASE("a missing path renders empty and warns, naming where it looked") {
  auto r = render("Hi {{comment.emial}}!");
  CHECK(r.text == "Hi !");
  REQUIRE(r.warnings.size() == 1);
  CHECK(r.warnings[0] == "{{comment.emial}}: no such field in the trigger body");

  auto step = render("{{steps.5.body.id}}");
  CHECK(step.text.empty());
  CHECK(has_warning_with(step, "no output of step 5"));
  CHECK(has_warning_with(render("{{run.nope}}"), "no such field in the run"));
  // A path through a string is missing, not a crash or the string.
  CHECK(render("{{comment.email.x}}").text.empty());
  // The same missing placeholder used many times warns once.
  CHECK(render("{{nope}}{{nope}}{{nope}}").warnings.size() == 1);
}

TEST_CASE("whitespace inside the braces is ignored") {
  CHECK(render("{{ comment.email }}|{{\tcount\n}}").text == "ann@example.com|3");
  CHECK(t::referenced_paths("a {{ comment.email }} {{steps.1.body.id}} {{ comment.email}}") ==
        std::vector<std::string>{"comment.email", "steps.1.body.id"});
}

TEST_CASE("values render by type in text mode") {
  CHECK(render("{{count}} {{price}} {{paid}} [{{none}}]").text == "3 9.5 true []");
  CHECK(render("{{items}}").text == R"([{"id":7,"name":"first"},{"id":8,"name":"second"}])");
  CHECK(render("{{items[0]}}").text == R"({"id":7,"name":"first"})");
  CHECK(render("{{comment.text}}").text == "say \"hi\"\\now\nX-Evil: 1");
}

TEST_CASE("json mode escapes values inside strings and the body parses") {
  auto r = render(R"({"text": "{{comment.text}}", "email": "<{{comment.email}}>", "obj": "{{items[0]}}"})", t::mode::json);
  auto body = json::parse(r.text);  // throws (fails the test) if invalid
  CHECK(body["text"] == "say \"hi\"\\now\nX-Evil: 1");
  CHECK(body["email"] == "<ann@example.com>");
  CHECK(body["obj"] == R"({"id":7,"name":"first"})");
  // An escaped quote or backslash in the template does not confuse the string tracking.
  auto tricky = render(R"({"a": "x\"{{count}}\\", "b": {{count}}, "c": "\\{{comment.email}}"})", t::mode::json);
  auto j = json::parse(tricky.text);
  CHECK(j["a"] == "x\"3\\");
  CHECK(j["b"] == 3);
  CHECK(j["c"] == "\\ann@example.com");
}

TEST_CASE("json mode emits JSON values outside strings") {
  auto r = render(R"({"n": {{count}}, "p": {{price}}, "ok": {{paid}}, "items": {{items}}, "email": {{comment.email}}, "gone": {{nope}}, "nil": {{none}}})",
                  t::mode::json);
  auto j = json::parse(r.text);
  CHECK(j["n"] == 3);
  CHECK(j["p"] == 9.5);
  CHECK(j["ok"] == true);
  CHECK(j["items"][1]["name"] == "second");
  CHECK(j["email"] == "ann@example.com");
  CHECK(j["gone"].is_null());
  CHECK(j["nil"].is_null());
  CHECK(has_warning_with(r, "{{nope}}"));
}

TEST_CASE("header mode removes line breaks and control characters") {
  auto r = render("Note {{comment.text}}", t::mode::header);
  CHECK(r.text.find('\r') == std::string::npos);
  CHECK(r.text.find('\n') == std::string::npos);
  CHECK(r.text == "Note say \"hi\"\\now X-Evil: 1");
  CHECK(has_warning_with(r, "replaced by spaces"));
  json ctx = {{"trigger", {{"body", {{"v", std::string("a\r\nSet-Cookie: x=1\0b", 20)}}}}}};
  t::options o;
  o.m = t::mode::header;
  CHECK(t::render("{{v}}", ctx, o).text == "a  Set-Cookie: x=1 b");
}

TEST_CASE("url mode encodes components and keeps a leading placeholder whole") {
  auto r = render("https://example.com/search?q={{path}}&who={{comment.email}}", t::mode::url);
  CHECK(r.text == "https://example.com/search?q=a%20b%2Fc%3Fd%3De%26f&who=ann%40example.com");
  auto base = render("{{steps.1.body.next}}&page={{trigger.query.page}}", t::mode::url);
  CHECK(base.text == "https://api.example.com/v1/items?cursor=abc&page=2");
  // Kept whole, but a leading value still cannot smuggle spaces or line breaks.
  json ctx = {{"trigger", {{"body", {{"u", "https://x.test/a b\r\n?c=\xc3\xa9"}}}}}};
  t::options o;
  o.m = t::mode::url;
  CHECK(t::render("{{u}}", ctx, o).text == "https://x.test/a%20b%0D%0A?c=%C3%A9");
  // Only the very start counts: after any text the value is a component.
  CHECK(t::render(" {{u}}", ctx, o).text.starts_with(" https%3A%2F%2F"));
}

TEST_CASE("secrets render in text and are masked in masked") {
  auto r = render("Authorization: Bearer {{secrets.API_KEY}}", t::mode::header);
  CHECK(r.text == "Authorization: Bearer s3cr3t-t0ken");
  CHECK(r.masked == "Authorization: Bearer ********");
  // A value echoing the secret is masked too.
  auto echo = render("{{steps.1.body.echo}} / {{steps.1}}");
  CHECK(echo.text.find("s3cr3t-t0ken") != std::string::npos);
  CHECK(echo.masked.find("s3cr3t-t0ken") == std::string::npos);
  CHECK(echo.masked.starts_with("token was ******** / "));
  // In a JSON value position the mask stays valid JSON.
  auto body = render(R"({"key": {{secrets.API_KEY}}, "in": "k={{secrets.API_KEY}}"})", t::mode::json);
  CHECK(json::parse(body.text)["key"] == "s3cr3t-t0ken");
  auto masked = json::parse(body.masked);
  CHECK(masked["key"] == "********");
  CHECK(masked["in"] == "k=********");
  // Without secrets, masked is the text.
  auto plain = render("{{comment.email}}");
  CHECK(plain.masked == plain.text);
}

TEST_CASE("secrets: missing ones warn and the secrets root cannot be dumped") {
  auto missing = render("[{{secrets.NOPE}}]");
  CHECK(missing.text == "[]");
  CHECK(has_warning_with(missing, "no secret named NOPE"));
  auto all = render("{{secrets}}");
  CHECK(all.text.empty());
  CHECK(all.text.find("s3cr3t") == std::string::npos);
  CHECK(has_warning_with(all, "{{secrets.NAME}}"));
}

TEST_CASE("legacy single braces only when asked and only without double braces") {
  t::options on;
  on.legacy_single_brace = true;
  auto legacy = t::render("Hi {comment.email}, {not a path} \\{run.id}", context(), on);
  CHECK(legacy.text == "Hi ann@example.com, {not a path} {run.id}");
  CHECK(legacy.warnings.empty());
  CHECK(t::render("Hi {comment.email}", context()).text == "Hi {comment.email}");
  // One {{ anywhere: single braces are text.
  CHECK(t::render("{comment.email} {{run.id}}", context(), on).text == "{comment.email} run-9");
  CHECK(t::referenced_paths("{a} {b.c}", on) == std::vector<std::string>{"a", "b.c"});
}

TEST_CASE("braces that are not placeholders stay as text") {
  auto unterminated = render("Hi {{comment.email");
  CHECK(unterminated.text == "Hi {{comment.email");
  CHECK(has_warning_with(unterminated, "unterminated"));
  auto later = render("{{count}} and {{ oops");
  CHECK(later.text == "3 and {{ oops");
  auto not_path = render("{{a b}} {{}}");
  CHECK(not_path.text == "{{a b}} {{}}");
  CHECK(has_warning_with(not_path, "not a field path"));
  CHECK(render("\\{{count}} is {{count}}").text == "{{count}} is 3");
  CHECK(render("{{{count}}}").text == "{3}");
}

TEST_CASE("output is capped with a warning") {
  json ctx = {{"trigger", {{"body", {{"big", std::string(1000, 'x')}}}}}};
  std::string tmpl;
  for (int i = 0; i < 1000; ++i) tmpl += "{{big}}";
  t::options o;
  o.max_output = 10'000;
  auto r = t::render(tmpl, ctx, o);
  CHECK(r.truncated);
  CHECK(r.text.size() == 10'000);
  CHECK(has_warning_with(r, "10000-byte limit"));
  CHECK_FALSE(t::render("{{big}}", ctx, o).truncated);
}

TEST_CASE("deeply nested values are left out, not a stack overflow") {
  std::string deep(100'000, '[');
  deep += std::string(100'000, ']');
  json ctx = {{"trigger", {{"body", {{"deep", json::parse(deep)}}}}}};
  auto r = t::render("<{{deep}}>", ctx);
  CHECK(r.text == "<>");
  CHECK(has_warning_with(r, "nested deeper"));
}

TEST_CASE("render_config renders every string of a nested config") {
  json config = json::parse(R"({
    "url": "{{steps.1.body.next}}&q={{path}}",
    "method": "POST",
    "timeoutMs": 5000,
    "headers": {"Authorization": "Bearer {{secrets.API_KEY}}", "X-Note": "{{comment.text}}"},
    "to": ["{{comment.email}}", "boss@example.com"],
    "body": "{\"id\": \"{{steps.1.body.id}}\", \"n\": {{count}}, \"x\": \"{{missing}}\"}"
  })");
  auto modes = [](std::string_view field) {
    t::options o;
    if (field == "url") o.m = t::mode::url;
    else if (field.starts_with("headers.")) o.m = t::mode::header;
    else if (field == "body") o.m = t::mode::json;
    return o;
  };
  auto r = t::render_config(config, context(), modes);
  CHECK(r.value["url"] == "https://api.example.com/v1/items?cursor=abc&q=a%20b%2Fc%3Fd%3De%26f");
  CHECK(r.value["method"] == "POST");
  CHECK(r.value["timeoutMs"] == 5000);
  CHECK(r.value["headers"]["Authorization"] == "Bearer s3cr3t-t0ken");
  CHECK(r.masked["headers"]["Authorization"] == "Bearer ********");
  CHECK(r.value["headers"]["X-Note"].get<std::string>().find('\n') == std::string::npos);
  CHECK(r.value["to"] == json::array({"ann@example.com", "boss@example.com"}));
  auto body = json::parse(r.value["body"].get<std::string>());
  CHECK(body["id"] == "c-42");
  CHECK(body["n"] == 3);
  CHECK(r.masked.dump().find("s3cr3t") == std::string::npos);
  CHECK(std::find(r.warnings.begin(), r.warnings.end(), "body: {{missing}}: no such field in the trigger body") !=
        r.warnings.end());
}

TEST_CASE("bad contexts and bytes never throw") {
  for (const json& ctx : {json(), json(42), json::array(), json::parse(R"({"trigger": 5, "steps": []})"),
                          json(json::value_t::discarded)}) {
    for (auto m : {t::mode::text, t::mode::json, t::mode::header, t::mode::url}) {
      t::options o;
      o.m = m;
      auto r = t::render("{{a}} {{trigger.body}} {{steps.1.x}} {{secrets.K}}", ctx, o);
      CHECK_FALSE(r.warnings.empty());
    }
  }
  json ctx = {{"trigger", {{"body", {{"v", std::string("\xff\xfe\"")}}}}}};
  t::options o;
  o.m = t::mode::json;
  CHECK(json::accept(t::render(R"({"v": "{{v}}", "w": {{v}}})", ctx, o).text));
}

TEST_CASE("many braces that are not placeholders render in linear time") {
  std::string tmpl;
  for (int i = 0; i < 100'000; ++i) tmpl += "{{a b ";
  tmpl += "}}";
  auto started = std::chrono::steady_clock::now();
  auto r = t::render(tmpl, context());
  auto took = std::chrono::steady_clock::now() - started;
  CHECK(r.text == tmpl);
  CHECK(r.warnings.size() <= 101);  // 100 kept + "... and N more"
  // Quadratic scanning (each brace searching to the far `}}`) takes minutes here.
  CHECK(took < std::chrono::seconds(5));
}

TEST_CASE("warnings are short and valid UTF-8 whatever the path holds") {
  // Bad bytes, an overlong '/', a surrogate, a cut sequence, and a path longer than any warning.
  auto r = render("{{\xff\xfe.x}} {{\xc0\xaf}} {{a\xed\xa0\x80}} {{b\xe2\x82}} {{caf\xc3\xa9}} {{" + std::string(5000, 'p') + "}}");
  REQUIRE(r.warnings.size() == 6);
  CHECK(r.warnings[4] == "{{caf\xc3\xa9}}: no such field in the trigger body");  // valid UTF-8 kept as is
  for (const auto& w : r.warnings) {
    CHECK_NOTHROW(json(w).dump());  // strict: throws on invalid UTF-8
    CHECK(w.size() < 400);
  }
}

TEST_CASE("a missing secret is reported by name, once, in render and render_config") {
  auto r = render("{{secrets.GONE}} {{ secrets.GONE }} {{secrets.API_KEY}} {{secrets.OTHER}}");
  CHECK(r.missing_secrets == std::vector<std::string>{"GONE", "OTHER"});
  CHECK(render("{{secrets.API_KEY}} {{secrets.EMPTY}} {{secrets}}").missing_secrets.empty());  // "" exists
  t::options legacy;
  legacy.legacy_single_brace = true;
  CHECK(t::render("Hi {secrets.GONE}", context(), legacy).missing_secrets == std::vector<std::string>{"GONE"});
  auto c = t::render_config(json{{"signingSecret", "{{secrets.SIGN}}"}, {"h", {{"a", "{{secrets.SIGN}}"}, {"b", "{{secrets.B}}"}}}},
                            context());
  CHECK(c.missing_secrets == std::vector<std::string>{"SIGN", "B"});  // first use, fields in key order: h.a, h.b, signingSecret
}

TEST_CASE("referenced_secrets finds every secret a config names, at any depth") {
  // As deep as any document in the process may be (json_depth::stored; deeper ones are refused
  // at parse time, and copying one recurses once per level).
  const json deep = json::parse(std::string(1040, '[') + R"("{{secrets.DEEP}}")" + std::string(1040, ']'));
  json config = {{"url", "https://x.test/{{ secrets.A }}?k={{secrets.B}}"},
                 {"body", "{secrets.LEGACY} {{secrets}} {{secrets.a.b}} \\{{secrets.ESCAPED}}"},
                 {"n", 5},
                 {"deep", deep}};
  CHECK(t::referenced_secrets(config) == std::vector<std::string>{"A", "B", "DEEP"});
  CHECK(t::referenced_secrets(json{{"body", "{secrets.LEGACY}"}}) == std::vector<std::string>{"LEGACY"});
  CHECK(t::referenced_secrets(json::array()).empty());
}

TEST_CASE("the masker masks values and the forms zapd encodes them into") {
  const std::string secret = "p@th s3c\"ret/é\n";
  t::masker mk({secret, "", "tok"});
  CHECK_FALSE(mk.empty());
  CHECK(t::masker({""}).empty());
  CHECK(mk.str("a " + secret + " b") == "a ******** b");
  CHECK(mk.str(R"(body {"k":"p@th s3c\"ret/é\n"})") == R"(body {"k":"********"})");         // JSON-escaped
  CHECK(mk.str("http://h/p%40th%20s3c%22ret%2F%C3%A9%0A?x") == "http://h/********?x");       // URL component
  CHECK(mk.str("http://h/p%40th%20s3c%22ret%2f%c3%a9%0a?x") == "http://h/********?x");       // lower-case hex
  CHECK(mk.str("q=p%40th+s3c%22ret%2F%C3%A9%0A") == "q=********");                           // form encoding
  CHECK(mk.str("http://h/p@th%20s3c%22ret/%C3%A9%0A") == "http://h/********");               // whole-URL form
  CHECK(mk.str("X-H: p@th s3c\"ret/é ") == "X-H: ********");                                 // header form
  CHECK(mk.str("toktok-tok") == "****************-********");
  CHECK(mk.str("no secret here") == "no secret here");

  json v = {{"tok", {1, "a tok", json::array({{{"k", "tok"}}})}}, {"n", 42}, {"tok2", true}};
  mk.in_place(v);
  CHECK(v == json{{"********", {1, "a ********", json::array({{{"k", "********"}}})}}, {"n", 42}, {"********2", true}});
  // A number spelling a secret exactly is masked; one merely containing its digits is not.
  t::masker pin({"1234"});
  json nums = {{"pin", 1234}, {"other", 12345}, {"s", "pin 1234"}};
  pin.in_place(nums);
  CHECK(nums == json{{"pin", "********"}, {"other", 12345}, {"s", "pin ********"}});
  // A mask made of the secret's own bytes is not searched again.
  CHECK(t::masker({"*"}).str("a*b") == "a********b");
}

TEST_CASE("the masker is linear and iterative on hostile input") {
  // A long secret of one repeated byte against a long run of that byte: quadratic matching
  // (compare at every position) takes minutes here.
  const std::string secret(64 * 1024, 'a');
  t::masker mk({secret + "b"});
  const std::string text(1 << 20, 'a');
  auto started = std::chrono::steady_clock::now();
  CHECK(mk.str(text) == text);
  CHECK(mk.str(text + "b").ends_with("********"));
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));
  // Nesting far deeper than any parsed document: no recursion.
  json deep = json::parse(std::string(100'000, '[') + "\"a" + secret + "b\"" + std::string(100'000, ']'));
  mk.in_place(deep);
  const json* p = &deep;
  while (p->is_array()) p = &(*p)[0];
  CHECK(*p == "a********");
}

TEST_CASE("masked twins: an echoed secret shows as the mask in URLs, and JSON stays valid") {
  // An echoed secret in a URL shows as the mask, not as its percent-encoding.
  t::options url;
  url.m = t::mode::url;
  auto u = t::render("https://x.test/{{steps.1.body.echo}}", context(), url);
  CHECK(u.masked == "https://x.test/token%20was%20********");
  // Inside a JSON string the value is masked before it is escaped, so a short secret cannot
  // cut an escape sequence: the masked body stays valid JSON.
  json ctx = {{"trigger", {{"body", {{"v", "a\nb \"n\""}}}}}, {"secrets", {{"S", "n"}}}};
  t::options js;
  js.m = t::mode::json;
  auto body = t::render(R"({"v": "{{v}}", "w": {{v}}})", ctx, js);
  CHECK(json::parse(body.text)["v"] == "a\nb \"n\"");
  REQUIRE(json::accept(body.masked));
  CHECK(json::parse(body.masked) == json{{"v", "a\nb \"********\""}, {"w", "a\nb \"********\""}});
}
